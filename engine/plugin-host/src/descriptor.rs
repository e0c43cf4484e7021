//! What a component's `describe` returns, checked against the contract's
//! rules and turned into the validator's catalog entry.

use cordon_playbook::PluginDescriptor;
use serde_json::Value;

use crate::bindings::{Descriptor, types};
use crate::capability::{Capability, valid_connection_name};

/// Checks a descriptor and converts it. Every broken rule is reported.
pub(crate) fn check(raw: Descriptor) -> Result<(PluginDescriptor, Vec<Capability>), String> {
    let mut problems = Vec::new();
    if !valid_connection_name(&raw.name) {
        problems.push(format!(
            "name `{}` is not [a-z][a-z0-9-]{{0,62}}",
            raw.name.escape_debug()
        ));
    }
    let version = semver::Version::parse(&raw.version)
        .map_err(|e| problems.push(format!("version `{}`: {e}", raw.version.escape_debug())))
        .ok();
    if raw.compensable && raw.irreversible {
        problems.push("both compensable and irreversible".into());
    }
    let mut capabilities = Vec::new();
    for cap in raw.capabilities {
        let cap = match cap {
            types::Capability::Mqtt(c) => format!("mqtt:{c}"),
            types::Capability::Http(c) => format!("http:{c}"),
            types::Capability::InventoryRead => "inventory:read".to_string(),
            types::Capability::StateRun => "state:run".to_string(),
        };
        match cap.parse::<Capability>() {
            Ok(cap) if capabilities.contains(&cap) => {
                problems.push(format!("capability {cap} twice"))
            }
            Ok(cap) => capabilities.push(cap),
            Err(e) => problems.push(e.to_string()),
        }
    }
    let mut schema = |what: &str, text: &str| -> Value {
        match serde_json::from_str::<Value>(text) {
            Ok(value) => {
                if let Err(e) = jsonschema::validator_for(&value) {
                    problems.push(format!("{what} schema is not a JSON Schema: {e}"));
                }
                value
            }
            Err(e) => {
                problems.push(format!("{what} schema is not JSON: {e}"));
                Value::Null
            }
        }
    };
    let input_schema = schema("input", &raw.input_schema);
    let output_schema = schema("output", &raw.output_schema);
    match version {
        Some(version) if problems.is_empty() => Ok((
            PluginDescriptor {
                name: raw.name,
                version,
                description: raw.description,
                capabilities: capabilities.iter().map(ToString::to_string).collect(),
                idempotent: raw.idempotent,
                compensable: raw.compensable,
                irreversible: raw.irreversible,
                input_schema,
                output_schema,
            },
            capabilities,
        )),
        _ => Err(problems.join("; ")),
    }
}

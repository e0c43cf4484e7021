//! What `describe` returns, built from a [`Plugin`]'s constants and types.

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::{Value, json};

use crate::bindings::cordon::plugin::types as wit;
use crate::{Capability, Plugin};

/// A plugin's descriptor, as `describe` returns it (WIT `types.descriptor`),
/// with the schemas as JSON values.
#[derive(Debug, Clone, PartialEq)]
pub struct Descriptor {
    /// `uses: <name>@<major>`.
    pub name: &'static str,
    /// The semantic version.
    pub version: &'static str,
    /// What the plugin does.
    pub description: &'static str,
    /// Everything the plugin may use.
    pub capabilities: &'static [Capability],
    /// Same idempotency key, same effect.
    pub idempotent: bool,
    /// Can undo.
    pub compensable: bool,
    /// Cannot be undone.
    pub irreversible: bool,
    /// JSON Schema (draft 2020-12) of what `execute` accepts.
    pub input_schema: Value,
    /// JSON Schema (draft 2020-12) of what `execute` returns.
    pub output_schema: Value,
}

impl Descriptor {
    /// The descriptor in the format of `plugins/descriptors/*.json` and the
    /// engine's catalog (capabilities in their text form).
    pub fn to_catalog_json(&self) -> Value {
        json!({
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "capabilities": self
                .capabilities
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            "idempotent": self.idempotent,
            "compensable": self.compensable,
            "irreversible": self.irreversible,
            "input_schema": self.input_schema,
            "output_schema": self.output_schema,
        })
    }
}

/// The descriptor of plugin `P`. The input schema describes what `Input`
/// deserializes from, the output schema what `Output` serializes to (they
/// differ for fields with defaults, for example).
pub fn describe<P: Plugin>() -> Descriptor {
    Descriptor {
        name: P::NAME,
        version: P::VERSION,
        description: P::DESCRIPTION,
        capabilities: P::CAPABILITIES,
        idempotent: P::IDEMPOTENT,
        compensable: P::COMPENSABLE,
        irreversible: P::IRREVERSIBLE,
        input_schema: schema::<P::Input>(SchemaSettings::draft2020_12().for_deserialize()),
        output_schema: schema::<P::Output>(SchemaSettings::draft2020_12().for_serialize()),
    }
}

fn schema<T: JsonSchema>(settings: SchemaSettings) -> Value {
    settings
        .into_generator()
        .into_root_schema_for::<T>()
        .to_value()
}

impl From<Descriptor> for wit::Descriptor {
    fn from(descriptor: Descriptor) -> wit::Descriptor {
        wit::Descriptor {
            name: descriptor.name.to_owned(),
            version: descriptor.version.to_owned(),
            description: descriptor.description.to_owned(),
            capabilities: descriptor
                .capabilities
                .iter()
                .map(|capability| match *capability {
                    Capability::Mqtt(connection) => wit::Capability::Mqtt(connection.to_owned()),
                    Capability::Http(connection) => wit::Capability::Http(connection.to_owned()),
                    Capability::InventoryRead => wit::Capability::InventoryRead,
                    Capability::StateRun => wit::Capability::StateRun,
                })
                .collect(),
            idempotent: descriptor.idempotent,
            compensable: descriptor.compensable,
            irreversible: descriptor.irreversible,
            input_schema: descriptor.input_schema.to_string(),
            output_schema: descriptor.output_schema.to_string(),
        }
    }
}

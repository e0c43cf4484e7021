//! Glue between a [`Plugin`] and the exported WIT interface `action`.

use std::fmt;
use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::cordon::plugin::types as wit;
use crate::bindings::exports::cordon::plugin::action::Guest;
use crate::{Call, Capability, Error, Plugin, describe};

/// Exports a [`Plugin`] as the component's `cordon:plugin/action`
/// interface. Invoke it once, at the top level of the plugin crate.
///
/// It also checks the plugin's constants at compile time: `NAME` and every
/// connection name are 1 to 63 characters from `a-z`, `0-9` and `-`
/// starting with a letter (a connection may also be `*`), `VERSION` looks
/// like a semantic version, no capability is declared twice, and the plugin
/// is not both compensable and irreversible.
///
/// The plugin crate must be a `cdylib` built for `wasm32-wasip2`.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        const _: () = {
            const _: () = $crate::__private::check_plugin::<$plugin>();
            // wit-bindgen's export macro takes an identifier, not a path
            // with generics.
            type CordonPluginComponent = $crate::__private::Adapter<$plugin>;
            $crate::__private::bindings::export_component!(
                CordonPluginComponent with_types_in $crate::__private::bindings
            );
        };
    };
}

/// Implements the exported interface for any [`Plugin`]; named only by
/// [`export_plugin!`](crate::export_plugin).
pub struct Adapter<P>(PhantomData<P>);

impl<P> fmt::Debug for Adapter<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Adapter")
    }
}

impl<P: Plugin> Guest for Adapter<P> {
    fn describe() -> wit::Descriptor {
        describe::<P>().into()
    }

    fn execute(call: wit::Call, input: String) -> Result<String, wit::PluginError> {
        let input = parse::<P::Input>("input", &input)?;
        let output = P::execute(&Call::from(call), input)?;
        Ok(to_json(&output)?)
    }

    fn compensate(call: wit::Call, input: String, output: String) -> Result<(), wit::PluginError> {
        let input = parse::<P::Input>("input", &input)?;
        let output = parse::<P::Output>("output", &output)?;
        Ok(P::compensate(&Call::from(call), input, output)?)
    }
}

/// Deserializes `json` into `T`; the error names the path of the offending
/// field, so an operator can find it in the playbook. Never retryable: the
/// same input fails the same way.
fn parse<T: DeserializeOwned>(what: &str, json: &str) -> Result<T, Error> {
    let mut deserializer = serde_json::Deserializer::from_str(json);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if path == "." {
            Error::permanent(format!("invalid {what}: {inner}"))
        } else {
            Error::permanent(format!("invalid {what} at `{path}`: {inner}"))
        }
    })?;
    deserializer
        .end()
        .map_err(|error| Error::permanent(format!("invalid {what}: {error}")))?;
    Ok(value)
}

fn to_json<T: Serialize>(output: &T) -> Result<String, Error> {
    serde_json::to_string(output).map_err(|error| {
        Error::permanent(format!(
            "plugin bug: the output does not serialize: {error}"
        ))
    })
}

/// Compile-time checks of a plugin's constants; see
/// [`export_plugin!`](crate::export_plugin).
pub const fn check_plugin<P: Plugin>() {
    assert!(
        is_name(P::NAME),
        "Plugin::NAME must be 1 to 63 characters from a-z, 0-9 and -, starting with a letter"
    );
    assert!(
        is_semver(P::VERSION),
        "Plugin::VERSION must be a semantic version such as 1.0.0"
    );
    assert!(
        !(P::COMPENSABLE && P::IRREVERSIBLE),
        "a plugin cannot be both COMPENSABLE and IRREVERSIBLE"
    );
    let capabilities = P::CAPABILITIES;
    let mut i = 0;
    while i < capabilities.len() {
        if let Capability::Mqtt(connection) | Capability::Http(connection) = capabilities[i] {
            assert!(
                is_name(connection) || str_eq(connection, "*"),
                "a connection name must be `*` or 1 to 63 characters from a-z, 0-9 and -, starting with a letter"
            );
        }
        let mut j = i + 1;
        while j < capabilities.len() {
            assert!(
                !same_capability(capabilities[i], capabilities[j]),
                "a capability is declared twice"
            );
            j += 1;
        }
        i += 1;
    }
}

/// `[a-z][a-z0-9-]{0,62}`: plugin and connection names.
const fn is_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() > 63 || !bytes[0].is_ascii_lowercase() {
        return false;
    }
    let mut i = 1;
    while i < bytes.len() {
        let byte = bytes[i];
        if !(byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-') {
            return false;
        }
        i += 1;
    }
    true
}

/// `MAJOR.MINOR.PATCH` without leading zeros, then optional `-pre` and
/// `+build` parts made of dot-separated `[0-9A-Za-z-]+` identifiers. The
/// host checks the full grammar; this catches typos at compile time.
const fn is_semver(version: &str) -> bool {
    let bytes = version.as_bytes();
    let mut i = 0;
    let mut number = 0;
    while number < 3 {
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if i == start || (bytes[start] == b'0' && i - start > 1) {
            return false;
        }
        number += 1;
        if number < 3 {
            if i >= bytes.len() || bytes[i] != b'.' {
                return false;
            }
            i += 1;
        }
    }
    if i == bytes.len() {
        return true;
    }
    if bytes[i] != b'-' && bytes[i] != b'+' {
        return false;
    }
    let mut in_build = bytes[i] == b'+';
    let mut identifier_len = 0;
    i += 1;
    while i < bytes.len() {
        let byte = bytes[i];
        if byte == b'.' || (byte == b'+' && !in_build) {
            if identifier_len == 0 {
                return false;
            }
            in_build = in_build || byte == b'+';
            identifier_len = 0;
        } else if byte.is_ascii_alphanumeric() || byte == b'-' {
            identifier_len += 1;
        } else {
            return false;
        }
        i += 1;
    }
    identifier_len > 0
}

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

const fn same_capability(a: Capability, b: Capability) -> bool {
    match (a, b) {
        (Capability::Mqtt(a), Capability::Mqtt(b)) | (Capability::Http(a), Capability::Http(b)) => {
            str_eq(a, b)
        }
        (Capability::InventoryRead, Capability::InventoryRead)
        | (Capability::StateRun, Capability::StateRun) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use schemars::JsonSchema;
    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Debug, Deserialize, Serialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct Input {
        device: String,
        #[serde(default)]
        hard: bool,
    }

    #[derive(Debug, Deserialize, Serialize, JsonSchema)]
    struct Output {
        device: String,
    }

    struct Isolate;

    impl Plugin for Isolate {
        type Input = Input;
        type Output = Output;
        const NAME: &'static str = "isolate";
        const VERSION: &'static str = "1.0.0";
        const DESCRIPTION: &'static str = "Quarantines a device.";
        const CAPABILITIES: &'static [Capability] =
            &[Capability::Mqtt("fleet-broker"), Capability::InventoryRead];
        const IDEMPOTENT: bool = true;
        const COMPENSABLE: bool = false;
        const IRREVERSIBLE: bool = false;

        fn execute(_call: &Call, input: Input) -> Result<Output, Error> {
            Ok(Output {
                device: input.device,
            })
        }
    }

    const _: () = check_plugin::<Isolate>();

    fn call() -> wit::Call {
        wit::Call {
            run_id: "r-1".into(),
            step_id: "isolate".into(),
            attempt: 1,
            idempotency_key: "r-1/isolate/1".into(),
            dry_run: false,
        }
    }

    #[test]
    fn valid_input_round_trips_to_output_json() {
        let output = Adapter::<Isolate>::execute(call(), r#"{"device":"plc-7"}"#.into());
        assert_eq!(output.ok().as_deref(), Some(r#"{"device":"plc-7"}"#));
    }

    #[test]
    fn input_errors_are_permanent_and_name_the_field() {
        let cases = [
            (
                r#"{"device":7}"#,
                "invalid input at `device`: invalid type: integer `7`",
            ),
            (
                r#"{"device":"a","mode":"x"}"#,
                "invalid input at `mode`: unknown field `mode`",
            ),
            (r#"{"hard":true}"#, "invalid input: missing field `device`"),
            (r#"{"device":"a"} x"#, "invalid input: trailing characters"),
        ];
        for (input, expected) in cases {
            let error = Adapter::<Isolate>::execute(call(), input.into()).expect_err(input);
            assert!(!error.retryable, "{input}");
            assert!(
                error.message.starts_with(expected),
                "{input}: {}",
                error.message
            );
        }
    }

    #[test]
    fn compensate_is_refused_by_default() {
        let error = Adapter::<Isolate>::compensate(
            call(),
            r#"{"device":"plc-7"}"#.into(),
            r#"{"device":"plc-7"}"#.into(),
        )
        .expect_err("not compensable");
        assert_eq!(error.message, "plugin isolate cannot compensate");
        assert!(!error.retryable);
    }

    #[test]
    fn descriptor_has_catalog_format() {
        let catalog = describe::<Isolate>().to_catalog_json();
        assert_eq!(
            catalog["capabilities"],
            serde_json::json!(["mqtt:fleet-broker", "inventory:read"])
        );
        assert_eq!(catalog["input_schema"]["additionalProperties"], false);
        assert_eq!(
            catalog["input_schema"]["required"],
            serde_json::json!(["device"])
        );
        assert_eq!(
            catalog["output_schema"]["required"],
            serde_json::json!(["device"])
        );
    }

    #[test]
    fn names_and_versions() {
        for name in ["a", "fleet-broker", "ca2"] {
            assert!(is_name(name), "{name}");
        }
        for name in ["", "Fleet", "2ca", "a_b", "a.b", &"a".repeat(64)] {
            assert!(!is_name(name), "{name}");
        }
        for version in [
            "0.0.0",
            "1.2.3",
            "1.0.0-rc.1",
            "1.0.0+build.5",
            "1.0.0-a-b+c",
        ] {
            assert!(is_semver(version), "{version}");
        }
        for version in [
            "",
            "1",
            "1.2",
            "01.2.3",
            "1.2.3.4",
            "1.2.3-",
            "1.2.3+",
            "1.2.3-a..b",
            "v1.2.3",
        ] {
            assert!(!is_semver(version), "{version}");
        }
    }

    #[test]
    fn duplicate_capabilities_are_detected() {
        assert!(same_capability(
            Capability::Mqtt("a"),
            Capability::Mqtt("a")
        ));
        assert!(!same_capability(
            Capability::Mqtt("a"),
            Capability::Http("a")
        ));
        assert!(!same_capability(
            Capability::Mqtt("a"),
            Capability::Mqtt("b")
        ));
    }
}

//! The JSON Schema of the playbook format, generated from the model.

use std::sync::OnceLock;

use serde_json::Value;

use crate::model::Playbook;

/// The JSON Schema of a playbook (draft 2020-12), generated from the Rust
/// types with their doc comments. `schemas/playbook.schema.json` holds the
/// same text; a test fails when the two differ.
pub fn playbook_schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let mut schema = schemars::schema_for!(Playbook).to_value();
        bound_integer_formats(&mut schema);
        if let Some(object) = schema.as_object_mut() {
            object.insert(
                "$id".into(),
                Value::String("https://cordon.dev/schemas/playbook.schema.json".into()),
            );
        }
        schema
    })
}

/// The schema as committed: pretty JSON with a trailing newline.
pub fn playbook_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(playbook_schema()).unwrap_or_default();
    text.push('\n');
    text
}

/// The compiled validator for [`playbook_schema`], built once per process.
pub(crate) fn playbook_validator() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        // The schema is generated from our own types at build time, so a
        // failure here is a programming error that every test would catch.
        #[allow(clippy::expect_used)]
        jsonschema::validator_for(playbook_schema())
            .expect("the generated playbook schema compiles")
    })
}

/// schemars marks Rust integer types with a `format` (`uint32`…) that JSON
/// Schema validators do not enforce; turning it into `minimum`/`maximum`
/// makes `concurrency: 10000000000` an out-of-range error at its position
/// instead of a value that silently fails to load.
fn bound_integer_formats(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let bounds = match map.get("format").and_then(Value::as_str) {
                Some("uint8") => Some((0, i128::from(u8::MAX))),
                Some("uint16") => Some((0, i128::from(u16::MAX))),
                Some("uint32") => Some((0, i128::from(u32::MAX))),
                Some("uint64" | "uint") => Some((0, i128::from(u64::MAX))),
                Some("int32") => Some((i128::from(i32::MIN), i128::from(i32::MAX))),
                _ => None,
            };
            if let Some((min, max)) = bounds {
                if !map.contains_key("minimum") {
                    map.insert("minimum".into(), serde_json::json!(min));
                }
                if !map.contains_key("maximum") {
                    map.insert("maximum".into(), serde_json::json!(max));
                }
            }
            map.values_mut().for_each(bound_integer_formats);
        }
        Value::Array(items) => items.iter_mut().for_each(bound_integer_formats),
        _ => {}
    }
}

//! Run inputs.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One typed input of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    /// The input's type.
    #[serde(rename = "type")]
    pub kind: InputType,
    /// What the input means, shown to the responder who starts a run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The value used when the run does not give one. An input without a default is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// The only values allowed, when the input is a choice.
    #[serde(default, rename = "enum", skip_serializing_if = "Option::is_none")]
    pub choices: Option<Vec<Value>>,
    /// Whether the value is secret: it is never shown, logged or passed into a plugin sandbox in clear.
    #[serde(default, skip_serializing_if = "super::playbook::is_false")]
    pub secret: bool,
}

impl InputSpec {
    /// An input without a default must be given by whoever starts the run.
    pub fn is_required(&self) -> bool {
        self.default.is_none()
    }
}

/// The type of an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum InputType {
    /// Text.
    String,
    /// A whole number.
    Integer,
    /// Any number.
    Number,
    /// `true` or `false`.
    Boolean,
    /// A list of values.
    Array,
    /// A mapping of names to values.
    Object,
    /// The inventory id of a device (a string checked against the inventory when the run starts).
    Device,
    /// A duration such as `30s` (a string).
    Duration,
}

impl InputType {
    /// Whether `value` has this type (a device id or duration is a string here;
    /// the run checks them against the inventory and the duration syntax).
    pub fn accepts(self, value: &Value) -> bool {
        match self {
            InputType::String | InputType::Device => value.is_string(),
            InputType::Duration => value
                .as_str()
                .is_some_and(|s| s.parse::<super::Duration>().is_ok()),
            InputType::Integer => value.is_i64() || value.is_u64(),
            InputType::Number => value.is_number(),
            InputType::Boolean => value.is_boolean(),
            InputType::Array => value.is_array(),
            InputType::Object => value.is_object(),
        }
    }

    /// The type's name with its article, for messages: "an integer", "a device".
    pub fn described(self) -> String {
        match self {
            InputType::Integer | InputType::Array | InputType::Object => {
                format!("an {}", self.as_str())
            }
            _ => format!("a {}", self.as_str()),
        }
    }

    /// The type's name as written in a playbook.
    pub fn as_str(self) -> &'static str {
        match self {
            InputType::String => "string",
            InputType::Integer => "integer",
            InputType::Number => "number",
            InputType::Boolean => "boolean",
            InputType::Array => "array",
            InputType::Object => "object",
            InputType::Device => "device",
            InputType::Duration => "duration",
        }
    }
}

//! Checking the inputs a run is started with against what the playbook
//! declares: every problem at once, nothing guessed.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

use crate::model::{InputSpec, InputType};

/// One problem with the inputs of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputProblem {
    /// A required input (no default) was not given.
    Missing {
        /// The input.
        name: String,
    },
    /// An input the playbook does not declare.
    Unknown {
        /// The input.
        name: String,
    },
    /// A value of the wrong type.
    WrongType {
        /// The input.
        name: String,
        /// Its declared type.
        expected: InputType,
        /// The value given, as text.
        given: String,
    },
    /// A value outside the declared choices.
    NotAChoice {
        /// The input.
        name: String,
        /// The value given.
        given: String,
        /// The allowed values.
        choices: Vec<String>,
    },
}

impl fmt::Display for InputProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputProblem::Missing { name } => {
                write!(f, "input `{name}` is required (it has no default)")
            }
            InputProblem::Unknown { name } => write!(f, "the playbook has no input `{name}`"),
            InputProblem::WrongType {
                name,
                expected,
                given,
            } => {
                write!(
                    f,
                    "input `{name}` must be {}, not `{given}`",
                    expected.described()
                )
            }
            InputProblem::NotAChoice {
                name,
                given,
                choices,
            } => {
                write!(
                    f,
                    "input `{name}` must be one of {}, not `{given}`",
                    choices.join(", ")
                )
            }
        }
    }
}

/// Reads a value written on a command line (`--input retries=3`) as the
/// declared type: numbers, booleans and JSON for lists and mappings; text
/// stays text.
pub fn parse_text(kind: InputType, text: &str) -> Value {
    let parsed = match kind {
        InputType::Integer => text.parse::<i64>().ok().map(Value::from),
        InputType::Number => text
            .parse::<f64>()
            .ok()
            .and_then(|n| serde_json::Number::from_f64(n).map(Value::Number)),
        InputType::Boolean => text.parse::<bool>().ok().map(Value::Bool),
        InputType::Array | InputType::Object => serde_json::from_str(text).ok(),
        InputType::String | InputType::Device | InputType::Duration => None,
    };
    parsed.unwrap_or_else(|| Value::String(text.to_string()))
}

/// The complete inputs of a run: the given values checked against their
/// declarations, plus defaults for the rest. Every problem is reported.
pub fn resolve(
    specs: &BTreeMap<String, InputSpec>,
    given: &BTreeMap<String, Value>,
) -> Result<BTreeMap<String, Value>, Vec<InputProblem>> {
    let mut problems = Vec::new();
    let mut resolved = BTreeMap::new();
    for name in given.keys() {
        if !specs.contains_key(name) {
            problems.push(InputProblem::Unknown { name: name.clone() });
        }
    }
    for (name, spec) in specs {
        let Some(value) = given.get(name).or(spec.default.as_ref()) else {
            problems.push(InputProblem::Missing { name: name.clone() });
            continue;
        };
        let shown = || match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if !spec.kind.accepts(value) {
            problems.push(InputProblem::WrongType {
                name: name.clone(),
                expected: spec.kind,
                given: shown(),
            });
        } else if spec.choices.as_ref().is_some_and(|c| !c.contains(value)) {
            let choices = spec
                .choices
                .iter()
                .flatten()
                .map(|c| {
                    format!(
                        "`{}`",
                        c.as_str().map_or_else(|| c.to_string(), str::to_string)
                    )
                })
                .collect();
            problems.push(InputProblem::NotAChoice {
                name: name.clone(),
                given: shown(),
                choices,
            });
        } else {
            resolved.insert(name.clone(), value.clone());
        }
    }
    if problems.is_empty() {
        Ok(resolved)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specs() -> BTreeMap<String, InputSpec> {
        serde_json::from_value(serde_json::json!({
            "device": {"type": "device"},
            "reason": {"type": "string", "default": "keyCompromise", "enum": ["keyCompromise", "superseded"]},
            "retries": {"type": "integer", "default": 3},
            "hard": {"type": "boolean", "default": false},
        }))
        .expect("specs")
    }

    #[test]
    fn defaults_fill_in_and_text_is_typed() {
        let mut given = BTreeMap::new();
        given.insert("device".to_string(), parse_text(InputType::Device, "plc-7"));
        given.insert("hard".to_string(), parse_text(InputType::Boolean, "true"));
        let resolved = resolve(&specs(), &given).expect("valid");
        assert_eq!(resolved["device"], "plc-7");
        assert_eq!(resolved["hard"], true);
        assert_eq!(resolved["retries"], 3);
        assert_eq!(resolved["reason"], "keyCompromise");
    }

    #[test]
    fn every_problem_is_reported() {
        let mut given = BTreeMap::new();
        given.insert(
            "retries".to_string(),
            parse_text(InputType::Integer, "three"),
        );
        given.insert("reason".to_string(), Value::from("boredom"));
        given.insert("colour".to_string(), Value::from("red"));
        let problems = resolve(&specs(), &given).expect_err("invalid");
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "the playbook has no input `colour`",
                "input `device` is required (it has no default)",
                "input `reason` must be one of `keyCompromise`, `superseded`, not `boredom`",
                "input `retries` must be an integer, not `three`",
            ]
        );
    }
}

//! Evaluating expressions at run time: `if:` conditions and the
//! `${{ … }}` templates in `with`, against what the run knows so far.

use std::collections::BTreeMap;
use std::sync::Arc;

use cordon_playbook::expr::{condition_source, segments, whole_expression};
use serde_json::{Map, Value};

/// What expressions can read during a run.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// `inputs`
    pub inputs: BTreeMap<String, Value>,
    /// `steps.<id>`: `{status, outputs}` of every finished step.
    pub steps: Map<String, Value>,
    /// `run`: `{id, playbook, version, dry_run, drill}`.
    pub run: Value,
    /// `trigger`
    pub trigger: Value,
    /// `item`, inside one item of a `foreach`.
    pub item: Option<Value>,
    /// `alert`, in a webhook binding's `when:` and `inputs` (one alert of a delivery).
    pub alert: Option<Value>,
    /// `inventory.select("…")`, when the run's inventory was loaded.
    pub inventory: Option<Arc<dyn Inventory>>,
}

/// The asset inventory as expressions see it.
pub trait Inventory: std::fmt::Debug + Send + Sync {
    /// The records of the devices a selector (`tag=line-3,criticality>=high`)
    /// picks, in id order: JSON objects with at least `id` (SPEC §3.1 writes
    /// `item.id`); an error says why the selector is wrong.
    fn select(&self, selector: &str) -> Result<Vec<Value>, String>;
}

/// Why an expression could not be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot evaluate `{expression}`: {message}")]
pub struct EvalError {
    /// The expression.
    pub expression: String,
    /// What went wrong.
    pub message: String,
}

fn fail(source: &str, message: impl ToString) -> EvalError {
    EvalError {
        expression: source.to_string(),
        message: message.to_string(),
    }
}

impl Scope {
    fn evaluate(&self, source: &str) -> Result<Value, EvalError> {
        let program = cel::Program::compile(source).map_err(|e| fail(source, e))?;
        let mut context = cel::Context::default();
        let bind =
            |context: &mut cel::Context, name: &str, value: &Value| -> Result<(), EvalError> {
                let value = cel::to_value(value).map_err(|e| fail(source, e))?;
                context.add_variable_from_value(name, value);
                Ok(())
            };
        bind(
            &mut context,
            "inputs",
            &serde_json::to_value(&self.inputs).unwrap_or(Value::Null),
        )?;
        bind(&mut context, "steps", &Value::Object(self.steps.clone()))?;
        bind(&mut context, "run", &self.run)?;
        bind(&mut context, "trigger", &self.trigger)?;
        if let Some(item) = &self.item {
            bind(&mut context, "item", item)?;
        }
        if let Some(alert) = &self.alert {
            bind(&mut context, "alert", alert)?;
        }
        if let Some(inventory) = &self.inventory {
            bind(&mut context, "inventory", &Value::Object(Map::new()))?;
            let inventory = inventory.clone();
            context
                .add_function(
                    "select",
                    move |ftx: &cel::FunctionContext,
                          cel::extractors::This(_): cel::extractors::This<cel::Value>,
                          selector: Arc<String>|
                          -> cel::ResolveResult {
                        let devices = inventory.select(&selector).map_err(|e| ftx.error(e))?;
                        cel::to_value(devices).map_err(|e| ftx.error(e.to_string()))
                    },
                )
                .map_err(|e| fail(source, e))?;
        }
        let value = program.execute(&context).map_err(|e| fail(source, e))?;
        value.json().map_err(|e| fail(source, e))
    }

    /// Evaluates an `if:` condition; anything but a boolean is an error.
    pub fn condition(&self, text: &str) -> Result<bool, EvalError> {
        let source = condition_source(text);
        match self.evaluate(source)? {
            Value::Bool(b) => Ok(b),
            other => Err(fail(
                source,
                format!("a condition must be true or false, not {other}"),
            )),
        }
    }

    /// Renders a value of `with`: strings that are one `${{ … }}` take the
    /// expression's value and type; other strings get each expression's
    /// text spliced in; lists and mappings are rendered item by item.
    pub fn render(&self, value: &Value) -> Result<Value, EvalError> {
        Ok(match value {
            Value::String(text) => {
                if let Some(source) = whole_expression(text) {
                    return self.evaluate(source);
                }
                let parts = segments(text).map_err(|_| fail(text, "unterminated `${{`"))?;
                let mut out = String::new();
                let mut last = 0;
                for part in parts {
                    out.push_str(&text[last..part.offset]);
                    match self.evaluate(part.source)? {
                        Value::String(s) => out.push_str(&s),
                        other => out.push_str(&other.to_string()),
                    }
                    last = text[part.offset..]
                        .find("}}")
                        .map_or(text.len(), |end| part.offset + end + 2);
                }
                out.push_str(&text[last..]);
                Value::String(out)
            }
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|v| self.render(v))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), self.render(v)?)))
                    .collect::<Result<_, EvalError>>()?,
            ),
            other => other.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn scope() -> Scope {
        let mut steps = Map::new();
        steps.insert(
            "quarantine".into(),
            json!({"status": "succeeded", "outputs": {"quarantined": true, "sessions_dropped": 2}}),
        );
        Scope {
            inputs: BTreeMap::from([
                ("device".to_string(), json!("plc-7")),
                ("retries".to_string(), json!(3)),
            ]),
            steps,
            run: json!({"id": "r1", "dry_run": false}),
            trigger: json!({"kind": "manual"}),
            item: Some(json!({"id": "plc-9"})),
            alert: None,
            inventory: None,
        }
    }

    #[test]
    fn conditions_read_inputs_and_upstream_outputs() {
        let s = scope();
        assert!(
            s.condition(r#"inputs.device.startsWith("plc-")"#)
                .expect("eval")
        );
        assert!(
            s.condition("${{ steps.quarantine.outputs.quarantined }}")
                .expect("eval")
        );
        assert!(
            !s.condition(r#"steps["quarantine"].outputs.sessions_dropped > 5"#)
                .expect("eval")
        );
        assert!(
            s.condition("inputs.device").is_err(),
            "a string is not a condition"
        );
    }

    #[test]
    fn templates_keep_types_when_whole_and_splice_text_otherwise() {
        let s = scope();
        let rendered = s
            .render(&json!({"device": "${{ inputs.device }}", "n": "${{ inputs.retries }}", "note": "isolate ${{ inputs.device }} (${{ inputs.retries }} tries)", "mode": "soft"}))
            .expect("render");
        assert_eq!(
            rendered,
            json!({"device": "plc-7", "n": 3, "note": "isolate plc-7 (3 tries)", "mode": "soft"})
        );
        assert!(s.render(&json!("${{ inputs.missing.x }}")).is_err());
        assert_eq!(
            s.render(&json!("${{ item.id }}")).expect("item"),
            json!("plc-9")
        );
    }
}

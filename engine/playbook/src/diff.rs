//! A structural diff of two playbooks: what a reviewer needs to see before a
//! new version replaces an old one. Steps are matched by id, so moving a step
//! in the file is not a change; fields are compared by meaning, not text.

use std::fmt;

use serde_json::Value;

use crate::model::Playbook;

/// One difference.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A field present only in the newer playbook.
    Added { path: String, value: Value },
    /// A field present only in the older playbook.
    Removed { path: String, value: Value },
    /// A field whose value differs.
    Changed {
        path: String,
        from: Value,
        to: Value,
    },
}

/// How a step differs between two versions.
#[derive(Debug, Clone, PartialEq)]
pub enum StepChange {
    /// A step only the newer version has; `kind` says what it does.
    Added { id: String, kind: String },
    /// A step only the older version has.
    Removed { id: String, kind: String },
    /// A step both have, with its field changes.
    Changed { id: String, changes: Vec<Change> },
}

/// The differences between two playbooks.
#[derive(Debug, Clone, PartialEq)]
pub struct PlaybookDiff {
    /// `name@version` of the older side.
    pub from: String,
    /// `name@version` of the newer side.
    pub to: String,
    /// Changes outside `steps`.
    pub fields: Vec<Change>,
    /// Changes to steps, in the newer version's order, removed steps last.
    pub steps: Vec<StepChange>,
}

impl PlaybookDiff {
    /// Whether the two playbooks mean the same thing.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.steps.is_empty()
    }
}

fn to_value(playbook: &Playbook) -> Value {
    serde_json::to_value(playbook).unwrap_or(Value::Null)
}

fn kind_of(step: &Value) -> String {
    for field in ["uses", "playbook"] {
        if let Some(target) = step.get(field).and_then(Value::as_str) {
            return target.to_string();
        }
    }
    ["approval", "wait", "notify"]
        .into_iter()
        .find(|f| step.get(*f).is_some())
        .unwrap_or("step")
        .to_string()
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// Field-level differences between two JSON values, objects recursed into.
fn compare(prefix: &str, old: &Value, new: &Value, out: &mut Vec<Change>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, av) in a {
                match b.get(key) {
                    Some(bv) => compare(&join(prefix, key), av, bv, out),
                    None => out.push(Change::Removed {
                        path: join(prefix, key),
                        value: av.clone(),
                    }),
                }
            }
            for (key, bv) in b {
                if !a.contains_key(key) {
                    out.push(Change::Added {
                        path: join(prefix, key),
                        value: bv.clone(),
                    });
                }
            }
        }
        _ if old != new => out.push(Change::Changed {
            path: prefix.to_string(),
            from: old.clone(),
            to: new.clone(),
        }),
        _ => {}
    }
}

/// Compares two playbooks.
pub fn diff(old: &Playbook, new: &Playbook) -> PlaybookDiff {
    let (mut a, mut b) = (to_value(old), to_value(new));
    let steps_a = a
        .as_object_mut()
        .and_then(|o| o.remove("steps"))
        .unwrap_or(Value::Null);
    let steps_b = b
        .as_object_mut()
        .and_then(|o| o.remove("steps"))
        .unwrap_or(Value::Null);
    let mut fields = Vec::new();
    compare("", &a, &b, &mut fields);

    let list = |v: &Value| v.as_array().cloned().unwrap_or_default();
    let id = |s: &Value| {
        s.get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let (old_steps, new_steps) = (list(&steps_a), list(&steps_b));
    let mut steps = Vec::new();
    for step in &new_steps {
        match old_steps.iter().find(|s| id(s) == id(step)) {
            None => steps.push(StepChange::Added {
                id: id(step),
                kind: kind_of(step),
            }),
            Some(before) => {
                let mut changes = Vec::new();
                compare("", before, step, &mut changes);
                if !changes.is_empty() {
                    steps.push(StepChange::Changed {
                        id: id(step),
                        changes,
                    });
                }
            }
        }
    }
    for step in &old_steps {
        if !new_steps.iter().any(|s| id(s) == id(step)) {
            steps.push(StepChange::Removed {
                id: id(step),
                kind: kind_of(step),
            });
        }
    }
    PlaybookDiff {
        from: format!("{}@{}", old.name, old.version),
        to: format!("{}@{}", new.name, new.version),
        fields,
        steps,
    }
}

fn short(value: &Value) -> String {
    match value {
        Value::String(s) if !s.contains('\n') => format!("{s:?}"),
        Value::String(s) => format!("{:?}…", s.lines().next().unwrap_or_default()),
        other => other.to_string(),
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Added { path, value } => write!(f, "+ {path}: {}", short(value)),
            Change::Removed { path, value } => write!(f, "- {path}: {}", short(value)),
            Change::Changed { path, from, to } => {
                write!(f, "~ {path}: {} → {}", short(from), short(to))
            }
        }
    }
}

impl fmt::Display for PlaybookDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "--- {}\n+++ {}", self.from, self.to)?;
        if self.is_empty() {
            return writeln!(f, "(no change in meaning)");
        }
        for change in &self.fields {
            writeln!(f, "{change}")?;
        }
        for step in &self.steps {
            match step {
                StepChange::Added { id, kind } => writeln!(f, "+ step {id} ({kind})")?,
                StepChange::Removed { id, kind } => writeln!(f, "- step {id} ({kind})")?,
                StepChange::Changed { id, changes } => {
                    writeln!(f, "~ step {id}")?;
                    for change in changes {
                        writeln!(f, "    {change}")?;
                    }
                }
            }
        }
        Ok(())
    }
}

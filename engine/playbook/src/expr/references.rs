//! Walks a CEL expression and checks every name it reads against a scope.

use std::collections::{HashMap, HashSet};

use cel::IdedExpr;
use cel::common::ast::{CallExpr, EntryExpr, Expr, LiteralValue};
use cel::parser::Parser;

use super::selector::Selector;

/// What the validator knows about one step when checking expressions.
#[derive(Debug, Clone, Default)]
pub struct StepFacts {
    /// The step's index in `steps`.
    pub index: usize,
    /// The outputs the step declares, when it knows them (plugin steps).
    pub outputs: Option<Vec<String>>,
}

/// The names an expression may read at one place in a playbook.
#[derive(Debug, Clone, Default)]
pub struct Scope<'a> {
    /// Root names available here (`inputs`, `steps`, `item`, `alert`…).
    pub roots: &'a [&'a str],
    /// Declared input names.
    pub inputs: Option<&'a HashSet<String>>,
    /// Every step of the playbook.
    pub steps: Option<&'a HashMap<String, StepFacts>>,
    /// The indices of the steps that always finish before this place (transitive `needs`).
    pub upstream: Option<&'a fixedbitset::FixedBitSet>,
}

/// One problem in one expression.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Finding {
    /// The expression does not parse.
    Syntax { message: String },
    /// A root name not available here.
    UnknownVariable { name: String },
    /// `inputs.<name>` with no such input.
    UndeclaredInput { name: String },
    /// `steps.<id>` with no such step.
    UnknownStep { id: String },
    /// `steps.<id>` for a step that is not upstream.
    NotUpstream { id: String },
    /// `steps.<id>.outputs.<name>` the step does not declare.
    UnknownOutput {
        step: String,
        output: String,
        known: Vec<String>,
    },
    /// `inventory.select("…")` with a selector that does not parse.
    InvalidSelector { selector: String, message: String },
}

/// Parses `source` as CEL and reports every problem with the names it reads.
pub fn check(source: &str, scope: &Scope<'_>) -> Vec<Finding> {
    if source.trim().is_empty() {
        return vec![Finding::Syntax {
            message: "the expression is empty".into(),
        }];
    }
    let parsed = Parser::new().parse(source);
    let expr = match parsed {
        Ok(expr) => expr,
        Err(errors) => {
            let message = errors
                .errors
                .first()
                .map(|e| {
                    if e.pos.1 > 0 {
                        format!("{} (at character {})", e.msg, e.pos.1)
                    } else {
                        e.msg.clone()
                    }
                })
                .unwrap_or_else(|| "syntax error".into());
            return vec![Finding::Syntax { message }];
        }
    };
    let mut walker = Walker {
        scope,
        locals: Vec::new(),
        findings: Vec::new(),
    };
    walker.walk(&expr);
    let mut seen = HashSet::new();
    walker.findings.retain(|f| seen.insert(f.clone()));
    walker.findings
}

struct Walker<'s, 'a> {
    scope: &'s Scope<'a>,
    locals: Vec<String>,
    findings: Vec<Finding>,
}

/// The path an expression spells from a root name: `steps.x.outputs.y` or
/// `steps["x"].outputs`, as its segments. `None` for anything else.
fn path_of(expr: &Expr) -> Option<Vec<String>> {
    match expr {
        Expr::Ident(name) => Some(vec![name.clone()]),
        Expr::Select(select) => {
            let mut path = path_of(&select.operand.expr)?;
            path.push(select.field.clone());
            Some(path)
        }
        Expr::Call(call) if is_index(call) => {
            let mut path = path_of(&call.args[0].expr)?;
            match &call.args[1].expr {
                Expr::Literal(LiteralValue::String(key)) => path.push(key.to_string()),
                _ => return None,
            }
            Some(path)
        }
        _ => None,
    }
}

fn is_index(call: &CallExpr) -> bool {
    call.func_name == "_[_]" && call.target.is_none() && call.args.len() == 2
}

impl Walker<'_, '_> {
    fn walk(&mut self, node: &IdedExpr) {
        if let Some(path) = path_of(&node.expr) {
            self.check_path(&path);
            return;
        }
        match &node.expr {
            Expr::Select(select) => self.walk(&select.operand),
            Expr::Call(call) => {
                self.check_selector(call);
                if let Some(target) = &call.target {
                    self.walk(target);
                }
                for arg in &call.args {
                    self.walk(arg);
                }
            }
            Expr::Comprehension(c) => {
                self.walk(&c.iter_range);
                self.walk(&c.accu_init);
                let bound = 2 + usize::from(c.iter_var2.is_some());
                self.locals.push(c.iter_var.clone());
                self.locals.extend(c.iter_var2.clone());
                self.locals.push(c.accu_var.clone());
                self.walk(&c.loop_cond);
                self.walk(&c.loop_step);
                self.walk(&c.result);
                self.locals.truncate(self.locals.len() - bound);
            }
            Expr::List(list) => list.elements.iter().for_each(|e| self.walk(e)),
            Expr::Map(map) => {
                for entry in &map.entries {
                    match &entry.expr {
                        EntryExpr::MapEntry(e) => {
                            self.walk(&e.key);
                            self.walk(&e.value);
                        }
                        EntryExpr::StructField(f) => self.walk(&f.value),
                    }
                }
            }
            Expr::Struct(s) => {
                for entry in &s.entries {
                    if let EntryExpr::StructField(f) = &entry.expr {
                        self.walk(&f.value);
                    }
                }
            }
            Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
        }
    }

    fn check_selector(&mut self, call: &CallExpr) {
        let on_inventory = matches!(call.target.as_deref().map(|t| &t.expr), Some(Expr::Ident(n)) if n == "inventory");
        if !(on_inventory && call.func_name == "select") {
            return;
        }
        if let [
            IdedExpr {
                expr: Expr::Literal(LiteralValue::String(text)),
                ..
            },
        ] = call.args.as_slice()
            && let Err(e) = text.parse::<Selector>()
        {
            self.findings.push(Finding::InvalidSelector {
                selector: text.to_string(),
                message: e.0,
            });
        }
    }

    fn check_path(&mut self, path: &[String]) {
        let root = path[0].as_str();
        if self.locals.iter().any(|l| l == root) {
            return;
        }
        if !self.scope.roots.contains(&root) {
            self.findings.push(Finding::UnknownVariable {
                name: root.to_string(),
            });
            return;
        }
        match (root, path.get(1)) {
            ("inputs", Some(name))
                if self
                    .scope
                    .inputs
                    .is_some_and(|inputs| !inputs.contains(name)) =>
            {
                self.findings
                    .push(Finding::UndeclaredInput { name: name.clone() });
            }
            ("steps", Some(id)) => self.check_step(id, path.get(2), path.get(3)),
            _ => {}
        }
    }

    fn check_step(&mut self, id: &str, field: Option<&String>, output: Option<&String>) {
        let Some(steps) = self.scope.steps else {
            return;
        };
        let Some(facts) = steps.get(id) else {
            self.findings
                .push(Finding::UnknownStep { id: id.to_string() });
            return;
        };
        if self
            .scope
            .upstream
            .is_some_and(|up| !up.contains(facts.index))
        {
            self.findings
                .push(Finding::NotUpstream { id: id.to_string() });
            return;
        }
        if let (Some(field), Some(output), Some(known)) = (field, output, &facts.outputs)
            && field == "outputs"
            && !known.contains(output)
        {
            self.findings.push(Finding::UnknownOutput {
                step: id.to_string(),
                output: output.clone(),
                known: known.clone(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope_check(src: &str) -> Vec<Finding> {
        let inputs: HashSet<String> = ["device".to_string()].into();
        let mut steps = HashMap::new();
        steps.insert(
            "quarantine".to_string(),
            StepFacts {
                index: 0,
                outputs: Some(vec!["quarantined".into()]),
            },
        );
        steps.insert(
            "later".to_string(),
            StepFacts {
                index: 1,
                outputs: None,
            },
        );
        let mut upstream = fixedbitset::FixedBitSet::with_capacity(2);
        upstream.insert(0);
        let scope = Scope {
            roots: &["inputs", "steps", "inventory", "run"],
            inputs: Some(&inputs),
            steps: Some(&steps),
            upstream: Some(&upstream),
        };
        check(src, &scope)
    }

    #[test]
    fn accepts_known_names() {
        assert_eq!(
            scope_check(
                r#"inputs.device.startsWith("plc-") && steps.quarantine.outputs.quarantined"#
            ),
            vec![]
        );
        assert_eq!(
            scope_check(r#"steps["quarantine"].outputs.quarantined"#),
            vec![]
        );
        assert_eq!(
            scope_check(r#"inventory.select("tag=line-3").all(d, d.site == "a")"#),
            vec![]
        );
        assert_eq!(scope_check(r#"[1, 2].exists(x, x == 2)"#), vec![]);
    }

    #[test]
    fn reports_each_kind_of_bad_reference() {
        assert_eq!(
            scope_check("inputs.devise"),
            vec![Finding::UndeclaredInput {
                name: "devise".into()
            }]
        );
        assert_eq!(
            scope_check("steps.nope.status"),
            vec![Finding::UnknownStep { id: "nope".into() }]
        );
        assert_eq!(
            scope_check("steps.later.status"),
            vec![Finding::NotUpstream { id: "later".into() }]
        );
        assert_eq!(
            scope_check("item.id"),
            vec![Finding::UnknownVariable {
                name: "item".into()
            }]
        );
        assert!(matches!(
            scope_check("steps.quarantine.outputs.nope")[0],
            Finding::UnknownOutput { .. }
        ));
        assert!(matches!(
            scope_check(r#"inventory.select("colour=red")"#)[0],
            Finding::InvalidSelector { .. }
        ));
        assert!(matches!(
            scope_check("inputs.device ==")[0],
            Finding::Syntax { .. }
        ));
    }
}

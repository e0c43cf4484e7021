//! The structural diff, on two realistic versions.

use cordon_playbook::diff::diff;
use cordon_playbook::{Context, Playbook, PluginCatalog, validate};

fn parse(yaml: &str) -> Playbook {
    let catalog = PluginCatalog::default();
    let v = validate("x.yaml", yaml.as_bytes(), &Context::new(&catalog));
    assert!(!v.has_errors(), "{:#?}", v.diagnostics);
    v.into_valid().expect("valid").playbook().clone()
}

const OLD: &str = r#"
cordon: v1
name: drill
version: 1.0.0
inputs:
  device: {type: device}
steps:
  - id: settle
    wait: 30s
  - id: poll
    needs: [settle]
    wait: {until: 'true', every: 5s, timeout: 1m}
  - id: tell
    needs: [poll]
    notify: {to: [ops@example.com], subject: 'done ${{ inputs.device }}'}
"#;

const NEW: &str = r#"
cordon: v1
name: drill
version: 1.1.0
title: Weekly drill
inputs:
  device: {type: device}
  ticket: {type: string, default: none}
steps:
  - id: tell
    needs: [settle]
    notify: {to: [ops@example.com, oncall@example.com], subject: 'done ${{ inputs.device }}'}
  - id: settle
    wait: 45s
  - id: page
    needs: [tell]
    notify: {to: [oncall@example.com], subject: 'drill over'}
"#;

#[test]
fn steps_are_matched_by_id_and_fields_by_meaning() {
    let d = diff(&parse(OLD), &parse(NEW));
    insta::assert_snapshot!(d.to_string());
}

#[test]
fn formatting_is_not_a_change() {
    let reformatted = OLD.replace("wait: 30s", "wait:    30s   # settle first");
    assert!(diff(&parse(OLD), &parse(&reformatted)).is_empty());
}

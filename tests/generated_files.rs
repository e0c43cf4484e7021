//! Committed files generated from code must match the code: the playbook
//! JSON Schema and the diagnostic-code reference. Run with
//! `UPDATE_GENERATED=1` to rewrite them after changing the model or codes.

use cordon_tests::repo_root;

fn check(relative: &str, expected: &str) {
    let path = repo_root().join(relative);
    if std::env::var_os("UPDATE_GENERATED").is_some() {
        std::fs::write(&path, expected).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == expected,
        "{relative} is stale: the code changed but the file was not regenerated.\n\
         Run `UPDATE_GENERATED=1 cargo test -p cordon-tests --test generated_files` and commit the result."
    );
}

#[test]
fn playbook_schema_is_current() {
    check(
        "schemas/playbook.schema.json",
        &cordon_playbook::schema::playbook_schema_text(),
    );
}

#[test]
fn error_code_reference_is_current() {
    check(
        "docs/errors.md",
        &cordon_playbook::codes::reference_markdown(),
    );
}

#[test]
fn schema_describes_every_step_field() {
    // Every field of the model carries a doc comment, which becomes its description.
    let schema = cordon_playbook::schema::playbook_schema();
    let defs = schema["$defs"].as_object().expect("$defs");
    let mut undocumented = Vec::new();
    for (name, def) in defs {
        if let Some(props) = def.get("properties").and_then(|p| p.as_object()) {
            for (field, spec) in props {
                if spec.get("description").is_none() {
                    undocumented.push(format!("{name}.{field}"));
                }
            }
        }
    }
    assert!(
        undocumented.is_empty(),
        "fields without a description: {undocumented:?}"
    );
}

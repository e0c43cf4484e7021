//! Data-driven tests over the playbook fixtures.
//!
//! - `playbooks/*.yaml` (the examples) and `tests/playbooks/valid/*.yaml`
//!   validate with no diagnostic at all; their compiled plans and Mermaid
//!   renderings are snapshotted.
//! - `tests/playbooks/invalid/*.yaml` each declare on their first line the
//!   codes they must produce (`# expect: …`); the test checks exactly those
//!   codes appear, and snapshots the full diagnostics with line and column.

use std::collections::BTreeSet;
use std::path::Path;

use cordon_playbook::{Code, Context, validate};
use cordon_tests::{
    catalog, expected_codes, index_of, repo_root, validate_repo_file, yaml_or_json_files,
};

fn snapshot_name(prefix: &str, path: &Path) -> String {
    format!(
        "{prefix}__{}",
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    )
}

fn check_valid_dir(dir: &str, prefix: &str) -> usize {
    let catalog = catalog();
    let dir = repo_root().join(dir);
    let index = index_of(&dir);
    let files = yaml_or_json_files(&dir, "yaml");
    for file in &files {
        let validation = validate_repo_file(file, &catalog, &index);
        let rendered: String = validation.diagnostics.iter().map(|d| d.render()).collect();
        assert!(
            validation.diagnostics.is_empty(),
            "{} should be clean:\n{rendered}",
            file.display()
        );
        let plan = cordon_graph::compile(validation.valid().expect("valid"), &catalog);
        insta::assert_yaml_snapshot!(snapshot_name(&format!("{prefix}_plan"), file), plan);
        insta::assert_snapshot!(
            snapshot_name(&format!("{prefix}_mermaid"), file),
            cordon_graph::to_mermaid(&plan)
        );
    }
    files.len()
}

#[test]
fn example_playbooks_validate_and_compile() {
    let count = check_valid_dir("playbooks", "example");
    assert!(
        count >= 4,
        "expected at least four example playbooks, found {count}"
    );
}

#[test]
fn valid_fixtures_validate_and_compile() {
    let count = check_valid_dir("tests/playbooks/valid", "valid");
    assert!(count >= 5, "expected valid fixtures, found {count}");
}

#[test]
fn invalid_fixtures_report_exactly_their_planted_problems() {
    let catalog = catalog();
    let dir = repo_root().join("tests/playbooks/invalid");
    let index = index_of(&dir);
    let files = yaml_or_json_files(&dir, "yaml");
    assert!(
        files.len() >= 40,
        "expected at least 40 invalid fixtures, found {}",
        files.len()
    );
    let mut covered = BTreeSet::new();
    let mut failures = Vec::new();
    for file in &files {
        let source = std::fs::read(file).expect("read");
        let text = String::from_utf8_lossy(&source);
        let expected = expected_codes(&text)
            .unwrap_or_else(|| panic!("{} lacks a `# expect:` first line", file.display()));
        let validation = validate_repo_file(file, &catalog, &index);
        let mut found: Vec<String> = validation
            .diagnostics
            .iter()
            .map(|d| d.code.as_str().to_string())
            .collect();
        found.sort();
        found.dedup();
        let mut wanted = expected.clone();
        wanted.dedup();
        if found != wanted {
            let rendered: String = validation.diagnostics.iter().map(|d| d.render()).collect();
            failures.push(format!(
                "{}: expected {wanted:?}, found {found:?}\n{rendered}",
                file.display()
            ));
        }
        assert!(
            validation.valid().is_none() || validation.diagnostics.iter().all(|d| !d.is_error())
        );
        covered.extend(found);
        let rendered: String = validation.diagnostics.iter().map(|d| d.render()).collect();
        insta::assert_snapshot!(snapshot_name("invalid", file), rendered);
    }
    assert!(
        failures.is_empty(),
        "{} fixture(s) disagree:\n\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Every code has a fixture, except those only reachable with generated
    // input (tested below) and S107, the fallback for schema rules no other
    // code covers, which today's schema cannot reach.
    let generated = [Code::FileTooLarge, Code::NotUtf8, Code::NoMatchingForm];
    let missing: Vec<&str> = Code::ALL
        .iter()
        .filter(|c| !generated.contains(c) && !covered.contains(c.as_str()))
        .map(|c| c.as_str())
        .collect();
    assert!(
        missing.is_empty(),
        "codes without an invalid fixture: {missing:?}"
    );
}

#[test]
fn five_independent_mistakes_give_five_diagnostics() {
    let catalog = catalog();
    let dir = repo_root().join("tests/playbooks/invalid");
    let file = yaml_or_json_files(&dir, "yaml")
        .into_iter()
        .find(|f| f.to_string_lossy().contains("five-mistakes"))
        .expect("a five-mistakes fixture");
    let validation = validate_repo_file(&file, &catalog, &index_of(&dir));
    assert_eq!(
        validation.diagnostics.len(),
        5,
        "{:#?}",
        validation.diagnostics
    );
    let lines: BTreeSet<u32> = validation.diagnostics.iter().map(|d| d.line).collect();
    assert_eq!(lines.len(), 5, "five mistakes on five lines");
}

#[test]
fn oversized_and_non_utf8_files_get_diagnostics() {
    let catalog = catalog();
    let ctx = Context::new(&catalog);
    let mut huge = b"cordon: v1\nname: huge\nversion: 1.0.0\nsteps:\n".to_vec();
    while huge.len() <= 1024 * 1024 {
        huge.extend_from_slice(b"  - {id: s, wait: 1s}\n");
    }
    let v = validate("huge.yaml", &huge, &ctx);
    assert_eq!(
        v.diagnostics.iter().map(|d| d.code).collect::<Vec<_>>(),
        [Code::FileTooLarge]
    );
    assert_eq!((v.diagnostics[0].line, v.diagnostics[0].col), (1, 1));

    let bytes = b"cordon: v1\nname: caf\xe9\n";
    let v = validate("latin1.yaml", bytes, &ctx);
    assert_eq!(
        v.diagnostics.iter().map(|d| d.code).collect::<Vec<_>>(),
        [Code::NotUtf8]
    );
    assert_eq!((v.diagnostics[0].line, v.diagnostics[0].col), (2, 10));
}

#[test]
fn json_diagnostics_have_exactly_the_spec_fields() {
    let catalog = catalog();
    let v = validate(
        "x.yaml",
        b"cordon: v1\nname: x\nversion: 1.0.0\nsteps:\n  - {id: a, wait: 1s, bogus: 1}\n",
        &Context::new(&catalog),
    );
    let json = serde_json::to_value(&v.diagnostics).expect("json");
    let first = json[0].as_object().expect("object");
    let keys: Vec<&str> = first.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["code", "severity", "message", "file", "line", "col", "hint"]
    );
    assert_eq!(json[0]["code"], "S101");
    assert_eq!(json[0]["severity"], "error");
    assert_eq!(
        (json[0]["line"].as_u64(), json[0]["col"].as_u64()),
        (Some(5), Some(23))
    );
}

//! The parser and validator never panic: on arbitrary bytes, on arbitrary
//! YAML built from the playbook's own vocabulary, and on mutations of the
//! example playbooks. Every input that is not a valid playbook yields at
//! least one diagnostic.

use cordon_playbook::{Context, validate};
use cordon_tests::{catalog, repo_root, yaml_or_json_files};
use proptest::prelude::*;

const KEYS: &[&str] = &[
    "cordon",
    "name",
    "version",
    "steps",
    "id",
    "needs",
    "uses",
    "with",
    "if",
    "foreach",
    "items",
    "waves",
    "approval",
    "approvers",
    "roles",
    "min",
    "timeout",
    "on_timeout",
    "wait",
    "until",
    "notify",
    "to",
    "retry",
    "attempts",
    "inputs",
    "type",
    "default",
    "triggers",
    "schedules",
    "cron",
    "webhooks",
    "when",
    "drill",
    "handler",
    "on_failure",
    "handlers",
    "playbook",
    "device",
    "escalate",
];
const SCALARS: &[&str] = &[
    "v1",
    "1.0.0",
    "a",
    "b",
    "isolate@1",
    "revoke-cert@1",
    "${{ inputs.device }}",
    "${{",
    "30s",
    "5m",
    "-1",
    "true",
    "null",
    "~",
    "[]",
    "{}",
    "'x'",
    "\"y\"",
    "&a",
    "*a",
    "!Ref x",
    "0 0 3 * * Mon",
    "Europe/Berlin",
    "steps.a.outputs.x",
    "inventory.select(\"tag=x\")",
    "100%",
    "|",
    ">",
    "- ",
    ": ",
];

/// A YAML-shaped document made of playbook words, nested up to `depth`.
fn yamlish(depth: u32) -> impl Strategy<Value = String> {
    let leaf = prop::sample::select(SCALARS).prop_map(str::to_string);
    leaf.prop_recursive(depth, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec((prop::sample::select(KEYS), inner.clone()), 0..6).prop_map(
                |entries| {
                    let body: Vec<String> =
                        entries.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                    format!("{{{}}}", body.join(", "))
                }
            ),
            prop::collection::vec(inner, 0..6).prop_map(|items| format!("[{}]", items.join(", "))),
        ]
    })
}

/// Block-style documents: lines of `key: value` at random indents.
fn block_yaml() -> impl Strategy<Value = String> {
    prop::collection::vec(
        (
            0usize..4,
            prop::sample::select(KEYS),
            prop::sample::select(SCALARS),
            any::<bool>(),
        ),
        0..40,
    )
    .prop_map(|lines| {
        lines
            .iter()
            .map(|(indent, key, value, dash)| {
                format!(
                    "{}{}{key}: {value}\n",
                    "  ".repeat(*indent),
                    if *dash { "- " } else { "" }
                )
            })
            .collect()
    })
}

fn check_no_panic(bytes: &[u8]) {
    let catalog = catalog();
    let v = validate("fuzz.yaml", bytes, &Context::new(&catalog));
    if v.valid().is_none() {
        assert!(
            v.has_errors(),
            "an invalid document must say why: {:?}",
            String::from_utf8_lossy(bytes)
        );
    }
    for d in &v.diagnostics {
        assert!(d.line >= 1 && d.col >= 1, "positions are 1-based: {d:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check_no_panic(&bytes);
    }

    #[test]
    fn arbitrary_flow_yaml(doc in yamlish(6)) {
        check_no_panic(doc.as_bytes());
    }

    #[test]
    fn arbitrary_block_yaml(doc in block_yaml()) {
        check_no_panic(doc.as_bytes());
    }

    #[test]
    fn mutated_examples(which in 0usize..64, at in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<bool>()) {
        let files = yaml_or_json_files(&repo_root().join("playbooks"), "yaml");
        let mut bytes = std::fs::read(&files[which % files.len()]).expect("read");
        let i = at.index(bytes.len());
        if cut { bytes.truncate(i) } else { bytes[i] = byte }
        check_no_panic(&bytes);
    }
}

#[test]
fn pathological_inputs() {
    let deep_flow = "[".repeat(10_000);
    let deep_block: String = (0..200).map(|i| format!("{}k:\n", " ".repeat(i))).collect();
    let long_line = format!("name: {}\n", "x".repeat(500_000));
    let many_keys: String = (0..20_000).map(|i| format!("k{i}: {i}\n")).collect();
    let inputs: [&[u8]; 8] = [
        b"",
        b"\xff\xfe\x00",
        b"- a\n- b\n",
        b"{{{{",
        deep_flow.as_bytes(),
        deep_block.as_bytes(),
        long_line.as_bytes(),
        many_keys.as_bytes(),
    ];
    for input in inputs {
        check_no_panic(input);
    }
}

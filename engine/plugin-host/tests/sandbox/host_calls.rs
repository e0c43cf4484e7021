//! Abuse of the host interfaces a plugin may use: denials are sticky, dry
//! runs perform nothing, logs are bounded.

use cordon_plugin_host::{Grants, Limits};
use cordon_runtime::attempt_state::ErrorKind;
use serde_json::json;

use crate::support::{invocation, limits, load, sandbox};

fn granted() -> Grants {
    Grants::none().grant(
        "fixture-host-calls",
        "mqtt:fleet-broker".parse().expect("cap"),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_denied_call_denies_the_attempt_even_if_the_plugin_returns_ok() {
    let sandbox = sandbox(limits(), granted());
    let plugin = load(&sandbox, "fixture-host-calls", &["mqtt:fleet-broker"]).await;
    let outcome = sandbox
        .execute(
            &plugin,
            invocation(json!({"mode": "undeclared-connection"})),
        )
        .await;
    let error = outcome.result.expect_err("denied");
    assert_eq!(error.kind, ErrorKind::Denied);
    assert!(error.message.contains("other-broker"), "{}", error.message);
    assert!(!error.is_transient());
}

#[tokio::test(flavor = "multi_thread")]
async fn log_floods_are_bounded_and_counted() {
    let sandbox = sandbox(limits(), granted());
    let plugin = load(&sandbox, "fixture-host-calls", &["mqtt:fleet-broker"]).await;
    let outcome = sandbox
        .execute(
            &plugin,
            invocation(json!({"mode": "log-flood", "entries": 3000})),
        )
        .await;
    assert_eq!(outcome.result.expect("finishes")["entries"], json!(3000));
    let record = outcome.record;
    let kept = Limits::default().log_entries;
    assert_eq!(record.logs.len(), kept);
    assert_eq!(record.logs_dropped, (3000 - kept) as u64);
    assert!(
        record
            .logs
            .iter()
            .all(|l| l.message.len() <= Limits::default().log_entry_bytes + 3)
    );
    // Endless: the deadline ends it.
    let endless = sandbox
        .execute(&plugin, invocation(json!({"mode": "log-flood"})))
        .await;
    assert_eq!(
        endless.result.expect_err("endless").kind,
        ErrorKind::Timeout
    );
    assert_eq!(endless.record.logs.len(), kept);
}

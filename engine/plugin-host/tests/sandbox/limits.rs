//! Hostile guest code: every limit ends the attempt with its typed error,
//! within the limit, and the sandbox keeps serving.

use std::time::{Duration, Instant};

use cordon_plugin_host::{Grants, Limits, LoadedPlugin, Sandbox};
use cordon_runtime::attempt_state::ErrorKind;
use serde_json::{Value, json};

use crate::support::{invocation, limits, load, sandbox};

async fn baseline(limits: Limits) -> (Sandbox, LoadedPlugin) {
    let sandbox = sandbox(limits, Grants::none());
    let plugin = load(&sandbox, "fixture-baseline", &[]).await;
    (sandbox, plugin)
}

/// Runs a mode; returns the error kind and message, and how long it took.
async fn fails(
    sandbox: &Sandbox,
    plugin: &LoadedPlugin,
    input: Value,
) -> (ErrorKind, String, Duration) {
    let outcome = sandbox.execute(plugin, invocation(input.clone())).await;
    let error = outcome
        .result
        .expect_err(&format!("{input} should have failed"));
    assert!(
        !error.is_transient() || error.kind == ErrorKind::Timeout,
        "{error:?}"
    );
    (error.kind, error.message, outcome.elapsed)
}

/// The sandbox still answers a trivial call, quickly.
async fn still_healthy(sandbox: &Sandbox, plugin: &LoadedPlugin) {
    let outcome = sandbox
        .execute(
            plugin,
            invocation(json!({"mode": "spin", "iterations": 1000})),
        )
        .await;
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_infinite_loop_times_out_at_its_deadline_while_other_calls_proceed() {
    let (sandbox, plugin) = baseline(limits()).await;
    let timeout = limits().timeout;
    let spinning = sandbox.execute(&plugin, invocation(json!({"mode": "spin"})));
    let others = async {
        // While the loop burns its budget, other calls go through.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let started = Instant::now();
        still_healthy(&sandbox, &plugin).await;
        started.elapsed()
    };
    let (outcome, other_took) = tokio::join!(spinning, others);
    let error = outcome.result.expect_err("spin must not finish");
    assert_eq!(error.kind, ErrorKind::Timeout, "{error:?}");
    assert!(error.is_transient(), "a timeout may be retried");
    assert!(outcome.elapsed >= timeout, "{:?}", outcome.elapsed);
    assert!(
        outcome.elapsed < timeout + Duration::from_millis(500),
        "{:?}",
        outcome.elapsed
    );
    assert!(
        other_took < timeout,
        "a concurrent call waited {other_took:?}"
    );
    still_healthy(&sandbox, &plugin).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fuel_budget_ends_an_infinite_loop_with_out_of_fuel() {
    let (sandbox, plugin) = baseline(Limits {
        fuel: Some(50_000_000),
        timeout: Duration::from_secs(20),
        ..limits()
    })
    .await;
    let (kind, _, elapsed) = fails(&sandbox, &plugin, json!({"mode": "spin"})).await;
    assert_eq!(kind, ErrorKind::OutOfFuel);
    assert!(elapsed < Duration::from_secs(20));
    still_healthy(&sandbox, &plugin).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_memory_bomb_hits_the_memory_limit() {
    let (sandbox, plugin) = baseline(limits()).await;
    let (kind, message, _) = fails(&sandbox, &plugin, json!({"mode": "memory-bomb"})).await;
    assert_eq!(kind, ErrorKind::OutOfMemory, "{message}");
    assert!(message.contains(&(64u64 << 20).to_string()), "{message}");
    // Under the limit, the same code finishes.
    let ok = sandbox
        .execute(
            &plugin,
            invocation(json!({"mode": "memory-bomb", "limit_mib": 8})),
        )
        .await;
    assert!(ok.result.is_ok(), "{:?}", ok.result);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stack_overflow_is_a_trap() {
    let (sandbox, plugin) = baseline(limits()).await;
    let (kind, message, _) = fails(&sandbox, &plugin, json!({"mode": "stack-overflow"})).await;
    assert_eq!(kind, ErrorKind::Trap, "{message}");
    assert!(message.contains("stack"), "{message}");
    still_healthy(&sandbox, &plugin).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_huge_output_is_invalid_output_and_nothing_is_returned() {
    let (sandbox, plugin) = baseline(limits()).await;
    let (kind, message, _) = fails(&sandbox, &plugin, json!({"mode": "huge-output"})).await;
    assert_eq!(kind, ErrorKind::InvalidOutput, "{message}");
    assert!(message.contains("over the limit"), "{message}");
    // 64 MiB of output cannot even be built inside a 64 MiB memory.
    let (kind, _, _) = fails(
        &sandbox,
        &plugin,
        json!({"mode": "huge-output", "bytes": 64u64 << 20}),
    )
    .await;
    assert_eq!(kind, ErrorKind::OutOfMemory);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_panic_is_a_trap_carrying_its_message() {
    let (sandbox, plugin) = baseline(limits()).await;
    let (kind, message, _) = fails(&sandbox, &plugin, json!({"mode": "panic"})).await;
    assert_eq!(kind, ErrorKind::Trap);
    assert!(message.contains("deliberate panic"), "{message}");
    still_healthy(&sandbox, &plugin).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_environment_and_arguments_are_empty() {
    // The test process has an environment (PATH at least); the plugin sees none of it.
    assert!(std::env::var_os("PATH").is_some());
    let (sandbox, plugin) = baseline(limits()).await;
    let outcome = sandbox
        .execute(&plugin, invocation(json!({"mode": "read-env"})))
        .await;
    let output = outcome.result.expect("read-env runs");
    assert_eq!(output["env_names"], json!([]));
    assert_eq!(output["arg_count"], json!(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn input_that_breaks_the_schema_is_refused_before_the_call() {
    let (sandbox, plugin) = baseline(limits()).await;
    let outcome = sandbox
        .execute(&plugin, invocation(json!({"mode": "fly"})))
        .await;
    let error = outcome.result.expect_err("refused");
    assert_eq!(error.kind, ErrorKind::Plugin);
    assert!(!error.retryable);
    assert!(error.message.contains("schema"), "{}", error.message);
}

#[tokio::test(flavor = "multi_thread")]
async fn output_that_breaks_the_declared_schema_is_invalid_output() {
    let (sandbox, plugin) = baseline(limits()).await;
    let declared = &plugin.descriptor.output_schema["properties"]["percent"];
    assert_eq!(declared["maximum"], json!(100), "{declared}");
    let (kind, message, _) = fails(&sandbox, &plugin, json!({"mode": "bad-output"})).await;
    assert_eq!(kind, ErrorKind::InvalidOutput, "{message}");
    assert!(message.contains("/percent"), "{message}");
}

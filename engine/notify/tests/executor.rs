//! `NotifyingExecutor` as the engine uses it: a `notify:` step's call sends
//! a real mail to a real SMTP server on loopback, a dry run sends nothing,
//! and every other action goes to the executor it wraps.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::{Arc, Mutex};

use cordon_notify::{Mailer, NotifyingExecutor};
use cordon_runtime::IdempotencyKey;
use cordon_runtime::attempt_state::{AttemptError, ErrorKind};
use cordon_runtime::executor::{Action, BoxFuture, Executor, StepCall};
use serde_json::{Value, json};
use support::Sink;

/// The wrapped executor: records what reaches it and answers `{"inner": true}`.
#[derive(Debug, Default)]
struct Inner {
    calls: Mutex<Vec<String>>,
}

impl Executor for Inner {
    fn execute(&self, call: StepCall) -> BoxFuture<Result<Value, AttemptError>> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("execute {}", call.step));
        Box::pin(async { Ok(json!({"inner": true})) })
    }

    fn compensate(&self, call: StepCall, _outputs: Value) -> BoxFuture<Result<(), String>> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("compensate {}", call.step));
        Box::pin(async { Ok(()) })
    }
}

fn call(action: Action, inputs: Value, dry_run: bool) -> StepCall {
    StepCall {
        run: "run-1".into(),
        step: "tell-soc".into(),
        action,
        inputs,
        key: IdempotencyKey::new("run-1", "tell-soc", 1),
        dry_run,
        pin: None,
        secrets: vec!["hunter2".into()],
    }
}

fn notify_inputs() -> Value {
    json!({
        "to": ["soc@fleet.test", ["lead@fleet.test"]],
        "subject": "plc-7 isolated",
        "body": "plc-7 is in quarantine. Token: hunter2\n",
    })
}

fn executor(sink: &Sink) -> (NotifyingExecutor, Arc<Inner>) {
    let inner = Arc::new(Inner::default());
    let mailer = Arc::new(Mailer::new(&sink.config()).unwrap());
    (NotifyingExecutor::new(mailer, inner.clone()), inner)
}

#[tokio::test]
async fn a_notify_step_sends_its_mail() {
    let sink = Sink::start();
    let (executor, inner) = executor(&sink);
    let outputs = executor
        .execute(call(Action::Notify, notify_inputs(), false))
        .await
        .unwrap();
    let mails = sink.wait_for(1);
    let m = &mails[0];
    assert_eq!(outputs["to"], json!(["soc@fleet.test", "lead@fleet.test"]));
    assert_eq!(outputs["message_id"], json!(m.header("Message-ID")));
    assert_eq!(m.header("Subject"), "[cordon] plc-7 isolated");
    assert_eq!(m.header("X-RcptTo"), "soc@fleet.test, lead@fleet.test");
    // lettre ends the body with one more line break on the wire.
    let text = m.part("text/plain").replace("\r\n", "\n");
    assert_eq!(
        text.trim_end(),
        "plc-7 is in quarantine. Token: [secret]\n\n-- \nSent by Cordon: run run-1, step tell-soc."
    );
    assert!(inner.calls.lock().unwrap().is_empty());

    // The same attempt executed again (after a crash) carries the same
    // Message-ID, so the duplicate folds into the first in a mail client.
    let again = executor
        .execute(call(Action::Notify, notify_inputs(), false))
        .await
        .unwrap();
    assert_eq!(again["message_id"], outputs["message_id"]);
}

#[tokio::test]
async fn a_dry_run_sends_nothing_and_reports_its_plan() {
    let sink = Sink::start();
    let (executor, _inner) = executor(&sink);
    let outputs = executor
        .execute(call(Action::Notify, notify_inputs(), true))
        .await
        .unwrap();
    assert_eq!(
        outputs["planned"],
        json!({
            "from": "Cordon <cordon@fleet.test>",
            "to": ["soc@fleet.test", "lead@fleet.test"],
            "subject": "[cordon] plc-7 isolated",
            "server": format!("127.0.0.1:{}", sink.port),
        })
    );
    assert_eq!(outputs["_plan"][0]["kind"], "mail.send");
    assert_eq!(
        outputs["_plan"][0]["target"],
        "soc@fleet.test, lead@fleet.test"
    );
    assert!(outputs.get("message_id").is_none());
    // A real send afterwards is the only mail the server ever got: the sink
    // stores a mail before it answers, so had the dry run sent one, it
    // would be there by now.
    executor
        .execute(call(Action::Notify, notify_inputs(), false))
        .await
        .unwrap();
    assert_eq!(sink.wait_for(1).len(), 1);

    // A dry run still checks the mail as a send would.
    let bad = json!({"to": ["x\r\nBcc: evil@example.org"], "subject": "s"});
    let e = executor
        .execute(call(Action::Notify, bad, true))
        .await
        .unwrap_err();
    assert!(e.message.contains("error[bad_address]"), "{}", e.message);
    assert!(!e.is_transient());
}

#[tokio::test]
async fn other_actions_and_compensations_go_to_the_inner_executor() {
    let sink = Sink::start();
    let (executor, inner) = executor(&sink);
    let plugin = call(Action::Plugin("isolate@1".into()), json!({}), false);
    let out = executor.execute(plugin.clone()).await.unwrap();
    assert_eq!(out, json!({"inner": true}));
    executor.compensate(plugin, json!({})).await.unwrap();
    let e = executor
        .compensate(call(Action::Notify, notify_inputs(), false), json!({}))
        .await
        .unwrap_err();
    assert!(e.contains("cannot be recalled"), "{e}");
    assert_eq!(
        *inner.calls.lock().unwrap(),
        ["execute tell-soc", "compensate tell-soc"]
    );
    assert!(sink.delivered().is_empty());
}

#[tokio::test]
async fn an_unreachable_server_is_a_retryable_attempt_error() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let config = serde_yaml::from_str(&format!(
        "{{host: 127.0.0.1, port: {port}, tls: none, from: cordon@fleet.test}}"
    ))
    .unwrap();
    let mailer = Arc::new(Mailer::new(&config).unwrap());
    let executor = NotifyingExecutor::new(mailer, Arc::new(Inner::default()));
    let e = executor
        .execute(call(Action::Notify, notify_inputs(), false))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Plugin);
    assert!(e.is_transient(), "{e:?}");
    assert!(
        e.message.contains("error[smtp_unreachable]"),
        "{}",
        e.message
    );
}

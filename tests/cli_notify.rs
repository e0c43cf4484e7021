//! `notify:` steps through `cordon run`: the configuration's `smtp:`
//! section sends the mail to a real SMTP server on loopback
//! (`tests/servers/smtp_sink.sh`); without it the step fails saying so; a
//! dry run sends nothing and lists the mail in its plan.

mod cli_support;
mod smtp_support;

use cli_support::{Scratch, text};
use smtp_support::Sink;

const TELL: &str = "cordon: v1
name: tell
version: 1.0.0
inputs:
  device: {type: string}
steps:
  - id: tell-soc
    notify:
      to: [soc@fleet.test]
      subject: '${{ inputs.device }} isolated'
      body: 'Device ${{ inputs.device }} is in quarantine.'
";

fn with_smtp(s: &Scratch, smtp: &str) -> String {
    std::fs::write(s.path().join("cordon.yaml"), format!("smtp: {smtp}\n")).expect("config");
    "cordon.yaml".into()
}

#[test]
fn a_notify_step_sends_its_mail_through_the_configured_server() {
    let s = Scratch::new();
    let sink = Sink::start_in(s.path().join("smtp"));
    s.publish("tell.yaml", TELL);
    let config = with_smtp(
        &s,
        &format!(
            "{{host: 127.0.0.1, port: {}, tls: none, from: 'Cordon <cordon@fleet.test>'}}",
            sink.port
        ),
    );
    let out = s.cordon(&[
        "run",
        "tell",
        "--wait",
        "-i",
        "device=plc-7",
        "--config",
        &config,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let mails = sink.mails(1);
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert!(mail.contains("Subject: [cordon] plc-7 isolated"), "{mail}");
    assert!(mail.contains("From: Cordon <cordon@fleet.test>"), "{mail}");
    assert!(mail.contains("X-RcptTo: soc@fleet.test"), "{mail}");
    assert!(mail.contains("Device plc-7 is in quarantine."), "{mail}");
    assert!(mail.contains("step tell-soc"), "{mail}");
}

#[test]
fn without_an_smtp_section_the_step_fails_saying_so() {
    let s = Scratch::new();
    s.publish("tell.yaml", TELL);
    let out = s.cordon(&["run", "tell", "--wait", "-i", "device=plc-7"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let id = text(&out.stdout).trim().to_string();
    let shown = text(&s.cordon(&["runs", "show", &id]).stdout);
    assert!(shown.contains("no `smtp:` section"), "{shown}");
}

#[test]
fn a_dry_run_sends_nothing_and_plans_the_mail() {
    let s = Scratch::new();
    let sink = Sink::start_in(s.path().join("smtp"));
    s.publish("tell.yaml", TELL);
    let config = with_smtp(
        &s,
        &format!(
            "{{host: 127.0.0.1, port: {}, tls: none, from: cordon@fleet.test}}",
            sink.port
        ),
    );
    let out = s.cordon(&[
        "run",
        "tell",
        "--wait",
        "--dry-run",
        "-i",
        "device=plc-7",
        "--config",
        &config,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(said.contains("mail.send"), "{said}");
    assert!(said.contains("soc@fleet.test"), "{said}");
    // The mail would have been stored before the server answered.
    assert!(sink.mails(0).is_empty());
}

#[test]
fn an_unsafe_smtp_section_is_refused_before_anything_runs() {
    let s = Scratch::new();
    s.publish("tell.yaml", TELL);
    let config = with_smtp(
        &s,
        "{host: smtp.example.org, tls: none, username: u, password: hunter2, from: cordon@fleet.test}",
    );
    let out = s.cordon(&[
        "run",
        "tell",
        "--wait",
        "-i",
        "device=plc-7",
        "--config",
        &config,
    ]);
    assert_ne!(out.status.code(), Some(0));
    let err = text(&out.stderr);
    assert!(err.contains("smtp_plaintext_credentials"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    assert!(text(&s.cordon(&["runs"]).stdout).trim().lines().count() <= 1);
}

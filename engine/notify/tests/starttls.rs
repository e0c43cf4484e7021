//! STARTTLS against a real SMTP server on loopback whose certificate comes
//! from a throwaway CA (`tests/servers/pki.sh`): trusted through
//! `ca_file`, refused without it, and no plain-text fallback.
#![allow(clippy::unwrap_used)]

mod support;

use cordon_notify::{Mail, Mailer, SmtpConfig};
use support::{Pki, Sink};

fn mail(subject: &str) -> Mail {
    Mail {
        to: vec!["approver@fleet.test".into()],
        subject: subject.into(),
        text: "over TLS\n".into(),
        html: None,
    }
}

fn config(sink: &Sink, extra: &str) -> SmtpConfig {
    serde_yaml::from_str(&format!(
        "{{host: 127.0.0.1, port: {}, from: cordon@fleet.test, timeout_ms: 5000{extra}}}",
        sink.port
    ))
    .unwrap()
}

#[tokio::test]
async fn starttls_with_the_private_ca_delivers() {
    let pki = Pki::create();
    let sink = Sink::start_tls(&pki);
    let config = config(
        &sink,
        &format!(", tls: starttls, ca_file: '{}'", pki.ca().display()),
    );
    let mailer = Mailer::new(&config).unwrap();
    let id = mailer.send(&mail("[cordon] tls")).await.unwrap();
    let mails = sink.wait_for(1);
    assert_eq!(mails[0].header("Subject"), "[cordon] tls");
    assert_eq!(mails[0].header("Message-ID"), id.as_str());
    assert_eq!(mails[0].header("X-RcptTo"), "approver@fleet.test");
}

#[tokio::test]
async fn a_certificate_from_an_unknown_ca_is_a_tls_error() {
    let pki = Pki::create();
    let sink = Sink::start_tls(&pki);
    // Only the webpki roots: the test CA is not among them.
    let mailer = Mailer::new(&config(&sink, ", tls: starttls")).unwrap();
    let e = mailer.send(&mail("x")).await.unwrap_err();
    assert_eq!(e.code(), "tls", "{e}");
    assert!(!e.is_transient());
    // Another CA does not vouch for this server either.
    let other = Pki::create();
    let config = config(
        &sink,
        &format!(", tls: starttls, ca_file: '{}'", other.ca().display()),
    );
    let e = Mailer::new(&config)
        .unwrap()
        .send(&mail("x"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "tls", "{e}");
    assert!(sink.delivered().is_empty());
}

#[tokio::test]
async fn plain_text_to_a_server_that_requires_starttls_is_refused_for_good() {
    let pki = Pki::create();
    let sink = Sink::start_tls(&pki);
    let mailer = Mailer::new(&config(&sink, ", tls: none")).unwrap();
    let e = mailer.send(&mail("x")).await.unwrap_err();
    // aiosmtpd: "530 Must issue a STARTTLS command first".
    assert_eq!(e.code(), "smtp_refused", "{e}");
    assert!(!e.is_transient(), "5xx is permanent: {e}");
    assert!(e.to_string().contains("530"), "{e}");
    assert!(sink.delivered().is_empty());
}

#[tokio::test]
async fn starttls_required_but_not_offered_is_refused_not_downgraded() {
    let sink = Sink::start(); // no STARTTLS on this one
    let mailer = Mailer::new(&config(&sink, ", tls: starttls")).unwrap();
    let e = mailer.send(&mail("x")).await.unwrap_err();
    assert_eq!(e.code(), "smtp_refused", "{e}");
    assert!(e.to_string().contains("STARTTLS"), "{e}");
    assert!(!e.is_transient());
    assert!(sink.delivered().is_empty());
}

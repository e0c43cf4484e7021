//! Sending real mail to a real SMTP server on loopback (aiosmtpd), and
//! reading what it stored.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use cordon_notify::{Mail, MailError, Mailer};
use support::Sink;

fn mail(to: &[&str], subject: &str) -> Mail {
    Mail {
        to: to.iter().map(ToString::to_string).collect(),
        subject: subject.into(),
        text: "Run r-42 waits for your approval.\nhttps://cordon.test/approve/abc\n".into(),
        html: None,
    }
}

#[tokio::test]
async fn a_plain_text_mail_arrives_with_its_headers_and_body() {
    let sink = Sink::start();
    let mailer = Mailer::new(&sink.config()).unwrap();
    let started = Instant::now();
    let id = mailer
        .send(&mail(
            &["Approver <approver@fleet.test>", "soc@fleet.test"],
            "[cordon] approval needed",
        ))
        .await
        .unwrap();
    let elapsed = started.elapsed();
    let mails = sink.wait_for(1);
    let m = &mails[0];
    assert_eq!(m.header("From"), "Cordon <cordon@fleet.test>");
    assert_eq!(
        m.header("To"),
        "Approver <approver@fleet.test>, soc@fleet.test"
    );
    assert_eq!(m.header("Subject"), "[cordon] approval needed");
    assert_eq!(m.header("Message-ID"), id.as_str());
    assert!(
        id.as_str().starts_with('<') && id.as_str().ends_with("@fleet.test>"),
        "{id}"
    );
    assert_eq!(m.header("Auto-Submitted"), "auto-generated");
    assert!(!m.header("Date").is_empty());
    // The envelope, as the server saw it (aiosmtpd's Mailbox handler).
    assert_eq!(m.header("X-MailFrom"), "cordon@fleet.test");
    assert_eq!(m.header("X-RcptTo"), "approver@fleet.test, soc@fleet.test");
    assert_eq!(m.content_type, "text/plain");
    // lettre ends the body with one more line break on the wire.
    assert_eq!(
        m.part("text/plain").replace("\r\n", "\n").trim_end(),
        "Run r-42 waits for your approval.\nhttps://cordon.test/approve/abc"
    );
    eprintln!("first mail over loopback: {} ms", elapsed.as_millis());
}

#[tokio::test]
async fn html_makes_a_multipart_alternative_and_a_pooled_connection_is_reused() {
    let sink = Sink::start();
    let mailer = Mailer::new(&sink.config()).unwrap();
    let mut m = mail(&["soc@fleet.test"], "Grüße — unicode subject");
    m.html = Some("<p>Run <b>r-42</b> waits.</p>".into());
    mailer.send(&m).await.unwrap();
    // Two more on the pooled connection: measured, and both delivered.
    let started = Instant::now();
    for i in 0..2 {
        mailer
            .send(&mail(&["soc@fleet.test"], &format!("again {i}")))
            .await
            .unwrap();
    }
    let per_mail = started.elapsed() / 2;
    let mails = sink.wait_for(3);
    let multipart = mails
        .iter()
        .find(|d| d.header("Subject") == "Grüße — unicode subject")
        .unwrap();
    assert_eq!(multipart.content_type, "multipart/alternative");
    assert_eq!(multipart.header("MIME-Version"), "1.0");
    let types: Vec<&str> = multipart.parts.iter().map(|(t, _)| t.as_str()).collect();
    // Plain first: a client shows the last part it understands.
    assert_eq!(types, ["text/plain", "text/html"]);
    assert!(multipart.part("text/plain").contains("Run r-42 waits"));
    assert_eq!(multipart.part("text/html"), "<p>Run <b>r-42</b> waits.</p>");
    eprintln!("mail on a pooled connection: {} ms", per_mail.as_millis());
}

#[tokio::test]
async fn a_recipient_named_twice_gets_one_copy() {
    let sink = Sink::start();
    let mailer = Mailer::new(&sink.config()).unwrap();
    mailer
        .send(&mail(&["soc@fleet.test", "SOC <soc@fleet.test>"], "once"))
        .await
        .unwrap();
    let mails = sink.wait_for(1);
    assert_eq!(mails[0].header("X-RcptTo"), "soc@fleet.test");
}

#[tokio::test]
async fn header_injection_and_bad_addresses_are_refused_before_sending() {
    let sink = Sink::start();
    let mailer = Mailer::new(&sink.config()).unwrap();
    let cases = [
        (
            mail(&["soc@fleet.test"], "hi\r\nBcc: evil@example.org"),
            "bad_message",
        ),
        (mail(&["soc@fleet.test"], "hi\nX-Evil: 1"), "bad_message"),
        (
            mail(&["soc@fleet.test\r\nBcc: evil@example.org"], "hi"),
            "bad_address",
        ),
        (mail(&["not an address"], "hi"), "bad_address"),
        (mail(&["group:oncall"], "hi"), "bad_address"),
        (mail(&[], "hi"), "bad_message"),
    ];
    for (m, code) in cases {
        let e = mailer.send(&m).await.unwrap_err();
        assert_eq!(e.code(), code, "{m:?}: {e}");
        assert!(!e.is_transient(), "{e}");
        assert_eq!(mailer.check(&m).unwrap_err().code(), code);
    }
    // A good mail afterwards is the only one the server ever got.
    mailer
        .send(&mail(&["soc@fleet.test"], "good"))
        .await
        .unwrap();
    let mails = sink.wait_for(1);
    assert_eq!(mails[0].header("Subject"), "good");
}

#[tokio::test]
async fn a_closed_port_is_unreachable_and_transient() {
    // A port that was free a moment ago, now closed: nothing listens.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let config = serde_yaml::from_str(&format!(
        "{{host: 127.0.0.1, port: {port}, tls: none, from: cordon@fleet.test}}"
    ))
    .unwrap();
    let mailer = Mailer::new(&config).unwrap();
    let e = mailer
        .send(&mail(&["soc@fleet.test"], "x"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "smtp_unreachable", "{e}");
    assert!(e.is_transient());
    assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    // Connections are accepted by the kernel (the backlog) but nothing
    // ever greets: the client waits for a 220 banner that does not come.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let config = serde_yaml::from_str(&format!(
        "{{host: 127.0.0.1, port: {port}, tls: none, from: cordon@fleet.test, timeout_ms: 300}}"
    ))
    .unwrap();
    let mailer = Mailer::new(&config).unwrap();
    let started = Instant::now();
    let e = mailer
        .send(&mail(&["soc@fleet.test"], "x"))
        .await
        .unwrap_err();
    let waited = started.elapsed();
    assert!(matches!(e, MailError::Timeout { .. }), "{e:?}");
    assert_eq!(e.code(), "timeout");
    assert!(e.is_transient());
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    drop(listener);
}

//! The mail templates: snapshots of every mail (fixed data, fixed times),
//! and the properties that matter whatever the wording: every value
//! escaped in HTML, the link's note, the plan and its digest.
#![allow(clippy::unwrap_used)]

use chrono::{DateTime, Utc};
use cordon_notify::Mail;
use cordon_notify::templates::{
    ApprovalMail, NotifyMail, PlanLine, RunFailedMail, approval_escalated, approval_reminder,
    approval_request, notify_step, run_failed,
};

fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .with_timezone(&Utc)
}

/// A mail as a reviewer reads it: headers, then each body verbatim.
fn show(mail: &Mail) -> String {
    let mut out = format!(
        "To: {}\nSubject: {}\n\n--- text/plain ---\n{}",
        mail.to.join(", "),
        mail.subject,
        mail.text
    );
    if let Some(html) = &mail.html {
        out.push_str("\n--- text/html ---\n");
        out.push_str(html);
    }
    out
}

fn approval() -> ApprovalMail {
    ApprovalMail {
        to: vec![
            "lead@fleet.test".into(),
            "Plant Manager <pm@fleet.test>".into(),
        ],
        run_id: "0195a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b".into(),
        playbook: "isolate-compromised-device@1.2.0".into(),
        gate: "approve-revoke".into(),
        message: "Revoke the certificate of plc-7?\nIt reported an unknown firmware hash.".into(),
        initiator: "alice".into(),
        min_approvals: 2,
        approvals_so_far: 1,
        deadline: Some(at("2026-03-01T14:30:00Z")),
        plan: vec![
            PlanLine {
                step: "revoke".into(),
                action: "revoke-cert@1".into(),
                devices: vec!["plc-7".into()],
            },
            PlanLine {
                step: "rollback".into(),
                action: "rollback-firmware@1".into(),
                devices: (1..=23).map(|i| format!("plc-{i}")).collect(),
            },
            PlanLine {
                step: "tell-soc".into(),
                action: "notify".into(),
                devices: vec![],
            },
        ],
        plan_digest: "sha256:5f2b9c0e4a7d1f3b8c6e2a9d0b4f7e1c3a5d8b2e6f0c9a4d7b1e3f5a8c2d6b9e"
            .into(),
        link: "https://cordon.example.org/approvals/confirm?t=QmFzZTY0VG9rZW4&g=approve-revoke"
            .into(),
    }
}

#[test]
fn approval_request_snapshot() {
    insta::assert_snapshot!(show(&approval_request(&approval())));
}

#[test]
fn approval_reminder_snapshot() {
    insta::assert_snapshot!(show(&approval_reminder(&approval())));
}

#[test]
fn approval_escalated_snapshot() {
    let mut data = approval();
    data.deadline = None;
    data.plan.clear();
    insta::assert_snapshot!(show(&approval_escalated(&data)));
}

#[test]
fn run_failed_snapshot() {
    let data = RunFailedMail {
        to: vec!["soc@fleet.test".into()],
        run_id: "0195a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b".into(),
        playbook: "isolate-compromised-device@1.2.0".into(),
        error: "step `rollback` failed: 3 of 23 devices did not report the safe image".into(),
        failed_steps: vec![
            (
                "rollback[4]".into(),
                "timeout: plc-5 did not answer within 5m".into(),
            ),
            (
                "rollback[9]".into(),
                "plugin: image below the security floor".into(),
            ),
        ],
        run_url: Some("https://cordon.example.org/runs/0195a1b2".into()),
    };
    insta::assert_snapshot!(show(&run_failed(&data)));
    let without_url = RunFailedMail {
        run_url: None,
        ..data
    };
    let mail = run_failed(&without_url);
    assert!(
        mail.text
            .contains("cordon runs show 0195a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b")
    );
}

#[test]
fn notify_step_snapshot() {
    let data = NotifyMail {
        to: vec!["soc@fleet.test".into()],
        subject: "plc-7 isolated".into(),
        body: "plc-7 is in quarantine since 14:02.\nNo action needed.\n".into(),
        run_id: "0195a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b".into(),
        step: "tell-soc".into(),
    };
    insta::assert_snapshot!(show(&notify_step(&data)));
}

#[test]
fn the_notify_subject_is_tagged_once_and_an_empty_body_still_says_who_sent_it() {
    let data = NotifyMail {
        to: vec!["soc@fleet.test".into()],
        subject: "[cordon] already tagged".into(),
        body: String::new(),
        run_id: "r-1".into(),
        step: "s".into(),
    };
    let mail = notify_step(&data);
    assert_eq!(mail.subject, "[cordon] already tagged");
    assert_eq!(mail.text, "-- \nSent by Cordon: run r-1, step s.\n");
    assert_eq!(mail.html, None);
}

#[test]
fn every_interpolated_value_is_escaped_in_html() {
    let evil = "<script>alert('x')</script> & \"q\"";
    let mut data = approval();
    data.run_id = evil.into();
    data.playbook = evil.into();
    data.gate = evil.into();
    data.message = evil.into();
    data.initiator = evil.into();
    data.plan_digest = evil.into();
    data.plan = vec![PlanLine {
        step: evil.into(),
        action: evil.into(),
        devices: vec![evil.into()],
    }];
    data.link = format!("https://cordon.example.org/confirm?x={evil}");
    let failed = RunFailedMail {
        to: vec!["soc@fleet.test".into()],
        run_id: evil.into(),
        playbook: evil.into(),
        error: evil.into(),
        failed_steps: vec![(evil.into(), evil.into())],
        run_url: Some(evil.into()),
    };
    for mail in [
        approval_request(&data),
        approval_reminder(&data),
        approval_escalated(&data),
        run_failed(&failed),
    ] {
        let html = mail.html.unwrap();
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("alert('x')"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;q&quot;")
        );
        // The plain text carries the values as they are.
        assert!(mail.text.contains(evil));
        assert!(!mail.subject.contains(['\r', '\n']));
    }
}

#[test]
fn a_link_that_is_not_a_web_address_is_never_clickable() {
    let mut data = approval();
    data.link = "javascript:alert(document.cookie)".into();
    let html = approval_request(&data).html.unwrap();
    assert!(!html.contains("href"), "{html}");
    assert!(html.contains("<code>javascript:alert(document.cookie)</code>"));
}

#[test]
fn the_approval_mail_says_the_link_decides_nothing_and_shows_the_plan() {
    for mail in [
        approval_request(&approval()),
        approval_reminder(&approval()),
        approval_escalated(&approval()),
    ] {
        let html = mail.html.as_deref().unwrap();
        for body in [mail.text.as_str(), html] {
            assert!(body.contains("does not approve or deny anything"), "{body}");
            assert!(body.contains("sha256:5f2b9c0e"), "{body}");
            assert!(body.contains("1 given, 2 needed"), "{body}");
            assert!(body.contains("2026-03-01 14:30 UTC"), "{body}");
            assert!(body.contains("plc-20 and 3 more"), "{body}");
            assert!(!body.contains("plc-21"), "{body}");
        }
        assert!(mail.text.contains(
            "https://cordon.example.org/approvals/confirm?t=QmFzZTY0VG9rZW4&g=approve-revoke"
        ));
        assert!(html.contains(
            "href=\"https://cordon.example.org/approvals/confirm?t=QmFzZTY0VG9rZW4&amp;g=approve-revoke\""
        ));
    }
}

#[test]
fn line_breaks_in_values_never_reach_a_subject() {
    let mut data = approval();
    data.playbook = "x\r\nBcc: evil@example.org".into();
    let mail = approval_request(&data);
    assert!(!mail.subject.contains(['\r', '\n']), "{}", mail.subject);
    let failed = RunFailedMail {
        to: vec![],
        run_id: "r\n1".into(),
        playbook: "p".into(),
        error: "e".into(),
        failed_steps: vec![],
        run_url: None,
    };
    assert!(!run_failed(&failed).subject.contains('\n'));
}

//! Approval gates end to end through the real server on loopback: quorum
//! from distinct people with one deny, self-approval, roles (403) and
//! authentication (401), timeouts that reject or escalate to a second
//! group, a plan that changes after one approval, mailed one-time links
//! (GET shows, POST decides once; forged and expired links refused) read
//! from a real SMTP server, and a waiting run that survives a restart.

mod server_support;
mod smtp_support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use server_support::{Api, Server, text, urlencoded};
use smtp_support::Sink;

/// A gate between a preparation and a rollout over line 3's devices; each
/// device's part is a pinned sub-playbook that waits a moment.
const SETTLE: &str = "cordon: v1
name: settle
version: 1.0.0
inputs:
  device: {type: string}
steps:
  - id: pause
    wait: 10ms
";

fn gated(name: &str, approval: &str) -> String {
    format!(
        "cordon: v1
name: {name}
version: 1.0.0
inputs:
  line: {{type: string, default: line-3}}
steps:
  - id: prepare
    wait: 10ms
  - id: approve
    needs: [prepare]
    approval:
{approval}
      message: 'Roll back line ${{{{ inputs.line }}}}?'
  - id: act
    needs: [approve]
    foreach: {{items: '${{{{ inventory.select(\"tag=\" + inputs.line) }}}}'}}
    playbook: settle@1.0.0
    with: {{device: '${{{{ item.id }}}}'}}
"
    )
}

const QUORUM: &str = "      approvers: {roles: [security-lead], users: [carol]}
      min: 2
      timeout: 1h";

fn config(sink: &Sink) -> String {
    format!(
        "server:
  public_url: http://cordon.test
smtp: {{host: 127.0.0.1, port: {}, tls: none, from: 'Cordon <cordon@fleet.test>'}}
users:
  alice: {{email: alice@fleet.test, roles: [responder, approver, security-lead]}}
  bob: {{email: bob@fleet.test, roles: [approver, security-lead]}}
  carol: {{email: carol@fleet.test, roles: [approver]}}
  dave: {{email: dave@fleet.test, roles: [viewer]}}
  erin: {{email: erin@fleet.test, roles: [approver], groups: [plant-managers]}}
  root: {{roles: [admin]}}
",
        sink.port
    )
}

/// A server with the sink, the playbooks published and line 3's two devices.
struct Fixture {
    sink: Sink,
    server: Server,
}

impl Fixture {
    async fn start(playbooks: &[&str]) -> Fixture {
        let sink = Sink::start();
        let server = Server::start_with(&config(&sink));
        let root = server.token("root", "admin");
        let admin = server.api(Some(&root));
        for yaml in std::iter::once(&SETTLE).chain(playbooks) {
            let published = admin.publish(yaml).await;
            assert!(published.status < 300, "{}", published.text);
        }
        let imported = admin
            .post_json(
                "/api/v1/inventory",
                &json!({"devices": [device("plc-1"), device("plc-2")]}),
            )
            .await;
        assert_eq!(imported.status, 200, "{}", imported.text);
        Fixture { sink, server }
    }

    fn api(&self, user: &str, role: &str) -> Api {
        let token = self.server.token(user, role);
        self.server.api(Some(&token))
    }
}

fn device(id: &str) -> Value {
    json!({"id": id, "type": "plc", "site": "plant-a", "tags": ["line-3"], "criticality": "high"})
}

async fn decide(
    api: &Api,
    request: &Value,
    verdict: &str,
    comment: &str,
) -> server_support::Answer {
    api.post_json(
        &format!(
            "/api/v1/approvals/{}/{verdict}",
            request["id"].as_str().expect("id")
        ),
        &json!({"plan_digest": request["plan_digest"], "comment": comment}),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quorum_of_two_distinct_approvers_and_any_deny_rejects() {
    let f = Fixture::start(&[&gated("rollback-line", QUORUM)]).await;
    let alice = f.api("alice", "responder");
    let alice_approver = f.api("alice", "approver");
    let bob = f.api("bob", "approver");
    let carol = f.api("carol", "approver");
    let dave = f.api("dave", "viewer");
    let (run, request) = alice.start_at_gate("rollback-line").await;
    assert_eq!(request["plan"]["devices"], json!(["plc-1", "plc-2"]));
    assert_eq!(request["message"], "Roll back line line-3?");

    // Who may not decide: nobody without a token, a viewer, a responder
    // token, the person who started the run, someone the gate does not name.
    let anonymous = f.server.api(None);
    assert_eq!(
        decide(&anonymous, &request, "approve", "x").await.status,
        401
    );
    let viewer = decide(&dave, &request, "approve", "x").await;
    assert_eq!(
        (viewer.status, viewer.body["code"].as_str()),
        (403, Some("forbidden"))
    );
    assert_eq!(decide(&alice, &request, "approve", "x").await.status, 403);
    let own = decide(&alice_approver, &request, "approve", "mine").await;
    assert_eq!(
        (own.status, own.body["code"].as_str()),
        (403, Some("self_approval")),
        "{}",
        own.text
    );
    let erin = f.api("erin", "approver");
    let stranger = decide(&erin, &request, "approve", "x").await;
    assert_eq!(
        stranger.body["code"], "not_an_approver",
        "{}",
        stranger.text
    );

    // One approval is not a quorum; the same person twice is not either.
    let first = decide(&bob, &request, "approve", "looks right").await;
    assert_eq!(
        (first.status, first.body["status"].as_str()),
        (200, Some("pending")),
        "{}",
        first.text
    );
    let twice = decide(&bob, &request, "approve", "again").await;
    assert_eq!(
        (twice.status, twice.body["code"].as_str()),
        (409, Some("already_decided"))
    );
    // Carol denies: the gate is rejected and the run fails before the rollout.
    let deny = decide(&carol, &request, "deny", "wrong line").await;
    assert_eq!(deny.body["status"], "rejected", "{}", deny.text);
    let failed = alice
        .wait_for(&run, "failed", Duration::from_secs(15))
        .await;
    let act = failed["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["key"] == "act")
        .cloned();
    assert_ne!(act.map(|s| s["status"].clone()), Some(json!("succeeded")));
    let late = decide(&f.api("bob", "approver"), &request, "approve", "late").await;
    assert_eq!(late.body["code"], "approval_closed", "{}", late.text);

    // A second run: two distinct approvals open the gate and the rollout runs.
    let (run, request) = alice.start_at_gate("rollback-line").await;
    assert_eq!(
        decide(&bob, &request, "approve", "ok").await.body["status"],
        "pending"
    );
    let second = decide(&carol, &request, "approve", "ok").await;
    assert_eq!(second.body["status"], "approved", "{}", second.text);
    alice
        .wait_for(&run, "succeeded", Duration::from_secs(20))
        .await;
    let shown = alice
        .get(&format!(
            "/api/v1/approvals/{}",
            request["id"].as_str().expect("id")
        ))
        .await;
    let users: Vec<&str> = shown.body["decisions"]
        .as_array()
        .expect("decisions")
        .iter()
        .filter_map(|d| d["user"].as_str())
        .collect();
    assert_eq!(users, ["bob", "carol"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_plan_voids_an_earlier_approval() {
    let f = Fixture::start(&[&gated("rollback-line", QUORUM)]).await;
    let alice = f.api("alice", "responder");
    let bob = f.api("bob", "approver");
    let carol = f.api("carol", "approver");
    let (run, request) = alice.start_at_gate("rollback-line").await;
    assert_eq!(
        decide(&bob, &request, "approve", "two devices, fine")
            .await
            .status,
        200
    );
    // A third device joins line 3 after bob's approval.
    let imported = alice
        .post_json("/api/v1/inventory", &json!({"devices": [device("plc-9")]}))
        .await;
    assert_eq!(imported.status, 200, "{}", imported.text);
    let stale = decide(&carol, &request, "approve", "ok").await;
    assert_eq!(
        (stale.status, stale.body["code"].as_str()),
        (409, Some("plan_changed")),
        "{}",
        stale.text
    );
    let current = stale.body["details"]["plan_digest"].clone();
    assert_ne!(current, request["plan_digest"]);
    let now = alice
        .get(&format!(
            "/api/v1/approvals/{}",
            request["id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(
        now.body["plan"]["devices"],
        json!(["plc-1", "plc-2", "plc-9"])
    );
    assert_eq!(now.body["approvals"], 0, "bob approved another plan");
    // Carol's approval on the new plan is the only one that counts.
    let carol_ok = decide(&carol, &now.body, "approve", "three devices, fine").await;
    assert_eq!(carol_ok.body["status"], "pending", "{}", carol_ok.text);
    let bob_again = decide(&bob, &now.body, "approve", "still fine").await;
    assert_eq!(bob_again.body["status"], "approved", "{}", bob_again.text);
    let done = alice
        .wait_for(&run, "succeeded", Duration::from_secs(20))
        .await;
    let items = done["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["key"].as_str().is_some_and(|k| k.starts_with("act[")))
        .count();
    assert_eq!(items, 3, "the rollout covered the plan that was approved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_rejects_or_escalates_to_the_second_group() {
    let reject = "      approvers: {users: [carol]}
      timeout: 1s
      on_timeout: reject";
    let escalate = "      approvers: {users: [carol]}
      timeout: 1s
      on_timeout: escalate
      escalate: {approvers: {groups: [plant-managers]}, timeout: 1h}";
    let f = Fixture::start(&[&gated("expires", reject), &gated("escalates", escalate)]).await;
    let alice = f.api("alice", "responder");
    let (run, request) = alice.start_at_gate("expires").await;
    alice
        .wait_for(&run, "failed", Duration::from_secs(15))
        .await;
    let closed = alice
        .get(&format!(
            "/api/v1/approvals/{}",
            request["id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(closed.body["status"], "expired", "{}", closed.text);
    // The person who started the failed run is told.
    f.sink.mail_to("alice@fleet.test", &run);

    let (run, request) = alice.start_at_gate("escalates").await;
    let id = request["id"].as_str().expect("id").to_string();
    let began = Instant::now();
    let escalated = loop {
        let now = alice.get(&format!("/api/v1/approvals/{id}")).await;
        if now.body["stage"] == 1 {
            break now.body;
        }
        assert!(
            began.elapsed() < Duration::from_secs(15),
            "not escalated: {}",
            now.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(escalated["status"], "pending");
    // The escalation group is mailed; the first approver no longer decides.
    let escalation = f.sink.mail_to("erin@fleet.test", &run);
    assert!(escalation.contains("Escalated"), "{escalation}");
    let carol = decide(&f.api("carol", "approver"), &escalated, "approve", "late").await;
    assert_eq!(carol.body["code"], "not_an_approver", "{}", carol.text);
    let erin = decide(
        &f.api("erin", "approver"),
        &escalated,
        "approve",
        "escalated: go",
    )
    .await;
    assert_eq!(erin.body["status"], "approved", "{}", erin.text);
    alice
        .wait_for(&run, "succeeded", Duration::from_secs(20))
        .await;
}

/// The `/approve/…` path of the link in a mail to `to` about run `run`.
fn link_in(sink: &Sink, to: &str, run: &str) -> String {
    let mail = sink.mail_to(to, run);
    let at = mail.find("/approve/").expect("a link in the mail");
    mail[at..]
        .chars()
        .take_while(|c| c.is_ascii_hexdigit() || matches!(c, '/' | '.' | 'a'..='z'))
        .collect()
}

async fn page(server: &Server, path: &str) -> (u16, String) {
    let response = reqwest::Client::new()
        .get(format!("{}{path}", server.url))
        .send()
        .await
        .expect("GET");
    (
        response.status().as_u16(),
        response.text().await.expect("body"),
    )
}

async fn post_form(server: &Server, path: &str, form: &[(&str, &str)]) -> (u16, String) {
    let response = reqwest::Client::new()
        .post(format!("{}{path}", server.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(urlencoded(form))
        .send()
        .await
        .expect("POST");
    (
        response.status().as_u16(),
        response.text().await.expect("body"),
    )
}

fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let at = page.find(&marker).expect("hidden field") + marker.len();
    page[at..].chars().take_while(|c| *c != '"').collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mailed_link_shows_on_get_decides_on_post_and_only_once() {
    let short = "      approvers: {users: [carol]}
      timeout: 3s";
    let f = Fixture::start(&[&gated("rollback-line", QUORUM), &gated("short", short)]).await;
    let alice = f.api("alice", "responder");
    let (run, request) = alice.start_at_gate("rollback-line").await;
    let id = request["id"].as_str().expect("id").to_string();
    // Bob and carol are mailed; alice (who started it) is not.
    let link = link_in(&f.sink, "bob@fleet.test", &run);
    let mail = f.sink.mail_to("bob@fleet.test", &run);
    assert!(
        mail.contains("plc-1") && mail.contains("plc-2"),
        "the plan is in the mail"
    );
    f.sink.mail_to("carol@fleet.test", &run);
    assert!(
        !f.sink
            .all()
            .iter()
            .any(|m| m.contains("X-RcptTo: alice@fleet.test") && m.contains(&run))
    );

    // GET (what a mail scanner does) shows the plan and decides nothing.
    let (status, shown) = page(&f.server, &link).await;
    assert_eq!(status, 200, "{shown}");
    assert!(shown.contains("plc-1") && shown.contains("Roll back line line-3?"));
    let (status, _) = page(&f.server, &link).await;
    assert_eq!(status, 200, "a GET does not spend the link");
    let now = alice.get(&format!("/api/v1/approvals/{id}")).await;
    assert_eq!(now.body["decisions"], json!([]), "a GET decided nothing");

    // A POST without the page's CSRF token is refused; with it, it decides.
    let digest = hidden(&shown, "plan_digest");
    let (status, _) = post_form(
        &f.server,
        &link,
        &[("verdict", "approve"), ("plan_digest", &digest)],
    )
    .await;
    assert_eq!(status, 403);
    let csrf = hidden(&shown, "csrf");
    let form = [
        ("csrf", csrf.as_str()),
        ("plan_digest", digest.as_str()),
        ("verdict", "approve"),
        ("comment", "by mail"),
    ];
    let (status, done) = post_form(&f.server, &link, &form).await;
    assert_eq!(status, 200, "{done}");
    let now = alice.get(&format!("/api/v1/approvals/{id}")).await;
    assert_eq!(now.body["decisions"][0]["user"], "bob");
    assert_eq!(now.body["decisions"][0]["channel"], "email");
    // The same link a second time: refused, on GET and on POST.
    let (status, again) = post_form(&f.server, &link, &form).await;
    assert_eq!(status, 410, "{again}");
    assert!(again.contains("link_spent"));
    assert_eq!(page(&f.server, &link).await.0, 410);
    // A forged link: one character of the signature changed.
    let carol_link = link_in(&f.sink, "carol@fleet.test", &run);
    let mut forged = carol_link.clone();
    let last = forged.pop().expect("char");
    forged.push(if last == '0' { '1' } else { '0' });
    let (status, body) = page(&f.server, &forged).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("link_invalid"));
    // Carol's real link still works and completes the quorum.
    let (status, shown) = page(&f.server, &carol_link).await;
    assert_eq!(status, 200);
    let form = [
        ("csrf", hidden(&shown, "csrf")),
        ("plan_digest", hidden(&shown, "plan_digest")),
        ("verdict", "approve".to_string()),
        ("comment", "ok".to_string()),
    ];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(post_form(&f.server, &carol_link, &form).await.0, 200);
    alice
        .wait_for(&run, "succeeded", Duration::from_secs(20))
        .await;
    // The link path never reaches the server's log.
    assert!(
        !f.server.log().contains(&carol_link),
        "a link leaked into the log"
    );

    // An expired link: the gate's 3 s pass.
    let (run, _request) = alice.start_at_gate("short").await;
    let link = link_in(&f.sink, "carol@fleet.test", &run);
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (status, body) = page(&f.server, &link).await;
    assert_eq!(status, 410, "{body}");
    assert!(body.contains("link_expired"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_run_survives_a_restart_and_the_approval_completes_it() {
    let mut f = Fixture::start(&[&gated("rollback-line", QUORUM)]).await;
    let alice = f.api("alice", "responder");
    let bob_token = f.server.token("bob", "approver");
    let carol_token = f.server.token("carol", "approver");
    let (run, request) = alice.start_at_gate("rollback-line").await;
    let bob = f.server.api(Some(&bob_token));
    assert_eq!(
        decide(&bob, &request, "approve", "before the restart")
            .await
            .status,
        200
    );
    f.server.restart();
    // Tokens and the request survived; the new process finishes the run.
    let carol = f.server.api(Some(&carol_token));
    let approved = decide(&carol, &request, "approve", "after the restart").await;
    assert_eq!(approved.body["status"], "approved", "{}", approved.text);
    let alice = f.server.api(Some(&f.server.token("alice", "responder")));
    alice
        .wait_for(&run, "succeeded", Duration::from_secs(20))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_lists_shows_and_decides_through_the_server_and_the_database() {
    let f = Fixture::start(&[&gated("rollback-line", QUORUM)]).await;
    let alice = f.api("alice", "responder");
    let (run, request) = alice.start_at_gate("rollback-line").await;
    let id = request["id"].as_str().expect("id");
    let bob = f.server.token("bob", "approver");
    let remote = |token: &str, args: &[&str]| {
        let mut all = args.to_vec();
        all.extend_from_slice(&["--server", &f.server.url]);
        f.server.cordon_with(&all, &[("CORDON_TOKEN", token)])
    };
    // The inbox and one request with its plan, through the API.
    let listed = remote(&bob, &["approvals"]);
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    assert!(
        text(&listed.stdout).contains(id),
        "{}",
        text(&listed.stdout)
    );
    let shown = remote(&bob, &["approvals", id]);
    let shown = text(&shown.stdout);
    assert!(
        shown.contains("devices touched (2): plc-1, plc-2"),
        "{shown}"
    );
    // The initiator is refused, with the stable code and exit 2.
    let alice_approver = f.server.token("alice", "approver");
    let own = remote(&alice_approver, &["approve", id, "-m", "mine"]);
    assert_eq!(own.status.code(), Some(2));
    assert!(
        text(&own.stderr).contains("error[self_approval]"),
        "{}",
        text(&own.stderr)
    );
    // Bob approves through the server; the digest he did not review is refused.
    let stale = remote(&bob, &["approve", id, "-m", "ok", "--digest", "sha256:00"]);
    assert!(
        text(&stale.stderr).contains("error[plan_changed]"),
        "{}",
        text(&stale.stderr)
    );
    let approved = remote(&bob, &["approve", id, "-m", "ok"]);
    assert!(approved.status.success(), "{}", text(&approved.stderr));
    assert_eq!(text(&approved.stdout).trim(), "pending");
    // Carol decides on the embedded database (the server's), as herself.
    let local = f.server.cordon(&[
        "approve",
        id,
        "-m",
        "ok too",
        "--by",
        "carol",
        "--config",
        "cordon.yaml",
    ]);
    assert!(local.status.success(), "{}", text(&local.stderr));
    assert_eq!(text(&local.stdout).trim(), "approved");
    alice
        .wait_for(&run, "succeeded", Duration::from_secs(20))
        .await;
    let shown = alice.get(&format!("/api/v1/approvals/{id}")).await;
    let channels: Vec<&str> = shown.body["decisions"]
        .as_array()
        .expect("decisions")
        .iter()
        .filter_map(|d| d["channel"].as_str())
        .collect();
    assert_eq!(channels, ["api", "cli"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reminders_are_mailed_while_the_gate_waits() {
    let reminding = "      approvers: {users: [carol]}
      timeout: 1h
      remind_every: 1s";
    let f = Fixture::start(&[&gated("reminds", reminding)]).await;
    let alice = f.api("alice", "responder");
    let (run, request) = alice.start_at_gate("reminds").await;
    let reminder = f.sink.mail_to("carol@fleet.test", "Reminder");
    assert!(reminder.contains(&run), "{reminder}");
    // Each mail carries a link of its own; the reminder's decides too.
    let link: String = reminder[reminder.find("/approve/").expect("link")..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.'))
        .collect();
    let (status, shown) = page(&f.server, &link).await;
    assert_eq!(status, 200, "{shown}");
    let form = [
        ("csrf", hidden(&shown, "csrf")),
        ("plan_digest", hidden(&shown, "plan_digest")),
        ("verdict", "approve".to_string()),
    ];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(post_form(&f.server, &link, &form).await.0, 200);
    alice
        .wait_for(&run, "succeeded", Duration::from_secs(20))
        .await;
    // The reminder's link decided it.
    let events = alice
        .get(&format!(
            "/api/v1/approvals/{}",
            request["id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(events.body["status"], "approved", "{}", events.text);
}

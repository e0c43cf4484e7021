//! The web pages of `cordon serve` over real HTTP on loopback, as a
//! browser without script uses them: signing in with an API token (checked
//! as the API checks it) for a signed session cookie, redirects to the
//! sign-in page without one, the approvals inbox and a request's plan,
//! deciding through a form with the session's CSRF token (and refusals:
//! no token, a viewer, self-approval, a stale plan), runs with their live
//! step states, and secrets: no token in the log, no secret input on a page.

mod server_support;

use std::time::Duration;

use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use server_support::{Server, urlencoded};

const SETTLE: &str = "cordon: v1
name: settle
version: 1.0.0
inputs:
  device: {type: string}
steps:
  - id: pause
    wait: 10ms
";

/// A gate between a preparation and a rollout over line 3's devices.
const GATED: &str = "cordon: v1
name: rollback-line
version: 1.0.0
inputs:
  line: {type: string, default: line-3}
steps:
  - id: prepare
    wait: 10ms
  - id: approve
    needs: [prepare]
    approval:
      approvers: {roles: [security-lead], users: [carol]}
      min: 2
      timeout: 1h
      message: 'Roll back line ${{ inputs.line }}?'
  - id: act
    needs: [approve]
    foreach: {items: '${{ inventory.select(\"tag=\" + inputs.line) }}'}
    playbook: settle@1.0.0
    with: {device: '${{ item.id }}'}
";

/// A playbook with a secret input.
const SECRET: &str = "cordon: v1
name: rotate
version: 1.0.0
inputs:
  device: {type: string}
  api_key: {type: string, secret: true}
steps:
  - id: settle
    wait: 10ms
";

const CONFIG: &str = "server:
  public_url: http://cordon.test
users:
  alice: {roles: [responder, approver, security-lead]}
  bob: {roles: [approver, security-lead]}
  carol: {roles: [approver]}
  dave: {roles: [viewer]}
  root: {roles: [admin]}
";

/// A browser without script or cookie jar: it follows no redirect and
/// sends the session cookie it was given.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookie: Option<String>,
}

/// A page as the browser got it.
#[derive(Debug)]
struct Page {
    status: u16,
    headers: HeaderMap,
    text: String,
}

impl Page {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The `Set-Cookie` line for the session, if the answer sets one.
    fn session_cookie(&self) -> Option<&str> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("cordon_session="))
    }

    /// The value of the first hidden field `name`.
    fn hidden(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let at = self
            .text
            .find(&marker)
            .unwrap_or_else(|| panic!("no {name} in {}", self.text))
            + marker.len();
        self.text[at..].chars().take_while(|c| *c != '"').collect()
    }

    /// The state a run page shows for step `key`.
    fn step_state(&self, key: &str) -> Option<String> {
        let marker = format!("<td><code>{key}</code></td><td><span class=\"state state-");
        let at = self.text.find(&marker)? + marker.len();
        Some(self.text[at..].chars().take_while(|c| *c != '"').collect())
    }

    /// Every step of a run page with its state, in order.
    fn steps(&self) -> Vec<(String, String)> {
        let marker = "<td><code>";
        let mut found = Vec::new();
        let mut rest = self.text.as_str();
        while let Some(at) = rest.find(marker) {
            rest = &rest[at + marker.len()..];
            let Some(end) = rest.find("</code></td><td><span class=\"state state-") else {
                continue;
            };
            let key = &rest[..end];
            if key.contains('<') {
                continue;
            }
            let state = &rest[end..];
            let state = state.split("state-").nth(1).unwrap_or("");
            found.push((
                key.to_string(),
                state.chars().take_while(|c| *c != '"').collect(),
            ));
        }
        found
    }

    /// Whether the page carries the headers every page must.
    fn assert_secure(&self) {
        assert_eq!(
            self.header("cache-control"),
            "no-store",
            "{:?}",
            self.headers
        );
        assert_eq!(self.header("x-frame-options"), "DENY");
        assert_eq!(self.header("referrer-policy"), "no-referrer");
        assert!(
            self.header("content-security-policy")
                .contains("default-src 'none'")
        );
    }
}

impl Browser {
    fn new(server: &Server) -> Browser {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            base: server.url.clone(),
            cookie: None,
        }
    }

    /// Signs in with `token` and keeps the session cookie.
    async fn signed_in(server: &Server, token: &str) -> Browser {
        let mut browser = Browser::new(server);
        let answer = browser.post("/ui/login", &[("token", token)]).await;
        assert_eq!(answer.status, 303, "{}", answer.text);
        let cookie = answer.session_cookie().expect("a session cookie");
        browser.cookie = Some(cookie.split(';').next().expect("pair").to_string());
        browser
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Page {
        let request = match &self.cookie {
            Some(cookie) => request.header("cookie", cookie),
            None => request,
        };
        let response = request.send().await.expect("request");
        Page {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            text: response.text().await.expect("body"),
        }
    }

    async fn get(&self, path: &str) -> Page {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        self.send(
            self.http
                .post(format!("{}{path}", self.base))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(urlencoded(form)),
        )
        .await
    }
}

/// The secret of a `cordon_<id>_<secret>` token.
fn secret_of(token: &str) -> &str {
    token.rsplit('_').next().expect("secret")
}

/// The public id of a `cordon_<id>_<secret>` token.
fn id_of(token: &str) -> &str {
    token.split('_').nth(1).expect("id")
}

fn device(id: &str) -> Value {
    json!({"id": id, "type": "plc", "site": "plant-a", "tags": ["line-3"], "criticality": "high"})
}

/// A server with the gated playbook published and line 3's two devices.
async fn gated_server() -> Server {
    let server = Server::start_with(CONFIG);
    let admin = server.api(Some(&server.token("root", "admin")));
    for yaml in [SETTLE, GATED] {
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
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_need_a_session_and_signing_in_checks_the_token_as_the_api_does() {
    let server = Server::start_with(CONFIG);
    let nobody = Browser::new(&server);

    // Without a session every page sends the browser to sign in.
    for path in ["/ui/approvals", "/ui/approvals/x", "/ui/runs", "/ui/runs/x"] {
        let answer = nobody.get(path).await;
        assert_eq!(answer.status, 303, "{path}: {}", answer.text);
        assert_eq!(answer.header("location"), format!("/ui/login?next={path}"));
        answer.assert_secure();
    }
    let answer = nobody
        .post("/ui/approvals/x", &[("verdict", "approve")])
        .await;
    assert_eq!(
        answer.status, 303,
        "a form without a session decides nothing"
    );
    assert!(answer.header("location").starts_with("/ui/login"));
    assert_eq!(nobody.get("/ui").await.header("location"), "/ui/approvals");
    let form = nobody.get("/ui/login?next=/ui/runs").await;
    assert_eq!(form.status, 200);
    form.assert_secure();
    assert!(form.text.contains("type=\"password\"") && form.text.contains("action=\"/ui/login\""));
    assert_eq!(form.hidden("next"), "/ui/runs");

    // Bad tokens are refused as the API refuses them, and open nothing.
    let alice = server.token("alice", "responder");
    let mut forged = alice.clone();
    forged.replace_range(forged.len() - 4.., "0000");
    let short = server.token_with("alice", "viewer", &["--expires", "1s"]);
    let revoked = server.token("bob", "approver");
    let out = server.cordon(&["token", "revoke", id_of(&revoked)]);
    assert!(out.status.success());
    let stranger = server.token("mallory", "admin");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for (token, code) in [
        ("", "unauthenticated"),
        ("nonsense", "unauthenticated"),
        (forged.as_str(), "unauthenticated"),
        (short.as_str(), "token_expired"),
        (revoked.as_str(), "token_revoked"),
        (stranger.as_str(), "unknown_user"),
    ] {
        let refused = nobody.post("/ui/login", &[("token", token)]).await;
        assert_eq!(refused.status, 401, "{code}: {}", refused.text);
        assert!(
            refused.text.contains(&format!("<code>{code}</code>")),
            "{code}: {}",
            refused.text
        );
        assert!(refused.session_cookie().is_none(), "{code}");
        assert!(
            token.is_empty() || !refused.text.contains(token),
            "the page never echoes a token"
        );
        refused.assert_secure();
    }

    // A good token: a signed session, not the token, in a strict cookie.
    let answer = nobody
        .post("/ui/login", &[("token", &alice), ("next", "/ui/runs")])
        .await;
    assert_eq!(answer.status, 303, "{}", answer.text);
    assert_eq!(answer.header("location"), "/ui/runs");
    let cookie = answer.session_cookie().expect("cookie").to_string();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/ui", "Max-Age="] {
        assert!(cookie.contains(attribute), "{attribute}: {cookie}");
    }
    assert!(!cookie.contains("Secure"), "http: {cookie}");
    assert!(
        !cookie.contains(secret_of(&alice)),
        "the cookie is not the token: {cookie}"
    );
    let session = cookie.split(';').next().expect("pair").to_string();
    // Somewhere else than our pages is never a place to come back to.
    let answer = nobody
        .post(
            "/ui/login",
            &[("token", &alice), ("next", "//evil.example/x")],
        )
        .await;
    assert_eq!(answer.header("location"), "/ui/approvals");

    let browser = Browser {
        cookie: Some(session.clone()),
        ..Browser::new(&server)
    };
    let inbox = browser.get("/ui/approvals").await;
    assert_eq!(inbox.status, 200, "{}", inbox.text);
    inbox.assert_secure();
    assert!(inbox.text.contains("alice") && inbox.text.contains("Nothing waits for a decision."));
    assert!(inbox.text.contains("name=\"viewport\""));

    // A tampered session opens nothing (and is dropped from the browser).
    let mut tampered = session.clone();
    let last = tampered.pop().expect("char");
    tampered.push(if last == '0' { '1' } else { '0' });
    let answer = Browser {
        cookie: Some(tampered),
        ..Browser::new(&server)
    }
    .get("/ui/runs")
    .await;
    assert_eq!(answer.status, 303);
    assert_eq!(
        answer.header("location"),
        "/ui/login?next=/ui/runs&ended=invalid"
    );
    assert!(
        answer
            .session_cookie()
            .is_some_and(|c| c.contains("Max-Age=0"))
    );

    // Revoking the token ends the sessions opened with it at once.
    let carol = server.token("carol", "approver");
    let carols = Browser::signed_in(&server, &carol).await;
    assert_eq!(carols.get("/ui/runs").await.status, 200);
    assert!(
        server
            .cordon(&["token", "revoke", id_of(&carol)])
            .status
            .success()
    );
    let ended = carols.get("/ui/runs").await;
    assert_eq!(ended.status, 303);
    assert_eq!(
        ended.header("location"),
        "/ui/login?next=/ui/runs&ended=token"
    );
    let notice = nobody.get(ended.header("location")).await;
    assert!(notice.text.contains("no longer works"), "{}", notice.text);

    // Signing out needs the session's form token.
    let refused = browser.post("/ui/logout", &[]).await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert!(refused.text.contains("csrf_failed"));
    let csrf = inbox.hidden("csrf");
    let out = browser.post("/ui/logout", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, 303, "{}", out.text);
    assert_eq!(out.header("location"), "/ui/login");
    assert!(
        out.session_cookie()
            .is_some_and(|c| c.contains("Max-Age=0") && c.starts_with("cordon_session=;"))
    );

    // No token, and no session, ever reaches the log.
    let log = server.log();
    for token in [&alice, &forged, &short, &revoked, &stranger, &carol] {
        assert!(!log.contains(secret_of(token)), "a token reached the log");
    }
    assert!(!log.contains(&session), "a session reached the log");
    assert!(log.contains("web session opened"), "{log}");

    // Behind https, the cookie is `Secure`.
    let https = Server::start_with(&CONFIG.replace("http://cordon.test", "https://cordon.test"));
    let token = https.token("alice", "viewer");
    let answer = Browser::new(&https)
        .post("/ui/login", &[("token", &token)])
        .await;
    assert!(
        answer
            .session_cookie()
            .is_some_and(|c| c.contains("; Secure")),
        "{:?}",
        answer.headers
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inbox_shows_the_plan_and_a_form_with_csrf_decides_on_the_web() {
    let server = gated_server().await;
    let alice_token = server.token("alice", "responder");
    let alice = server.api(Some(&alice_token));
    let (run, request) = alice.start_at_gate("rollback-line").await;
    let id = request["id"].as_str().expect("id").to_string();
    let digest = request["plan_digest"].as_str().expect("digest").to_string();
    let page_path = format!("/ui/approvals/{id}");

    let bob_token = server.token("bob", "approver");
    let bob = Browser::signed_in(&server, &bob_token).await;
    let inbox = bob.get("/ui/approvals").await;
    assert_eq!(inbox.status, 200, "{}", inbox.text);
    assert!(
        inbox.text.contains(&format!("href=\"{page_path}\"")),
        "{}",
        inbox.text
    );
    assert!(inbox.text.contains("Roll back line line-3?"));
    assert!(inbox.text.contains("approvals 0 of 2"), "{}", inbox.text);
    assert!(inbox.text.contains(&format!("href=\"/ui/runs/{run}\"")));

    // The request's page: the exact plan, its devices and digest, the form.
    let shown = bob.get(&page_path).await;
    assert_eq!(shown.status, 200, "{}", shown.text);
    shown.assert_secure();
    assert!(
        shown.text.contains("plc-1") && shown.text.contains("plc-2"),
        "{}",
        shown.text
    );
    assert!(shown.text.contains("Devices touched (2)"));
    assert!(shown.text.contains(&digest));
    assert!(shown.text.contains(&format!("action=\"{page_path}\"")));
    assert_eq!(shown.hidden("plan_digest"), digest);
    assert!(
        !shown.text.contains("http-equiv=\"refresh\""),
        "a page with a form never reloads"
    );
    let csrf = shown.hidden("csrf");

    // Without the session's form token nothing is decided; another
    // session's token does not stand in for it.
    let no_csrf = bob
        .post(
            &page_path,
            &[
                ("plan_digest", &digest),
                ("verdict", "approve"),
                ("comment", "x"),
            ],
        )
        .await;
    assert_eq!(no_csrf.status, 403, "{}", no_csrf.text);
    assert!(no_csrf.text.contains("csrf_failed"));
    let carol_token = server.token("carol", "approver");
    let carol = Browser::signed_in(&server, &carol_token).await;
    let carols_csrf = carol.get(&page_path).await.hidden("csrf");
    assert_ne!(carols_csrf, csrf);
    let crossed = bob
        .post(
            &page_path,
            &[
                ("csrf", &carols_csrf),
                ("plan_digest", &digest),
                ("verdict", "approve"),
            ],
        )
        .await;
    assert_eq!(crossed.status, 403, "{}", crossed.text);
    let now = alice.get(&format!("/api/v1/approvals/{id}")).await;
    assert_eq!(now.body["decisions"], json!([]), "nothing was decided");

    // A viewer sees the plan but no form, and a forged POST is refused.
    let dave_token = server.token("dave", "viewer");
    let dave = Browser::signed_in(&server, &dave_token).await;
    let viewed = dave.get(&page_path).await;
    assert_eq!(viewed.status, 200);
    assert!(viewed.text.contains("plc-1"));
    assert!(!viewed.text.contains("name=\"verdict\""), "{}", viewed.text);
    assert!(viewed.text.contains("cannot decide approvals"));
    let daves_csrf = viewed.hidden("csrf");
    let forged = dave
        .post(
            &page_path,
            &[
                ("csrf", &daves_csrf),
                ("plan_digest", &digest),
                ("verdict", "approve"),
            ],
        )
        .await;
    assert_eq!(forged.status, 403, "{}", forged.text);
    assert!(
        forged.text.contains("<code>forbidden</code>"),
        "{}",
        forged.text
    );

    // The engine's refusals show as their code and message: the person who
    // started the run, and a stale plan digest.
    let alice_approver = Browser::signed_in(&server, &server.token("alice", "approver")).await;
    let alices_csrf = alice_approver.get(&page_path).await.hidden("csrf");
    let own = alice_approver
        .post(
            &page_path,
            &[
                ("csrf", &alices_csrf),
                ("plan_digest", &digest),
                ("verdict", "approve"),
            ],
        )
        .await;
    assert_eq!(own.status, 403, "{}", own.text);
    assert!(
        own.text.contains("<code>self_approval</code>"),
        "{}",
        own.text
    );
    let stale = bob
        .post(
            &page_path,
            &[
                ("csrf", &csrf),
                ("plan_digest", "sha256:00"),
                ("verdict", "approve"),
            ],
        )
        .await;
    assert_eq!(stale.status, 409, "{}", stale.text);
    assert!(
        stale.text.contains("<code>plan_changed</code>")
            && stale.text.contains("Review the new plan")
    );

    // With the token, bob's approval is recorded, by the web channel.
    let done = bob
        .post(
            &page_path,
            &[
                ("csrf", &csrf),
                ("plan_digest", &digest),
                ("verdict", "approve"),
                ("comment", "two PLCs <fine>"),
            ],
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert!(
        done.text.contains("Decision recorded") && done.text.contains("1 of 2 approvals"),
        "{}",
        done.text
    );
    let now = alice.get(&format!("/api/v1/approvals/{id}")).await;
    assert_eq!(now.body["decisions"][0]["user"], "bob");
    assert_eq!(now.body["decisions"][0]["channel"], "web");
    assert_eq!(now.body["decisions"][0]["comment"], "two PLCs <fine>");
    let shown = bob.get(&page_path).await;
    assert!(
        shown.text.contains("two PLCs &lt;fine&gt;"),
        "values are escaped: {}",
        shown.text
    );
    assert!(!shown.text.contains("two PLCs <fine>"));

    // The run page, live while the gate waits.
    let live = bob.get(&format!("/ui/runs/{run}")).await;
    assert_eq!(live.status, 200, "{}", live.text);
    live.assert_secure();
    assert!(
        live.text
            .contains("<meta http-equiv=\"refresh\" content=\"3\">"),
        "{}",
        live.text
    );
    assert!(live.text.contains("rollback-line@1.0.0"));
    assert_eq!(
        live.step_state("prepare").as_deref(),
        Some("succeeded"),
        "{}",
        live.text
    );
    let gate = live.step_state("approve").expect("the gate's step");
    assert_ne!(gate, "succeeded");
    assert!(
        live.text.contains(&format!("href=\"{page_path}\"")),
        "the run links to its gate"
    );
    let listed = bob.get("/ui/runs").await;
    assert!(
        listed.text.contains(&format!("href=\"/ui/runs/{run}\"")),
        "{}",
        listed.text
    );

    // Carol completes the quorum on the web; the rollout runs; the page
    // stops reloading once the run is over.
    let carols_csrf = carol.get(&page_path).await.hidden("csrf");
    let second = carol
        .post(
            &page_path,
            &[
                ("csrf", &carols_csrf),
                ("plan_digest", &digest),
                ("verdict", "approve"),
            ],
        )
        .await;
    assert_eq!(second.status, 200, "{}", second.text);
    assert!(second.text.contains("state-approved"), "{}", second.text);
    alice
        .wait_for(&run, "succeeded", Duration::from_secs(20))
        .await;
    let over = bob.get(&format!("/ui/runs/{run}")).await;
    assert!(
        !over.text.contains("http-equiv=\"refresh\""),
        "{}",
        over.text
    );
    assert_eq!(over.step_state("approve").as_deref(), Some("succeeded"));
    let items: Vec<(String, String)> = over
        .steps()
        .into_iter()
        .filter(|(k, _)| k.starts_with("act["))
        .collect();
    assert_eq!(items.len(), 2, "{}", over.text);
    assert!(items.iter().all(|(_, s)| s == "succeeded"), "{items:?}");
    let closed = bob.get(&page_path).await;
    assert!(
        !closed.text.contains("name=\"verdict\""),
        "a closed request has no form"
    );

    let log = server.log();
    for token in [&alice_token, &bob_token, &carol_token, &dave_token] {
        assert!(!log.contains(secret_of(token)), "a token reached the log");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_page_never_shows_a_secret_input() {
    let server = Server::start_with(CONFIG);
    let admin = server.api(Some(&server.token("root", "admin")));
    assert!(admin.publish(SECRET).await.status < 300);
    let alice = server.api(Some(&server.token("alice", "responder")));
    let started = alice
        .post_json(
            "/api/v1/runs",
            &json!({"playbook": "rotate", "inputs": {"device": "plc-visible-7", "api_key": "hunter2-sekrit-value"}}),
        )
        .await;
    assert!(started.status < 300, "{}", started.text);
    let run = started.body["id"].as_str().expect("id").to_string();
    alice
        .wait_for(&run, "succeeded", Duration::from_secs(20))
        .await;

    let browser = Browser::signed_in(&server, &server.token("dave", "viewer")).await;
    let page = browser.get(&format!("/ui/runs/{run}")).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("plc-visible-7"), "{}", page.text);
    assert!(page.text.contains("[secret]"), "{}", page.text);
    assert!(
        !page.text.contains("hunter2-sekrit-value"),
        "a secret input reached the page"
    );
    assert_eq!(page.step_state("settle").as_deref(), Some("succeeded"));
    let list = browser.get("/ui/runs").await;
    assert!(list.text.contains("rotate@1.0.0") && !list.text.contains("hunter2"));
    let unknown = browser.get("/ui/runs/no-such-run").await;
    assert_eq!(unknown.status, 404);
    assert!(unknown.text.contains("unknown_run"));
    assert!(
        !server.log().contains("hunter2-sekrit-value"),
        "a secret input reached the log"
    );
}

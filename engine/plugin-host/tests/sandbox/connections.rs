//! The real named connections against real servers: a private Mosquitto
//! per test and a small HTTP/1.1 server on loopback. Through the sandbox
//! (fixture components) and directly on the hub.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cordon_plugin_host::{
    ConnectionHub, Connections, ConnectionsConfig, Grants, HostFailure, HttpRequest, MqttQos,
    Services,
};
use cordon_runtime::attempt_state::ErrorKind;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet, PublishProperties};
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use serde_json::{Value, json};

mod tls;

use crate::support::{
    HttpServer, Mosquitto, MqttWatcher, free_port, invocation, limits, load, sandbox,
};

fn hub(connections: Value) -> ConnectionHub {
    let config: ConnectionsConfig =
        serde_json::from_value(json!({ "connections": connections })).expect("config");
    ConnectionHub::new(&config).expect("hub")
}

fn broker_hub(port: u16) -> ConnectionHub {
    hub(json!({"fleet-broker": {"kind": "mqtt", "host": "127.0.0.1", "port": port}}))
}

fn http_hub(port: u16, path: &str) -> ConnectionHub {
    hub(json!({"fleet-ca": {
        "kind": "http",
        "base_url": format!("http://127.0.0.1:{port}{path}"),
        "headers": {"authorization": "Bearer host-token"},
    }}))
}

fn services(hub: ConnectionHub) -> Services {
    Services {
        connections: Some(Arc::new(hub)),
        ..Services::default()
    }
}

fn mqtt_grants() -> Grants {
    Grants::none().grant(
        "fixture-host-calls",
        "mqtt:fleet-broker".parse().expect("cap"),
    )
}

fn http_grants() -> Grants {
    Grants::none().grant(
        "fixture-ungranted-import",
        "http:fleet-ca".parse().expect("cap"),
    )
}

fn get(path: &str) -> HttpRequest {
    HttpRequest {
        method: "GET",
        path: path.into(),
        headers: vec![],
        body: vec![],
    }
}

const SECOND: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread")]
async fn a_real_publish_reaches_a_subscriber() {
    let broker = Mosquitto::start();
    let mut watcher = MqttWatcher::subscribe(broker.port(), "cordon/fixture/#").await;
    let sandbox = sandbox(limits(), mqtt_grants());
    let plugin = load(&sandbox, "fixture-host-calls", &["mqtt:fleet-broker"]).await;
    let mut call = invocation(json!({"mode": "publish-ignoring-dry-run"}));
    call.services = services(broker_hub(broker.port()));
    let key = call.key.clone();
    let outcome = sandbox.execute(&plugin, call).await;
    let output = outcome.result.expect("published");
    assert_eq!(output.get("host_error"), None, "{output}");
    let message = tokio::time::timeout(SECOND, watcher.messages.recv())
        .await
        .expect("the message arrives")
        .expect("watcher alive");
    assert_eq!(message.topic.as_ref(), b"cordon/fixture/publish");
    assert_eq!(message.payload.as_ref(), key.as_bytes());
    assert!(outcome.record.intents.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_publish_reaches_no_one_and_is_recorded() {
    let broker = Mosquitto::start();
    let mut watcher = MqttWatcher::subscribe(broker.port(), "#").await;
    let sandbox = sandbox(limits(), mqtt_grants());
    let plugin = load(&sandbox, "fixture-host-calls", &["mqtt:fleet-broker"]).await;
    let mut call = invocation(json!({"mode": "publish-ignoring-dry-run"}));
    call.dry_run = true;
    call.services = services(broker_hub(broker.port()));
    let outcome = sandbox.execute(&plugin, call).await;
    let output = outcome
        .result
        .expect("the plugin reports the host's answer");
    assert!(
        output["host_error"]
            .as_str()
            .is_some_and(|e| e.contains("dry")),
        "{output}"
    );
    let intents = &outcome.record.intents;
    assert_eq!(intents.len(), 1, "{intents:?}");
    assert_eq!(intents[0].kind, "mqtt.publish");
    assert_eq!(intents[0].target, "fleet-broker:cordon/fixture/publish");
    assert!(
        intents[0].by_host,
        "recorded by the host, not declared by the plugin"
    );
    let nothing = tokio::time::timeout(SECOND, watcher.messages.recv()).await;
    assert!(nothing.is_err(), "a dry run published {nothing:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_nobody_answers_ends_at_the_deadline_and_the_sandbox_goes_on() {
    let broker = Mosquitto::start();
    let mut watcher = MqttWatcher::subscribe(broker.port(), "cordon/fixture/#").await;
    let limits = limits();
    let sandbox = sandbox(limits.clone(), mqtt_grants());
    let plugin = load(&sandbox, "fixture-host-calls", &["mqtt:fleet-broker"]).await;
    let mut call = invocation(json!({"mode": "request-forever"}));
    call.services = services(broker_hub(broker.port()));
    let started = Instant::now();
    let outcome = sandbox.execute(&plugin, call).await;
    let took = started.elapsed();
    let error = outcome.result.expect_err("nobody answers");
    assert!(
        error.kind == ErrorKind::Timeout
            || (error.kind == ErrorKind::Plugin
                && error.retryable
                && error.message.contains("timeout")),
        "{error:?}"
    );
    assert!(
        took <= limits.timeout + Duration::from_millis(500),
        "took {took:?}"
    );
    // The request itself was published (QoS 1, with MQTT 5 properties).
    let request = tokio::time::timeout(SECOND, watcher.messages.recv())
        .await
        .expect("the request was published")
        .expect("watcher alive");
    assert_eq!(request.topic.as_ref(), b"cordon/fixture/request");
    let properties = request.properties.expect("properties");
    assert_eq!(
        properties.response_topic.as_deref(),
        Some("cordon/fixture/never-answered")
    );
    assert_eq!(properties.correlation_data.map(|c| c.len()), Some(16));
    // The same sandbox serves the next call.
    let mut next = invocation(json!({"mode": "publish-ignoring-dry-run"}));
    next.services = services(broker_hub(broker.port()));
    let output = sandbox.execute(&plugin, next).await.result.expect("served");
    assert_eq!(output.get("host_error"), None, "{output}");
}

#[tokio::test(flavor = "multi_thread")]
async fn http_through_the_sandbox_carries_the_hosts_credentials_and_dry_runs_send_nothing() {
    let server = HttpServer::start();
    let sandbox = sandbox(limits(), http_grants());
    let plugin = load(&sandbox, "fixture-ungranted-import", &["http:fleet-ca"]).await;

    let mut dry = invocation(json!({}));
    dry.dry_run = true;
    dry.services = services(http_hub(server.port(), "/api"));
    let outcome = sandbox.execute(&plugin, dry).await;
    assert!(server.seen().is_empty(), "{:?}", server.seen());
    let intents = &outcome.record.intents;
    assert_eq!(intents.len(), 1, "{intents:?}");
    assert_eq!(intents[0].kind, "http.request");
    assert_eq!(intents[0].target, "fleet-ca:GET /health");

    let mut real = invocation(json!({}));
    real.services = services(http_hub(server.port(), "/api"));
    let outcome = sandbox.execute(&plugin, real).await;
    assert_eq!(outcome.result.expect("status"), json!({"status": 200}));
    let seen = server.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].method, "GET");
    assert_eq!(seen[0].target, "/api/health");
    assert_eq!(seen[0].header("authorization"), Some("Bearer host-token"));
}

#[tokio::test(flavor = "multi_thread")]
async fn http_paths_stay_below_the_base_url_and_responses_are_filtered_and_bounded() {
    let server = HttpServer::start();
    let hub = http_hub(server.port(), "/api");
    let call = |request: HttpRequest, timeout: Duration| {
        hub.http_send("fleet-ca".into(), request, timeout)
    };

    let mut request = get("/x?y=1");
    request.headers = vec![
        ("content-type".into(), "text/plain".into()),
        ("Authorization".into(), "Bearer plugin-forgery".into()),
    ];
    let response = call(request, SECOND).await.expect("response");
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"ok");
    assert!(
        response
            .headers
            .iter()
            .any(|(n, v)| n == "x-served" && v == "yes")
    );
    assert!(
        !response.headers.iter().any(|(n, _)| n == "set-cookie"),
        "{:?}",
        response.headers
    );
    let seen = server.seen();
    assert_eq!(seen[0].target, "/api/x?y=1");
    // The host's header replaces one of the same name (the sandbox refuses
    // it before this point; the hub does not rely on that).
    let authorizations: Vec<_> = seen[0]
        .headers
        .iter()
        .filter(|(n, _)| n == "authorization")
        .collect();
    assert_eq!(authorizations.len(), 1, "{:?}", seen[0].headers);
    assert_eq!(seen[0].header("authorization"), Some("Bearer host-token"));

    let redirect = call(get("/redirect"), SECOND).await.expect("response");
    assert_eq!(redirect.status, 302, "redirects are returned, not followed");
    assert_eq!(server.seen().len(), 2);

    let big = call(get("/big"), SECOND).await;
    assert!(matches!(big, Err(HostFailure::Invalid(_))), "{big:?}");

    let started = Instant::now();
    let slow = call(get("/slow"), Duration::from_millis(300)).await;
    assert!(matches!(slow, Err(HostFailure::Timeout(_))), "{slow:?}");
    assert!(started.elapsed() < Duration::from_millis(800));

    let mut post = get("/upload");
    post.method = "POST";
    post.body = b"payload".to_vec();
    call(post, SECOND).await.expect("posted");
    let last = server.seen().pop().expect("seen");
    assert_eq!(
        (last.method.as_str(), last.body.as_slice()),
        ("POST", &b"payload"[..])
    );

    // No server: unavailable, quickly, without the address.
    let down = http_hub(free_port(), "/api");
    let started = Instant::now();
    let failure = down
        .http_send("fleet-ca".into(), get("/health"), SECOND)
        .await;
    let Err(HostFailure::Unavailable(message)) = failure else {
        panic!("{failure:?}");
    };
    assert!(started.elapsed() < SECOND);
    assert!(
        message.contains("fleet-ca") && !message.contains("127.0.0.1"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broker_that_is_down_is_unavailable_quickly_without_its_address() {
    let hub = broker_hub(free_port());
    let started = Instant::now();
    let failure = hub
        .mqtt_publish(
            "fleet-broker".into(),
            "cordon/t".into(),
            b"x".to_vec(),
            MqttQos::AtLeastOnce,
            false,
            Duration::from_secs(10),
        )
        .await;
    let Err(HostFailure::Unavailable(message)) = failure else {
        panic!("{failure:?}");
    };
    assert!(started.elapsed() < SECOND, "{:?}", started.elapsed());
    assert!(
        message.starts_with("connection `fleet-broker` is unavailable: ")
            && !message.contains("127.0.0.1"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn publishes_are_acknowledged_per_qos_and_refusals_are_rejected() {
    let acl = tempfile::tempdir().expect("tempdir");
    let acl_file = acl.path().join("acl");
    std::fs::write(&acl_file, "topic readwrite cordon/#\n").expect("acl");
    let broker = Mosquitto::start_with(&format!("acl_file {}", acl_file.display()));
    let mut watcher = MqttWatcher::subscribe(broker.port(), "cordon/qos/#").await;
    let hub = broker_hub(broker.port());
    for (qos, topic) in [
        (MqttQos::AtMostOnce, "cordon/qos/0"),
        (MqttQos::AtLeastOnce, "cordon/qos/1"),
        (MqttQos::ExactlyOnce, "cordon/qos/2"),
    ] {
        hub.mqtt_publish(
            "fleet-broker".into(),
            topic.into(),
            topic.as_bytes().to_vec(),
            qos,
            false,
            SECOND,
        )
        .await
        .unwrap_or_else(|e| panic!("{topic}: {e}"));
        let message = tokio::time::timeout(SECOND, watcher.messages.recv())
            .await
            .expect("arrives")
            .expect("watcher alive");
        assert_eq!(message.payload.as_ref(), topic.as_bytes());
    }
    for qos in [MqttQos::AtLeastOnce, MqttQos::ExactlyOnce] {
        let refused = hub
            .mqtt_publish(
                "fleet-broker".into(),
                "elsewhere/x".into(),
                b"x".to_vec(),
                qos,
                false,
                SECOND,
            )
            .await;
        assert!(
            matches!(&refused, Err(HostFailure::Rejected(m)) if m.contains("NotAuthorized")),
            "{qos:?}: {refused:?}"
        );
    }
}

/// Answers every request on `cordon/rr/req`: first with a decoy carrying
/// other correlation data, then with `answer` and the request's own. A
/// request without a response topic is answered on `cordon/rr/wild/x`.
async fn responder(port: u16) -> tokio::task::JoinHandle<()> {
    let options = MqttOptions::new("test-responder", "127.0.0.1", port);
    let (client, mut events) = AsyncClient::new(options, 16);
    client
        .subscribe("cordon/rr/req", QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    let (ready_tx, ready) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let mut ready_tx = Some(ready_tx);
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(tx) = ready_tx.take() {
                        let _ = tx.send(());
                    }
                }
                Ok(Event::Incoming(Packet::Publish(request))) => {
                    let properties = request.properties.unwrap_or_default();
                    let reply_to = properties
                        .response_topic
                        .unwrap_or_else(|| "cordon/rr/wild/x".into());
                    for (payload, correlation) in [
                        ("decoy", Some(b"someone else".to_vec().into())),
                        ("answer", properties.correlation_data.clone()),
                    ] {
                        let properties = PublishProperties {
                            correlation_data: correlation,
                            ..PublishProperties::default()
                        };
                        let client = client.clone();
                        let reply_to = reply_to.clone();
                        tokio::spawn(async move {
                            let _ = client
                                .publish_with_properties(
                                    reply_to,
                                    QoS::AtLeastOnce,
                                    false,
                                    payload,
                                    properties,
                                )
                                .await;
                        });
                    }
                }
                Ok(_) => {}
                Err(e) => panic!("responder lost its broker: {e}"),
            }
        }
    });
    tokio::time::timeout(SECOND, ready)
        .await
        .expect("responder subscribed")
        .expect("responder alive");
    task
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_get_their_own_response_and_receive_gets_retained_messages() {
    let broker = Mosquitto::start();
    let hub = broker_hub(broker.port());
    // A retained message on the response topic is never a response.
    hub.mqtt_publish(
        "fleet-broker".into(),
        "cordon/rr/resp".into(),
        b"stale".to_vec(),
        MqttQos::AtLeastOnce,
        true,
        SECOND,
    )
    .await
    .expect("retained");
    let responder = responder(broker.port()).await;
    for filter in ["cordon/rr/resp", "cordon/rr/wild/+"] {
        let response = hub
            .mqtt_request(
                "fleet-broker".into(),
                "cordon/rr/req".into(),
                b"question".to_vec(),
                filter.into(),
                Duration::from_secs(2),
            )
            .await
            .unwrap_or_else(|e| panic!("{filter}: {e}"));
        assert_eq!(response.payload, b"answer", "{filter}");
    }
    responder.abort();

    // Receiving: the retained message counts.
    let retained = hub
        .mqtt_receive("fleet-broker".into(), "cordon/rr/#".into(), SECOND)
        .await
        .expect("received");
    let retained = retained.expect("a message");
    assert_eq!(
        (retained.topic.as_str(), retained.payload.as_slice()),
        ("cordon/rr/resp", &b"stale"[..])
    );
    // Nothing: `None` once the timeout passes, not much later.
    let started = Instant::now();
    let nothing = hub
        .mqtt_receive(
            "fleet-broker".into(),
            "cordon/silent/#".into(),
            Duration::from_millis(300),
        )
        .await;
    assert_eq!(nothing, Ok(None));
    assert!(started.elapsed() < Duration::from_millis(800));
    // A request nobody answers times out.
    let unanswered = hub
        .mqtt_request(
            "fleet-broker".into(),
            "cordon/nobody".into(),
            vec![],
            "cordon/nobody/resp".into(),
            Duration::from_millis(300),
        )
        .await;
    assert!(
        matches!(unanswered, Err(HostFailure::Timeout(_))),
        "{unanswered:?}"
    );
}

/// Many calls in a row, each in its own MQTT session or on the pooled HTTP
/// client, all arrive (what they cost is measured by `benches/sandbox.rs`).
#[tokio::test(flavor = "multi_thread")]
async fn two_hundred_calls_in_a_row_all_arrive() {
    const CALLS: usize = 200;
    let broker = Mosquitto::start();
    let server = HttpServer::start();
    let hub = hub(json!({
        "fleet-broker": {"kind": "mqtt", "host": "127.0.0.1", "port": broker.port()},
        "fleet-ca": {"kind": "http", "base_url": format!("http://127.0.0.1:{}/api", server.port())},
    }));
    let mut watcher = MqttWatcher::subscribe(broker.port(), "cordon/bench").await;
    for i in 0..CALLS {
        hub.mqtt_publish(
            "fleet-broker".into(),
            "cordon/bench".into(),
            i.to_string().into_bytes(),
            MqttQos::AtLeastOnce,
            false,
            SECOND,
        )
        .await
        .expect("published");
    }
    for i in 0..CALLS {
        let message = tokio::time::timeout(SECOND, watcher.messages.recv())
            .await
            .expect("a message in time")
            .expect("a message");
        assert_eq!(
            message.payload.as_ref(),
            i.to_string().as_bytes(),
            "in order, none lost"
        );
    }
    for _ in 0..CALLS {
        hub.http_send("fleet-ca".into(), get("/health"), SECOND)
            .await
            .expect("answered");
    }
    assert_eq!(server.seen().len(), CALLS);
}

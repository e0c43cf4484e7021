//! One device's MQTT 5 session over mutual TLS, for as long as the
//! simulator runs: connect, subscribe to its command topic, publish
//! heartbeats, answer every command, and come back after the broker kicks
//! the session (a dynamic-security role change does) or the link drops.
//!
//! Two tasks per device. The *pump* only polls rumqttc's event loop and
//! forwards what happens over an unbounded channel; after an error it waits
//! (100 ms doubling to 2 s, reset by a successful CONNACK) and polls again,
//! which makes rumqttc reconnect. The *device* task owns the [`Device`] and
//! its [`Status`] and selects over those events, the heartbeat timer and
//! shutdown. Keeping the event loop in its own task means `poll()` is never
//! cancelled half-way (it is not cancel-safe), and publishing never waits on
//! the network: requests go through rumqttc's bounded channel with
//! `try_publish`, dropped (and logged) only if the link is down long enough
//! to fill it.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cordon_fleet::report::{Outcome, Reply};
use cordon_fleet::topics;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet, Publish, PublishProperties, SubscribeReasonCode};
use rumqttc::v5::{AsyncClient, ConnectionError, Event, EventLoop, MqttOptions, StateError};
use rumqttc::{NetworkOptions, Outgoing, TlsConfiguration, Transport};
use tokio::sync::{mpsc, watch};

use crate::device::{Decision, Device, Handled};
use crate::status::{StateDir, Status};

/// The first wait after a failure.
const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// TCP + TLS + CONNACK must complete within this (seconds).
const CONNECT_TIMEOUT_SECS: u64 = 5;
/// Requests queued towards the event loop; beyond this, publishes are
/// dropped (only while the link is down).
const REQUEST_QUEUE: usize = 64;
/// Commands are small JSON documents; anything larger is not one.
const MAX_INCOMING_PACKET: u32 = 256 * 1024;
/// How long a polite DISCONNECT may take at shutdown.
const CLOSE_GRACE: Duration = Duration::from_millis(500);

/// How every device reaches the broker.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Broker host.
    pub host: String,
    /// Broker port (the mTLS listener).
    pub port: u16,
    /// MQTT keep-alive (at least 5 s).
    pub keep_alive: Duration,
    /// Heartbeat period.
    pub heartbeat: Duration,
}

/// What the pump reports.
#[derive(Debug)]
enum Link {
    /// An MQTT event (boxed: a packet is large, a loss is small).
    Event(Box<Event>),
    /// The session ended or could not be opened; the pump retries.
    Lost {
        /// What went wrong, for people.
        error: String,
        /// No session was open: a failed connection attempt (TLS refused,
        /// broker down, CONNACK refused).
        before_connack: bool,
    },
}

/// Runs one device until `shutdown` turns true. Sends its id on `ready`
/// after its first SUBACK (granted or not).
pub async fn run(
    mut device: Device,
    endpoint: Endpoint,
    tls: Arc<rustls::ClientConfig>,
    files: StateDir,
    ready: mpsc::UnboundedSender<String>,
    mut shutdown: watch::Receiver<bool>,
) {
    let id = device.id().to_string();
    let mut options = MqttOptions::new(id.clone(), endpoint.host.clone(), endpoint.port);
    options
        .set_clean_start(true)
        .set_keep_alive(endpoint.keep_alive)
        .set_connection_timeout(CONNECT_TIMEOUT_SECS)
        .set_max_packet_size(Some(MAX_INCOMING_PACKET))
        .set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(tls)));
    // Without TCP_NODELAY a reply waits on Nagle + delayed ACK (~40 ms a
    // round on Linux); a device answers in one small packet, so send it now.
    let mut network = NetworkOptions::new();
    network.set_tcp_nodelay(true);
    options.set_network_options(network);
    let (client, events) = AsyncClient::new(options, REQUEST_QUEUE);
    let (link_tx, mut link) = mpsc::unbounded_channel();
    let pump = tokio::spawn(pump(events, link_tx));

    let mut status = Status::new(&id, device.state().clone());
    files.write(&status);
    let mut session = Session {
        device: &mut device,
        client: &client,
        files: &files,
        status: &mut status,
    };
    let mut ready = Some(ready);
    let mut heartbeat = tokio::time::interval(endpoint.heartbeat);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    loop {
        tokio::select! {
            _ = async { shutdown.wait_for(|stop| *stop).await.is_ok() } => break,
            item = link.recv() => match item {
                None => break,
                Some(Link::Event(event)) => {
                    if let Event::Incoming(packet) = *event
                        && session.incoming(packet, &mut heartbeat).await
                        && let Some(ready) = ready.take()
                    {
                        let _ = ready.send(id.clone());
                    }
                }
                Some(Link::Lost { error, before_connack }) => session.lost(error, before_connack),
            },
            _ = heartbeat.tick(), if session.status.connected => session.heartbeat(),
        }
    }

    // Leave politely: DISCONNECT ends the session without the broker
    // treating it as a lost client.
    if session.status.connected && client.try_disconnect().is_ok() {
        let _ = tokio::time::timeout(CLOSE_GRACE, async {
            while let Some(item) = link.recv().await {
                let gone = match item {
                    Link::Event(event) => matches!(*event, Event::Outgoing(Outgoing::Disconnect)),
                    Link::Lost { .. } => true,
                };
                if gone {
                    break;
                }
            }
        })
        .await;
    }
    pump.abort();
    session.status.connected = false;
    session.status.subscribed = false;
    session.files.write(session.status);
}

/// Polls the event loop forever, forwarding events and waiting with backoff
/// after each failure. Ends when the device task is gone.
async fn pump(mut events: EventLoop, link: mpsc::UnboundedSender<Link>) {
    let mut backoff = MIN_BACKOFF;
    let mut connected = false;
    loop {
        match events.poll().await {
            Ok(event) => {
                if matches!(event, Event::Incoming(Packet::ConnAck(_))) {
                    connected = true;
                    backoff = MIN_BACKOFF;
                }
                if link.send(Link::Event(Box::new(event))).is_err() {
                    return;
                }
            }
            Err(error) => {
                let done = matches!(error, ConnectionError::RequestsDone);
                let lost = Link::Lost {
                    error: describe(&error),
                    before_connack: !connected,
                };
                connected = false;
                if link.send(lost).is_err() || done {
                    return;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// A failure in words, with the reason code when the broker gave one.
fn describe(error: &ConnectionError) -> String {
    match error {
        ConnectionError::MqttState(StateError::ServerDisconnect { reason_code, .. }) => {
            format!("the broker ended the session ({reason_code:?})")
        }
        ConnectionError::ConnectionRefused(code) => {
            format!("the broker refused the session ({code:?})")
        }
        ConnectionError::Timeout(_) => "no CONNACK within the connect timeout".into(),
        other => other.to_string(),
    }
}

/// The device task's view of one device and its client.
struct Session<'a> {
    device: &'a mut Device,
    client: &'a AsyncClient,
    files: &'a StateDir,
    status: &'a mut Status,
}

impl Session<'_> {
    /// Handles a packet from the broker. Returns whether it was a granted or
    /// refused SUBACK (either ends the subscribe round trip).
    async fn incoming(&mut self, packet: Packet, heartbeat: &mut tokio::time::Interval) -> bool {
        match packet {
            Packet::ConnAck(_) => {
                self.status.connected = true;
                self.status.connects += 1;
                tracing::info!(device = %self.device.id(), connects = self.status.connects, "connected");
                // Clean start: every session subscribes afresh.
                if let Err(e) = self
                    .client
                    .try_subscribe(topics::commands_of(self.device.id()), QoS::AtLeastOnce)
                {
                    self.status.last_error = Some(format!("cannot subscribe: {e}"));
                }
                // One heartbeat right away, then on the period from now.
                self.heartbeat();
                heartbeat.reset();
                self.files.write(self.status);
                false
            }
            Packet::SubAck(ack) => {
                match ack.return_codes.first() {
                    Some(SubscribeReasonCode::Success(_)) => {
                        self.status.subscribed = true;
                        self.status.last_error = None;
                    }
                    code => {
                        // A quarantined device: it may still publish
                        // telemetry, but no command can reach it.
                        self.status.subscribed = false;
                        let error = format!(
                            "the broker refused the command subscription ({code:?}): no commands can arrive"
                        );
                        tracing::warn!(device = %self.device.id(), "{error}");
                        self.status.last_error = Some(error);
                    }
                }
                self.files.write(self.status);
                true
            }
            Packet::Publish(publish) => {
                self.command(publish).await;
                false
            }
            _ => false,
        }
    }

    /// Records a lost session or a failed attempt.
    fn lost(&mut self, error: String, before_connack: bool) {
        if before_connack {
            self.status.refused_connects += 1;
        }
        tracing::warn!(
            device = %self.device.id(),
            refused_connects = self.status.refused_connects,
            "{}: {error}",
            if before_connack { "connection attempt failed" } else { "session lost" }
        );
        self.status.connected = false;
        self.status.subscribed = false;
        self.status.last_error = Some(error);
        self.files.write(self.status);
    }

    /// Gates and (when admitted) obeys one received payload, then replies
    /// with the command's correlation data.
    async fn command(&mut self, publish: Publish) {
        // Cordon matches replies to requests by the MQTT 5 correlation
        // data, so it is copied from the command's publish.
        let properties = PublishProperties {
            correlation_data: publish
                .properties
                .as_ref()
                .and_then(|p| p.correlation_data.clone()),
            content_type: Some("application/json".into()),
            ..PublishProperties::default()
        };
        let before = self.device.state().clone();
        let reply = match self.device.decide(&publish.payload, unix_now()) {
            Decision::Refused(reply) => reply,
            Decision::Admitted(command) => {
                // The simulated flash write; the event loop keeps running in
                // its own task meanwhile, and events queue for us.
                let work = self.device.work_time(&command);
                if !work.is_zero() {
                    tokio::time::sleep(work).await;
                }
                let reply = self.device.obey(&command);
                self.status.command(Handled {
                    id: command.id.clone(),
                    order: command.order.clone(),
                    outcome: reply.outcome.clone(),
                });
                reply
            }
        };
        self.log(&publish, &reply);
        if let Outcome::Refused { code, .. } = &reply.outcome {
            self.status.refusal(*code, reply.command_id.clone());
        }
        self.status.state = self.device.state().clone();
        self.publish_reply(&reply, properties);
        if self.device.state() != &before {
            self.heartbeat();
        }
        self.files.write(self.status);
    }

    fn log(&self, publish: &Publish, reply: &Reply) {
        let topic = String::from_utf8_lossy(&publish.topic);
        let command = reply.command_id.as_deref().unwrap_or("-");
        match &reply.outcome {
            Outcome::Refused { code, reason } => tracing::warn!(
                device = %self.device.id(), %topic, command, code = %code, "refused: {reason}"
            ),
            Outcome::Failed { reason } => tracing::warn!(
                device = %self.device.id(), %topic, command, "failed: {reason}"
            ),
            Outcome::Done { detail } => tracing::info!(
                device = %self.device.id(), %topic, command, "done: {detail}"
            ),
        }
    }

    fn publish_reply(&self, reply: &Reply, properties: PublishProperties) {
        let Ok(payload) = serde_json::to_vec(reply) else {
            return;
        };
        if let Err(e) = self.client.try_publish_with_properties(
            topics::reply(self.device.id()),
            QoS::AtLeastOnce,
            false,
            payload,
            properties,
        ) {
            tracing::warn!(device = %self.device.id(), error = %e, "reply dropped");
        }
    }

    /// Publishes the next heartbeat (QoS 1: the broker's PUBACK would say
    /// if telemetry were refused).
    fn heartbeat(&mut self) {
        let beat = self.device.heartbeat(unix_now());
        let Ok(payload) = serde_json::to_vec(&beat) else {
            return;
        };
        if let Err(e) = self.client.try_publish(
            topics::heartbeat(self.device.id()),
            QoS::AtLeastOnce,
            false,
            payload,
        ) {
            tracing::warn!(device = %self.device.id(), error = %e, "heartbeat dropped");
        }
    }
}

/// Seconds since the Unix epoch (0 if the clock is before it, which makes
/// every command look issued in the future: refused, never obeyed).
fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

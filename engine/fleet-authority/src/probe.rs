//! Proving that the broker enforces a CRL.
//!
//! The authority holds no device keys, so it cannot try a revoked device's
//! certificate itself. Instead every CRL it publishes revokes a *sentinel*
//! certificate issued just for that CRL. After the SIGHUP the probe connects
//! over mutual TLS with the sentinel, which must be refused (the reload is
//! asynchronous, so it retries for a while), and then with the authority's
//! valid probe certificate, which must get a successful CONNACK: a CRL the
//! broker could not load would let the sentinel in (fail open), an expired
//! one would refuse the valid certificate too (fail closed).

use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttc::v5::mqttbytes::v5::{ConnectReturnCode, Packet};
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use rumqttc::{TlsConfiguration, Transport};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Serialize;

/// How long to wait for the broker to start refusing the sentinel.
pub const REFUSAL_DEADLINE: Duration = Duration::from_secs(3);
/// How long to keep trying the valid certificate.
pub const ACCEPT_DEADLINE: Duration = Duration::from_secs(3);
/// Pause between attempts.
const RETRY_PAUSE: Duration = Duration::from_millis(50);
/// Limit for one connection attempt (TCP + TLS + CONNECT/CONNACK).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);

/// A client certificate and its key, PEM.
#[derive(Clone)]
pub struct Identity {
    /// The certificate's CN (for the client id and messages).
    pub cn: String,
    /// Certificate, PEM.
    pub cert_pem: String,
    /// Private key, PEM.
    pub key_pem: String,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("cn", &self.cn)
            .finish_non_exhaustive()
    }
}

/// Where the broker's mTLS listener is and which CA it is trusted by.
#[derive(Debug, Clone)]
pub struct Target {
    /// Host (an IP or `localhost`); also the TLS server name.
    pub host: String,
    /// Port.
    pub port: u16,
    /// The CA certificate, PEM.
    pub ca_pem: String,
}

/// What one connection attempt got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// CONNACK with success.
    Accepted,
    /// Refused: a TLS error, the connection dropped, or a failed CONNACK.
    Refused(String),
}

/// What a successful probe measured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProbeReport {
    /// The sentinel was refused.
    pub revoked_refused: bool,
    /// The valid probe certificate was accepted.
    pub valid_accepted: bool,
    /// Connection attempts made in total.
    pub attempts: u32,
    /// Milliseconds from the start of the probe until both were shown.
    pub ms: u64,
    /// Why the broker refused the sentinel, as the client saw it.
    pub refusal: String,
}

/// Why the probe failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    /// The client configuration could not be built.
    #[error("probe set-up failed: {0}")]
    Setup(String),
    /// The revoked sentinel kept being accepted: the broker did not load the
    /// new CRL (fail open).
    #[error("the revoked sentinel {cn} was still accepted after {attempts} attempts")]
    RevokedAccepted {
        /// The sentinel's CN.
        cn: String,
        /// Attempts made.
        attempts: u32,
    },
    /// The valid probe certificate was refused: the broker refuses
    /// everyone (an expired or unusable CRL fails closed).
    #[error("the valid probe certificate {cn} was refused: {reason}")]
    ValidRefused {
        /// The probe certificate's CN.
        cn: String,
        /// The last refusal.
        reason: String,
    },
}

/// A rustls client configuration trusting `ca_pem` and presenting `identity`.
pub fn client_config(
    ca_pem: &str,
    identity: &Identity,
) -> Result<rustls::ClientConfig, ProbeError> {
    let setup = |e: String| ProbeError::Setup(e);
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        let cert = cert.map_err(|e| setup(format!("CA PEM: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| setup(format!("CA certificate: {e}")))?;
    }
    let chain = CertificateDer::pem_slice_iter(identity.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| setup(format!("client certificate PEM: {e}")))?;
    let key = PrivateKeyDer::from_pem_slice(identity.key_pem.as_bytes())
        .map_err(|e| setup(format!("client key PEM: {e}")))?;
    rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| setup(format!("client auth: {e}")))
}

/// One MQTT v5 connection over mutual TLS: accepted iff a successful
/// CONNACK arrives. The session is closed right after.
pub async fn connect_once(target: &Target, identity: &Identity) -> Result<Outcome, ProbeError> {
    let config = client_config(&target.ca_pem, identity)?;
    let client_id = format!(
        "{}-{}",
        identity.cn,
        cordon_fleet::keys::random_hex(4).map_err(|e| ProbeError::Setup(e.to_string()))?
    );
    let mut options = MqttOptions::new(client_id, target.host.clone(), target.port);
    options.set_keep_alive(Duration::from_secs(5));
    options.set_clean_start(true);
    options.set_transport(Transport::Tls(TlsConfiguration::Rustls(Arc::new(config))));
    let (client, mut events) = AsyncClient::new(options, 4);
    let outcome = tokio::time::timeout(ATTEMPT_TIMEOUT, async {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    return if ack.code == ConnectReturnCode::Success {
                        Outcome::Accepted
                    } else {
                        Outcome::Refused(format!("CONNACK {:?}", ack.code))
                    };
                }
                Ok(_) => continue,
                Err(e) => return Outcome::Refused(e.to_string()),
            }
        }
    })
    .await
    .unwrap_or_else(|_| Outcome::Refused("timed out".into()));
    if outcome == Outcome::Accepted {
        // A clean DISCONNECT, so the broker's log does not show an error.
        let _ = client.try_disconnect();
        let _ = tokio::time::timeout(Duration::from_millis(200), events.poll()).await;
    }
    Ok(outcome)
}

/// Runs the probe: `sentinel` (revoked in the CRL just published) must be
/// refused, then `valid` accepted, then `sentinel` refused once more. The
/// last step tells a refusal by the CRL from a broker that was briefly not
/// accepting anyone while it reloaded.
pub async fn prove(
    target: &Target,
    sentinel: &Identity,
    valid: &Identity,
) -> Result<ProbeReport, ProbeError> {
    let start = Instant::now();
    let mut attempts = 0;
    loop {
        let refusal = loop {
            attempts += 1;
            match connect_once(target, sentinel).await? {
                Outcome::Refused(reason) => break reason,
                Outcome::Accepted if start.elapsed() >= REFUSAL_DEADLINE => {
                    return Err(ProbeError::RevokedAccepted {
                        cn: sentinel.cn.clone(),
                        attempts,
                    });
                }
                Outcome::Accepted => tokio::time::sleep(RETRY_PAUSE).await,
            }
        };
        let accepting_from = Instant::now();
        loop {
            attempts += 1;
            match connect_once(target, valid).await? {
                Outcome::Accepted => break,
                Outcome::Refused(reason) if accepting_from.elapsed() >= ACCEPT_DEADLINE => {
                    return Err(ProbeError::ValidRefused {
                        cn: valid.cn.clone(),
                        reason,
                    });
                }
                Outcome::Refused(_) => tokio::time::sleep(RETRY_PAUSE).await,
            }
        }
        attempts += 1;
        match connect_once(target, sentinel).await? {
            Outcome::Refused(_) => {
                return Ok(ProbeReport {
                    revoked_refused: true,
                    valid_accepted: true,
                    attempts,
                    ms: u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
                    refusal,
                });
            }
            Outcome::Accepted if start.elapsed() >= REFUSAL_DEADLINE => {
                return Err(ProbeError::RevokedAccepted {
                    cn: sentinel.cn.clone(),
                    attempts,
                });
            }
            Outcome::Accepted => tokio::time::sleep(RETRY_PAUSE).await,
        }
    }
}

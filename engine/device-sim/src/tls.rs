//! The TLS side of a device's session: its client certificate and key (its
//! identity at the broker, which takes the certificate's CN as the MQTT
//! username) and the fleet CA that the broker's certificate must chain to.
//!
//! rumqttc names the TLS server after the host it dials, but the simulator
//! dials an address (`127.0.0.1:PORT`) while the broker certificate is
//! checked for a fixed name (`localhost` by default). [`NamedServer`] keeps
//! rustls's full WebPKI verification and only pins the name it checks.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

/// What every device shares: the CA and the server name to check.
#[derive(Debug, Clone)]
pub struct Trust {
    verifier: Arc<NamedServer>,
    provider: Arc<CryptoProvider>,
}

impl Trust {
    /// Reads the CA certificates from `ca_file`; the broker must present a
    /// certificate valid for `server_name` under them.
    pub fn new(ca_file: &Path, server_name: &str) -> anyhow::Result<Trust> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(ca_file)
            .with_context(|| format!("cannot read the CA file {}", ca_file.display()))?
        {
            let cert = cert.with_context(|| format!("{} is not PEM", ca_file.display()))?;
            roots
                .add(cert)
                .with_context(|| format!("{} holds an unusable CA", ca_file.display()))?;
        }
        if roots.is_empty() {
            bail!("{} holds no certificate", ca_file.display());
        }
        let inner =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
                .build()
                .context("cannot build the server certificate verifier")?;
        let name = ServerName::try_from(server_name.to_string())
            .with_context(|| format!("{server_name} is not a valid TLS server name"))?;
        Ok(Trust {
            verifier: Arc::new(NamedServer { inner, name }),
            provider,
        })
    }

    /// The client configuration of one device, authenticating with
    /// `cert_file` (PEM chain) and `key_file` (PEM key: PKCS#8 or SEC1).
    pub fn client(
        &self,
        cert_file: &Path,
        key_file: &Path,
    ) -> anyhow::Result<Arc<rustls::ClientConfig>> {
        let chain = CertificateDer::pem_file_iter(cert_file)
            .with_context(|| format!("cannot read {}", cert_file.display()))?
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("{} is not a PEM certificate file", cert_file.display()))?;
        if chain.is_empty() {
            bail!("{} holds no certificate", cert_file.display());
        }
        // The key's parse error is not shown: it could quote key material.
        let key = PrivateKeyDer::from_pem_file(key_file)
            .map_err(|_| anyhow::anyhow!("{} holds no usable private key", key_file.display()))?;
        let config = rustls::ClientConfig::builder_with_provider(Arc::clone(&self.provider))
            .with_safe_default_protocol_versions()
            .context("TLS set-up failed")?
            .dangerous()
            .with_custom_certificate_verifier(self.verifier.clone())
            .with_client_auth_cert(chain, key)
            .with_context(|| {
                format!(
                    "{} and {} do not fit together",
                    cert_file.display(),
                    key_file.display()
                )
            })?;
        Ok(Arc::new(config))
    }
}

/// WebPKI verification of the broker's certificate against a fixed name
/// instead of the dialled address. Nothing else is relaxed: chain, validity
/// and signatures are checked by rustls's own verifier.
#[derive(Debug)]
struct NamedServer {
    inner: Arc<WebPkiServerVerifier>,
    name: ServerName<'static>,
}

impl ServerCertVerifier for NamedServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _dialled: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

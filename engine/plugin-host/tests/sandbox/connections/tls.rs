//! Named connections over TLS: Mosquitto with mutual TLS, and an HTTPS
//! server (`openssl s_server -www`), with a throwaway PKI made by the
//! `openssl` command.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cordon_plugin_host::{ConnectionHub, Connections, ConnectionsConfig, HostFailure, MqttQos};
use serde_json::{Value, json};

use crate::support::{Mosquitto, free_port};

const SECOND: Duration = Duration::from_secs(1);

/// The extensions of the throwaway certificates (what rustls insists on:
/// v3, a CA flag on the CA, SANs on the server).
const OPENSSL_CNF: &str = "\
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = unused
[ v3_ca ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ v3_server ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
[ v3_client ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
";

/// A CA with a server (`localhost`, `127.0.0.1`) and a client certificate.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = Pki { dir };
        std::fs::write(pki.path("openssl.cnf"), OPENSSL_CNF).expect("cnf");
        for name in ["ca", "server", "client"] {
            pki.openssl(&[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
                &format!("{name}.key"),
            ]);
        }
        pki.openssl(&[
            "req",
            "-x509",
            "-new",
            "-config",
            "openssl.cnf",
            "-key",
            "ca.key",
            "-subj",
            "/CN=Cordon Test CA",
            "-days",
            "2",
            "-extensions",
            "v3_ca",
            "-out",
            "ca.crt",
        ]);
        for (name, extensions) in [("server", "v3_server"), ("client", "v3_client")] {
            pki.openssl(&[
                "req",
                "-new",
                "-config",
                "openssl.cnf",
                "-key",
                &format!("{name}.key"),
                "-subj",
                &format!("/CN={name}"),
                "-out",
                &format!("{name}.csr"),
            ]);
            pki.openssl(&[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "openssl.cnf",
                "-extensions",
                extensions,
                "-out",
                &format!("{name}.crt"),
            ]);
        }
        pki
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    fn openssl(&self, args: &[&str]) {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .expect("the openssl command (Debian's openssl package)");
        assert!(
            output.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

fn hub(connection: Value) -> ConnectionHub {
    let config: ConnectionsConfig =
        serde_json::from_value(json!({ "connections": { "secure": connection } })).expect("config");
    ConnectionHub::new(&config).expect("hub")
}

fn unavailable_without_address(result: Result<impl std::fmt::Debug, HostFailure>) -> String {
    let Err(HostFailure::Unavailable(message)) = result else {
        panic!("expected unavailable: {result:?}");
    };
    assert!(
        message.starts_with("connection `secure` is unavailable: ")
            && !message.contains("127.0.0.1")
            && !message.contains("localhost"),
        "{message}"
    );
    message
}

#[tokio::test(flavor = "multi_thread")]
async fn mqtt_over_mutual_tls_works_and_a_wrong_ca_or_missing_certificate_is_unavailable() {
    let pki = Pki::new();
    let broker = Mosquitto::start_with(&format!(
        "cafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate true",
        pki.path("ca.crt").display(),
        pki.path("server.crt").display(),
        pki.path("server.key").display(),
    ));
    let settings = |tls: Value| json!({"kind": "mqtt", "host": "127.0.0.1", "port": broker.port(), "tls": tls});
    let mutual = hub(settings(json!({
        "ca_file": pki.path("ca.crt"),
        "client_cert_file": pki.path("client.crt"),
        "client_key_file": pki.path("client.key"),
    })));
    mutual
        .mqtt_publish(
            "secure".into(),
            "cordon/tls".into(),
            b"sealed".to_vec(),
            MqttQos::AtLeastOnce,
            true,
            SECOND,
        )
        .await
        .expect("published over TLS");
    let received = mutual
        .mqtt_receive("secure".into(), "cordon/tls".into(), SECOND)
        .await
        .expect("received over TLS")
        .expect("the retained message");
    assert_eq!(received.payload, b"sealed");

    // No client certificate: the broker ends the handshake.
    let anonymous = hub(settings(json!({"ca_file": pki.path("ca.crt")})));
    let message = unavailable_without_address(
        anonymous
            .mqtt_receive("secure".into(), "cordon/tls".into(), SECOND)
            .await,
    );
    assert!(message.contains("TLS: the server refused"), "{message}");

    // A CA that did not sign the broker's certificate.
    let other = Pki::new();
    let distrusting = hub(settings(json!({
        "ca_file": other.path("ca.crt"),
        "client_cert_file": pki.path("client.crt"),
        "client_key_file": pki.path("client.key"),
    })));
    let message = unavailable_without_address(
        distrusting
            .mqtt_receive("secure".into(), "cordon/tls".into(), SECOND)
            .await,
    );
    assert!(message.contains("certificate is not accepted"), "{message}");
}

/// `openssl s_server -www` on a free loopback port: answers each HTTPS
/// request with a 200 status page. Killed by PID on drop.
struct HttpsServer {
    child: Child,
    port: u16,
}

impl HttpsServer {
    fn start(pki: &Pki) -> HttpsServer {
        for _ in 0..3 {
            let port = free_port();
            let mut child = Command::new("openssl")
                .args(["s_server", "-quiet", "-www", "-accept"])
                .arg(format!("127.0.0.1:{port}"))
                .arg("-cert")
                .arg(pki.path("server.crt"))
                .arg("-key")
                .arg(pki.path("server.key"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("openssl s_server");
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(5) {
                if child.try_wait().ok().flatten().is_some() {
                    break;
                }
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return HttpsServer { child, port };
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("openssl s_server did not start");
    }
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn https_hub(port: u16, ca: &Path) -> ConnectionHub {
    hub(json!({
        "kind": "http",
        "base_url": format!("https://localhost:{port}/"),
        "tls": {"ca_file": ca},
    }))
}

#[tokio::test(flavor = "multi_thread")]
async fn https_trusts_exactly_the_configured_ca() {
    let pki = Pki::new();
    let server = HttpsServer::start(&pki);
    let get = || cordon_plugin_host::HttpRequest {
        method: "GET",
        path: "/health".into(),
        headers: vec![],
        body: vec![],
    };
    let response = https_hub(server.port, &pki.path("ca.crt"))
        .http_send("secure".into(), get(), Duration::from_secs(2))
        .await
        .expect("an HTTPS response");
    assert_eq!(response.status, 200);

    let other = Pki::new();
    let message = unavailable_without_address(
        https_hub(server.port, &other.path("ca.crt"))
            .http_send("secure".into(), get(), Duration::from_secs(2))
            .await,
    );
    assert!(message.contains("certificate is not accepted"), "{message}");
}

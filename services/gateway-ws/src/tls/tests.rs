//! The TLS listener with real sockets: certificates from a test CA (rcgen), a rustls client,
//! handshakes that stall, and certificate files replaced while the listener runs.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::ServerName;
use rustls::pki_types::pem::PemObject as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use super::*;

/// A CA that signs server certificates for the given names.
struct TestCa {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl TestCa {
    fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        let pem = params.self_signed(&key).unwrap().pem();
        Self {
            pem,
            issuer: Issuer::new(params, key),
        }
    }

    /// Writes a leaf for `names` to `dir/cert.pem` and `dir/key.pem`.
    fn issue_to(&self, dir: &Path, names: &[&str]) {
        let params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
    }

    fn client(&self) -> tokio_rustls::TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(rustls::pki_types::CertificateDer::from_pem_slice(self.pem.as_bytes()).unwrap())
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        tokio_rustls::TlsConnector::from(Arc::new(config))
    }
}

/// Serves `GET /` -> "hello" over TLS with `settings`; returns the address.
async fn serve(settings: &TlsSettings) -> (SocketAddr, tokio::task::JoinHandle<()>, AbortOnDrop) {
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let (acceptor, watcher) = acceptor(settings).unwrap();
    let listener = TlsListener::new(tcp, acceptor, settings.handshake_timeout).unwrap();
    let app = Router::new().route("/", get(|| async { "hello" }));
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, task, watcher)
}

/// One HTTPS GET of `/` as `name`; the response text.
async fn get_hello(
    client: &tokio_rustls::TlsConnector,
    addr: SocketAddr,
    name: &str,
) -> std::io::Result<String> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from(name.to_string()).unwrap();
    let mut tls = client.connect(name, tcp).await?;
    tls.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await?;
    let mut out = String::new();
    tls.read_to_string(&mut out).await?;
    Ok(out)
}

fn settings(dir: &Path) -> TlsSettings {
    TlsSettings {
        handshake_timeout: Duration::from_millis(500),
        reload_interval: Some(Duration::from_millis(100)),
        ..TlsSettings::new(dir.join("cert.pem"), dir.join("key.pem"))
    }
}

#[tokio::test]
async fn serves_https_for_every_name_of_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    ca.issue_to(
        dir.path(),
        &["gw.test", "*.tunnel.gw.test", "*.apps.gw.test"],
    );
    let (addr, _task, _watcher) = serve(&settings(dir.path())).await;
    let client = ca.client();
    for name in ["gw.test", "web.tunnel.gw.test", "3000-n1.apps.gw.test"] {
        let reply = get_hello(&client, addr, name).await.unwrap();
        assert!(
            reply.starts_with("HTTP/1.1 200") && reply.ends_with("hello"),
            "{name}: {reply}"
        );
    }
    // A name the certificate does not carry, and a client trusting another CA, are refused.
    assert!(get_hello(&client, addr, "other.test").await.is_err());
    assert!(
        get_hello(&TestCa::new().client(), addr, "gw.test")
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_stalled_handshake_is_dropped_and_holds_up_nobody() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    ca.issue_to(dir.path(), &["gw.test"]);
    let (addr, _task, _watcher) = serve(&settings(dir.path())).await;
    // One silent client, one that sends half a record header, one that sends garbage.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let mut partial = TcpStream::connect(addr).await.unwrap();
    partial.write_all(&[0x16, 0x03]).await.unwrap();
    let mut garbage = TcpStream::connect(addr).await.unwrap();
    garbage.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    // Served while they hang.
    let started = tokio::time::Instant::now();
    let reply = get_hello(&ca.client(), addr, "gw.test").await.unwrap();
    assert!(reply.ends_with("hello"));
    assert!(started.elapsed() < Duration::from_millis(400));
    for (what, socket) in [
        ("silent", &mut silent),
        ("partial", &mut partial),
        ("garbage", &mut garbage),
    ] {
        let mut buf = [0u8; 256];
        // EOF (or a TLS alert, then EOF) within the handshake timeout plus slack.
        let closed = tokio::time::timeout(Duration::from_secs(3), async {
            loop {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => continue,
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "{what} connection still open");
    }
}

#[tokio::test]
async fn replaced_files_serve_new_connections() {
    let dir = tempfile::tempdir().unwrap();
    let old_ca = TestCa::new();
    old_ca.issue_to(dir.path(), &["gw.test"]);
    let (addr, _task, _watcher) = serve(&settings(dir.path())).await;
    assert!(get_hello(&old_ca.client(), addr, "gw.test").await.is_ok());
    // A half-written pair (new certificate, old key) keeps the old one serving.
    let new_ca = TestCa::new();
    let staging = tempfile::tempdir().unwrap();
    new_ca.issue_to(staging.path(), &["gw.test"]);
    std::fs::copy(staging.path().join("cert.pem"), dir.path().join("cert.pem")).unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(get_hello(&old_ca.client(), addr, "gw.test").await.is_ok());
    std::fs::copy(staging.path().join("key.pem"), dir.path().join("key.pem")).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while get_hello(&new_ca.client(), addr, "gw.test").await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "new certificate never served"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(get_hello(&old_ca.client(), addr, "gw.test").await.is_err());
}

#[test]
fn files_that_do_not_make_a_pair_are_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    ca.issue_to(dir.path(), &["gw.test"]);
    let other = tempfile::tempdir().unwrap();
    ca.issue_to(other.path(), &["gw.test"]);
    let provider = rustls::crypto::ring::default_provider();
    let cert = dir.path().join("cert.pem");
    let wrong_key = other.path().join("key.pem");
    let err = certs::load(&cert, &wrong_key, &provider)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("does not belong") && err.contains("key.pem"),
        "{err}"
    );
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let err = certs::load(&empty, &wrong_key, &provider)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("empty.pem") && err.contains("no certificate"),
        "{err}"
    );
    let err = certs::load(&cert, &empty, &provider)
        .unwrap_err()
        .to_string();
    assert!(err.contains("empty.pem"), "{err}");
}

//! The gateway serving HTTPS itself (`GATEWAY_TLS_CERT`/`GATEWAY_TLS_KEY`) with a certificate
//! from a test CA, and the agent's side of it: wss:// verified against the given CA, a
//! terminal through it, HSTS on production answers, `__Host-` cookies over TLS, plain ws:// to
//! a remote address refused with nothing sent, a certificate from another CA refused, and a
//! stalled handshake dropped while other clients are served.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt as _;
use phirepass_gateway_ws::browser_protocol::WebControl;
use phirepass_gateway_ws::{AppMode, GatewayConfig, TlsSettings};
use phirepass_testkit::browser::Browser;
use phirepass_testkit::sshd::{TEST_PASSWORD, TEST_USER, TestSshd};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

use crate::common::{Backend, Cluster, NODE, agent_config, start_agent_with};

const T: Duration = Duration::from_secs(20);
const HSTS: &str = "strict-transport-security: max-age=31536000";

/// A test CA and, in `dir`, its certificate (`ca.pem`) and a gateway certificate for
/// `localhost`, `gw.test` and the tunnel and app domains (`cert.pem`, `key.pem`).
struct TestPki {
    dir: tempfile::TempDir,
}

impl TestPki {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().unwrap();
        std::fs::write(
            dir.path().join("ca.pem"),
            ca.self_signed(&ca_key).unwrap().pem(),
        )
        .unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let names = ["localhost", "gw.test", "*.tunnel.gw.test", "*.apps.gw.test"];
        let leaf = CertificateParams::new(names.map(String::from).to_vec()).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = leaf.signed_by(&key, &issuer).unwrap();
        std::fs::write(dir.path().join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).unwrap();
        Self { dir }
    }

    fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    fn settings(&self, handshake_timeout: Duration) -> TlsSettings {
        TlsSettings {
            handshake_timeout,
            ..TlsSettings::new(
                self.dir.path().join("cert.pem"),
                self.dir.path().join("key.pem"),
            )
        }
    }

    fn client(&self) -> Arc<rustls::ClientConfig> {
        client_trusting(&self.ca())
    }
}

fn client_trusting(ca: &Path) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

struct Reply {
    status: u16,
    head: String,
    body: String,
}

/// One HTTPS request to `addr`, as `host` (SNI and Host header).
async fn https(
    tls: &Arc<rustls::ClientConfig>,
    addr: &str,
    host: &str,
    request: (&str, &str, &[(&str, &str)], &str),
) -> std::io::Result<Reply> {
    let (method, path, headers, body) = request;
    let tcp = TcpStream::connect(addr).await?;
    let port = addr.rsplit_once(':').map_or("", |(_, p)| p);
    let name = ServerName::try_from(host.to_string()).unwrap();
    let mut stream = tokio_rustls::TlsConnector::from(tls.clone())
        .connect(name, tcp)
        .await?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\
         Content-Length: {}\r\nContent-Type: application/json\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    stream.write_all(req.as_bytes()).await?;
    let mut raw = Vec::new();
    tokio::time::timeout(T, stream.read_to_end(&mut raw)).await??;
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok(Reply {
        status,
        head: head.to_ascii_lowercase(),
        body: body.to_string(),
    })
}

async fn login(tls: &Arc<rustls::ClientConfig>, addr: &str, host: &str) -> (Reply, String) {
    let body = r#"{"username":"alice","password":"alice-password"}"#;
    let reply = https(tls, addr, host, ("POST", "/api/auth/login", &[], body))
        .await
        .unwrap();
    assert_eq!(reply.status, 200, "login: {}", reply.body);
    let json: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    let token = json["token"].as_str().unwrap().to_string();
    (reply, token)
}

/// Whether `GET /api/nodes` over HTTPS lists `node` within `timeout`.
async fn node_listed(
    tls: &Arc<rustls::ClientConfig>,
    addr: &str,
    session: &str,
    timeout: Duration,
) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    let auth = format!("Bearer {session}");
    while tokio::time::Instant::now() < deadline {
        let headers = [("authorization", auth.as_str())];
        if let Ok(reply) = https(tls, addr, "localhost", ("GET", "/api/nodes", &headers, "")).await
        {
            let json: serde_json::Value = serde_json::from_str(&reply.body).unwrap_or_default();
            if json["nodes"]
                .as_array()
                .is_some_and(|a| a.iter().any(|n| n["name"] == NODE))
            {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// A production gateway over TLS with alice as its first user.
async fn production(pki: &TestPki) -> Cluster {
    let settings = pki.settings(Duration::from_secs(10));
    Cluster::start_with(
        Backend::Embedded,
        1,
        &[("alice", "alice-password")],
        move |c: &mut GatewayConfig| {
            c.mode = AppMode::Production;
            c.proxy.tunnel_domain = Some("tunnel.gw.test".into());
            c.proxy.apps_domain = Some("apps.gw.test".into());
            c.tls = Some(settings.clone());
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn agent_over_wss_serves_a_terminal_and_answers_carry_hsts() {
    let pki = TestPki::new();
    let cluster = production(&pki).await;
    let addr = cluster.gateways[0].addr.clone();
    let port = addr.rsplit_once(':').unwrap().1.to_string();
    let (token, _) = cluster.node_token("alice", NODE).await;
    let sshd = TestSshd::start().await.expect("sshd");
    let mut config = agent_config(&addr, sshd.addr);
    config.server_url = format!("wss://localhost:{port}/api/nodes/ws");
    config.gateway_ca = Some(pki.ca());
    let _agent = start_agent_with(config, &token);

    let tls = pki.client();
    let (reply, session) = login(&tls, &addr, "localhost").await;
    assert!(reply.head.contains(HSTS), "{}", reply.head);
    assert!(
        reply.head.contains("set-cookie: __host-pp_session="),
        "{}",
        reply.head
    );
    // Pages and tunnel hosts too; every name below the tunnel domain is the gateway's.
    let page = https(&tls, &addr, "localhost", ("GET", "/login", &[], ""))
        .await
        .unwrap();
    assert_eq!(page.status, 200);
    assert!(page.head.contains(HSTS), "{}", page.head);
    let tunnel = https(&tls, &addr, "web.tunnel.gw.test", ("GET", "/", &[], ""))
        .await
        .unwrap();
    assert!(
        tunnel.head.contains(&format!("{HSTS}; includesubdomains")),
        "{}",
        tunnel.head
    );
    assert!(
        node_listed(&tls, &addr, &session, T).await,
        "node never came online over wss"
    );

    // The browser terminal over wss:// to the same listener.
    let mut request = format!("wss://localhost:{port}/api/web/ws")
        .into_client_request()
        .unwrap();
    let cookie = format!("__Host-pp_session={session}");
    request
        .headers_mut()
        .insert("cookie", cookie.parse().unwrap());
    let connector = tokio_tungstenite::Connector::Rustls(tls.clone());
    let (ws, _) =
        tokio_tungstenite::connect_async_tls_with_config(request, None, false, Some(connector))
            .await
            .expect("wss browser socket");
    let mut browser = Browser::from_socket(ws);
    assert!(matches!(
        browser.control(T).await.unwrap(),
        Some(WebControl::Ok { .. })
    ));
    let opened = browser
        .open_tunnel(NODE, TEST_USER, Some(TEST_PASSWORD))
        .await
        .unwrap();
    assert!(
        matches!(
            opened,
            WebControl::Ok {
                session_id: Some(_),
                ..
            }
        ),
        "open failed: {opened:?}"
    );
    browser.type_text("echo $((6*7))\r").await.unwrap();
    browser.read_until("42\r\n", T).await.expect("42 over wss");
    browser.type_text("exit\r").await.unwrap();
    let (_, status) = browser.wait_closed(T).await.expect("closed");
    assert_eq!(status, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn agent_refuses_a_gateway_certificate_from_another_ca() {
    let pki = TestPki::new();
    let cluster = production(&pki).await;
    let addr = cluster.gateways[0].addr.clone();
    let port = addr.rsplit_once(':').unwrap().1.to_string();
    let (token, _) = cluster.node_token("alice", NODE).await;
    let sshd = TestSshd::start().await.expect("sshd");
    let stranger = TestPki::new();
    let mut config = agent_config(&addr, sshd.addr);
    config.server_url = format!("wss://localhost:{port}/api/nodes/ws");
    config.gateway_ca = Some(stranger.ca());
    let agent = start_agent_with(config.clone(), &token);

    let (_, session) = login(&pki.client(), &addr, "localhost").await;
    assert!(
        !node_listed(&pki.client(), &addr, &session, Duration::from_secs(4)).await,
        "the agent authenticated to a gateway whose certificate its CA did not sign"
    );
    // It keeps retrying rather than giving up or falling back to anything else.
    assert!(!agent.task.is_finished());
    drop(agent);
    // The same agent trusting the right CA comes online: the refusal was the certificate's.
    config.gateway_ca = Some(pki.ca());
    let _agent = start_agent_with(config, &token);
    assert!(node_listed(&pki.client(), &addr, &session, T).await);
}

/// A non-loopback address of this machine, if it has one.
fn outward_address() -> Option<IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_refuses_plain_ws_to_a_remote_address_and_sends_nothing() {
    let sshd_addr: SocketAddr = "127.0.0.1:22".parse().unwrap();
    // The configuration refuses it, naming the fix.
    let err = phirepass_agent::AgentConfig::from_lookup(|k| {
        (k == "SERVER_URL").then(|| "ws://gw.example.com/api/nodes/ws".to_string())
    })
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("wss://") && err.contains(phirepass_agent::tls::INSECURE_VAR),
        "{err}"
    );
    // So does `run`, for a config built any other way, before opening any socket: a listener
    // on this machine's outward address sees no connection.
    let listener = TcpListener::bind("0.0.0.0:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let ip = outward_address().map_or("10.255.255.1".to_string(), |ip| ip.to_string());
    let mut config = agent_config("127.0.0.1:1", sshd_addr);
    config.server_url = format!("ws://{ip}:{port}/api/nodes/ws");
    let run = phirepass_agent::run(
        config.clone(),
        format!("pp_node_{}", "a".repeat(43)),
        std::future::pending(),
    );
    let result = tokio::time::timeout(Duration::from_secs(5), run)
        .await
        .expect("run returned");
    assert!(result.is_err(), "run accepted ws:// to {ip}");
    let accepted = listener.accept().now_or_never();
    assert!(accepted.is_none(), "the agent dialled a plain-text gateway");
    // The device flow too: the approved token would come back in clear.
    let url = format!("http://{ip}:{port}");
    assert!(phirepass_agent::device::GatewayUrl::parse(&url).is_err());
    // Loopback stays plain for `phirepass dev`.
    assert!(phirepass_agent::device::GatewayUrl::parse("http://127.0.0.1:8080").is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stalled_handshake_is_dropped_while_others_are_served() {
    let pki = TestPki::new();
    let settings = pki.settings(Duration::from_secs(1));
    // Development mode: no HSTS, but TLS alone makes the cookies `__Host-` on any name.
    let cluster = Cluster::start_with(
        Backend::Embedded,
        1,
        &[("alice", "alice-password")],
        move |c: &mut GatewayConfig| {
            c.tls = Some(settings.clone());
        },
    )
    .await;
    let addr = cluster.gateways[0].addr.clone();
    let tls = pki.client();
    let mut stalled = Vec::new();
    for _ in 0..20 {
        stalled.push(TcpStream::connect(&addr).await.unwrap());
    }
    // A garbage "handshake" and a half ClientHello as well.
    let mut garbage = TcpStream::connect(&addr).await.unwrap();
    garbage
        .write_all(b"GET / HTTP/1.1\r\nHost: gw.test\r\n\r\n")
        .await
        .unwrap();
    let mut half = TcpStream::connect(&addr).await.unwrap();
    half.write_all(&[0x16, 0x03, 0x01, 0x02]).await.unwrap();
    let started = tokio::time::Instant::now();
    let (reply, _) = login(&tls, &addr, "gw.test").await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "served only after the stalled clients"
    );
    assert!(
        reply.head.contains("set-cookie: __host-pp_session="),
        "{}",
        reply.head
    );
    assert!(reply.head.contains("; secure"), "{}", reply.head);
    assert!(
        !reply.head.contains("strict-transport-security"),
        "HSTS in development"
    );
    stalled.push(garbage);
    stalled.push(half);
    for mut socket in stalled {
        let mut buf = [0u8; 512];
        let closed = tokio::time::timeout(Duration::from_secs(4), async {
            loop {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => continue,
                }
            }
        })
        .await;
        assert!(
            closed.is_ok(),
            "a stalled handshake was kept past the timeout"
        );
    }
    // And the gateway still serves.
    let version = https(&tls, &addr, "localhost", ("GET", "/version", &[], ""))
        .await
        .unwrap();
    assert_eq!(version.status, 200);
}

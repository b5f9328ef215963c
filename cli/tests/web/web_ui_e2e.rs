#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The web UI end to end in headless Chromium (issue #6, tests 1-5): a real Phirepass (authz,
//! registry, gateway-ws on NATS, Redis and PostgreSQL), a real agent and a real OpenSSH sshd;
//! the browser side is e2e/*.mjs (node:test + playwright-core driving /usr/bin/chromium).
//! The dashboard's "Your tunnels" and "Open port…" run against a real ssh-edge with an OpenSSH
//! `ssh -R` client and an agent exposing an allowed port; the gateway's public port is its own,
//! so the links it builds (`*.tunnel.localhost`, `*.apps.localhost`) reach it from Chromium.
//! Screenshots land in target/e2e-artifacts/.
//!
//! Needs Debian's `chromium` and `npm`; the e2e/ npm packages are installed (`npm ci`) when
//! missing.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::tunnels::{Publisher, http_server};
use common::{SshClient, nats_url, new_user_key, redis_url, wait_node_listed, workspace_bin};
use phirepass_proto::authz::authz_client::AuthzClient;
use phirepass_proto::authz::{AddUserKeyRequest, CreateNodeTokenRequest};
use phirepass_runtime::grpc::{AuthedChannel, ServiceToken, channel};
use phirepass_testkit::browser::login;
use phirepass_testkit::sshd::{TEST_PASSWORD, TEST_USER, TestSshd};
use phirepass_testkit::unique;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::Command;
use tokio::sync::watch;

const T: Duration = Duration::from_secs(30);
const ADMIN: (&str, &str) = ("root-admin", "admin-Password-1");
const USER: (&str, &str) = ("bob", "bob-Password-22");
const NODE: &str = "web-1";
const DEVICE_NODE: &str = "device-node";
const TUNNEL_NAME: &str = "bobsite";
const TUNNEL_TEXT: &str = "hello from bob's tunnel";
const APP_TEXT: &str = "hello from the app port";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// A fresh deployment with no users, like `common::Cluster`, but keeping the database handle to
/// issue the first-run setup code the way `phirepass dev` does (authz would only log it).
struct Deployment {
    gateway: String,
    /// ssh-edge's SSH address (`ssh -R` tunnels).
    edge: std::net::SocketAddr,
    stopped: watch::Receiver<bool>,
    /// Holds ssh-edge's host key.
    _dir: tempfile::TempDir,
    authz: AuthzClient<AuthedChannel>,
    setup_code: String,
    stop: watch::Sender<bool>,
}

impl Drop for Deployment {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

async fn deploy() -> Deployment {
    let _ = phirepass_runtime::telemetry::init("phirepass-tests");
    let token = ServiceToken::generate();
    let (stop, rx) = watch::channel(false);
    let stopper = || {
        let mut rx = rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let store = phirepass_store::Store::fresh_postgres_for_test()
        .await
        .expect("fresh postgres database");
    let setup_code = phirepass_authz::issue_setup_code(&store)
        .await
        .expect("issue setup code")
        .expect("a fresh database has no users");
    let presence = phirepass_presence::connect(Some(&redis_url()), &unique("t:"))
        .await
        .expect("redis");
    let bus = phirepass_bus::connect(Some(&nats_url()))
        .await
        .expect("nats");
    let authz_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let registry_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let gateway_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let secrets_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let secrets_url = format!("http://{}", secrets_listener.local_addr().expect("addr"));
    let authz_url = format!("http://{}", authz_listener.local_addr().expect("addr"));
    let registry_url = format!("http://{}", registry_listener.local_addr().expect("addr"));
    let gateway_addr = gateway_listener.local_addr().expect("addr");
    let gateway = gateway_addr.to_string();
    tokio::spawn(phirepass_secrets::serve(
        phirepass_secrets::SecretsConfig::new(
            token.clone(),
            phirepass_secrets::KeySource::Raw(phirepass_secrets::MasterKey::generate()),
        ),
        secrets_listener,
        phirepass_secrets::SecretsDeps::new(store.clone()),
        stopper(),
    ));
    let mut authz_config = phirepass_authz::AuthzConfig::new(token.clone());
    authz_config.issue_setup_code = false;
    tokio::spawn(phirepass_authz::serve(
        authz_config,
        authz_listener,
        phirepass_authz::AuthzDeps::new(store, presence.clone()),
        stopper(),
    ));
    tokio::spawn(phirepass_registry::serve(
        phirepass_registry::RegistryConfig::new(token.clone()),
        registry_listener,
        phirepass_registry::RegistryDeps {
            presence,
            bus: None,
        },
        stopper(),
    ));
    let prefix = unique("t");
    let mut config = phirepass_gateway_ws::GatewayConfig::local(
        authz_url.clone(),
        registry_url.clone(),
        token.clone(),
    );
    config.subject_prefix = prefix.clone();
    // URLs the gateway builds (tunnel links, app redirects) point back at this very gateway.
    config.proxy.public_port = Some(gateway_addr.port());
    tokio::spawn(phirepass_gateway_ws::serve(
        config,
        gateway_listener,
        phirepass_gateway_ws::GatewayDeps { bus },
        stopper(),
    ));
    let ssh = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let health = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let edge = ssh.local_addr().expect("addr");
    let dir = tempfile::tempdir().expect("tempdir");
    let host_key = dir.path().join("edge_host_key");
    let mut edge_config = phirepass_ssh_edge::SshEdgeConfig::local(
        authz_url.clone(),
        secrets_url,
        registry_url,
        token.clone(),
        phirepass_ssh_edge::HostKeySource::File(host_key),
    );
    edge_config.ssh_addr = edge;
    edge_config.subject_prefix = prefix.clone();
    edge_config.audit_subject = format!("{prefix}.events.audit");
    edge_config.tunnel_url = format!("http://{{name}}.tunnel.localhost:{}", gateway_addr.port());
    tokio::spawn(phirepass_ssh_edge::serve(
        edge_config,
        phirepass_ssh_edge::SshEdgeListeners { health, ssh },
        phirepass_ssh_edge::SshEdgeDeps {
            bus: phirepass_bus::connect(Some(&nats_url()))
                .await
                .expect("nats"),
            events: std::sync::Arc::new(phirepass_bus::MemoryEventLog::new()),
        },
        stopper(),
    ));
    Deployment {
        gateway,
        edge,
        stopped: rx.clone(),
        _dir: dir,
        authz: AuthzClient::new(channel(&authz_url, token).expect("channel")),
        setup_code,
        stop,
    }
}

/// An in-process agent for the terminal node that also exposes `app_port` (ALLOWED_PORTS); it
/// stops with the deployment.
fn start_agent_with_app(
    deployment: &Deployment,
    token: &str,
    ssh: std::net::SocketAddr,
    app_port: u16,
) -> tokio::task::JoinHandle<Result<(), phirepass_agent::AgentError>> {
    let url = format!("ws://{}/api/nodes/ws", deployment.gateway);
    let config = phirepass_agent::AgentConfig::from_lookup(|key| match key {
        "SERVER_URL" => Some(url.clone()),
        "SSH_HOST" => Some(ssh.ip().to_string()),
        "SSH_PORT" => Some(ssh.port().to_string()),
        "PORT" => Some("0".into()),
        "ALLOWED_PORTS" => Some(app_port.to_string()),
        _ => None,
    })
    .expect("agent config");
    let mut rx = deployment.stopped.clone();
    tokio::spawn(phirepass_agent::run(
        config,
        token.to_string(),
        async move {
            let _ = rx.wait_for(|s| *s).await;
        },
    ))
}

/// Chromium and the e2e npm packages, or a clear reason why not.
async fn prerequisites() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "{chromium} not found: install Debian's chromium (apt-get install chromium; scripts/test does)"
    );
    let e2e = repo().join("e2e");
    if !e2e.join("node_modules/playwright-core").exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&e2e)
            .status()
            .await
            .expect("npm not found: install nodejs and npm");
        assert!(status.success(), "npm ci in e2e/ failed");
    }
}

/// Runs one browser suite; its output is shown, and a failure fails the test.
fn suite(name: &str, gateway: &str, vars: &[(&str, &str)]) -> Command {
    let root = repo();
    let mut cmd = Command::new("node");
    cmd.arg(root.join("e2e").join(name))
        .current_dir(&root)
        .env("PHIREPASS_URL", format!("http://{gateway}"))
        .env("E2E_ARTIFACTS", root.join("target/e2e-artifacts"))
        .env("ADMIN_USER", ADMIN.0)
        .env("ADMIN_PASSWORD", ADMIN.1)
        .env("USER_NAME", USER.0)
        .env("USER_PASSWORD", USER.1)
        .env("NODE", NODE)
        .kill_on_drop(true);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd
}

async fn run_suite(name: &str, gateway: &str, vars: &[(&str, &str)]) {
    let status = tokio::time::timeout(
        Duration::from_secs(180),
        suite(name, gateway, vars).status(),
    )
    .await
    .unwrap_or_else(|_| panic!("e2e/{name} timed out"))
    .expect("run node");
    assert!(
        status.success(),
        "e2e/{name} failed (screenshots in target/e2e-artifacts)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn web_ui_in_chromium() {
    prerequisites().await;
    let deployment = deploy().await;
    let gateway = deployment.gateway.clone();

    // 1. First run.
    run_suite(
        "setup.mjs",
        &gateway,
        &[("SETUP_CODE", &deployment.setup_code)],
    )
    .await;

    // 4. Invitations (creates bob, who uses the terminal next).
    run_suite("invitations.mjs", &gateway, &[]).await;

    // 2 + 3. Bob's node behind a real agent and sshd; terminal, resize, password, kick.
    let sshd = TestSshd::start().await.expect("sshd");
    let token = deployment
        .authz
        .clone()
        .create_node_token(CreateNodeTokenRequest {
            username: USER.0.into(),
            node_name: NODE.into(),
            expires_in_secs: None,
        })
        .await
        .expect("node token")
        .into_inner()
        .token;
    let app_port = http_server(APP_TEXT).await;
    let _agent = start_agent_with_app(&deployment, &token, sshd.addr, app_port);
    let session = login(&gateway, USER.0, USER.1).await.expect("login");
    assert!(
        wait_node_listed(&gateway, &session, NODE, true, T).await,
        "node never came online"
    );
    run_suite(
        "terminal.mjs",
        &gateway,
        &[("SSH_USER", TEST_USER), ("SSH_PASSWORD", TEST_PASSWORD)],
    )
    .await;

    // 6. Bob's tunnels and the node's "Open port…": bob publishes `bobsite` with `ssh -R`.
    let keys = tempfile::tempdir().expect("tempdir");
    let (key, public_key) = new_user_key(keys.path(), USER.0);
    deployment
        .authz
        .clone()
        .add_user_key(AddUserKeyRequest {
            username: USER.0.into(),
            public_key,
        })
        .await
        .expect("add bob's key");
    let site = http_server(TUNNEL_TEXT).await;
    let spec = format!("{TUNNEL_NAME}:80:127.0.0.1:{site}");
    let mut publisher = Publisher::start(
        SshClient::with_key(deployment.edge.port(), &key),
        USER.0,
        &[&spec],
        &[],
        false,
    );
    let app_port = app_port.to_string();
    run_suite(
        "tunnels.mjs",
        &gateway,
        &[
            ("TUNNEL_NAME", TUNNEL_NAME),
            ("TUNNEL_TEXT", TUNNEL_TEXT),
            ("APP_PORT", &app_port),
            ("APP_TEXT", APP_TEXT),
        ],
    )
    .await;
    assert!(publisher.running(), "ssh -R exited: {}", publisher.stderr());

    // 5. Device activation: the agent binary waits while bob approves it in the browser.
    let dir = tempfile::tempdir().expect("tempdir");
    let token_file = dir.path().join("agent.token");
    let mut device = Command::new(workspace_bin("phirepass-agent"))
        .args(["login", "--device", "--gateway"])
        .arg(format!("http://{gateway}"))
        .arg("--token-file")
        .arg(&token_file)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("phirepass-agent login --device (build it: cargo build -p phirepass-agent)");
    let mut lines = BufReader::new(device.stdout.take().expect("stdout")).lines();
    let user_code = tokio::time::timeout(T, async {
        while let Some(line) = lines.next_line().await.expect("agent output") {
            if let Some(code) = line.strip_prefix("and enter the code: ") {
                return code.trim().to_string();
            }
        }
        panic!("the agent exited without printing a code");
    })
    .await
    .expect("device code printed");
    assert!(!token_file.exists(), "no token before approval");
    let mut browser = suite(
        "activate.mjs",
        &gateway,
        &[("DEVICE_CODE", &user_code), ("DEVICE_NODE", DEVICE_NODE)],
    )
    .spawn()
    .expect("node");
    let status = tokio::time::timeout(Duration::from_secs(60), device.wait())
        .await
        .expect("the waiting agent never got its token")
        .expect("agent login");
    assert!(status.success(), "agent login --device failed");
    let stored = std::fs::read_to_string(&token_file).expect("token file");
    assert!(
        stored.starts_with("pp_node_"),
        "stored token has the node token shape"
    );
    let _device_agent = Command::new(workspace_bin("phirepass-agent"))
        .arg("start")
        .arg("--token-file")
        .arg(&token_file)
        .env_remove("PAT_TOKEN")
        .env("SERVER_URL", format!("ws://{gateway}/api/nodes/ws"))
        .env("SSH_HOST", sshd.addr.ip().to_string())
        .env("SSH_PORT", sshd.addr.port().to_string())
        .env("PORT", "0")
        .kill_on_drop(true)
        .spawn()
        .expect("agent start");
    assert!(
        wait_node_listed(&gateway, &session, DEVICE_NODE, true, T).await,
        "the activated node never came online"
    );
    let status = tokio::time::timeout(Duration::from_secs(120), browser.wait())
        .await
        .expect("activate.mjs timed out")
        .expect("node");
    assert!(status.success(), "e2e/activate.mjs failed");
}

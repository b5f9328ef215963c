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

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::common::tunnels::{Publisher, http_server};
use crate::common::{
    Backend, Cluster, Layout, SshClient, agent_config_with_ports, new_user_key, start_agent_with,
    wait_node_listed, workspace_bin,
};
use phirepass_proto::authz::{AddUserKeyRequest, CreateNodeTokenRequest};
use phirepass_testkit::browser::login;
use phirepass_testkit::sshd::{TEST_PASSWORD, TEST_USER, TestSshd};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const T: Duration = Duration::from_secs(30);
const ADMIN: (&str, &str) = ("root-admin", "admin-Password-1");
const USER: (&str, &str) = ("bob", "bob-Password-22");
const NODE: &str = "web-1";
/// Bob's node whose agent never runs.
const OFFLINE_NODE: &str = "offline-1";
/// Bob's node whose agent finds no sshd (and allows no port).
const NOSSH_NODE: &str = "nossh-1";
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

/// A fresh deployment with no users on NATS, Redis and PostgreSQL, with the first-run setup
/// code issued the way `phirepass dev` does (authz would only log it), and an ssh-edge whose
/// tunnel links point at the gateway.
struct Deployment {
    cluster: Cluster,
    gateway: String,
    /// ssh-edge's SSH address (`ssh -R` tunnels).
    edge: std::net::SocketAddr,
    /// Holds ssh-edge's host key.
    _dir: tempfile::TempDir,
    setup_code: String,
}

async fn deploy() -> Deployment {
    let layout = Layout {
        setup_code: true,
        ..Layout::new(Backend::Real, 1)
    };
    // URLs the gateway builds (tunnel links, app redirects) point back at this very gateway.
    let cluster = Cluster::start_layout(layout, |config, local| {
        config.proxy.public_port = Some(local.port());
    })
    .await;
    let gateway = cluster.gateways[0].addr.clone();
    let port = gateway.rsplit(':').next().expect("port").to_owned();
    let dir = tempfile::tempdir().expect("tempdir");
    let edge = cluster
        .start_ssh_edge(&dir.path().join("edge_host_key"), |config| {
            config.tunnel_url = format!("http://{{name}}.tunnel.localhost:{port}");
        })
        .await
        .addr;
    let setup_code = cluster
        .setup_code
        .clone()
        .expect("a fresh database has no users");
    Deployment {
        cluster,
        gateway,
        edge,
        _dir: dir,
        setup_code,
    }
}

/// A token for bob's node `name` (creating the node).
async fn node_token(deployment: &Deployment, name: &str) -> String {
    deployment
        .cluster
        .authz()
        .create_node_token(CreateNodeTokenRequest {
            username: USER.0.into(),
            node_name: name.into(),
            expires_in_secs: None,
            rotate: false,
        })
        .await
        .expect("node token")
        .into_inner()
        .token
}

/// Chromium and the e2e npm packages, or a clear reason why not.
pub(crate) async fn prerequisites() {
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
        .env("OFFLINE_NODE", OFFLINE_NODE)
        .env("NOSSH_NODE", NOSSH_NODE)
        .kill_on_drop(true);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd
}

pub(crate) async fn run_suite(name: &str, gateway: &str, vars: &[(&str, &str)]) {
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
    let token = node_token(&deployment, NODE).await;
    // And two that cannot give a shell: one never connects, one has no sshd behind its agent
    // (port 1 refuses at once).
    node_token(&deployment, OFFLINE_NODE).await;
    let no_sshd = SocketAddr::from(([127, 0, 0, 1], 1));
    let _nossh_agent = start_agent_with(
        agent_config_with_ports(&gateway, no_sshd, &[]),
        &node_token(&deployment, NOSSH_NODE).await,
    );
    let app_port = http_server(APP_TEXT).await;
    // The terminal's node also exposes the app port (ALLOWED_PORTS).
    let config = agent_config_with_ports(&gateway, sshd.addr, &[app_port]);
    let _agent = start_agent_with(config, &token);
    let session = login(&gateway, USER.0, USER.1).await.expect("login");
    assert!(
        wait_node_listed(&gateway, &session, NODE, true, T).await,
        "node never came online"
    );
    assert!(
        wait_node_listed(&gateway, &session, NOSSH_NODE, true, T).await,
        "the node without sshd never came online"
    );
    let ssh_login = [("SSH_USER", TEST_USER), ("SSH_PASSWORD", TEST_PASSWORD)];
    run_suite("terminal.mjs", &gateway, &ssh_login).await;

    // Issue #19: the node is checked before a password is asked, underscores are drawn; login
    // errors, page icons, an admin's empty nodes page.
    run_suite("terminal_checks.mjs", &gateway, &ssh_login).await;
    run_suite("first_hour.mjs", &gateway, &[]).await;
    // Issue #14 finding 3: `next` after login never leaves the site.
    run_suite("login_redirects.mjs", &gateway, &[]).await;

    // 6. Bob's tunnels and the node's "Open port…": bob publishes `bobsite` with `ssh -R`.
    let keys = tempfile::tempdir().expect("tempdir");
    let (key, public_key) = new_user_key(keys.path(), USER.0);
    deployment
        .cluster
        .authz()
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
    // Longer than the agent's wait: the suite goes on to the phishing checks (issue #9 finding 5).
    let status = tokio::time::timeout(Duration::from_secs(240), browser.wait())
        .await
        .expect("activate.mjs timed out")
        .expect("node");
    assert!(status.success(), "e2e/activate.mjs failed");
}

#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The web UI end to end in headless Chromium (issue #6, tests 1-5): a real Phirepass (authz,
//! registry, gateway-ws on NATS, Redis and PostgreSQL), a real agent and a real OpenSSH sshd;
//! the browser side is e2e/*.mjs (node:test + playwright-core driving /usr/bin/chromium).
//! Screenshots land in target/e2e-artifacts/.
//!
//! Needs Debian's `chromium` and `npm`; the e2e/ npm packages are installed (`npm ci`) when
//! missing.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::{Backend, Cluster, start_agent, wait_node_listed, workspace_bin};
use phirepass_testkit::browser::login;
use phirepass_testkit::sshd::{TEST_PASSWORD, TEST_USER, TestSshd};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const T: Duration = Duration::from_secs(30);
const ADMIN: (&str, &str) = ("root-admin", "admin-Password-1");
const USER: (&str, &str) = ("bob", "bob-Password-22");
const NODE: &str = "web-1";
const DEVICE_NODE: &str = "device-node";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
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
    let cluster = Cluster::start(Backend::Real, 1).await;
    let gateway = cluster.gateways[0].addr.clone();
    let code = setup_code(&cluster).await;

    // 1. First run.
    run_suite("setup.mjs", &gateway, &[("SETUP_CODE", &code)]).await;

    // 4. Invitations (creates bob, who uses the terminal next).
    run_suite("invitations.mjs", &gateway, &[]).await;

    // 2 + 3. Bob's node behind a real agent and sshd; terminal, resize, password, kick.
    let sshd = TestSshd::start().await.expect("sshd");
    let (token, _) = cluster.node_token(USER.0, NODE).await;
    let _agent = start_agent(&gateway, &token, sshd.addr);
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

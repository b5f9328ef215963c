//! The `phirepass-agent` binary: login modes, token file modes, and the
//! container recipe against a stand-in gateway that rejects the token.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use phirepass_tunnel::NodeControl;

use crate::TOKEN;
use crate::gateway::{accept, expect, send};

const BIN: &str = env!("CARGO_BIN_EXE_phirepass-agent");

/// The agent with a clean environment (no inherited token settings).
fn agent(home: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("HOME", home)
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PORT", "0")
        .stdin(Stdio::null());
    cmd
}

fn with_stdin(mut cmd: Command, input: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn login_from_stdin_writes_0600_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("conf/phirepass/agent.token");
    let mut cmd = agent(dir.path());
    cmd.args(["login", "--from-stdin", "--token-file"])
        .arg(&file);
    let out = with_stdin(cmd, &format!("{TOKEN}\n"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), TOKEN);
    assert_eq!(mode(&file), 0o600);
    assert_eq!(mode(&dir.path().join("conf/phirepass")), 0o700);
}

#[test]
fn login_defaults_to_xdg_then_home() {
    let dir = tempfile::tempdir().unwrap();
    let out = with_stdin(
        {
            let mut cmd = agent(dir.path());
            cmd.env("XDG_CONFIG_HOME", dir.path().join("xdg"))
                .args(["login", "--from-stdin"]);
            cmd
        },
        TOKEN,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(mode(&dir.path().join("xdg/phirepass/agent.token")), 0o600);

    let out = with_stdin(
        {
            let mut cmd = agent(dir.path());
            cmd.args(["login", "--from-stdin"]);
            cmd
        },
        TOKEN,
    );
    assert!(out.status.success());
    assert_eq!(
        mode(&dir.path().join(".config/phirepass/agent.token")),
        0o600
    );
}

#[test]
fn login_from_file_honours_the_env_location() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, format!("{TOKEN}\n")).unwrap();
    let target = dir.path().join("env/agent.token");
    let out = agent(dir.path())
        .env("PHIREPASS_AGENT_TOKEN_FILE", &target)
        .args(["login", "--from-file"])
        .arg(&secret)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(&target).unwrap().trim(), TOKEN);
    assert_eq!(mode(&target), 0o600);
}

#[test]
fn login_rejects_malformed_tokens_without_echoing_them() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("agent.token");
    let mut cmd = agent(dir.path());
    cmd.args(["login", "--from-stdin", "--token-file"])
        .arg(&file);
    let bad = "pp_node_not-really-a-token-secretvalue";
    let out = with_stdin(cmd, bad);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("pp_node_<16 hex>_<64 hex>"), "{stderr}");
    assert!(!stderr.contains("secretvalue"), "{stderr}");
    assert!(!file.exists());
}

#[test]
fn interactive_login_without_a_terminal_explains_the_options() {
    let dir = tempfile::tempdir().unwrap();
    let out = agent(dir.path()).arg("login").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--from-stdin"));
}

#[test]
fn start_without_a_token_says_to_login() {
    let dir = tempfile::tempdir().unwrap();
    let out = agent(dir.path()).arg("start").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("phirepass-agent login"));
}

#[test]
fn help_documents_token_locations() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "PHIREPASS_AGENT_TOKEN_FILE",
        "XDG_CONFIG_HOME",
        "0600",
        "--from-stdin",
    ] {
        assert!(help.contains(needle), "{needle} missing from:\n{help}");
    }
}

/// A gateway that reads Auth, checks the token and answers AuthFailed.
async fn rejecting_gateway(listener: tokio::net::TcpListener) -> String {
    let mut ws = accept(&listener).await;
    let NodeControl::Auth { token, .. } = expect(&mut ws, |_| true).await else {
        panic!("first message is not Auth")
    };
    let reply = NodeControl::AuthFailed {
        reason: "token revoked".to_owned(),
    };
    send(&mut ws, reply).await;
    let _ = ws.close(None).await;
    token
}

#[tokio::test]
async fn container_recipe_logs_in_then_exits_when_rejected() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/api/nodes/ws", listener.local_addr().unwrap());
    let gateway = tokio::spawn(rejecting_gateway(listener));

    let dir = tempfile::tempdir().unwrap();
    let bin_dir = Path::new(BIN).parent().unwrap().display().to_string();
    let path = format!("{bin_dir}:{}", std::env::var("PATH").unwrap_or_default());
    let out = tokio::process::Command::new("sh")
        .arg("-c")
        .arg("echo $AGENT_TOKEN | phirepass-agent login --from-stdin && phirepass-agent start")
        .env_clear()
        .env("PATH", path)
        .env("HOME", dir.path())
        .env("AGENT_TOKEN", TOKEN)
        .env("SERVER_URL", &url)
        .env("PORT", "")
        .stdin(Stdio::null())
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(30), out)
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "must exit non-zero: {stderr}");
    assert!(
        stderr.contains("rejected") && stderr.contains("token revoked"),
        "{stderr}"
    );
    assert!(!stderr.contains(TOKEN));
    assert_eq!(gateway.await.unwrap(), TOKEN);
}

/// `start --login-from-stdin` against a gateway that rejects the token: the exit, and the
/// gateway's task (which returns the token it received).
async fn start_login_from_stdin(
    home: &Path,
    input: Option<&str>,
) -> (Output, tokio::task::JoinHandle<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/api/nodes/ws", listener.local_addr().unwrap());
    let gateway = tokio::spawn(rejecting_gateway(listener));
    let mut cmd = agent(home);
    cmd.env("SERVER_URL", &url)
        .args(["start", "--login-from-stdin"]);
    let input = input.map(str::to_owned);
    let out = tokio::task::spawn_blocking(move || match input {
        Some(input) => with_stdin(cmd, &input),
        None => cmd.output().unwrap(),
    });
    let out = tokio::time::timeout(std::time::Duration::from_secs(30), out)
        .await
        .unwrap()
        .unwrap();
    (out, gateway)
}

async fn received(gateway: tokio::task::JoinHandle<String>) -> String {
    tokio::time::timeout(std::time::Duration::from_secs(10), gateway)
        .await
        .unwrap()
        .unwrap()
}

/// The image's command (deploy/Dockerfile.agent): the piped token is stored, then used; a
/// restart with nothing piped uses the stored one; a bad token stops before anything is dialled.
#[tokio::test]
async fn start_login_from_stdin_stores_then_starts_and_restarts_with_the_stored_token() {
    let dir = tempfile::tempdir().unwrap();
    let (out, gateway) = start_login_from_stdin(dir.path(), Some(&format!("{TOKEN}\n"))).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("token revoked"),
        "{stderr}"
    );
    assert!(!stderr.contains(TOKEN), "{stderr}");
    assert_eq!(received(gateway).await, TOKEN);
    let stored = dir.path().join(".config/phirepass/agent.token");
    assert_eq!(std::fs::read_to_string(&stored).unwrap().trim(), TOKEN);
    assert_eq!(mode(&stored), 0o600);

    let (out, gateway) = start_login_from_stdin(dir.path(), None).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no token on stdin: starting with the stored one"),
        "{stderr}"
    );
    assert_eq!(received(gateway).await, TOKEN);

    let fresh = tempfile::tempdir().unwrap();
    let (out, gateway) = start_login_from_stdin(fresh.path(), Some("pp_node_nope\n")).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("not a node token"),
        "{stderr}"
    );
    assert!(
        !gateway.is_finished(),
        "nothing may be dialled with a bad token"
    );
    gateway.abort();
    assert!(!fresh.path().join(".config/phirepass/agent.token").exists());
}

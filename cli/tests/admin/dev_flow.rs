//! `phirepass dev` on embedded defaults, driven as a user would: the admin CLI creates the user
//! and the node token, the agent logs in from stdin and starts, a browser opens a terminal.

use std::process::Stdio;
use std::time::Duration;

use crate::common::{NODE, wait_node_listed, workspace_bin};
use phirepass_gateway_ws::browser_protocol::{WebControl, WebFrame};
use phirepass_testkit::browser::{Browser, login};
use phirepass_testkit::sshd::{TEST_PASSWORD, TEST_USER, TestSshd};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

const T: Duration = Duration::from_secs(30);

/// Runs `phirepass` with the service env removed, so it uses the embedded defaults.
fn phirepass(data_dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(workspace_bin("phirepass"));
    for var in [
        "NATS_URL",
        "REDIS_URL",
        "DATABASE_URL",
        "PHIREPASS_SERVICE_TOKEN",
        "AUTHZ_URL",
        "HOST",
        "PORT",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("PHIREPASS_DATA_DIR", data_dir).kill_on_drop(true);
    cmd
}

async fn admin(data_dir: &std::path::Path, args: &[&str]) -> String {
    let out = phirepass(data_dir)
        .arg("admin")
        .args(args)
        .output()
        .await
        .expect("run phirepass admin");
    assert!(
        out.status.success(),
        "phirepass admin {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dev_embedded_end_to_end() {
    let data = tempfile::tempdir().expect("tempdir");
    let mut dev = phirepass(data.path())
        .args(["dev", "--port", "0"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start phirepass dev");
    let mut lines = BufReader::new(dev.stdout.take().expect("stdout")).lines();
    let gateway = tokio::time::timeout(T, async {
        while let Some(line) = lines.next_line().await.expect("read stdout") {
            if let Some(url) = line.strip_prefix("ready: gateway=http://") {
                return url.to_string();
            }
        }
        panic!("phirepass dev exited before it was ready");
    })
    .await
    .expect("phirepass dev ready");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    admin(
        data.path(),
        &[
            "user",
            "add",
            "--user",
            "alice",
            "--password",
            "alice-password",
        ],
    )
    .await;
    let listed = admin(data.path(), &["user", "list"]).await;
    assert!(listed.contains("alice"), "{listed}");
    let token = admin(
        data.path(),
        &["node", "token", "create", "--user", "alice", "--name", NODE],
    )
    .await;
    let token = token.trim().to_string();
    assert!(token.starts_with("pp_node_"), "{token}");

    let token_file = data.path().join("agent").join("agent.token");
    let mut login_cmd = Command::new(workspace_bin("phirepass-agent"))
        .args(["login", "--from-stdin"])
        .env("PHIREPASS_AGENT_TOKEN_FILE", &token_file)
        .env_remove("PAT_TOKEN")
        .stdin(Stdio::piped())
        .spawn()
        .expect("agent login");
    let mut stdin = login_cmd.stdin.take().expect("stdin");
    stdin
        .write_all(format!("{token}\n").as_bytes())
        .await
        .expect("write token");
    drop(stdin);
    assert!(
        login_cmd.wait().await.expect("login").success(),
        "agent login --from-stdin failed"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token_file)
            .expect("token file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the token file must be private");
    }

    let sshd = TestSshd::start().await.expect("sshd");
    let _agent = Command::new(workspace_bin("phirepass-agent"))
        .arg("start")
        .env("PHIREPASS_AGENT_TOKEN_FILE", &token_file)
        .env_remove("PAT_TOKEN")
        .env("SERVER_URL", format!("ws://{gateway}/api/nodes/ws"))
        .env("SSH_HOST", sshd.addr.ip().to_string())
        .env("SSH_PORT", sshd.addr.port().to_string())
        .env("PORT", "0")
        .kill_on_drop(true)
        .spawn()
        .expect("agent start");

    let session = login(&gateway, "alice", "alice-password")
        .await
        .expect("login");
    assert!(
        wait_node_listed(&gateway, &session, NODE, true, T).await,
        "node never came online"
    );
    let mut browser = Browser::connect(&gateway, &session).await.expect("ws");
    browser.control(T).await.expect("auth");
    let opened = browser
        .open_tunnel(NODE, TEST_USER, Some(TEST_PASSWORD))
        .await
        .expect("open");
    assert!(matches!(opened, WebControl::Ok { .. }), "{opened:?}");
    browser.type_text("echo $((6*7))\r").await.expect("type");
    browser.read_until("42\r\n", T).await.expect("42");
    browser
        .send(WebFrame::Control(WebControl::Resize { cols: 90, rows: 20 }))
        .await
        .expect("resize");
    browser.type_text("stty size\r").await.expect("type");
    browser.read_until("20 90", T).await.expect("stty size");
    browser.type_text("exit\r").await.expect("type");
    let (_, status) = browser.wait_closed(T).await.expect("TunnelClosed");
    assert_eq!(status, Some(0));
    let _ = dev.kill().await;
}

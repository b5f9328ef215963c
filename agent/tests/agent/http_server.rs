//! The local `/version` server: off by default, never started by the generic `HOST`/`PORT`
//! another program exported, and a bind failure that names the address and the fix.

use std::process::Stdio;
use std::time::Duration;

use phirepass_tunnel::NodeControl;

use crate::TOKEN;
use crate::gateway::{accept, bind, expect, send};

const BIN: &str = env!("CARGO_BIN_EXE_phirepass-agent");

/// `phirepass-agent start` with a clean environment plus `vars`.
fn start(url: &str, vars: &[(&str, &str)]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.arg("start")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PAT_TOKEN", TOKEN)
        .env("SERVER_URL", url)
        .envs(vars.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// A stand-in gateway that answers the first Auth with AuthFailed: the agent exits.
async fn reject_once(listener: tokio::net::TcpListener) {
    let mut ws = accept(&listener).await;
    expect(&mut ws, |c| matches!(c, NodeControl::Auth { .. })).await;
    let reason = "test over".to_owned();
    send(&mut ws, NodeControl::AuthFailed { reason }).await;
}

#[tokio::test]
async fn a_port_exported_for_another_program_is_not_bound() {
    // Something already listens on the port a `PORT` variable names (e.g. `phirepass dev`).
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let (listener, url) = bind().await;
    let gateway = tokio::spawn(reject_once(listener));
    let out = start(&url, &[("HOST", "127.0.0.1"), ("PORT", &port)]).output();
    let out = tokio::time::timeout(Duration::from_secs(30), out)
        .await
        .unwrap()
        .unwrap();
    // Logs go to stdout, the final error to stderr.
    let stderr = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // It reached the gateway (which ended the test by rejecting the token) instead of
    // failing to bind PORT, and it says the old variables no longer apply.
    tokio::time::timeout(Duration::from_secs(5), gateway)
        .await
        .expect("the agent dialled the gateway")
        .unwrap();
    assert!(stderr.contains("test over"), "{stderr}");
    assert!(!stderr.contains("cannot serve"), "{stderr}");
    assert!(
        stderr.contains("HOST and PORT no longer") && stderr.contains("AGENT_HTTP_ADDR"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_taken_http_addr_fails_naming_the_address_and_the_fix() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (_listener, url) = bind().await;
    let out = start(&url, &[("AGENT_HTTP_ADDR", &addr)]).output();
    let out = tokio::time::timeout(Duration::from_secs(30), out)
        .await
        .unwrap()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&addr), "the address is named: {stderr}");
    assert!(stderr.contains("AGENT_HTTP_ADDR"), "{stderr}");
    assert!(stderr.contains("already listens there"), "{stderr}");
}

#[tokio::test]
async fn the_version_server_answers_on_its_own_address() {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = free.local_addr().unwrap();
    drop(free);
    let (listener, url) = bind().await;
    let mut agent = start(&url, &[("AGENT_HTTP_ADDR", &addr.to_string())])
        .spawn()
        .unwrap();
    // Once the agent dials the gateway, its /version server is up.
    let _ws = accept(&listener).await;
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    tcp.write_all(b"GET /version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut reply = String::new();
    tcp.read_to_string(&mut reply).await.unwrap();
    assert!(reply.ends_with(phirepass_agent::VERSION), "{reply}");
    agent.kill().await.unwrap();
}

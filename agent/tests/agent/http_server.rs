//! The local HTTP server (`/healthz`, `/status`, `/version`): off by default, never started
//! by the generic `HOST`/`PORT` another program exported, a bind failure that names the
//! address and the fix; its answers over real TCP, and what it does with clients that send
//! garbage, too much, or too slowly.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use phirepass_agent::status_board::StatusBoard;
use phirepass_tunnel::NodeControl;
use phirepass_tunnel::command::{AgentStatus, CommandInfo, ParamInfo, ParamKind};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

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
    let reply = get(addr, "/version").await;
    assert!(reply.ends_with(phirepass_agent::VERSION), "{reply}");
    // Just started, no link yet: healthy within the start's grace period.
    let reply = get(addr, "/healthz").await;
    assert!(
        reply.starts_with("HTTP/1.1 200 ") && reply.ends_with("\r\n\r\nok"),
        "{reply}"
    );
    let status = json_body(&get(addr, "/status").await);
    assert_eq!(status["version"], phirepass_agent::VERSION);
    assert_eq!(status["pid"].as_u64(), agent.id().map(u64::from));
    assert_eq!(status["link"]["connected"], false);
    assert!(status["rss_bytes"].as_u64().unwrap() > 0, "{status}");
    agent.kill().await.unwrap();
}

/// Sends `request` as is and reads the whole answer (the server closes after one).
async fn exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request).await.unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut reply))
        .await
        .expect("the server answers and closes")
        .unwrap();
    String::from_utf8(reply).unwrap()
}

async fn get(addr: SocketAddr, path: &str) -> String {
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    exchange(addr, request.as_bytes()).await
}

fn json_body(reply: &str) -> serde_json::Value {
    let (head, body) = reply.split_once("\r\n\r\n").unwrap();
    assert!(head.contains("Content-Type: application/json"), "{head}");
    serde_json::from_str(body).unwrap()
}

/// Serves `board` on a fresh loopback port, as `start` does with AGENT_HTTP_ADDR.
async fn serve(board: StatusBoard) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(phirepass_agent::http::serve(listener, board));
    addr
}

fn now_ms() -> u64 {
    u64::try_from(phirepass_runtime::clock::now_millis()).unwrap()
}

/// A board as the agent fills it: one declared command with a parameter, plus `health`.
fn board(started_at: u64) -> StatusBoard {
    let restart = CommandInfo {
        name: "restart_app".to_owned(),
        description: "restart the app".to_owned(),
        builtin: false,
        params: vec![ParamInfo {
            name: "mode".to_owned(),
            kind: ParamKind::Enum {
                values: vec!["soft".to_owned(), "hard".to_owned()],
            },
            required: true,
            secret: false,
            default: None,
            description: String::new(),
        }],
        timeout_secs: 30,
        output_limit_bytes: 65536,
    };
    let mut commands = vec![restart];
    commands.extend(phirepass_agent::builtin::manifest(&Default::default()));
    StatusBoard::new(AgentStatus {
        version: phirepass_agent::VERSION.to_owned(),
        started_at,
        commands,
        config_path: "/etc/phirepass/agent.toml".to_owned(),
    })
}

#[tokio::test]
async fn healthz_follows_the_link() {
    // Started long ago and never connected: 503 with the reason.
    let board = board(now_ms() - 600_000);
    let addr = serve(board.clone()).await;
    let reply = get(addr, "/healthz").await;
    assert!(reply.starts_with("HTTP/1.1 503 "), "{reply}");
    let body = json_body(&reply);
    assert_eq!(body["status"], "unhealthy");
    assert!(
        body["reason"]
            .as_str()
            .unwrap()
            .contains("not connected to a gateway since the start"),
        "{body}"
    );
    // Connected: 200 ok.
    board.connected("node-1", "web-1", "wss://gw.example/api/nodes/ws", now_ms());
    let reply = get(addr, "/healthz").await;
    assert!(
        reply.starts_with("HTTP/1.1 200 ") && reply.ends_with("\r\n\r\nok"),
        "{reply}"
    );
    assert!(reply.contains("Connection: close"), "{reply}");
    // The link just dropped: still 200 while it reconnects.
    board.disconnected("gateway closed the connection");
    let reply = get(addr, "/healthz").await;
    assert!(reply.starts_with("HTTP/1.1 200 "), "{reply}");
}

#[tokio::test]
async fn status_reports_the_agent_its_link_and_its_commands() {
    let started = now_ms() - 5_000;
    let board = board(started);
    board.connected("node-1", "web-1", "wss://gw.example/api/nodes/ws", now_ms());
    board.heartbeat_sent(now_ms());
    let status = json_body(&get(serve(board).await, "/status").await);
    assert_eq!(status["version"], phirepass_agent::VERSION);
    assert_eq!(status["pid"].as_u64(), Some(u64::from(std::process::id())));
    assert_eq!(status["started_at"].as_u64(), Some(started));
    assert!(
        (5..60).contains(&status["uptime_secs"].as_u64().unwrap()),
        "{status}"
    );
    assert!(status["rss_bytes"].as_u64().unwrap() > 0);
    assert_eq!(status["config_path"], "/etc/phirepass/agent.toml");
    let link = &status["link"];
    assert_eq!(link["connected"], true);
    assert_eq!(link["node_id"], "node-1");
    assert_eq!(link["node_name"], "web-1");
    assert_eq!(link["gateway_url"], "wss://gw.example/api/nodes/ws");
    assert!(link["last_heartbeat_at"].as_u64().unwrap() > 0, "{link}");
    let commands = status["commands"].as_array().unwrap();
    assert_eq!(commands[0]["name"], "restart_app");
    assert_eq!(commands[0]["params"][0]["type"], "enum");
    assert!(
        commands
            .iter()
            .any(|c| c["name"] == "health" && c["builtin"] == true),
        "{status}"
    );
}

#[tokio::test]
async fn bad_requests_get_plain_http_errors() {
    let addr = serve(board(now_ms())).await;
    let reply = exchange(addr, b"HELLO\r\n\r\n").await;
    assert!(reply.starts_with("HTTP/1.1 400 "), "{reply}");
    let reply = exchange(addr, b"GET /status SPDY/3\r\n\r\n").await;
    assert!(reply.starts_with("HTTP/1.1 400 "), "{reply}");
    let reply = exchange(addr, b"\xff\xfe GET\r\n\r\n").await;
    assert!(reply.starts_with("HTTP/1.1 400 "), "{reply}");
    let reply = get(addr, "/admin").await;
    assert!(reply.starts_with("HTTP/1.1 404 "), "{reply}");
    let reply = exchange(addr, b"POST /status HTTP/1.1\r\nContent-Length: 0\r\n\r\n").await;
    assert!(
        reply.starts_with("HTTP/1.1 405 ") && reply.contains("Allow: GET"),
        "{reply}"
    );
    // A query string does not change the route.
    let reply = get(addr, "/healthz?verbose=1").await;
    assert!(reply.starts_with("HTTP/1.1 200 "), "{reply}");
    // A client that closes before its head ends gets a 400, not a hung task.
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET /status HTTP/1.1\r\n").await.unwrap();
    tcp.shutdown().await.unwrap();
    let mut reply = String::new();
    tokio::time::timeout(Duration::from_secs(2), tcp.read_to_string(&mut reply))
        .await
        .expect("answered at once")
        .unwrap();
    assert!(reply.starts_with("HTTP/1.1 400 "), "{reply}");
}

#[tokio::test]
async fn an_oversized_head_is_refused_unread() {
    let addr = serve(board(now_ms())).await;
    let mut request = b"GET /status HTTP/1.1\r\nX-Padding: ".to_vec();
    request.extend(std::iter::repeat_n(b'a', 64 * 1024));
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    // The server stops reading after 8 KiB: the rest of the write may fail, which is fine.
    let _ = tcp.write_all(&request).await;
    let mut reply = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut reply)).await;
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 431 "), "{reply}");
}

#[tokio::test]
async fn a_slow_client_times_out_without_holding_up_others() {
    let addr = serve(board(now_ms())).await;
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /status HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // Others are served meanwhile.
    let reply = get(addr, "/version").await;
    assert!(reply.ends_with(phirepass_agent::VERSION), "{reply}");
    let started = std::time::Instant::now();
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), slow.read_to_end(&mut reply))
        .await
        .expect("the server gives up on the slow client")
        .unwrap();
    let waited = started.elapsed();
    let reply = String::from_utf8(reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 408 "), "{reply}");
    assert!(
        waited >= Duration::from_secs(4) && waited < Duration::from_secs(7),
        "{waited:?}"
    );
}

//! What the agent reports and how a node is held: a second agent with the same token is
//! refused (from where, since when) while the first stays connected; `/api/targets` shows the
//! ports an agent allows, whether its SSH server answers, and no CPU figure before it has one.

use std::process::Stdio;
use std::time::Duration;

use crate::common::{
    Backend, Cluster, NODE, start_agent, start_agent_with, wait_node_listed, workspace_bin,
};
use phirepass_proto::registry::GetNodeRequest;
use phirepass_testkit::browser::{http, login};
use phirepass_testkit::sshd::TestSshd;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt as _, BufReader};

const T: Duration = Duration::from_secs(20);

/// `phirepass-agent start` with `token` against `gateway`; its log (stdout) is read by lines.
fn agent_process(gateway: &str, token: &str, ssh: std::net::SocketAddr) -> tokio::process::Child {
    tokio::process::Command::new(workspace_bin("phirepass-agent"))
        .arg("start")
        .env("PAT_TOKEN", token)
        .env("SERVER_URL", format!("ws://{gateway}/api/nodes/ws"))
        .env("SSH_HOST", ssh.ip().to_string())
        .env("SSH_PORT", ssh.port().to_string())
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("phirepass-agent (build it: cargo build -p phirepass-agent)")
}

/// Lines of `child`'s log containing `needle`, read for `window`.
async fn lines_with(
    child: &mut tokio::process::Child,
    needle: &str,
    window: Duration,
) -> Vec<String> {
    let stdout = child.stdout.as_mut().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut found = Vec::new();
    let _ = tokio::time::timeout(window, async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains(needle) {
                found.push(line);
            }
        }
    })
    .await;
    found
}

async fn holder_gateway(cluster: &Cluster, node_id: &str) -> String {
    let node = cluster
        .registry()
        .get_node(GetNodeRequest {
            node_id: node_id.into(),
        })
        .await
        .expect("node online")
        .into_inner();
    node.gateway_id
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_agent_with_the_same_token_is_refused_and_the_first_stays() {
    let cluster = Cluster::start(Backend::Real, 2).await;
    let (gw0, gw1) = (&cluster.gateways[0], &cluster.gateways[1]);
    cluster.add_user("alice", "alice-password").await;
    let (token, _) = cluster.node_token("alice", NODE).await;
    let sshd = TestSshd::start().await.expect("sshd");
    let first = start_agent(&gw0.addr, &token, sshd.addr);
    cluster.wait_node_online(NODE).await;
    let session = login(&gw0.addr, "alice", "alice-password")
        .await
        .expect("login");
    let node_id = node_id(&gw0.addr, &session).await;

    // Through the same gateway and through another one: refused, with where and since when.
    for gateway in [&gw0.addr, &gw1.addr] {
        let mut second = agent_process(gateway, &token, sshd.addr);
        let refused = lines_with(
            &mut second,
            "already connected from",
            Duration::from_secs(6),
        )
        .await;
        assert_eq!(
            refused.len(),
            1,
            "one refusal, then a long wait (not a hot loop): {refused:?}"
        );
        let line = &refused[0];
        assert!(
            line.contains("127.0.0.1:") && line.contains("since") && line.contains("UTC"),
            "{line}"
        );
        assert!(line.contains("retries every 60 s"), "{line}");
        second.kill().await.expect("kill");
    }
    // The first agent never noticed: still running, still the holder, still listed.
    assert!(!first.task.is_finished(), "the first agent was dropped");
    assert_eq!(holder_gateway(&cluster, &node_id).await, gw0.id);
    assert!(wait_node_listed(&gw0.addr, &session, NODE, true, T).await);
}

async fn node_id(gateway: &str, session: &str) -> String {
    let targets = targets(gateway, session).await;
    node(&targets, NODE)["node_id"]
        .as_str()
        .expect("node id")
        .to_owned()
}

async fn targets(gateway: &str, session: &str) -> Value {
    let auth = format!("Bearer {session}");
    let reply = http(
        gateway,
        "GET",
        "/api/targets",
        &[("authorization", &auth)],
        "",
    )
    .await
    .expect("GET /api/targets");
    assert_eq!(reply.status, 200, "{}", reply.body);
    serde_json::from_str(&reply.body).expect("json")
}

fn node<'a>(targets: &'a Value, name: &str) -> &'a Value {
    targets["nodes"]
        .as_array()
        .and_then(|nodes| nodes.iter().find(|n| n["name"] == name))
        .unwrap_or_else(|| panic!("{name} not in {targets}"))
}

/// Polls `/api/targets` until `ready` accepts the node's stats; returns every stats seen.
async fn stats_until(
    gateway: &str,
    session: &str,
    name: &str,
    ready: impl Fn(&Value) -> bool,
) -> Vec<Value> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + T;
    while tokio::time::Instant::now() < deadline {
        let stats = node(&targets(gateway, session).await, name)["stats"].clone();
        if !stats.is_null() {
            seen.push(stats.clone());
            if ready(&stats) {
                return seen;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{name}: stats never ready: {seen:?}");
}

fn agent_config(
    gateway: &str,
    ssh: std::net::SocketAddr,
    ports: &str,
) -> phirepass_agent::AgentConfig {
    let url = format!("ws://{gateway}/api/nodes/ws");
    phirepass_agent::AgentConfig::from_lookup(|key| match key {
        "SERVER_URL" => Some(url.clone()),
        "SSH_HOST" => Some(ssh.ip().to_string()),
        "SSH_PORT" => Some(ssh.port().to_string()),
        "ALLOWED_PORTS" => Some(ports.to_owned()),
        "STATS_REFRESH_INTERVAL" => Some("2".into()),
        _ => None,
    })
    .expect("agent config")
}

#[tokio::test(flavor = "multi_thread")]
async fn targets_show_allowed_ports_ssh_reachability_and_no_cpu_before_two_samples() {
    let cluster = Cluster::start(Backend::Real, 1).await;
    let gw = &cluster.gateways[0].addr;
    cluster.add_user("alice", "alice-password").await;
    let (with_ssh, _) = cluster.node_token("alice", "web-1").await;
    let (without_ssh, _) = cluster.node_token("alice", "web-2").await;
    let sshd = TestSshd::start().await.expect("sshd");
    let closed = {
        let free = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        free.local_addr().expect("addr")
    };
    let session = login(gw, "alice", "alice-password").await.expect("login");
    let _a = start_agent_with(agent_config(gw, sshd.addr, "9090,8080"), &with_ssh);

    let seen = stats_until(gw, &session, "web-1", |s| s["cpu_percent"].is_number()).await;
    // The first heartbeat has no CPU figure (one sample), not a made-up 0 %.
    assert!(seen[0]["cpu_percent"].is_null(), "{seen:?}");
    let last = seen.last().expect("stats");
    assert_eq!(
        last["allowed_ports"],
        serde_json::json!([8080, 9090]),
        "{last}"
    );
    assert_eq!(last["ssh_reachable"], true, "{last}");

    let _b = start_agent_with(agent_config(gw, closed, ""), &without_ssh);
    let seen = stats_until(gw, &session, "web-2", |s| s["ssh_reachable"] == false).await;
    let last = seen.last().expect("stats");
    assert_eq!(last["allowed_ports"], serde_json::json!([]), "{last}");
}

/// A bare agent link: authenticates with `token` and answers what the gateway said first.
async fn raw_link(
    gateway: &str,
    token: &str,
    instance: &str,
) -> (
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    phirepass_tunnel::NodeControl,
) {
    use futures_util::{SinkExt as _, StreamExt as _};
    use phirepass_tunnel::{LinkMessage, NodeControl};
    use tokio_tungstenite::tungstenite::Message;
    let url = format!("ws://{gateway}/api/nodes/ws");
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("dial gateway");
    let auth = NodeControl::Auth {
        token: token.into(),
        version: "test".into(),
        instance: instance.into(),
    };
    ws.send(Message::Binary(LinkMessage::Control(auth).encode()))
        .await
        .expect("send auth");
    let answer = tokio::time::timeout(T, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Binary(b))) => {
                    if let Ok(LinkMessage::Control(c)) = LinkMessage::decode(b) {
                        return c;
                    }
                }
                Some(Ok(_)) => {}
                other => panic!("link ended before an answer: {other:?}"),
            }
        }
    })
    .await
    .expect("an answer to auth");
    (ws, answer)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_half_dead_link_is_taken_over_after_45_silent_seconds() {
    use phirepass_tunnel::NodeControl;
    let cluster = Cluster::start(Backend::Embedded, 1).await;
    let gw = &cluster.gateways[0].addr;
    cluster.add_user("alice", "alice-password").await;
    let (token, _) = cluster.node_token("alice", NODE).await;
    // An agent that authenticated, then went silent (its host crashed, no FIN reached us).
    let (_silent, first) = raw_link(gw, &token, "").await;
    assert!(matches!(first, NodeControl::AuthOk { .. }), "{first:?}");
    // While it may still be alive, a restarted agent is refused...
    let (_, early) = raw_link(gw, &token, "").await;
    assert!(
        matches!(&early, NodeControl::Refused { reason, .. } if reason.contains("already connected")),
        "{early:?}"
    );
    // ...and once it has been silent for longer than the takeover time, the new one gets the node.
    tokio::time::sleep(Duration::from_secs(46)).await;
    let (_, late) = raw_link(gw, &token, "").await;
    assert!(matches!(late, NodeControl::AuthOk { .. }), "{late:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_agent_reconnecting_gets_its_node_back_at_once() {
    use phirepass_tunnel::NodeControl;
    let cluster = Cluster::start(Backend::Real, 2).await;
    cluster.add_user("alice", "alice-password").await;
    let (token, _) = cluster.node_token("alice", NODE).await;
    // The agent's link to gateway 0 died on its side (a restart, a network change); the
    // gateway has not noticed yet.
    let (_stale, first) = raw_link(&cluster.gateways[0].addr, &token, "00000000000000aa").await;
    assert!(matches!(first, NodeControl::AuthOk { .. }), "{first:?}");
    // Another agent process is refused; the same process, through either gateway, is not.
    let (_, other) = raw_link(&cluster.gateways[1].addr, &token, "00000000000000bb").await;
    assert!(matches!(other, NodeControl::Refused { .. }), "{other:?}");
    for gateway in &cluster.gateways {
        let (_, again) = raw_link(&gateway.addr, &token, "00000000000000aa").await;
        assert!(
            matches!(again, NodeControl::AuthOk { .. }),
            "{}: {again:?}",
            gateway.id
        );
    }
}

//! Registry over real gRPC, on Redis (REDIS_URL, default
//! redis://127.0.0.1:6379, random key prefix) and on in-memory presence.

use std::sync::Arc;
use std::time::Duration;

use phirepass_pki::{LocalPki, ServiceKind};
use phirepass_presence::Presence;
use phirepass_proto::registry as pb;
use phirepass_proto::registry::registry_client::RegistryClient;
use phirepass_registry::{RegistryConfig, RegistryDeps, serve};
use phirepass_runtime::grpc::{AuthedChannel, admin_channel, channel, trust_certs};
use tokio::sync::oneshot;
use tonic::Code;

use crate::common::{self, on_both};

const NODE_TTL: Duration = Duration::from_millis(1500);
const SESSION_TTL: Duration = Duration::from_millis(1500);

struct Harness {
    url: String,
    pki: LocalPki,
    client: RegistryClient<AuthedChannel>,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), phirepass_registry::RegistryError>>,
}

impl Harness {
    /// A registry on Redis presence (random prefix) if `redis`, else memory.
    async fn on(redis: bool) -> Self {
        let prefix = format!("pp-test-{}:", common::random_hex());
        Self::start(common::presence(redis, &prefix).await).await
    }

    async fn start(presence: Arc<dyn Presence>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}", listener.local_addr().unwrap());
        let pki = LocalPki::generate().unwrap();
        let config = RegistryConfig {
            node_ttl: NODE_TTL,
            session_ttl: SESSION_TTL,
            policy: phirepass_registry::policy::POLICY.also_allowing(ServiceKind::Authz),
            ..RegistryConfig::new(pki.identity(ServiceKind::Registry).unwrap())
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(
            config,
            listener,
            RegistryDeps {
                presence,
                bus: None,
            },
            async {
                let _ = stopped.await;
            },
        ));
        let harness = pki.identity(ServiceKind::Authz).unwrap();
        let client = RegistryClient::new(channel(&url, &harness, ServiceKind::Registry).unwrap());
        Self {
            url,
            pki,
            client,
            stop,
            task,
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}

fn node(id: &str, user: &str, gateway: &str) -> pb::NodePresence {
    pb::NodePresence {
        node_id: id.into(),
        name: format!("name-{id}"),
        user_id: user.into(),
        gateway_id: gateway.into(),
        connected_at: 0,
        last_heartbeat: 0,
        stats: Some(pb::NodeStats {
            hostname: format!("host-{id}"),
            cpu_percent: Some(12.5),
            mem_total_bytes: 1 << 30,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn session(id: &str, user: &str, node: &str) -> pb::SessionPresence {
    pb::SessionPresence {
        session_id: id.into(),
        user_id: user.into(),
        username: format!("user-{user}"),
        node_id: node.into(),
        gateway_id: "gw-a".into(),
        ..Default::default()
    }
}

on_both!(
    connect_heartbeat_list_get,
    nodes_expire_without_heartbeats,
    disconnect_by_other_gateway_is_ignored,
    a_live_node_is_not_claimed_by_a_second_connection,
    sessions_lifecycle,
    bad_requests,
    agent_status_round_trips,
);

async fn list_nodes(h: &Harness, user: Option<&str>) -> Vec<pb::NodePresence> {
    let req = pb::ListNodesRequest {
        user_id: user.map(Into::into),
    };
    h.client
        .clone()
        .list_nodes(req)
        .await
        .unwrap()
        .into_inner()
        .nodes
}

async fn connect_heartbeat_list_get(redis: bool) {
    let h = Harness::on(redis).await;
    let mut c = h.client.clone();
    c.node_connected(node("n1", "u1", "gw-a")).await.unwrap();
    c.node_connected(node("n2", "u2", "gw-a")).await.unwrap();

    let got = c
        .get_node(pb::GetNodeRequest {
            node_id: "n1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.gateway_id, "gw-a");
    assert!(got.connected_at > 0);
    assert!(got.last_heartbeat >= got.connected_at);
    assert_eq!(got.stats.as_ref().unwrap().hostname, "host-n1");

    let ids: Vec<_> = list_nodes(&h, None)
        .await
        .into_iter()
        .map(|n| n.node_id)
        .collect();
    assert_eq!(ids, ["n1", "n2"]);
    let ids: Vec<_> = list_nodes(&h, Some("u2"))
        .await
        .into_iter()
        .map(|n| n.node_id)
        .collect();
    assert_eq!(ids, ["n2"]);

    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut beat = node("n1", "u1", "gw-a");
    beat.stats.as_mut().unwrap().cpu_percent = Some(99.0);
    assert!(c.node_heartbeat(beat).await.unwrap().into_inner().accepted);
    let after = c
        .get_node(pb::GetNodeRequest {
            node_id: "n1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        after.connected_at, got.connected_at,
        "heartbeat keeps connected_at"
    );
    assert!(after.last_heartbeat > got.last_heartbeat);
    assert_eq!(after.stats.unwrap().cpu_percent, Some(99.0));

    let missing = c
        .get_node(pb::GetNodeRequest {
            node_id: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    h.stop().await;
}

async fn nodes_expire_without_heartbeats(redis: bool) {
    let h = Harness::on(redis).await;
    let mut c = h.client.clone();
    c.node_connected(node("kept", "u", "gw-a")).await.unwrap();
    c.node_connected(node("dropped", "u", "gw-a"))
        .await
        .unwrap();
    // Heartbeats keep one alive well past the TTL; the other lapses.
    for _ in 0..4 {
        tokio::time::sleep(NODE_TTL / 3).await;
        assert!(
            c.node_heartbeat(node("kept", "u", "gw-a"))
                .await
                .unwrap()
                .into_inner()
                .accepted
        );
    }
    let ids: Vec<_> = list_nodes(&h, None)
        .await
        .into_iter()
        .map(|n| n.node_id)
        .collect();
    assert_eq!(ids, ["kept"]);
    // A heartbeat after expiry re-creates the entry.
    assert!(
        c.node_heartbeat(node("dropped", "u", "gw-a"))
            .await
            .unwrap()
            .into_inner()
            .accepted
    );
    assert_eq!(list_nodes(&h, None).await.len(), 2);
    h.stop().await;
}

async fn disconnect_by_other_gateway_is_ignored(redis: bool) {
    let h = Harness::on(redis).await;
    let mut c = h.client.clone();
    c.node_connected(node("n1", "u", "gw-a")).await.unwrap();
    // The agent reconnects through gateway B: B takes the node over.
    c.node_connected(node("n1", "u", "gw-b")).await.unwrap();
    // A notices its dead connection late: its heartbeat and disconnect must
    // not disturb B's entry.
    assert!(
        !c.node_heartbeat(node("n1", "u", "gw-a"))
            .await
            .unwrap()
            .into_inner()
            .accepted
    );
    let req = |gw: &str| pb::NodeDisconnectedRequest {
        node_id: "n1".into(),
        gateway_id: gw.into(),
    };
    assert!(
        !c.node_disconnected(req("gw-a"))
            .await
            .unwrap()
            .into_inner()
            .removed
    );
    let held = c
        .get_node(pb::GetNodeRequest {
            node_id: "n1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(held.gateway_id, "gw-b");

    assert!(
        c.node_disconnected(req("gw-b"))
            .await
            .unwrap()
            .into_inner()
            .removed
    );
    assert!(
        !c.node_disconnected(req("gw-b"))
            .await
            .unwrap()
            .into_inner()
            .removed
    );
    assert!(list_nodes(&h, None).await.is_empty());
    h.stop().await;
}

async fn sessions_lifecycle(redis: bool) {
    let h = Harness::on(redis).await;
    let mut c = h.client.clone();
    c.session_opened(session("s1", "u1", "n1")).await.unwrap();
    c.session_opened(session("s2", "u2", "n1")).await.unwrap();
    c.session_opened(session("s3", "u1", "n2")).await.unwrap();
    let list = |user: Option<&str>, node: Option<&str>| {
        let mut c = h.client.clone();
        let req = pb::ListSessionsRequest {
            user_id: user.map(Into::into),
            node_id: node.map(Into::into),
        };
        async move {
            let sessions = c.list_sessions(req).await.unwrap().into_inner().sessions;
            sessions
                .into_iter()
                .map(|s| s.session_id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(list(None, None).await, ["s1", "s2", "s3"]);
    assert_eq!(list(Some("u1"), None).await, ["s1", "s3"]);
    assert_eq!(list(None, Some("n1")).await, ["s1", "s2"]);
    assert_eq!(list(Some("u1"), Some("n1")).await, ["s1"]);

    let first = c
        .list_sessions(pb::ListSessionsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .sessions;
    let started = first[0].started_at;
    assert!(started > 0);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut beat = session("s1", "u1", "n1");
    beat.bytes_in = 1234;
    beat.bytes_out = 99;
    c.session_heartbeat(beat).await.unwrap();
    let s1 = c
        .list_sessions(pb::ListSessionsRequest {
            user_id: Some("u1".into()),
            node_id: Some("n1".into()),
        })
        .await
        .unwrap()
        .into_inner()
        .sessions
        .remove(0);
    assert_eq!(s1.started_at, started, "heartbeat keeps started_at");
    assert!(s1.last_seen > first[0].last_seen);
    assert_eq!((s1.bytes_in, s1.bytes_out), (1234, 99));

    let closed = c
        .session_closed(pb::SessionClosedRequest {
            session_id: "s2".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(closed.removed);
    assert!(
        !c.session_closed(pb::SessionClosedRequest {
            session_id: "s2".into()
        })
        .await
        .unwrap()
        .into_inner()
        .removed
    );

    // Without heartbeats, sessions expire.
    tokio::time::sleep(SESSION_TTL + Duration::from_millis(300)).await;
    assert!(list(None, None).await.is_empty());
    h.stop().await;
}

async fn bad_requests(redis: bool) {
    let h = Harness::on(redis).await;
    let mut c = h.client.clone();
    let err = c.node_connected(node("", "u", "gw-a")).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = c.node_connected(node("n*", "u", "gw-a")).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = c.node_connected(node("n1", "u", "")).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = c
        .session_opened(session("bad id", "u", "n"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = c
        .get_node(pb::GetNodeRequest {
            node_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    h.stop().await;
}

#[tokio::test]
async fn a_service_certificate_is_required_but_health_is_open() {
    let h = Harness::on(false).await;
    // Plaintext: the TLS layer refuses it before any call.
    let plain = h.url.replacen("https://", "http://", 1);
    if let Ok(raw) = tonic::transport::Endpoint::from_shared(plain)
        .unwrap()
        .connect()
        .await
    {
        let err = RegistryClient::new(raw)
            .list_nodes(pb::ListNodesRequest::default())
            .await
            .unwrap_err();
        // A transport failure (h2 reads a TLS alert), never an answer from the service.
        assert!(std::error::Error::source(&err).is_some(), "{err:?}");
    }
    // No certificate, a bearer on a services-only method: unauthenticated.
    let trust = trust_certs(h.pki.trust_pem()).unwrap();
    let anonymous = admin_channel(&h.url, &trust, ServiceKind::Registry, "wrong").unwrap();
    let err = RegistryClient::new(anonymous)
        .list_nodes(pb::ListNodesRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    // ssh-edge does not list nodes (gateway-ws's dashboard does).
    let edge = h.pki.identity(ServiceKind::SshEdge).unwrap();
    let err = RegistryClient::new(channel(&h.url, &edge, ServiceKind::Registry).unwrap())
        .list_nodes(pb::ListNodesRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(err.message(), "ssh-edge may not call ListNodes");
    // An API token on an admin method of a registry that verifies none: unauthenticated.
    let anonymous = admin_channel(&h.url, &trust, ServiceKind::Registry, "pp_api_x").unwrap();
    let err = RegistryClient::new(anonymous)
        .list_tunnels(pb::ListTunnelsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);

    let status = phirepass_runtime::health::check_over(
        channel(&h.url, &edge, ServiceKind::Registry).unwrap(),
        phirepass_registry::SERVICE_NAME,
    )
    .await
    .unwrap();
    assert_eq!(status, phirepass_runtime::health::HealthStatus::Serving);
    h.stop().await;
}

#[tokio::test]
async fn two_registries_on_one_redis_share_presence() {
    // Replicas behind a load balancer see the same nodes.
    let prefix = format!("pp-test-{}:", common::random_hex());
    let a = Harness::start(common::redis_presence(&prefix).await).await;
    let b = Harness::start(common::redis_presence(&prefix).await).await;
    a.client
        .clone()
        .node_connected(node("n1", "u", "gw-a"))
        .await
        .unwrap();
    assert_eq!(list_nodes(&b, None).await.len(), 1);
    a.stop().await;
    b.stop().await;
}

fn claim(gateway: &str, conn: &str, addr: &str, takeover_after_ms: i64) -> pb::ClaimNodeRequest {
    pb::ClaimNodeRequest {
        presence: Some(pb::NodePresence {
            conn_id: conn.into(),
            agent_addr: addr.into(),
            ..node("n1", "u", gateway)
        }),
        takeover_after_ms,
    }
}

async fn a_live_node_is_not_claimed_by_a_second_connection(redis: bool) {
    let h = Harness::on(redis).await;
    let mut c = h.client.clone();
    let first = c
        .claim_node(claim("gw-a", "c1", "10.0.0.1:4000", 45_000))
        .await
        .unwrap()
        .into_inner();
    assert!(first.granted);
    // The same connection claiming again (a retry) is fine.
    assert!(
        c.claim_node(claim("gw-a", "c1", "10.0.0.1:4000", 45_000))
            .await
            .unwrap()
            .into_inner()
            .granted
    );
    // A second agent with the same token, on the same or another gateway: refused, with
    // the holder's address, and the holder keeps the node.
    for gateway in ["gw-a", "gw-b"] {
        let second = c
            .claim_node(claim(gateway, "c2", "10.0.0.2:5000", 45_000))
            .await
            .unwrap()
            .into_inner();
        assert!(!second.granted, "{gateway}");
        let holder = second.holder.unwrap();
        assert_eq!(
            (holder.agent_addr.as_str(), holder.conn_id.as_str()),
            ("10.0.0.1:4000", "c1")
        );
        assert!(holder.connected_at > 0);
    }
    let beat = pb::NodePresence {
        conn_id: "c1".into(),
        ..node("n1", "u", "gw-a")
    };
    assert!(
        c.node_heartbeat(beat.clone())
            .await
            .unwrap()
            .into_inner()
            .accepted
    );
    // A holder silent past the takeover time (here: any silence) loses the node, and its
    // next heartbeat is refused so its gateway drops it.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let takeover = c
        .claim_node(claim("gw-b", "c2", "10.0.0.2:5000", 10))
        .await
        .unwrap()
        .into_inner();
    assert!(takeover.granted);
    assert!(!c.node_heartbeat(beat).await.unwrap().into_inner().accepted);
    let held = c
        .get_node(pb::GetNodeRequest {
            node_id: "n1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (held.gateway_id.as_str(), held.conn_id.as_str()),
        ("gw-b", "c2")
    );
    // The holder's own agent reconnecting (its link died) through any gateway: granted at once.
    let mut reconnect = claim("gw-a", "c3", "10.0.0.2:5001", 45_000);
    reconnect.presence.as_mut().unwrap().agent_instance = "i2".into();
    assert!(
        !c.claim_node(reconnect.clone())
            .await
            .unwrap()
            .into_inner()
            .granted
    );
    let mut holder = claim("gw-b", "c2", "10.0.0.2:5000", 45_000);
    holder.presence.as_mut().unwrap().agent_instance = "i2".into();
    assert!(c.claim_node(holder).await.unwrap().into_inner().granted);
    assert!(c.claim_node(reconnect).await.unwrap().into_inner().granted);
    h.stop().await;
}

/// Every row of the real allowlist: each allowed (kind, method) gets past it, every other
/// kind gets PERMISSION_DENIED, a token without a certificate reaches ListTunnels and
/// KickTunnel only.
#[tokio::test]
async fn every_row_of_the_allowlist_is_enforced() {
    use phirepass_runtime::grpc::probe;
    let pki = LocalPki::generate().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let config = RegistryConfig::new(pki.identity(ServiceKind::Registry).unwrap());
    let deps = RegistryDeps {
        presence: common::presence(false, "pp-rows:").await,
        bus: None,
    };
    tokio::spawn(serve(config, listener, deps, std::future::pending()));
    let trust = trust_certs(pki.trust_pem()).unwrap();
    let token = admin_channel(&url, &trust, ServiceKind::Registry, "pp_api_0_nope").unwrap();
    let ids: Vec<_> = ServiceKind::SERVICES
        .iter()
        .map(|k| (*k, pki.identity(*k).unwrap()))
        .collect();
    let as_kind = |kind: ServiceKind| {
        let (_, id) = ids.iter().find(|(k, _)| *k == kind).unwrap();
        channel(&url, id, ServiceKind::Registry).unwrap()
    };
    let policy = phirepass_registry::policy::POLICY;
    let checked = probe::exercise(&policy, as_kind, token).await.unwrap();
    assert_eq!(checked, policy.rules.len() * 6);
}

/// The agent's self-report written with a heartbeat comes back from GetNode and ListNodes, a
/// heartbeat without one keeps it, and a report that is not a JSON object is refused.
async fn agent_status_round_trips(redis: bool) {
    let h = Harness::on(redis).await;
    let mut c = h.client.clone();
    c.node_connected(node("n1", "u1", "gw-a")).await.unwrap();
    let status = r#"{"version":"1.2.3","started_at":5,"commands":[{"name":"disk_usage","timeout_secs":10,"output_limit_bytes":1024}]}"#;
    let mut beat = node("n1", "u1", "gw-a");
    beat.agent_status_json = status.into();
    assert!(c.node_heartbeat(beat).await.unwrap().into_inner().accepted);
    assert_eq!(status_of(&c, "n1").await, status);
    let listed = list_nodes(&h, Some("u1")).await;
    assert_eq!(listed[0].agent_status_json, status);
    // Stats-only heartbeats (the agent's status did not change) keep the report.
    assert!(
        c.node_heartbeat(node("n1", "u1", "gw-a"))
            .await
            .unwrap()
            .into_inner()
            .accepted
    );
    assert_eq!(status_of(&c, "n1").await, status);
    let mut bad = node("n1", "u1", "gw-a");
    bad.agent_status_json = "[1,2]".into();
    let refused = c.node_heartbeat(bad).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    let mut huge = node("n1", "u1", "gw-a");
    huge.agent_status_json = format!(r#"{{"x":"{}"}}"#, "a".repeat(300 * 1024));
    let refused = c.node_heartbeat(huge).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(status_of(&c, "n1").await, status);
    h.stop().await;
}

async fn status_of(c: &RegistryClient<AuthedChannel>, node_id: &str) -> String {
    let req = pb::GetNodeRequest {
        node_id: node_id.into(),
    };
    c.clone()
        .get_node(req)
        .await
        .unwrap()
        .into_inner()
        .agent_status_json
}

//! `ssh -R` tunnel records over real gRPC: open, refresh, conflict, expiry,
//! close by another session, list, and KickTunnel on the bus. On Redis +
//! NATS (REDIS_URL / NATS_URL, random prefixes) and on memory.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use phirepass_bus::Bus;
use phirepass_pki::{LocalPki, ServiceKind};
use phirepass_proto::registry as pb;
use phirepass_proto::registry::registry_client::RegistryClient;
use phirepass_registry::{RegistryConfig, RegistryDeps, serve};
use phirepass_runtime::grpc::{AuthedChannel, channel};
use tokio::sync::oneshot;
use tonic::Code;

use crate::common::{self, on_both};

const TUNNEL_TTL: Duration = Duration::from_millis(1500);

struct Harness {
    client: RegistryClient<AuthedChannel>,
    bus: Option<Arc<dyn Bus>>,
    prefix: String,
    stop: oneshot::Sender<()>,
}

impl Harness {
    async fn start(real: bool, with_bus: bool) -> Self {
        let prefix = format!("t{}", common::random_hex());
        let presence = common::presence(real, &format!("{prefix}:")).await;
        let bus = if !with_bus {
            None
        } else if real {
            let url =
                std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned());
            Some(phirepass_bus::connect(Some(&url)).await.unwrap())
        } else {
            Some(phirepass_bus::connect(None).await.unwrap())
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}", listener.local_addr().unwrap());
        let pki = LocalPki::generate().unwrap();
        let config = RegistryConfig {
            tunnel_ttl: TUNNEL_TTL,
            subject_prefix: prefix.clone(),
            policy: phirepass_registry::policy::POLICY.also_allowing(ServiceKind::Authz),
            ..RegistryConfig::new(pki.identity(ServiceKind::Registry).unwrap())
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let deps = RegistryDeps {
            presence,
            bus: bus.clone(),
        };
        tokio::spawn(serve(config, listener, deps, async {
            let _ = stopped.await;
        }));
        Self {
            client: RegistryClient::new(
                channel(
                    &url,
                    &pki.identity(ServiceKind::Authz).unwrap(),
                    ServiceKind::Registry,
                )
                .unwrap(),
            ),
            bus,
            prefix,
            stop,
        }
    }
}

on_both!(
    open_refresh_conflict_and_close,
    tunnels_expire_and_can_be_retaken,
    concurrent_opens_have_one_winner,
    kick_publishes_each_holding_session,
    kick_without_bus_or_tunnel,
    bad_requests,
);

fn tunnel(name: &str, port: u32, session: &str) -> pb::TunnelPresence {
    pb::TunnelPresence {
        name: name.into(),
        port,
        node_id: format!("sshr-{session}"),
        edge_id: "edge-1".into(),
        session_id: session.into(),
        user_id: "u1".into(),
        username: "alice".into(),
        client_ip: "192.0.2.1".into(),
        ..Default::default()
    }
}

async fn get(h: &Harness, name: &str, port: u32) -> Result<pb::TunnelPresence, tonic::Status> {
    h.client
        .clone()
        .get_tunnel(pb::GetTunnelRequest {
            name: name.into(),
            port,
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn open_refresh_conflict_and_close(real: bool) {
    let h = Harness::start(real, false).await;
    let mut c = h.client.clone();
    c.tunnel_opened(tunnel("myapp", 80, "s1")).await.unwrap();
    c.tunnel_opened(tunnel("myapp", 5432, "s1")).await.unwrap();
    let got = get(&h, "myapp", 80).await.unwrap();
    assert_eq!(
        (got.kind.as_str(), got.node_id.as_str()),
        ("http", "sshr-s1")
    );
    assert!(got.started_at > 0 && got.last_seen >= got.started_at);
    assert_eq!(get(&h, "myapp", 5432).await.unwrap().kind, "tcp");

    // The same session re-opening refreshes and keeps the start time.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut again = tunnel("myapp", 80, "s1");
    again.bytes_in = 7;
    c.tunnel_opened(again).await.unwrap();
    let refreshed = get(&h, "myapp", 80).await.unwrap();
    assert_eq!(refreshed.started_at, got.started_at);
    assert!(refreshed.last_seen > got.last_seen);
    assert_eq!(refreshed.bytes_in, 7);

    // Another session: conflict, and its heartbeat is refused.
    let e = c
        .tunnel_opened(tunnel("myapp", 80, "s2"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists);
    let hb = c
        .tunnel_heartbeat(tunnel("myapp", 80, "s2"))
        .await
        .unwrap()
        .into_inner();
    assert!(!hb.accepted);
    assert_eq!(get(&h, "myapp", 80).await.unwrap().session_id, "s1");
    let mut hb = tunnel("myapp", 80, "s1");
    hb.connections = 3;
    assert!(c.tunnel_heartbeat(hb).await.unwrap().into_inner().accepted);
    assert_eq!(get(&h, "myapp", 80).await.unwrap().connections, 3);

    // Listing, with a user filter, sorted by name then port.
    let mut other = tunnel("api-x", 80, "s3");
    other.user_id = "u2".into();
    c.tunnel_opened(other).await.unwrap();
    let all = c
        .list_tunnels(pb::ListTunnelsRequest { user_id: None })
        .await
        .unwrap()
        .into_inner()
        .tunnels;
    let keys: Vec<_> = all.iter().map(|t| (t.name.as_str(), t.port)).collect();
    assert_eq!(keys, [("api-x", 80), ("myapp", 80), ("myapp", 5432)]);
    let u2 = c
        .list_tunnels(pb::ListTunnelsRequest {
            user_id: Some("u2".into()),
        })
        .await
        .unwrap()
        .into_inner()
        .tunnels;
    assert_eq!(u2.len(), 1);

    // Closed by another session: ignored. By the holder: removed.
    let close = |session: &str| pb::TunnelClosedRequest {
        name: "myapp".into(),
        port: 80,
        session_id: session.into(),
    };
    assert!(
        !c.tunnel_closed(close("s2"))
            .await
            .unwrap()
            .into_inner()
            .removed
    );
    assert!(get(&h, "myapp", 80).await.is_ok());
    assert!(
        c.tunnel_closed(close("s1"))
            .await
            .unwrap()
            .into_inner()
            .removed
    );
    assert_eq!(
        get(&h, "myapp", 80).await.unwrap_err().code(),
        Code::NotFound
    );
    assert!(
        !c.tunnel_closed(close("s1"))
            .await
            .unwrap()
            .into_inner()
            .removed
    );
    // Now free for another session.
    c.tunnel_opened(tunnel("myapp", 80, "s2")).await.unwrap();
    let _ = h.stop.send(());
}

async fn tunnels_expire_and_can_be_retaken(real: bool) {
    let h = Harness::start(real, false).await;
    let mut c = h.client.clone();
    c.tunnel_opened(tunnel("gone", 80, "s1")).await.unwrap();
    // Heartbeats keep it alive past the TTL.
    for _ in 0..3 {
        tokio::time::sleep(TUNNEL_TTL / 2).await;
        assert!(
            c.tunnel_heartbeat(tunnel("gone", 80, "s1"))
                .await
                .unwrap()
                .into_inner()
                .accepted
        );
    }
    tokio::time::sleep(TUNNEL_TTL + Duration::from_millis(300)).await;
    assert_eq!(
        get(&h, "gone", 80).await.unwrap_err().code(),
        Code::NotFound
    );
    // Another session takes it; the old holder's heartbeat is refused.
    c.tunnel_opened(tunnel("gone", 80, "s2")).await.unwrap();
    assert!(
        !c.tunnel_heartbeat(tunnel("gone", 80, "s1"))
            .await
            .unwrap()
            .into_inner()
            .accepted
    );
    // A heartbeat after expiry re-creates the record for its session.
    c.tunnel_heartbeat(tunnel("later", 80, "s3")).await.unwrap();
    assert_eq!(get(&h, "later", 80).await.unwrap().session_id, "s3");
    let _ = h.stop.send(());
}

async fn concurrent_opens_have_one_winner(real: bool) {
    let h = Harness::start(real, false).await;
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let mut c = h.client.clone();
            tokio::spawn(async move { c.tunnel_opened(tunnel("race", 80, &format!("s{i}"))).await })
        })
        .collect();
    let mut winners = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => winners += 1,
            Err(e) => assert_eq!(e.code(), Code::AlreadyExists),
        }
    }
    assert_eq!(winners, 1);
    let _ = h.stop.send(());
}

async fn kick_publishes_each_holding_session(real: bool) {
    let h = Harness::start(real, true).await;
    let bus = h.bus.clone().unwrap();
    let mut kicks = bus
        .subscribe(&format!("{}.control.kick", h.prefix))
        .await
        .unwrap();
    bus.flush().await.unwrap();
    let mut c = h.client.clone();
    c.tunnel_opened(tunnel("shop", 80, "s1")).await.unwrap();
    c.tunnel_opened(tunnel("shop", 2222, "s1")).await.unwrap();
    c.tunnel_opened(tunnel("shop-2", 80, "s9")).await.unwrap();
    let kicked = c
        .kick_tunnel(pb::KickTunnelRequest {
            name: "shop".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .session_ids;
    assert_eq!(
        kicked,
        ["s1"],
        "one session, however many ports; never shop-2's"
    );
    let msg = tokio::time::timeout(Duration::from_secs(5), kicks.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&msg.payload[..], b"s1");
    assert!(
        tokio::time::timeout(Duration::from_millis(300), kicks.next())
            .await
            .is_err(),
        "exactly one kick"
    );
    let _ = h.stop.send(());
}

async fn kick_without_bus_or_tunnel(real: bool) {
    let with_bus = Harness::start(real, true).await;
    let e = with_bus
        .client
        .clone()
        .kick_tunnel(pb::KickTunnelRequest {
            name: "none".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let _ = with_bus.stop.send(());

    let h = Harness::start(real, false).await;
    let mut c = h.client.clone();
    c.tunnel_opened(tunnel("shop", 80, "s1")).await.unwrap();
    let e = c
        .kick_tunnel(pb::KickTunnelRequest {
            name: "shop".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    let _ = h.stop.send(());
}

async fn bad_requests(real: bool) {
    let h = Harness::start(real, false).await;
    let mut c = h.client.clone();
    for bad in [
        tunnel("Bad", 80, "s1"),
        tunnel("-x", 80, "s1"),
        tunnel("a:b", 80, "s1"),
        tunnel("ok", 0, "s1"),
        tunnel("ok", 70_000, "s1"),
        tunnel("ok", 80, ""),
        tunnel("ok", 80, "a b"),
    ] {
        let e = c.tunnel_opened(bad.clone()).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{bad:?}");
    }
    let e = get(&h, "a*", 80).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let _ = h.stop.send(());
}

//! TunnelStreams over a real nats-server with TLS and per-kind permissions (the generated
//! configuration, `TestNatsServer`): each edge kind opens streams to nodes held by each holder
//! kind and bytes cross intact; kinds that are neither edge nor holder can do neither.

use std::sync::Arc;
use std::time::Duration;

use phirepass_bus::test_server::TestNatsServer;
use phirepass_bus::{Bus, NatsBus, ServiceKind};
use phirepass_tunnel::{NodeListener, OpenError, Subjects, Target, listen, open};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::*;
use ServiceKind::{Authz, GatewayWs, Registry, Secrets, SshEdge};

const NODE: &str = "node-1";

async fn server() -> TestNatsServer {
    let prefix = format!("t{:012x}", rand::random::<u64>() >> 16);
    TestNatsServer::start(&prefix).await.unwrap()
}

async fn bus_as(server: &TestNatsServer, kind: ServiceKind) -> Arc<dyn Bus> {
    let identity = server.identity(kind);
    let bus = NatsBus::connect_as(&server.url(), kind, Some(&identity))
        .await
        .unwrap_or_else(|e| panic!("{kind} connects: {e}\n{}", server.log()));
    Arc::new(bus)
}

/// Echoes every accepted stream until EOF.
fn spawn_echo(mut listener: NodeListener) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(incoming) = listener.next().await {
            let Ok(mut s) = incoming.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 32 * 1024];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                let _ = s.shutdown().await;
                let _ = s.read(&mut buf).await;
            });
        }
    })
}

#[tokio::test]
async fn edges_stream_to_holders_over_tls() {
    let server = server().await;
    let subjects = Subjects::new(server.prefix());
    let cfg = fast_cfg();
    let cases = [
        (GatewayWs, SshEdge),   // browser terminal or HTTP toward an `ssh -R` node
        (SshEdge, GatewayWs),   // bastion relay toward an agent
        (GatewayWs, GatewayWs), // one gateway toward an agent on another
    ];
    for (seed, (edge_kind, holder_kind)) in cases.into_iter().enumerate() {
        let edge = bus_as(&server, edge_kind).await;
        let node = bus_as(&server, holder_kind).await;
        let listener = listen(node.clone(), subjects.clone(), NODE, cfg.clone())
            .await
            .unwrap();
        node.flush().await.unwrap();
        let echo = spawn_echo(listener);
        let stream = open(
            &edge,
            &subjects,
            "edge-1",
            NODE,
            Target::Ssh,
            Vec::new(),
            &cfg,
        )
        .await
        .unwrap_or_else(|e| panic!("{edge_kind} -> {holder_kind}: {e}\n{}", server.log()));
        let (mut r, mut w) = tokio::io::split(stream);
        let total = 2 << 20;
        let sender =
            tokio::spawn(async move { send_all(&mut w, seed as u64, total, 16 * 1024).await });
        let (received, got) = tokio::time::timeout(Duration::from_secs(60), recv_all(&mut r))
            .await
            .unwrap();
        let sent = sender.await.unwrap();
        assert_eq!(received, total as u64, "{edge_kind} -> {holder_kind}");
        assert_eq!(got, sent, "{edge_kind} -> {holder_kind}");
        echo.abort();
    }
}

#[tokio::test]
async fn other_kinds_neither_open_nor_hold() {
    let server = server().await;
    let subjects = Subjects::new(server.prefix());
    let mut cfg = fast_cfg();
    cfg.open_timeout = Duration::from_millis(500);
    let holder = bus_as(&server, SshEdge).await;
    let listener = listen(holder.clone(), subjects.clone(), NODE, cfg.clone())
        .await
        .unwrap();
    holder.flush().await.unwrap();
    let echo = spawn_echo(listener);
    for kind in [Authz, Secrets, Registry] {
        let bus = bus_as(&server, kind).await;
        let res = open(
            &bus,
            &subjects,
            "edge-1",
            NODE,
            Target::Ssh,
            Vec::new(),
            &cfg,
        )
        .await;
        assert!(res.is_err(), "{kind} opened a stream");
        // As a holder: its subscription is refused, so an edge finds the node offline.
        let other = "node-2";
        let _listener = listen(bus.clone(), subjects.clone(), other, cfg.clone())
            .await
            .unwrap();
        bus.flush().await.unwrap();
        let edge = bus_as(&server, GatewayWs).await;
        let res = open(
            &edge,
            &subjects,
            "edge-1",
            other,
            Target::Ssh,
            Vec::new(),
            &cfg,
        )
        .await;
        assert!(
            matches!(res, Err(OpenError::NodeOffline)),
            "{kind} held a node: {:?}",
            res.err()
        );
    }
    // The control: the real edge reaches the real holder.
    let edge = bus_as(&server, GatewayWs).await;
    open(
        &edge,
        &subjects,
        "edge-1",
        NODE,
        Target::Ssh,
        Vec::new(),
        &cfg,
    )
    .await
    .unwrap();
    echo.abort();
}

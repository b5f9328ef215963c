//! Signed opens (issue #8) across the real deployment: NATS, authz, a gateway holding a real
//! in-process agent whose allowed port is a counting TCP listener. A process with full bus
//! access publishes opens for the node itself: without a ticket, with an expired one, one for
//! another node, port or stream, or one signed by a key authz never had. The gateway refuses
//! each with the reason and the target sees no connection; a ticket from authz goes through.
//! (The agent's own refusals, with opens sent straight down its link past any gateway, are
//! agent/tests/agent/tickets.rs.) Then authz's key is rotated while the agent stays
//! connected: old tickets still pass during the overlap, new ones pass, and the agent pins the
//! new key (endorsed by the old) next to its token.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use phirepass_proto::authz::{IssueOpenTicketRequest, ListNodesRequest};
use phirepass_ticket::{Scope, TicketSigner, TicketTarget};
use phirepass_tunnel::{OpenError, StreamConfig, StreamId, Subjects, Target, TunnelStream};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

use crate::common::{Backend, Cluster, agent_config_with_ports, start_agent_with, tickets};

const EDGE: &str = "forger-1";

/// An echo server that counts the connections it accepted.
async fn counting_target() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let (mut r, mut w) = sock.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    (port, accepted)
}

struct Deployment {
    cluster: Cluster,
    node_id: String,
    user_id: String,
    port: u16,
    accepted: Arc<AtomicUsize>,
    pins: std::path::PathBuf,
    _agent: crate::common::AgentHandle,
}

async fn deployment() -> Deployment {
    let cluster = Cluster::start(Backend::Real, 1).await;
    cluster.add_user("alice", "alice-password-1").await;
    let (token, _) = cluster.node_token("alice", "web-1").await;
    let (port, accepted) = counting_target().await;
    // No SSH server: the agent's own SSH check must not count as a connection to the target.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ssh = closed.local_addr().unwrap();
    drop(closed);
    let config = agent_config_with_ports(&cluster.gateways[0].addr, ssh, &[port]);
    let pins = config.ticket_keys_file.clone().unwrap();
    let agent = start_agent_with(config, &token);
    cluster.wait_node_online("web-1").await;
    let node = cluster
        .authz()
        .list_nodes(ListNodesRequest { user_id: None })
        .await
        .unwrap()
        .into_inner()
        .nodes
        .into_iter()
        .find(|n| n.name == "web-1")
        .unwrap();
    Deployment {
        cluster,
        node_id: node.node_id,
        user_id: node.user_id,
        port,
        accepted,
        pins,
        _agent: agent,
    }
}

fn now() -> u64 {
    u64::try_from(phirepass_runtime::clock::now_millis()).unwrap()
}

impl Deployment {
    /// An open of `port` on the node over the test's own bus connection, with whatever
    /// ticket `forge` makes for the stream id chosen.
    async fn open_with(
        &self,
        port: u16,
        forge: impl FnOnce(StreamId) -> Option<String>,
    ) -> Result<TunnelStream, OpenError> {
        let subjects = Subjects::new(self.cluster.prefix.clone());
        phirepass_tunnel::open_ticketed(
            &self.cluster.bus(),
            &subjects,
            EDGE,
            &self.node_id,
            Target::Port { port },
            Vec::new(),
            &StreamConfig::default(),
            |id| async move { Ok(forge(id)) },
        )
        .await
    }

    /// authz's real ticket for the owner, as an edge gets it.
    async fn open_granted(&self) -> TunnelStream {
        let subjects = Subjects::new(self.cluster.prefix.clone());
        let authz = self.cluster.authz();
        let request = |id: StreamId| IssueOpenTicketRequest {
            user_id: self.user_id.clone(),
            target: self.node_id.clone(),
            node_id: self.node_id.clone(),
            port: u32::from(self.port),
            edge_id: EDGE.into(),
            stream_id: id.0,
            ..Default::default()
        };
        phirepass_tunnel::open_ticketed(
            &self.cluster.bus(),
            &subjects,
            EDGE,
            &self.node_id,
            Target::Port { port: self.port },
            Vec::new(),
            &StreamConfig::default(),
            |id| async move {
                let reply = authz.clone().issue_open_ticket(request(id)).await;
                Ok(Some(reply.expect("ticket").into_inner().ticket))
            },
        )
        .await
        .expect("granted open")
    }

    fn scope(&self, id: StreamId) -> Scope {
        Scope {
            node: self.node_id.clone(),
            target: TicketTarget::Port { port: self.port },
            edge: EDGE.into(),
            stream: id.0,
        }
    }
}

async fn echo(stream: &mut TunnelStream) {
    stream.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf, b"ping");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forged_opens_are_refused_by_the_holder_and_dial_nothing() {
    let d = deployment().await;
    let authz_key = tickets::signer();
    let stranger = TicketSigner::generate().unwrap();
    let port = d.port;
    let refusal = |r: Result<TunnelStream, OpenError>| match r {
        Ok(_) => panic!("a forged open was accepted"),
        Err(OpenError::Refused(reason)) => reason,
        Err(other) => panic!("unexpected {other}"),
    };

    let reason = refusal(d.open_with(port, |_| None).await);
    assert!(
        reason.contains("refused by the gateway: open without a ticket"),
        "{reason}"
    );

    let old = now() - 120_000;
    let reason = refusal(
        d.open_with(port, |id| {
            Some(authz_key.sign("u", &d.scope(id), old, 30_000).unwrap())
        })
        .await,
    );
    assert!(reason.contains("ticket expired"), "{reason}");

    let reason = refusal(
        d.open_with(port, |id| {
            let mut scope = d.scope(id);
            scope.node = "someone-elses-node".into();
            Some(authz_key.sign("u", &scope, now(), 30_000).unwrap())
        })
        .await,
    );
    assert!(reason.contains("ticket is for another node"), "{reason}");

    // A ticket for port 1 presented for the allowed port.
    let reason = refusal(
        d.open_with(port, |id| {
            let mut scope = d.scope(id);
            scope.target = TicketTarget::Port { port: 1 };
            Some(authz_key.sign("u", &scope, now(), 30_000).unwrap())
        })
        .await,
    );
    assert!(reason.contains("ticket is for another target"), "{reason}");

    let reason = refusal(
        d.open_with(port, |id| {
            let other = StreamId(id.0.wrapping_add(1));
            Some(authz_key.sign("u", &d.scope(other), now(), 30_000).unwrap())
        })
        .await,
    );
    assert!(reason.contains("ticket is for another stream"), "{reason}");

    let reason = refusal(
        d.open_with(port, |id| {
            Some(stranger.sign("u", &d.scope(id), now(), 30_000).unwrap())
        })
        .await,
    );
    assert!(reason.contains("signed by unknown key"), "{reason}");

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        d.accepted.load(Ordering::SeqCst),
        0,
        "a forged open reached the target"
    );

    // authz's own ticket goes through, end to end.
    let mut stream = d.open_granted().await;
    echo(&mut stream).await;
    assert_eq!(d.accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_ticket_key_rotates_while_the_agent_stays_connected() {
    let d = deployment().await;
    let old_key = tickets::signer();
    let mut before = d.open_granted().await;
    echo(&mut before).await;

    let new_key = TicketSigner::generate().unwrap();
    let new_kid = new_key.kid().to_owned();
    d.cluster.tickets.rotate(new_key);

    // New tickets (the new key): the gateway learns the key from authz, the agent from the
    // endorsement the gateway passes down its link.
    let mut after = d.open_granted().await;
    echo(&mut after).await;
    // An old-key ticket during the overlap still passes.
    let mut overlap = d
        .open_with(d.port, |id| {
            Some(old_key.sign("u", &d.scope(id), now(), 30_000).unwrap())
        })
        .await
        .expect("old key during the overlap");
    echo(&mut overlap).await;
    // The stream opened before the rotation still works.
    echo(&mut before).await;
    assert_eq!(d.accepted.load(Ordering::SeqCst), 3);

    let pinned = phirepass_agent::pins::load(&d.pins).unwrap().unwrap();
    assert!(
        pinned.get(&new_kid).is_some(),
        "the agent pinned the new key"
    );
    assert!(pinned.get(old_key.kid()).is_some());
}

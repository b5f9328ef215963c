use std::collections::BTreeSet;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::*;

fn config(ssh_port: u16, allowed: &[u16]) -> AgentConfig {
    let mut c = AgentConfig::from_lookup(|_| None).unwrap();
    c.ssh_port = ssh_port;
    c.allowed_ports = allowed.iter().copied().collect::<BTreeSet<_>>();
    c
}

/// authz's key in these tests: the agent pins it, `request` signs with it.
fn signer() -> &'static phirepass_ticket::TicketSigner {
    static SIGNER: std::sync::OnceLock<phirepass_ticket::TicketSigner> = std::sync::OnceLock::new();
    SIGNER.get_or_init(|| phirepass_ticket::TicketSigner::generate().unwrap())
}

fn ctx(config: AgentConfig) -> (OpenCtx, mpsc::UnboundedReceiver<Outbound>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let keys = phirepass_ticket::KeySet::new(vec![signer().public_key().clone()]).unwrap();
    let node_id = std::sync::OnceLock::new();
    node_id.set("node-test".to_owned()).unwrap();
    let ctx = OpenCtx {
        config: Arc::new(config),
        streams: Arc::new(Streams::default()),
        tx,
        stream_cfg: StreamConfig::default(),
        tasks: TaskTracker::new(),
        pins: crate::pins::Pins::fixed(keys),
        node_id: Arc::new(node_id),
        commands: Arc::new(crate::commands::Commands::new(Default::default())),
    };
    (ctx, rx)
}

/// An open of `target` with a valid ticket for node-test.
fn request(id: u64, target: Target) -> OpenRequest {
    let scope = phirepass_ticket::Scope {
        node: "node-test".into(),
        target: phirepass_ticket::TicketTarget::from(&target),
        edge: "gw-test".into(),
        stream: id,
    };
    let now = u64::try_from(phirepass_runtime::clock::now_millis()).unwrap();
    let ticket = signer().sign("u-test", &scope, now, 30_000).unwrap();
    OpenRequest {
        stream_id: StreamId(id),
        edge_id: "gw-test".to_owned(),
        target,
        window: 65536,
        ticket: Some(ticket),
    }
}

/// The next OpenResult, skipping tunnel frames.
async fn open_result(rx: &mut mpsc::UnboundedReceiver<Outbound>) -> (StreamId, Option<String>) {
    loop {
        let Some(Outbound::Message(bytes)) = rx.recv().await else {
            panic!("link closed")
        };
        if let LinkMessage::Control(NodeControl::OpenResult { stream_id, error }) =
            LinkMessage::decode(bytes).unwrap()
        {
            return (stream_id, error);
        }
    }
}

#[test]
fn resolve_only_reaches_allowed_targets() {
    let c = config(2222, &[8080]);
    assert_eq!(
        resolve(&c, &Target::Ssh),
        Ok(("127.0.0.1".to_owned(), 2222))
    );
    assert_eq!(
        resolve(&c, &Target::Port { port: 8080 }),
        Ok(("127.0.0.1".to_owned(), 8080))
    );
    assert_eq!(resolve(&c, &Target::Port { port: 22 }), Err(NOT_ALLOWED));
    assert_eq!(resolve(&c, &Target::Port { port: 2222 }), Err(NOT_ALLOWED));
}

#[tokio::test]
async fn refuses_targets_outside_the_allowlist() {
    let (ctx, mut rx) = ctx(config(22, &[]));
    open(&ctx, request(1, Target::Port { port: 5432 }));
    assert_eq!(
        open_result(&mut rx).await,
        (StreamId(1), Some(NOT_ALLOWED.to_owned()))
    );
    assert_eq!(ctx.streams.len(), 0);
}

/// Forged opens straight down the link: no ticket, another node's, another port's, a replay.
/// The allowed target sees no connection.
#[tokio::test]
async fn opens_without_a_valid_ticket_dial_nothing() {
    let target = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = target.local_addr().unwrap().port();
    let (ctx, mut rx) = ctx(config(22, &[port, 5432]));
    let mut bare = request(11, Target::Port { port });
    bare.ticket = None;
    let mut other_port = request(12, Target::Port { port: 5432 });
    other_port.target = Target::Port { port };
    let mut other_stream = request(13, Target::Port { port });
    other_stream.stream_id = StreamId(14);
    for (open_req, why) in [
        (bare, "open without a ticket"),
        (other_port, "ticket is for another target"),
        (other_stream, "ticket is for another stream"),
    ] {
        let id = open_req.stream_id;
        open(&ctx, open_req);
        let (got, error) = open_result(&mut rx).await;
        assert_eq!(got, id);
        let error = error.unwrap();
        assert!(error.contains(why), "{error}");
    }
    ctx.node_id.get().unwrap();
    let accepted =
        tokio::time::timeout(std::time::Duration::from_millis(300), target.accept()).await;
    assert!(accepted.is_err(), "the target was dialled");
    assert_eq!(ctx.streams.len(), 0);
}

#[tokio::test]
async fn connect_failure_is_reported() {
    // Bind then drop to find a port nobody listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (ctx, mut rx) = ctx(config(port, &[]));
    open(&ctx, request(2, Target::Ssh));
    let (id, error) = open_result(&mut rx).await;
    assert_eq!(id, StreamId(2));
    let error = error.unwrap();
    assert!(error.contains("connect to 127.0.0.1"), "{error}");
    assert_eq!(ctx.streams.len(), 0);
}

#[tokio::test]
async fn duplicate_ids_and_closed_tables_are_refused() {
    let streams = Streams::default();
    assert!(streams.reserve(StreamId(3)).is_ok());
    assert_eq!(streams.reserve(StreamId(3)), Err("stream id in use"));
    streams.close_all("gateway connection lost");
    assert_eq!(streams.reserve(StreamId(4)), Err("gateway connection lost"));
}

/// An edge-side TunnelStream wired to the agent through channels, echoing
/// through a local TCP server on an allowlisted port.
#[tokio::test]
async fn carries_bytes_to_an_allowed_port_and_resets_on_link_loss() {
    let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = echo.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = echo.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = sock.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });

    let (ctx, mut rx) = ctx(config(22, &[port]));
    let id = StreamId(9);
    open(&ctx, request(9, Target::Port { port }));

    // Frames toward the edge queue until the edge endpoint exists.
    let (edge_tx, mut edge_rx) = mpsc::unbounded_channel::<Bytes>();
    loop {
        let Some(Outbound::Message(bytes)) = rx.recv().await else {
            panic!("link closed")
        };
        match LinkMessage::decode(bytes).unwrap() {
            LinkMessage::Frame { stream_id, frame } if stream_id == id => {
                edge_tx.send(frame).unwrap()
            }
            LinkMessage::Control(NodeControl::OpenResult { error, .. }) => {
                assert_eq!(error, None);
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let streams = ctx.streams.clone();
    let to_agent = move |frame: Bytes| {
        streams.deliver(id, frame);
        Ok(())
    };
    let (mut edge, edge_input) = TunnelStream::new(id, Arc::new(to_agent), StreamConfig::default());
    tokio::spawn(async move {
        while let Some(frame) = edge_rx.recv().await {
            edge_input.deliver(frame);
        }
    });
    tokio::spawn(async move {
        while let Some(Outbound::Message(bytes)) = rx.recv().await {
            if let Ok(LinkMessage::Frame { frame, .. }) = LinkMessage::decode(bytes) {
                let _ = edge_tx.send(frame);
            }
        }
    });

    edge.write_all(b"hello over the tunnel").await.unwrap();
    let mut buf = [0u8; 21];
    edge.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"hello over the tunnel");
    assert_eq!(ctx.streams.len(), 1);

    ctx.streams.close_all("gateway connection lost");
    assert_eq!(ctx.streams.len(), 0);
}

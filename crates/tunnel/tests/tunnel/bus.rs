//! TunnelStreams over the bus: the same cases on MemoryBus and real NATS.

/// One `#[tokio::test]` per case; `$make` yields (edge bus, node bus) and
/// `$paused` says whether the runtime starts on paused time (only for the
/// in-process bus: real NATS traffic needs real time).
macro_rules! bus_cases {
    ($make:expr, paused = $paused:literal) => {
        bus_cases!(@each $make, $paused; echo, half_close_both_directions, reset_on_drop,
            node_offline_is_immediate, refused_open, open_timeout, dropped_listener_means_offline,
            peer_vanished, streams_are_independent, invalid_ids);
    };
    (@each $make:expr, $paused:literal; $($case:ident),*) => {
        $(
            #[tokio::test(start_paused = $paused)]
            async fn $case() {
                let (edge, node) = $make.await;
                super::cases::$case(edge, node).await;
            }
        )*
    };
}

mod memory {
    bus_cases!(crate::common::memory_pair(), paused = true);
}

mod nats {
    bus_cases!(crate::common::nats_pair(), paused = false);
}

mod cases {
    use std::io::ErrorKind;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use bytes::Bytes;
    use futures_util::StreamExt;
    use phirepass_bus::Bus;
    use phirepass_tunnel::{
        NodeListener, OpenError, OpenReply, OpenRequest, SinkClosed, StreamConfig, Subjects,
        Target, TunnelStream, listen, open,
    };
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // Follows the paused clock on the in-process bus, the real one on NATS.
    use tokio::time::Instant;

    use crate::common::*;

    const EDGE: &str = "edge-1";
    const NODE: &str = "node-1";

    struct Setup {
        edge: Arc<dyn Bus>,
        node: Arc<dyn Bus>,
        subjects: Subjects,
        cfg: StreamConfig,
    }

    impl Setup {
        fn new(edge: Arc<dyn Bus>, node: Arc<dyn Bus>) -> Self {
            Setup {
                edge,
                node,
                subjects: random_subjects(),
                cfg: fast_cfg(),
            }
        }

        async fn listener(&self) -> NodeListener {
            let l = listen(
                self.node.clone(),
                self.subjects.clone(),
                NODE,
                self.cfg.clone(),
            )
            .await
            .unwrap();
            self.node.flush().await.unwrap();
            l
        }

        async fn open(&self, target: Target) -> Result<TunnelStream, OpenError> {
            let headers = vec![("traceparent".to_owned(), "00-abc-def-01".to_owned())];
            open(
                &self.edge,
                &self.subjects,
                EDGE,
                NODE,
                target,
                headers,
                &self.cfg,
            )
            .await
        }
    }

    /// Accepts every open and echoes each stream until EOF.
    fn spawn_echo_node(mut listener: NodeListener) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            while let Some(incoming) = listener.next().await {
                assert!(incoming.headers().iter().any(|(k, _)| k == "traceparent"));
                let mut s = incoming.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 32 * 1024];
                    loop {
                        match s.read(&mut buf).await {
                            Ok(0) => break,
                            Ok(n) => {
                                if s.write_all(&buf[..n]).await.is_err() {
                                    return;
                                }
                            }
                            Err(_) => return,
                        }
                    }
                    let _ = s.shutdown().await;
                    // Keep the stream until the edge finished too.
                    let _ = s.read(&mut buf).await;
                });
            }
        })
    }

    pub async fn echo(edge: Arc<dyn Bus>, node: Arc<dyn Bus>) {
        let t = Setup::new(edge, node);
        let node = spawn_echo_node(t.listener().await);
        let s = t.open(Target::Port { port: 8080 }).await.unwrap();
        let (mut r, mut w) = tokio::io::split(s);
        let sender = tokio::spawn(async move { send_all(&mut w, 3, 4 << 20, 16 * 1024).await });
        let (n, hash) = recv_all(&mut r).await;
        assert_eq!(n, 4 << 20);
        assert_eq!(hash, sender.await.unwrap());
        node.abort();
    }

    pub async fn half_close_both_directions(edge: Arc<dyn Bus>, node: Arc<dyn Bus>) {
        let t = Setup::new(edge, node);
        let mut listener = t.listener().await;
        let node_side = tokio::spawn(async move {
            let incoming = listener.next().await.unwrap();
            assert_eq!(incoming.request().target, Target::Ssh);
            assert_eq!(incoming.request().edge_id, EDGE);
            let mut s = incoming.accept().await.unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).await.unwrap();
            assert_eq!(got, b"from edge");
            s.write_all(b"from node").await.unwrap();
            s.shutdown().await.unwrap();
            s
        });
        let mut s = t.open(Target::Ssh).await.unwrap();
        s.write_all(b"from edge").await.unwrap();
        s.shutdown().await.unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"from node");
        let node_stream = node_side.await.unwrap();
        assert_eq!(s.stats().gaps, 0);
        drop((s, node_stream));
    }

    pub async fn reset_on_drop(edge: Arc<dyn Bus>, node: Arc<dyn Bus>) {
        let t = Setup::new(edge, node);
        let mut listener = t.listener().await;
        let node_side = tokio::spawn(async move {
            let mut s = listener.next().await.unwrap().accept().await.unwrap();
            let mut buf = [0u8; 5];
            s.read_exact(&mut buf).await.unwrap();
            s.read(&mut buf).await.unwrap_err()
        });
        let mut s = t.open(Target::Ssh).await.unwrap();
        s.write_all(b"hello").await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(s);
        let err = tokio::time::timeout(Duration::from_secs(2), node_side)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(err.kind(), ErrorKind::ConnectionReset);
        assert_eq!(err.to_string(), "reset by peer: stream dropped");
    }

    pub async fn node_offline_is_immediate(edge: Arc<dyn Bus>, node: Arc<dyn Bus>) {
        let mut t = Setup::new(edge, node);
        t.cfg.open_timeout = Duration::from_secs(10);
        let started = Instant::now();
        let res = t.open(Target::Ssh).await;
        assert!(matches!(res, Err(OpenError::NodeOffline)), "{res:?}");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
    }

    pub async fn refused_open(edge: Arc<dyn Bus>, node: Arc<dyn Bus>) {
        let t = Setup::new(edge, node);
        let mut listener = t.listener().await;
        tokio::spawn(async move {
            while let Some(incoming) = listener.next().await {
                incoming.reject("port not allowed").await.unwrap();
            }
        });
        match t.open(Target::Port { port: 25 }).await {
            Err(OpenError::Refused(reason)) => assert_eq!(reason, "port not allowed"),
            other => panic!("expected refusal, got {other:?}"),
        }
    }

    pub async fn open_timeout(edge: Arc<dyn Bus>, node: Arc<dyn Bus>) {
        let mut t = Setup::new(edge, node);
        t.cfg.open_timeout = Duration::from_millis(300);
        // Someone holds the node but never answers.
        let _silent = t.node.subscribe(&t.subjects.node_open(NODE)).await.unwrap();
        t.node.flush().await.unwrap();
        let started = Instant::now();
        let res = t.open(Target::Ssh).await;
        assert!(matches!(res, Err(OpenError::Timeout)), "{res:?}");
        assert!(started.elapsed() >= Duration::from_millis(250));
    }

    pub async fn dropped_listener_means_offline(edge: Arc<dyn Bus>, node: Arc<dyn Bus>) {
        let mut t = Setup::new(edge, node);
        t.cfg.open_timeout = Duration::from_millis(200);
        drop(t.listener().await);
        // NATS forgets the subscription asynchronously.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match t.open(Target::Ssh).await {
                Err(OpenError::NodeOffline) => break,
                other if Instant::now() > deadline => panic!("still reachable: {other:?}"),
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    pub async fn peer_vanished(edge: Arc<dyn Bus>, node: Arc<dyn Bus>) {
        let t = Setup::new(edge, node.clone());
        // A hand-made node whose process can freeze: no frames either way, no Reset.
        let frozen = Arc::new(AtomicBool::new(false));
        let mut opens = node.subscribe(&t.subjects.node_open(NODE)).await.unwrap();
        node.flush().await.unwrap();
        let (subjects, cfg, f) = (t.subjects.clone(), t.cfg.clone(), frozen.clone());
        let node_side = tokio::spawn(async move {
            let msg = opens.next().await.unwrap();
            let req: OpenRequest = serde_json::from_slice(&msg.payload).unwrap();
            let mut frames = node
                .subscribe(&subjects.node_stream(NODE, req.stream_id))
                .await
                .unwrap();
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Bytes>();
            let (pub_bus, to_edge, fz) = (
                node.clone(),
                subjects.edge_stream(&req.edge_id, req.stream_id),
                f.clone(),
            );
            tokio::spawn(async move {
                while let Some(frame) = rx.recv().await {
                    if !fz.load(Ordering::SeqCst) {
                        pub_bus.publish(&to_edge, Vec::new(), frame).await.unwrap();
                    }
                }
            });
            let sink = Arc::new(move |frame: Bytes| tx.send(frame).map_err(|_| SinkClosed));
            let (mut s, input) = TunnelStream::new(req.stream_id, sink, cfg);
            tokio::spawn(async move {
                while let Some(m) = frames.next().await {
                    if !f.load(Ordering::SeqCst) {
                        input.deliver(m.payload);
                    }
                }
            });
            let reply = serde_json::to_vec(&OpenReply { error: None }).unwrap();
            node.publish(&msg.reply.unwrap(), Vec::new(), reply.into())
                .await
                .unwrap();
            let mut buf = [0u8; 4];
            s.read_exact(&mut buf).await.unwrap();
            s.write_all(&buf).await.unwrap();
            s // held, never dropped: no Reset
        });
        let mut s = t.open(Target::Ssh).await.unwrap();
        s.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).await.unwrap();
        frozen.store(true, Ordering::SeqCst);
        let started = Instant::now();
        let err = s.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut);
        assert!(err.to_string().starts_with("peer vanished"), "{err}");
        assert!(
            started.elapsed() < t.cfg.idle_timeout + Duration::from_millis(700),
            "{:?}",
            started.elapsed()
        );
        drop(node_side.await.unwrap());
    }

    pub async fn streams_are_independent(edge: Arc<dyn Bus>, node: Arc<dyn Bus>) {
        let t = Setup::new(edge, node);
        let mut listener = t.listener().await;
        let node_side = tokio::spawn(async move {
            let first = listener.next().await.unwrap().accept().await.unwrap();
            let second = listener.next().await.unwrap().accept().await.unwrap();
            drop(first); // resets stream 1 only
            let mut second = second;
            let mut buf = [0u8; 6];
            second.read_exact(&mut buf).await.unwrap();
            second.write_all(&buf).await.unwrap();
            second
        });
        let mut one = t.open(Target::Ssh).await.unwrap();
        let mut two = t.open(Target::Ssh).await.unwrap();
        assert_ne!(one.id(), two.id());
        let err = one.read(&mut [0u8; 1]).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionReset);
        two.write_all(b"second").await.unwrap();
        let mut buf = [0u8; 6];
        two.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"second");
        drop(node_side.await.unwrap());
    }

    pub async fn invalid_ids(edge: Arc<dyn Bus>, node: Arc<dyn Bus>) {
        let t = Setup::new(edge, node);
        for (e, n) in [("bad.edge", NODE), (EDGE, "node.>"), ("", NODE), (EDGE, "")] {
            let res = open(&t.edge, &t.subjects, e, n, Target::Ssh, Vec::new(), &t.cfg).await;
            assert!(
                matches!(res, Err(OpenError::InvalidId)),
                "{e:?} {n:?}: {res:?}"
            );
        }
        assert!(
            listen(t.node.clone(), t.subjects.clone(), "a*b", t.cfg.clone())
                .await
                .is_err()
        );
    }
}

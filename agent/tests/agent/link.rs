//! The edge side of a stand-in gateway's link: control messages in a queue, tunnel frames
//! routed to edge TunnelStreams, as gateway-ws relays them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use phirepass_tunnel::{
    FrameInput, FrameSink, LinkMessage, NodeControl, SinkClosed, StreamConfig, StreamId,
    TunnelStream,
};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use crate::gateway::{WAIT, Ws};

#[derive(Default)]
struct Routes {
    live: HashMap<StreamId, FrameInput>,
    /// Frames that came before the edge made its endpoint (the agent's first credit).
    early: HashMap<StreamId, Vec<Bytes>>,
}

pub struct Link {
    out: mpsc::UnboundedSender<Bytes>,
    controls: mpsc::UnboundedReceiver<NodeControl>,
    skipped: Vec<NodeControl>,
    routes: Arc<Mutex<Routes>>,
}

struct Sink {
    id: StreamId,
    out: mpsc::UnboundedSender<Bytes>,
}

impl FrameSink for Sink {
    fn send(&self, frame: Bytes) -> Result<(), SinkClosed> {
        let message = LinkMessage::Frame {
            stream_id: self.id,
            frame,
        };
        self.out.send(message.encode()).map_err(|_| SinkClosed)
    }
}

impl Link {
    pub fn new(ws: Ws) -> Self {
        let (mut write, mut read) = ws.split();
        let (out, mut outgoing) = mpsc::unbounded_channel::<Bytes>();
        let (controls_tx, controls) = mpsc::unbounded_channel();
        let routes = Arc::new(Mutex::new(Routes::default()));
        tokio::spawn(async move {
            while let Some(bytes) = outgoing.recv().await {
                if write.send(Message::Binary(bytes)).await.is_err() {
                    return;
                }
            }
        });
        let table = routes.clone();
        let pong_tx = out.clone();
        tokio::spawn(async move {
            while let Some(Ok(message)) = read.next().await {
                let Message::Binary(bytes) = message else {
                    continue;
                };
                match LinkMessage::decode(bytes).unwrap() {
                    // A live gateway: the agent's pings are answered (PING_INTERVAL=1 in tests).
                    LinkMessage::Control(NodeControl::Ping { nonce }) => {
                        let pong = LinkMessage::Control(NodeControl::Pong { nonce });
                        let _ = pong_tx.send(pong.encode());
                    }
                    LinkMessage::Control(c) => {
                        let _ = controls_tx.send(c);
                    }
                    LinkMessage::Frame { stream_id, frame } => {
                        let mut routes = table.lock().unwrap();
                        match routes.live.get(&stream_id) {
                            Some(input) => input.deliver(frame),
                            None => routes.early.entry(stream_id).or_default().push(frame),
                        }
                    }
                }
            }
        });
        Self {
            out,
            controls,
            skipped: Vec::new(),
            routes,
        }
    }

    pub fn send(&self, control: NodeControl) {
        self.out
            .send(LinkMessage::Control(control).encode())
            .unwrap();
    }

    /// The first control message `keep` selects; the others stay queued for later calls.
    pub async fn expect(&mut self, keep: impl Fn(&NodeControl) -> bool) -> NodeControl {
        if let Some(at) = self.skipped.iter().position(&keep) {
            return self.skipped.remove(at);
        }
        let next = async {
            loop {
                let c = self.controls.recv().await.expect("link closed");
                if keep(&c) {
                    return c;
                }
                self.skipped.push(c);
            }
        };
        tokio::time::timeout(WAIT, next)
            .await
            .expect("expected message did not arrive")
    }

    /// The edge's endpoint of stream `id` (after the agent accepted it).
    pub fn stream(&self, id: StreamId) -> TunnelStream {
        let sink = Arc::new(Sink {
            id,
            out: self.out.clone(),
        });
        let (stream, input) = TunnelStream::new(id, sink, StreamConfig::default());
        let mut routes = self.routes.lock().unwrap();
        for frame in routes.early.remove(&id).unwrap_or_default() {
            input.deliver(frame);
        }
        routes.live.insert(id, input);
        stream
    }
}

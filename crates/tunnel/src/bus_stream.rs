//! TunnelStreams carried directly over the bus: the edge side ([`open`])
//! and a node side for processes that hold a node on the bus themselves
//! ([`listen`]; agents go through the gateway's relay instead).

use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use phirepass_bus::{Bus, BusError, Headers, Subscription};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::error::OpenError;
use crate::open::{OpenReply, OpenRequest, Target};
use crate::stream::{FrameInput, FrameSink, SinkClosed, StreamConfig, TunnelStream};
use crate::subjects::{StreamId, Subjects, valid_token};

/// Queues frames for a task that publishes them in order to `subject`.
fn bus_sink(bus: Arc<dyn Bus>, subject: String) -> Arc<dyn FrameSink> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Bytes>();
    tokio::spawn(async move {
        while let Some(frame) = rx.recv().await {
            if let Err(e) = bus.publish(&subject, Vec::new(), frame).await {
                warn!(error = %e, subject, "tunnel frame publish failed");
                break;
            }
        }
    });
    Arc::new(move |frame| tx.send(frame).map_err(|_| SinkClosed))
}

/// Feeds a subscription into a stream until the stream is finished.
fn pump(mut sub: Subscription, input: FrameInput) {
    tokio::spawn(async move {
        let closed = input.closed();
        tokio::pin!(closed);
        loop {
            tokio::select! {
                biased;
                _ = &mut closed => break,
                msg = sub.next() => match msg {
                    Some(msg) => input.deliver(msg.payload),
                    None => {
                        input.reset("bus subscription ended");
                        break;
                    }
                },
            }
        }
    });
}

fn reply_body(error: Option<String>) -> Bytes {
    // Serializing an Option<String> cannot fail.
    serde_json::to_vec(&OpenReply { error })
        .map(Bytes::from)
        .unwrap_or_default()
}

/// Opens a stream from edge `edge_id` to node `node_id`, without a ticket (a holder that
/// verifies tickets refuses it: tests of refusals, and nodes that need none).
pub async fn open(
    bus: &Arc<dyn Bus>,
    subjects: &Subjects,
    edge_id: &str,
    node_id: &str,
    target: Target,
    headers: Headers,
    cfg: &StreamConfig,
) -> Result<TunnelStream, OpenError> {
    open_ticketed(
        bus,
        subjects,
        edge_id,
        node_id,
        target,
        headers,
        cfg,
        |_| async { Ok(None) },
    )
    .await
}

/// Opens a stream from edge `edge_id` to node `node_id`. The stream id is chosen first and
/// `ticket` asked for one open of exactly that stream (authz's signed ticket); its error
/// ends the open before anything is sent. Subscribes to the edge's stream subject before
/// asking the node, so no frame from the node is lost.
#[allow(clippy::too_many_arguments)]
pub async fn open_ticketed<F, Fut>(
    bus: &Arc<dyn Bus>,
    subjects: &Subjects,
    edge_id: &str,
    node_id: &str,
    target: Target,
    headers: Headers,
    cfg: &StreamConfig,
    ticket: F,
) -> Result<TunnelStream, OpenError>
where
    F: FnOnce(StreamId) -> Fut,
    Fut: Future<Output = Result<Option<String>, OpenError>>,
{
    if !valid_token(edge_id) || !valid_token(node_id) {
        return Err(OpenError::InvalidId);
    }
    let id = StreamId::random();
    let ticket = ticket(id).await?;
    let sub = bus.subscribe(&subjects.edge_stream(edge_id, id)).await?;
    let request = OpenRequest {
        stream_id: id,
        edge_id: edge_id.to_owned(),
        target,
        window: cfg.window,
        ticket,
    };
    let payload = serde_json::to_vec(&request)
        .map_err(|e| BusError::Other(format!("encoding open request: {e}")))?;
    let answer = match bus
        .request(
            &subjects.node_open(node_id),
            headers,
            payload.into(),
            cfg.open_timeout,
        )
        .await
    {
        Ok(answer) => answer,
        Err(BusError::NoResponders) => return Err(OpenError::NodeOffline),
        Err(BusError::Timeout) => return Err(OpenError::Timeout),
        Err(e) => return Err(e.into()),
    };
    let reply: OpenReply = serde_json::from_slice(&answer.payload)
        .map_err(|e| OpenError::Refused(format!("invalid open reply: {e}")))?;
    if let Some(reason) = reply.error {
        debug!(node = node_id, stream = %id, reason, "open refused");
        return Err(OpenError::Refused(reason));
    }
    let sink = bus_sink(bus.clone(), subjects.node_stream(node_id, id));
    let (stream, input) = TunnelStream::new(id, sink, cfg.clone());
    pump(sub, input);
    debug!(node = node_id, stream = %id, "tunnel stream opened");
    Ok(stream)
}

/// Answers open requests for one node.
pub struct NodeListener {
    bus: Arc<dyn Bus>,
    subjects: Subjects,
    node_id: String,
    cfg: StreamConfig,
    sub: Subscription,
}

/// Subscribes to `node_open(node_id)`. While the listener lives, opens to
/// this node wait for [`IncomingOpen::accept`]/[`IncomingOpen::reject`];
/// after it is dropped they fail with "node offline". Accepted streams
/// keep working after the listener is gone. Returns once the bus has the
/// subscription, so a node registered afterwards is reachable at once.
pub async fn listen(
    bus: Arc<dyn Bus>,
    subjects: Subjects,
    node_id: &str,
    cfg: StreamConfig,
) -> Result<NodeListener, BusError> {
    if !valid_token(node_id) {
        return Err(BusError::Other(format!("invalid node id {node_id:?}")));
    }
    let sub = bus.subscribe(&subjects.node_open(node_id)).await?;
    // NATS registers a subscription asynchronously: without this round trip an
    // open sent right after (by another connection) can meet "no responders".
    bus.flush().await?;
    Ok(NodeListener {
        bus,
        subjects,
        node_id: node_id.to_owned(),
        cfg,
        sub,
    })
}

impl NodeListener {
    /// The next well-formed open request; malformed ones are refused here.
    /// `None` when the bus subscription ended.
    pub async fn next(&mut self) -> Option<IncomingOpen> {
        loop {
            let msg = self.sub.next().await?;
            let Some(reply) = msg.reply else {
                debug!(node = %self.node_id, "open request without reply subject");
                continue;
            };
            let refusal = match serde_json::from_slice::<OpenRequest>(&msg.payload) {
                Ok(request) if valid_token(&request.edge_id) => {
                    return Some(IncomingOpen {
                        bus: self.bus.clone(),
                        subjects: self.subjects.clone(),
                        node_id: self.node_id.clone(),
                        cfg: self.cfg.clone(),
                        headers: msg.headers,
                        request,
                        reply: Some(reply),
                    });
                }
                Ok(_) => "invalid edge id",
                Err(_) => "malformed open request",
            };
            warn!(node = %self.node_id, refusal, "refusing open request");
            if let Err(e) = self
                .bus
                .publish(&reply, Vec::new(), reply_body(Some(refusal.into())))
                .await
            {
                warn!(error = %e, "could not refuse open request");
            }
        }
    }
}

/// An open request waiting for an answer. Dropping it unanswered refuses it.
pub struct IncomingOpen {
    bus: Arc<dyn Bus>,
    subjects: Subjects,
    node_id: String,
    cfg: StreamConfig,
    headers: Headers,
    request: OpenRequest,
    reply: Option<String>,
}

impl IncomingOpen {
    pub fn request(&self) -> &OpenRequest {
        &self.request
    }

    /// Bus headers of the request (trace context).
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// Starts the node's endpoint, then tells the edge it is accepted.
    pub async fn accept(mut self) -> Result<TunnelStream, BusError> {
        let Some(reply) = self.reply.take() else {
            return Err(BusError::Other("open request already answered".into()));
        };
        let id = self.request.stream_id;
        // Subscribe before answering: the edge sends as soon as it hears back.
        let sub = self
            .bus
            .subscribe(&self.subjects.node_stream(&self.node_id, id))
            .await?;
        let sink = bus_sink(
            self.bus.clone(),
            self.subjects.edge_stream(&self.request.edge_id, id),
        );
        let (stream, input) = TunnelStream::new(id, sink, self.cfg.clone());
        pump(sub, input);
        self.bus
            .publish(&reply, Vec::new(), reply_body(None))
            .await?;
        debug!(node = %self.node_id, stream = %id, "tunnel stream accepted");
        Ok(stream)
    }

    pub async fn reject(mut self, reason: &str) -> Result<(), BusError> {
        match self.reply.take() {
            Some(reply) => {
                self.bus
                    .publish(&reply, Vec::new(), reply_body(Some(reason.to_owned())))
                    .await
            }
            None => Ok(()),
        }
    }
}

impl Drop for IncomingOpen {
    fn drop(&mut self) {
        let Some(reply) = self.reply.take() else {
            return;
        };
        let bus = self.bus.clone();
        // Answer now rather than letting the edge wait for its timeout.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = bus
                    .publish(
                        &reply,
                        Vec::new(),
                        reply_body(Some("open request dropped".into())),
                    )
                    .await;
            });
        }
    }
}

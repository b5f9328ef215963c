//! One command run, whoever asks (gRPC or the web UI): resolve and authorize, audit the
//! request, open the stream, relay the agent's records, enforce an overall deadline, audit the
//! result. The caller consumes [`Run::events`]; dropping it cancels the run (the stream is
//! reset, and the agent kills the command's process group).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use phirepass_proto::authz::{AuthorizeRequest, TargetKind};
use phirepass_tunnel::command::{CommandRequest, Record, RecordDecoder, RunResult};
use phirepass_tunnel::{OpenError, Target, TunnelStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{Instrument, info, info_span, warn};

use crate::commands::audit::{AuditLog, Caller, RunFacts};
use crate::commands::nodes::{self, VisibleNode};
use crate::error::GatewayError;
use crate::state::AppState;
use crate::tickets::{self, Opener};

/// The longest a run may take when its node declares no timeout (or a longer one).
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);
/// Beyond the command's own timeout: the agent's kill, its last records and the trip back.
const DEADLINE_MARGIN: Duration = Duration::from_secs(30);
/// After `Done`, how long the agent's `Fin` may take before the stream is dropped anyway.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// Output chunks buffered toward a slow caller before the stream waits for it.
const EVENTS_BUFFER: usize = 16;

/// What a caller asks for.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// Node name or id.
    pub node: String,
    pub command: String,
    pub params: BTreeMap<String, String>,
    /// Generated when empty.
    pub correlation_id: String,
}

/// What a run yields after it started: output as it comes, then exactly one `Finished`.
#[derive(Debug)]
pub enum RunEvent {
    Stdout(Bytes),
    Stderr(Bytes),
    Finished(RunResult),
}

/// A started run: the node answered the open and the command is running.
pub struct Run {
    pub node_id: String,
    pub node_name: String,
    pub correlation_id: String,
    /// Output, then `Finished`, or an error when no result came (lost node, deadline).
    pub events: mpsc::Receiver<Result<RunEvent, GatewayError>>,
}

/// A run's events as a `Stream` (dropping it cancels the run).
pub fn into_stream(
    events: mpsc::Receiver<Result<RunEvent, GatewayError>>,
) -> impl futures_util::Stream<Item = Result<RunEvent, GatewayError>> + Send + 'static {
    futures_util::stream::unfold(events, |mut rx| async move {
        rx.recv().await.map(|event| (event, rx))
    })
}

/// Starts `request` for `caller`; returns once the agent accepted the open, or why nothing ran.
pub async fn start(
    state: &Arc<AppState>,
    caller: &Caller,
    request: RunRequest,
) -> Result<Run, GatewayError> {
    let correlation_id = if request.correlation_id.is_empty() {
        hex::encode(rand::random::<[u8; 16]>())
    } else {
        request.correlation_id
    };
    let command = CommandRequest {
        name: request.command,
        params: request.params,
        correlation_id,
    };
    command
        .validate()
        .map_err(|e| GatewayError::BadRequest(e.to_string()))?;
    let node = authorize(state, caller, &request.node, &command.name).await?;
    let manifest = nodes::manifest(state, &node.node_id, &command.name).await;
    // Without the node's declarations nobody knows which values are secret: record none.
    let params = match &manifest {
        Some(info) => info.redact(&command.params),
        None => command
            .params
            .keys()
            .map(|k| (k.clone(), "<redacted>".to_owned()))
            .collect(),
    };
    let timeout = manifest
        .as_ref()
        .map(|m| Duration::from_secs(m.timeout_secs))
        .filter(|t| !t.is_zero())
        .map_or(MAX_TIMEOUT, |t| t.min(MAX_TIMEOUT));
    let facts = RunFacts {
        correlation_id: command.correlation_id.clone(),
        caller: caller.clone(),
        node_id: node.node_id.clone(),
        node_name: node.name.clone(),
        command: command.name.clone(),
        params,
    };
    let gateway_id = state.config.gateway_id.clone();
    state.audit.request(&gateway_id, &facts).await;
    let span = info_span!("command", node = %node.name, command = %command.name, correlation_id = %command.correlation_id, user = %caller.username);
    let opened = open(state, caller, &node, command)
        .instrument(span.clone())
        .await;
    let stream = match opened {
        Ok(stream) => stream,
        Err(error) => {
            let message = error.public_message();
            span.in_scope(|| info!(reason = %message, "command not started"));
            state
                .audit
                .result(&gateway_id, &facts, None, Some(&message), 0)
                .await;
            return Err(error);
        }
    };
    span.in_scope(|| info!(via = caller.via, "command started"));
    let (tx, events) = mpsc::channel(EVENTS_BUFFER);
    let run = Run {
        node_id: node.node_id,
        node_name: node.name,
        correlation_id: facts.correlation_id.clone(),
        events,
    };
    let pump = Pump {
        audit: state.audit.clone(),
        gateway_id,
        facts,
        deadline: timeout + DEADLINE_MARGIN,
    };
    tokio::spawn(pump.run(stream, tx).instrument(span));
    Ok(run)
}

/// authz's decision on `command:<name>` for the node the caller named. A refusal names its
/// reason only to someone who may see the node at all; to anyone else it is "unknown node".
async fn authorize(
    state: &AppState,
    caller: &Caller,
    node: &str,
    command: &str,
) -> Result<VisibleNode, GatewayError> {
    let request = AuthorizeRequest {
        user_id: caller.user_id.clone(),
        username: String::new(),
        target: node.to_owned(),
        action: format!("command:{command}"),
        client_ip: Some(caller.client_ip.clone()),
        configured_login: String::new(),
        login: None,
    };
    let decision = match state.authz.clone().authorize(request).await {
        Ok(reply) => reply.into_inner(),
        Err(status) if status.code() == tonic::Code::InvalidArgument => {
            return Err(GatewayError::UnknownNode(node.to_owned()));
        }
        Err(status) => return Err(GatewayError::from_status(status, "authorization")),
    };
    let is_node = TargetKind::try_from(decision.target_kind) == Ok(TargetKind::Node);
    if !is_node || decision.target_id.is_empty() {
        return Err(GatewayError::UnknownNode(node.to_owned()));
    }
    if decision.allowed {
        return Ok(VisibleNode {
            node_id: decision.target_id,
            name: decision.target_name,
            reason: decision.reason,
        });
    }
    let visible = nodes::reachable(state, &caller.user_id, &caller.username)
        .await?
        .contains_key(&decision.target_id);
    warn!(user = %caller.username, node, command, reason = %decision.reason, "command refused by authz");
    if visible {
        Err(GatewayError::Denied(decision.reason))
    } else {
        Err(GatewayError::UnknownNode(node.to_owned()))
    }
}

/// Opens the command's stream with authz's ticket for exactly this request.
async fn open(
    state: &AppState,
    caller: &Caller,
    node: &VisibleNode,
    command: CommandRequest,
) -> Result<TunnelStream, GatewayError> {
    let mut headers = Vec::new();
    phirepass_runtime::telemetry::inject(&mut headers);
    let edge = &state.config.gateway_id;
    let target = Target::Command(command);
    let ticket = |id| {
        let opener = Opener::UserId(&caller.user_id);
        tickets::issue(
            &state.authz,
            edge,
            opener,
            &node.node_id,
            &node.node_id,
            &target,
            id,
        )
    };
    phirepass_tunnel::open_ticketed(
        &state.bus,
        &state.subjects,
        edge,
        &node.node_id,
        target.clone(),
        headers,
        &state.stream_config,
        ticket,
    )
    .await
    .map_err(|e| open_error(&node.name, e))
}

/// Refusal prefixes of the agent's limits (agent/src/commands/limits.rs).
const LIMIT_REFUSALS: [&str; 2] = ["agent busy", "rate limited"];

fn open_error(node: &str, error: OpenError) -> GatewayError {
    match error {
        OpenError::NodeOffline => GatewayError::Offline(node.to_owned()),
        OpenError::Refused(reason) if LIMIT_REFUSALS.iter().any(|p| reason.starts_with(p)) => {
            GatewayError::Busy(reason)
        }
        OpenError::Refused(reason) => GatewayError::Refused(reason),
        OpenError::Timeout => {
            GatewayError::NodeTimeout(format!("node {node} did not answer in time; try again"))
        }
        OpenError::NoTicket(reason) if reason == "access denied" => {
            GatewayError::Denied("no grant for this command".into())
        }
        other => GatewayError::Unavailable(format!("opening a command stream: {other}")),
    }
}

/// How the relay of one run ended.
enum Ended {
    Done(RunResult),
    Failed(GatewayError),
    /// The caller went away (gRPC call cancelled, HTTP client gone).
    Cancelled,
}

struct Pump {
    audit: AuditLog,
    gateway_id: String,
    facts: RunFacts,
    deadline: Duration,
}

impl Pump {
    async fn run(self, mut stream: TunnelStream, tx: mpsc::Sender<Result<RunEvent, GatewayError>>) {
        let started = Instant::now();
        let ended = relay(&mut stream, &tx, self.deadline).await;
        if matches!(ended, Ended::Done(_)) {
            // The agent's Fin follows its Done: let it arrive, so the stream closes cleanly.
            let mut rest = [0u8; 512];
            let _ = tokio::time::timeout(CLOSE_GRACE, stream.read(&mut rest)).await;
        }
        // Dropping an unfinished stream resets it: the agent kills the command.
        drop(stream);
        let elapsed = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let (result, error) = match &ended {
            Ended::Done(result) => (Some(result), None),
            Ended::Failed(error) => (None, Some(error.public_message())),
            Ended::Cancelled => (None, Some("cancelled by the caller".to_owned())),
        };
        info!(
            exit_code = ?result.and_then(|r| r.exit_code),
            error = ?error,
            duration_ms = elapsed,
            "command ended"
        );
        self.audit
            .result(
                &self.gateway_id,
                &self.facts,
                result,
                error.as_deref(),
                elapsed,
            )
            .await;
        let last = match ended {
            Ended::Done(result) => Ok(RunEvent::Finished(result)),
            Ended::Failed(error) => Err(error),
            Ended::Cancelled => return,
        };
        let _ = tx.send(last).await;
    }
}

/// Relays the agent's records to the caller until `Done`, the deadline, a broken stream or
/// the caller's leaving.
async fn relay(
    stream: &mut TunnelStream,
    tx: &mpsc::Sender<Result<RunEvent, GatewayError>>,
    deadline: Duration,
) -> Ended {
    // The edge sends nothing but its Fin.
    if let Err(e) = stream.shutdown().await {
        return Ended::Failed(GatewayError::NodeLost(format!(
            "the node's stream failed: {e}"
        )));
    }
    let until = Instant::now() + deadline;
    let mut decoder = RecordDecoder::new();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let read = tokio::select! {
            _ = tx.closed() => return Ended::Cancelled,
            _ = tokio::time::sleep_until(until) => {
                return Ended::Failed(GatewayError::NodeTimeout(format!(
                    "no result from the node within {} s; the run was cancelled",
                    deadline.as_secs()
                )));
            }
            read = stream.read(&mut buf) => read,
        };
        let n = match read {
            Ok(0) => {
                return Ended::Failed(GatewayError::NodeLost(
                    "the node closed the run without a result".into(),
                ));
            }
            Ok(n) => n,
            Err(e) => {
                return Ended::Failed(GatewayError::NodeLost(format!(
                    "the node's stream broke: {e}"
                )));
            }
        };
        decoder.push(&buf[..n]);
        loop {
            let event = match decoder.next_record() {
                Ok(None) => break,
                Ok(Some(Record::Done(result))) => return Ended::Done(result),
                Ok(Some(Record::Stdout(bytes))) => RunEvent::Stdout(bytes),
                Ok(Some(Record::Stderr(bytes))) => RunEvent::Stderr(bytes),
                Err(e) => {
                    return Ended::Failed(GatewayError::NodeLost(format!(
                        "the node sent a malformed record: {e}"
                    )));
                }
            };
            if tx.send(Ok(event)).await.is_err() {
                return Ended::Cancelled;
            }
        }
    }
}

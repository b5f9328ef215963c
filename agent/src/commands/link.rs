//! A command open on the gateway link: the ticket was checked by the caller
//! ([`crate::streams::open`]); here the request's shape, the host's declarations and the
//! limits decide. Refusals answer `open_result` with the reason; an accepted run streams
//! output records toward the edge, then exactly one `Done`, then `Fin`. Every refusal, start
//! and finish is an `Audit` link message with secret parameters redacted.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use phirepass_tunnel::command::{AgentAudit, CommandRequest, Record, RunResult};
use phirepass_tunnel::{NodeControl, StreamId, TunnelStream};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::Instrument as _;

use super::{Admitted, Job, exec};
use crate::streams::{LinkSink, OpenCtx, send_control};

/// How long the edge has to send its `Fin` after ours before the stream is dropped.
const EDGE_FIN_WAIT: Duration = Duration::from_secs(30);
/// Output records waiting for the link, per run.
const RECORD_QUEUE: usize = 16;

/// Answers a command open whose ticket passed. `user` is the ticket's user.
pub(crate) fn open(ctx: &OpenCtx, id: StreamId, request: &CommandRequest, user: &str) {
    let admitted = request
        .validate()
        .map_err(|e| format!("malformed command request: {e}"))
        .and_then(|()| ctx.commands.admit(request));
    let admitted =
        match admitted.and_then(|a| ctx.streams.reserve(id).map(|()| a).map_err(str::to_owned)) {
            Ok(admitted) => admitted,
            Err(reason) => return refuse(ctx, id, request, user, reason),
        };
    let span = tracing::info_span!("command", stream_id = %id, command = %request.name, correlation_id = %request.correlation_id);
    ctx.tasks
        .spawn(run(ctx.clone(), id, request.clone(), user.to_owned(), admitted).instrument(span));
}

/// Refuses an open: `open_result` with the reason, and an audit event saying why.
pub(crate) fn refuse(
    ctx: &OpenCtx,
    id: StreamId,
    request: &CommandRequest,
    user: &str,
    reason: String,
) {
    tracing::info!(stream_id = %id, command = %request.name, correlation_id = %request.correlation_id, %user, %reason, "command refused");
    let _ = send_control(
        &ctx.tx,
        NodeControl::OpenResult {
            stream_id: id,
            error: Some(reason.clone()),
        },
    );
    audit(ctx, "command.refused", request, user, |event| {
        event.reason = Some(reason)
    });
}

/// Sends an audit event for `request`, filled in by `fill`.
fn audit(
    ctx: &OpenCtx,
    action: &str,
    request: &CommandRequest,
    user: &str,
    fill: impl FnOnce(&mut AgentAudit),
) {
    let mut event = AgentAudit {
        action: action.to_owned(),
        correlation_id: request.correlation_id.chars().take(64).collect(),
        command: request.name.chars().take(64).collect(),
        params: redacted(ctx, request),
        user: user.to_owned(),
        reason: None,
        exit_code: None,
        duration_ms: None,
        ts: u64::try_from(phirepass_runtime::clock::now_millis()).unwrap_or_default(),
    };
    fill(&mut event);
    let _ = send_control(&ctx.tx, NodeControl::Audit { event });
}

/// The request's parameters as an audit record may show them: secrets of a known command
/// redacted; every value redacted for a name this host does not know (nobody declared which
/// of them are secret).
fn redacted(ctx: &OpenCtx, request: &CommandRequest) -> BTreeMap<String, String> {
    match ctx.commands.info(&request.name) {
        Some(info) => info.redact(&request.params),
        None => request
            .params
            .keys()
            .map(|k| (k.clone(), "<redacted>".to_owned()))
            .collect(),
    }
}

async fn run(
    ctx: OpenCtx,
    id: StreamId,
    request: CommandRequest,
    user: String,
    admitted: Admitted,
) {
    let sink = Arc::new(LinkSink::new(id, ctx.tx.clone()));
    let (tunnel, input) = TunnelStream::new(id, sink, ctx.stream_cfg.clone());
    if !ctx.streams.activate(id, input.clone()) {
        return; // the link went away meanwhile; dropping resets
    }
    let accepted = NodeControl::OpenResult {
        stream_id: id,
        error: None,
    };
    if send_control(&ctx.tx, accepted).is_err() {
        ctx.streams.remove(id);
        return;
    }
    tracing::info!(%user, "command started");
    audit(&ctx, "command.started", &request, &user, |_| {});

    let (mut reader, mut writer) = tokio::io::split(tunnel);
    let mut edge_finished = false;
    let Admitted { job, slot } = admitted;
    let result = {
        // The edge sends nothing but its Fin: an error (reset, link lost) cancels the run.
        let cancel = edge_reset(&mut reader, &mut edge_finished);
        let (records, mut queue) = mpsc::channel::<Record>(RECORD_QUEUE);
        let job = async {
            match job {
                Job::Declared(prepared) => exec::run(&prepared, records, cancel).await,
                Job::Builtin { name, params } => {
                    builtin(&ctx, &name, &params, records, cancel).await
                }
            }
        };
        let forward = async {
            let mut open = true;
            while let Some(record) = queue.recv().await {
                open = open && write(&mut writer, &record).await.is_ok();
            }
        };
        let (result, ()) = tokio::join!(job, forward);
        result
    };
    drop(slot);
    let _ = write(&mut writer, &Record::Done(result.clone())).await;
    let _ = writer.shutdown().await;
    tracing::info!(exit_code = ?result.exit_code, duration_ms = result.duration_ms, timed_out = result.timed_out, error = ?result.error, "command finished");
    audit(&ctx, "command.finished", &request, &user, |event| {
        event.exit_code = result.exit_code;
        event.duration_ms = Some(result.duration_ms);
        event.reason = result.error.clone();
    });
    // Dropping before the edge's Fin would reset the stream under output still in flight.
    if !edge_finished {
        let _ =
            tokio::time::timeout(EDGE_FIN_WAIT, edge_reset(&mut reader, &mut edge_finished)).await;
    }
    drop(reader.unsplit(writer));
    input.closed().await;
    ctx.streams.remove(id);
}

/// Resolves when the edge resets the stream (or the link dies); after the edge's `Fin` it
/// only notes it and waits on.
async fn edge_reset(reader: &mut (impl AsyncRead + Unpin), finished: &mut bool) {
    let mut buf = [0u8; 512];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) => {
                *finished = true;
                return std::future::pending().await;
            }
            Ok(_) => {} // nothing is expected from the edge: ignored
            Err(_) => return,
        }
    }
}

async fn write(writer: &mut (impl AsyncWrite + Unpin), record: &Record) -> std::io::Result<()> {
    let mut buf = BytesMut::new();
    record.encode(&mut buf);
    writer.write_all(&buf).await
}

/// Runs an enabled built-in within its declared timeout and output limit.
async fn builtin(
    ctx: &OpenCtx,
    name: &str,
    params: &BTreeMap<String, String>,
    records: mpsc::Sender<Record>,
    cancel: impl std::future::Future<Output = ()>,
) -> RunResult {
    let started = Instant::now();
    let info = ctx.commands.info(name);
    let timeout = Duration::from_secs(info.as_ref().map_or(30, |i| i.timeout_secs.max(1)));
    let limit = info.as_ref().map_or(u64::MAX, |i| i.output_limit_bytes);
    let config = &ctx.commands.host().builtin;
    let outcome = tokio::select! {
        outcome = tokio::time::timeout(timeout, crate::builtin::run(name, params, config)) => outcome,
        () = cancel => return RunResult {
            error: Some("cancelled by the caller".to_owned()),
            duration_ms: elapsed_ms(started),
            ..RunResult::default()
        },
    };
    let mut result = RunResult::default();
    match outcome {
        Ok(Some(Ok(output))) => {
            result.exit_code = Some(0);
            result.stdout_bytes = output.len() as u64;
            let keep = usize::try_from(limit)
                .unwrap_or(usize::MAX)
                .min(output.len());
            result.stdout_truncated = keep < output.len();
            let mut output = Bytes::from(output);
            output.truncate(keep);
            for record in Record::output_chunks(false, output) {
                if records.send(record).await.is_err() {
                    break;
                }
            }
        }
        Ok(Some(Err(reason))) => result.error = Some(reason),
        Ok(None) => result.error = Some(format!("built-in {name:?} is turned off on this host")),
        Err(_) => {
            result.timed_out = true;
            result.error = Some(format!("timed out after {} s", timeout.as_secs()));
        }
    }
    result.duration_ms = elapsed_ms(started);
    result
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

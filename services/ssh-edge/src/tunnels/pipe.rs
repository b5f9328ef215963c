//! One TunnelStream bridged to one SSH channel, both ways, with half-close: EOF from either
//! side is passed on and the other direction keeps flowing. Writes into the channel wait for
//! the client's SSH window and writes into the stream wait for credit, so memory stays
//! bounded whichever side is slow.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use futures_util::FutureExt;
use phirepass_tunnel::TunnelStream;
use russh::server::Msg;
use russh::{Channel, ChannelMsg, ChannelReadHalf, ChannelWriteHalf};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};

use super::Counters;

const CHUNK: usize = 32 * 1024;
/// Largest write gathered from already-received channel data (see `channel_to_stream`).
const BATCH: usize = 128 * 1024;

/// How the channel side ended.
enum ChannelEnd {
    /// The client sent EOF: the stream was shut down for writing.
    Eof,
    /// The client closed the channel or the connection went away.
    Closed,
    /// The stream refused a write (reset or gone).
    StreamFailed,
}

/// Bridges until both directions are done or one side fails. `counters` (the holder side of
/// a tunnel) counts bytes toward the channel as `bytes_in`. Returns (to channel, from channel).
pub(super) async fn bridge(
    stream: TunnelStream,
    channel: Channel<Msg>,
    counters: &Counters,
) -> (u64, u64) {
    let (mut sr, mut sw) = tokio::io::split(stream);
    let (mut crx, ctx) = channel.split();
    let mut to_channel = 0u64;
    let mut from_channel = 0u64;
    {
        let up = stream_to_channel(&mut sr, &ctx, counters, &mut to_channel);
        let down = channel_to_stream(&mut crx, &mut sw, counters, &mut from_channel);
        tokio::pin!(up, down);
        let (mut up_done, mut down_done) = (false, false);
        while !(up_done && down_done) {
            tokio::select! {
                ok = &mut up, if !up_done => {
                    up_done = true;
                    if !ok {
                        break;
                    }
                }
                end = &mut down, if !down_done => {
                    down_done = true;
                    if !matches!(end, ChannelEnd::Eof) {
                        break;
                    }
                }
            }
        }
    }
    // Dropping an unfinished stream resets it, so the far side learns this end gave up.
    drop(sr.unsplit(sw));
    let _ = ctx.eof().await;
    let _ = ctx.close().await;
    (to_channel, from_channel)
}

/// `true` when the stream ended cleanly (its EOF was passed on).
async fn stream_to_channel(
    sr: &mut ReadHalf<TunnelStream>,
    ctx: &ChannelWriteHalf<Msg>,
    counters: &Counters,
    total: &mut u64,
) -> bool {
    let mut writer = ctx.make_writer();
    let mut buf = vec![0u8; CHUNK];
    loop {
        match sr.read(&mut buf).await {
            Ok(0) => {
                let _ = writer.flush().await;
                return ctx.eof().await.is_ok();
            }
            Ok(n) => {
                if writer.write_all(&buf[..n]).await.is_err() {
                    return false;
                }
                *total += n as u64;
                counters.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(error) => {
                tracing::debug!(%error, "tunnel stream failed");
                return false;
            }
        }
    }
}

async fn channel_to_stream(
    crx: &mut ChannelReadHalf,
    sw: &mut WriteHalf<TunnelStream>,
    counters: &Counters,
    total: &mut u64,
) -> ChannelEnd {
    let mut batch = Vec::new();
    // A message read while gathering data, handled before waiting again.
    let mut leftover = None;
    loop {
        let msg = match leftover.take() {
            Some(msg) => Some(msg),
            None => crx.wait().await,
        };
        match msg {
            Some(ChannelMsg::Data { data }) => {
                let Ok((written, next)) = write_gathered(data, crx, sw, &mut batch).await else {
                    return ChannelEnd::StreamFailed;
                };
                leftover = next;
                *total += written;
                counters.bytes_out.fetch_add(written, Ordering::Relaxed);
            }
            Some(ChannelMsg::Eof) => {
                return if sw.shutdown().await.is_ok() {
                    ChannelEnd::Eof
                } else {
                    ChannelEnd::StreamFailed
                };
            }
            None | Some(ChannelMsg::Close) => return ChannelEnd::Closed,
            Some(_) => {}
        }
    }
}

/// Writes `first` plus whatever channel data has already arrived (up to [`BATCH`]) in one
/// write: SSH packets carry at most 32 KiB, and each stream frame costs a bus message. Copies
/// only when there is more than one packet to join. Returns the bytes written and a non-data
/// message read on the way (the channel's end reads as `Close`).
async fn write_gathered(
    first: Bytes,
    crx: &mut ChannelReadHalf,
    sw: &mut WriteHalf<TunnelStream>,
    batch: &mut Vec<u8>,
) -> std::io::Result<(u64, Option<ChannelMsg>)> {
    let mut next = None;
    batch.clear();
    while batch.len().max(first.len()) < BATCH {
        match crx.wait().now_or_never() {
            Some(Some(ChannelMsg::Data { data })) => {
                if batch.is_empty() {
                    batch.extend_from_slice(&first);
                }
                batch.extend_from_slice(&data);
            }
            Some(other) => {
                next = Some(other.unwrap_or(ChannelMsg::Close));
                break;
            }
            None => break,
        }
    }
    let bytes: &[u8] = if batch.is_empty() { &first } else { batch };
    sw.write_all(bytes).await?;
    Ok((bytes.len() as u64, next))
}

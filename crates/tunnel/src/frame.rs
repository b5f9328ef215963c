//! Tunnel frames: the messages two TunnelStream endpoints exchange.
//!
//! # Wire format
//!
//! One frame per bus message (or per `LinkMessage::Frame` on the agent
//! WebSocket); the stream id is in the subject (or the link header), not in
//! the frame. The first byte is the frame type; integers are big-endian;
//! every frame has an exact length except where a trailing field takes the
//! rest. Anything else (empty input, unknown type, short or long frame,
//! empty data, over-long or non-UTF-8 reason) is rejected with a
//! [`DecodeError`], and a stream that receives it resets.
//!
//! | type | frame   | body                                   | size       |
//! |------|---------|----------------------------------------|------------|
//! | 0x01 | `Data`  | `seq: u64`, payload (rest, ≥ 1 byte)   | 10..       |
//! | 0x02 | `Fin`   | `seq: u64`                             | 9          |
//! | 0x03 | `Ack`   | `next: u64`, `limit: u64`              | 17         |
//! | 0x04 | `Nack`  | `next: u64`, `limit: u64`              | 17         |
//! | 0x05 | `Reset` | reason, UTF-8 (rest, ≤ 512 bytes)      | 1..=513    |
//! | 0x06 | `Ping`  | `nonce: u64`                           | 9          |
//! | 0x07 | `Pong`  | `nonce: u64`                           | 9          |
//!
//! # Rules
//!
//! * **Sequence.** Each direction numbers its `Data` and `Fin` frames
//!   0, 1, 2, ... (one shared space, so `Fin` is ordered after all data).
//!   The receiver accepts only `seq == next_expected`; a lower `seq` is a
//!   duplicate (dropped; an `Ack` follows shortly), a higher one is a gap:
//!   the frame is dropped and the receiver sends `Nack{next}`, again if
//!   frames keep arriving past the same gap (after `retransmit_after`,
//!   doubling, capped at 8x; after 12 repeats the stream fails with "stream
//!   gap could not be recovered"). Bytes are therefore delivered in order,
//!   exactly once, or not at all.
//! * **Acknowledgement and credit.** `Ack{next, limit}` says "I have every
//!   frame below `next`" and "you may send payload bytes up to `limit`",
//!   counted cumulatively from the start of the stream. `limit` only grows:
//!   it is the bytes the receiving application has consumed plus the window,
//!   re-advertised when a quarter of the window has been consumed, so a slow
//!   reader throttles the sender and the receive buffer never exceeds the
//!   window. Data past the granted limit is a protocol violation (`Reset`).
//!   Each endpoint sends `Ack{0, window}` when it starts, and acknowledges
//!   received data within `retransmit_after / 8` even if it is not read.
//! * **Replay.** The sender keeps every unacknowledged `Data`/`Fin` frame
//!   (never more than the window, because credit bounds it). `Nack{next}`
//!   acknowledges below `next` and makes the sender resend from `next`
//!   (go-back-N). If nothing is acknowledged for `retransmit_after`
//!   (doubling, capped at 8x) the sender resends from its oldest
//!   unacknowledged frame; this recovers a lost tail and lost acks. A peer
//!   that keeps answering but acknowledges nothing for 12 such rounds fails
//!   the stream ("stream gap could not be recovered").
//! * **Probes and keepalive.** A `Ping` is answered with `Ack` (the current
//!   credit) and `Pong`. A writer that has waited for credit for
//!   `retransmit_after` sends a `Ping`, so a lost credit update cannot stall
//!   the stream. An endpoint that heard nothing for `keepalive` sends a
//!   `Ping`; one that heard nothing for `idle_timeout` fails with
//!   "peer vanished".
//! * **Ending.** `Fin` is a half-close: the reader sees EOF after all data
//!   before it. `Reset{reason}` aborts both directions; the peer's reads and
//!   writes fail with `reset by peer: <reason>`. Dropping an endpoint that
//!   has not both sent and received `Fin` sends `Reset`. A lost `Reset` is
//!   caught by the idle timeout.
//!
//! # Opening over the bus
//!
//! 1. The edge subscribes `edge_stream(edge, id)`, then requests
//!    `node_open(node)` with a JSON [`OpenRequest`](crate::OpenRequest)
//!    (trace context in bus headers). "No responders" = node offline.
//! 2. The node's holder subscribes `node_stream(node, id)`, starts its
//!    endpoint (which sends `Ack{0, window}` toward the edge) and answers
//!    with a JSON [`OpenReply`](crate::OpenReply) (`error: null` = accepted).
//! 3. The edge starts its endpoint (sending its own `Ack{0, window}`); the
//!    node's frames that arrived meanwhile wait in the edge's subscription.
//!
//! For agents the gateway holds the node and relays frames verbatim between
//! the bus and the agent's WebSocket; the agent is the endpoint.

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::DecodeError;

pub const DATA: u8 = 0x01;
pub const FIN: u8 = 0x02;
pub const ACK: u8 = 0x03;
pub const NACK: u8 = 0x04;
pub const RESET: u8 = 0x05;
pub const PING: u8 = 0x06;
pub const PONG: u8 = 0x07;

/// Bytes before the payload of a `Data` frame.
pub const DATA_HEADER: usize = 9;
/// Longest `Reset` reason on the wire; longer reasons are truncated.
pub const MAX_REASON: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Data { seq: u64, payload: Bytes },
    Fin { seq: u64 },
    Ack { next: u64, limit: u64 },
    Nack { next: u64, limit: u64 },
    Reset { reason: String },
    Ping { nonce: u64 },
    Pong { nonce: u64 },
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut raw = [0u8; 8];
    raw.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(raw)
}

fn exact(b: &[u8], len: usize, what: &'static str) -> Result<(), DecodeError> {
    match b.len() {
        n if n < len => Err(DecodeError::Truncated(what)),
        n if n > len => Err(DecodeError::TrailingBytes(what)),
        _ => Ok(()),
    }
}

/// Cuts `reason` to at most [`MAX_REASON`] bytes on a character boundary.
fn clip(reason: &str) -> &str {
    if reason.len() <= MAX_REASON {
        return reason;
    }
    let mut end = MAX_REASON;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

impl Frame {
    pub fn decode(b: Bytes) -> Result<Frame, DecodeError> {
        let Some(&kind) = b.first() else {
            return Err(DecodeError::Empty);
        };
        match kind {
            DATA => {
                if b.len() < DATA_HEADER {
                    return Err(DecodeError::Truncated("data frame"));
                }
                if b.len() == DATA_HEADER {
                    return Err(DecodeError::EmptyPayload);
                }
                let seq = u64_at(&b, 1);
                Ok(Frame::Data {
                    seq,
                    payload: b.slice(DATA_HEADER..),
                })
            }
            FIN => exact(&b, 9, "fin frame").map(|()| Frame::Fin { seq: u64_at(&b, 1) }),
            ACK | NACK => {
                exact(&b, 17, "ack frame")?;
                let (next, limit) = (u64_at(&b, 1), u64_at(&b, 9));
                Ok(if kind == ACK {
                    Frame::Ack { next, limit }
                } else {
                    Frame::Nack { next, limit }
                })
            }
            RESET => {
                if b.len() - 1 > MAX_REASON {
                    return Err(DecodeError::ReasonTooLong(b.len() - 1));
                }
                let reason = std::str::from_utf8(&b[1..]).map_err(|_| DecodeError::InvalidUtf8)?;
                Ok(Frame::Reset {
                    reason: reason.to_owned(),
                })
            }
            PING | PONG => {
                exact(&b, 9, "ping frame")?;
                let nonce = u64_at(&b, 1);
                Ok(if kind == PING {
                    Frame::Ping { nonce }
                } else {
                    Frame::Pong { nonce }
                })
            }
            other => Err(DecodeError::UnknownFrameType(other)),
        }
    }

    pub fn encode(&self) -> Bytes {
        match self {
            Frame::Data { seq, payload } => encode_data(*seq, payload),
            Frame::Fin { seq } => word(FIN, *seq),
            Frame::Ack { next, limit } => pair(ACK, *next, *limit),
            Frame::Nack { next, limit } => pair(NACK, *next, *limit),
            Frame::Reset { reason } => reset_frame(reason),
            Frame::Ping { nonce } => word(PING, *nonce),
            Frame::Pong { nonce } => word(PONG, *nonce),
        }
    }
}

fn word(kind: u8, v: u64) -> Bytes {
    let mut b = BytesMut::with_capacity(9);
    b.put_u8(kind);
    b.put_u64(v);
    b.freeze()
}

fn pair(kind: u8, a: u64, c: u64) -> Bytes {
    let mut b = BytesMut::with_capacity(17);
    b.put_u8(kind);
    b.put_u64(a);
    b.put_u64(c);
    b.freeze()
}

/// A `Data` frame; copies `payload` once.
pub fn encode_data(seq: u64, payload: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(DATA_HEADER + payload.len());
    b.put_u8(DATA);
    b.put_u64(seq);
    b.extend_from_slice(payload);
    b.freeze()
}

/// A `Reset` frame, e.g. for a relay telling an endpoint its peer is gone.
pub fn reset_frame(reason: &str) -> Bytes {
    let reason = clip(reason);
    let mut b = BytesMut::with_capacity(1 + reason.len());
    b.put_u8(RESET);
    b.extend_from_slice(reason.as_bytes());
    b.freeze()
}

/// Whether raw frame bytes are a `Reset`, without decoding them (relays use
/// this to forget a stream's route).
pub fn is_reset(frame: &[u8]) -> bool {
    frame.first() == Some(&RESET)
}

/// A `Data` frame whose sequence number is filled in later, so the payload
/// copy happens outside the stream's lock.
pub(crate) fn data_unsequenced(payload: &[u8]) -> BytesMut {
    let mut b = BytesMut::with_capacity(DATA_HEADER + payload.len());
    b.put_u8(DATA);
    b.put_u64(0);
    b.extend_from_slice(payload);
    b
}

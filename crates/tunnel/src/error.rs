//! Errors of this crate. Stream I/O itself fails with `std::io::Error`
//! (that is what `AsyncRead`/`AsyncWrite` return); its messages are listed
//! in [`crate::stream`].

#[cfg(feature = "bus")]
use phirepass_bus::BusError;

/// Malformed wire input: a tunnel frame or an agent link message.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("empty message")]
    Empty,
    #[error("unknown frame type 0x{0:02x}")]
    UnknownFrameType(u8),
    #[error("unknown link message kind 0x{0:02x}")]
    UnknownLinkKind(u8),
    #[error("truncated {0}")]
    Truncated(&'static str),
    #[error("trailing bytes after {0}")]
    TrailingBytes(&'static str),
    #[error("data frame without payload")]
    EmptyPayload,
    #[error("reset reason too long ({0} bytes)")]
    ReasonTooLong(usize),
    #[error("reset reason is not utf-8")]
    InvalidUtf8,
    #[error("invalid control message: {0}")]
    Json(#[from] serde_json::Error),
}

/// The agent link decoder's error (the same type as the frame decoder's).
pub type LinkError = DecodeError;

/// Why `open()` (feature `bus`) could not open a stream.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Nobody holds the node's connection (NATS "no responders"), reported at once.
    #[error("node offline")]
    NodeOffline,
    #[error("node refused: {0}")]
    Refused(String),
    #[error("node did not answer in time")]
    Timeout,
    #[cfg(feature = "bus")]
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error("invalid id")]
    InvalidId,
    /// authz gave no ticket for the open (denied, or unreachable): nothing was sent.
    #[error("no ticket: {0}")]
    NoTicket(String),
}

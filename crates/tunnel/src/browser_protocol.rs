//! The browser WebSocket protocol (`GET /api/web/ws`), documented in `docs/protocol.md`.
//!
//! Every WebSocket binary message holds exactly one frame:
//! `[protocol: u8][length: u32 big-endian][payload: length bytes]`.
//! `protocol = 0` (Control) carries a JSON [`WebControl`]; `protocol = 1` (SSH) carries raw
//! terminal bytes (TunnelData): keystrokes toward the node, output toward the browser.

use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};

pub const PROTOCOL_CONTROL: u8 = 0;
pub const PROTOCOL_SSH: u8 = 1;
pub const HEADER_LEN: usize = 5;
/// Largest payload a client may send; anything larger is refused before it is buffered.
pub const MAX_PAYLOAD: usize = 256 * 1024;

#[derive(Debug, Clone, PartialEq)]
pub enum WebFrame {
    Control(WebControl),
    /// TunnelData: terminal bytes.
    Ssh(Bytes),
}

/// Control messages, JSON with a `type` tag.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WebControl {
    /// Either direction; keeps idle connections alive and proves liveness.
    Heartbeat,
    /// Client → gateway, first message, when no session cookie came with the upgrade.
    Auth { token: String },
    /// Client → gateway: open a terminal on `node` (name or id) as the target's `username`.
    OpenTunnel {
        node: String,
        username: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        password: Option<String>,
        #[serde(default = "default_cols")]
        cols: u32,
        #[serde(default = "default_rows")]
        rows: u32,
    },
    /// Client → gateway: the terminal's size changed.
    Resize { cols: u32, rows: u32 },
    /// Gateway → client: the terminal ended (shell exit, kick, node gone). Client → gateway: close it.
    TunnelClosed {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exit_status: Option<u32>,
    },
    /// Gateway → client: something failed; `kind` says whether a password would help.
    Error { kind: ErrorKind, message: String },
    /// Gateway → client: the previous request succeeded (auth, or terminal open with its session id).
    Ok {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session_id: Option<String>,
    },
}

fn default_cols() -> u32 {
    80
}
fn default_rows() -> u32 {
    24
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    Generic,
    RequiresPassword,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FrameError {
    #[error("frame shorter than its 5-byte header")]
    Truncated,
    #[error("frame declares {declared} payload bytes but carries {actual}")]
    LengthMismatch { declared: usize, actual: usize },
    #[error("frame payload of {0} bytes exceeds the {MAX_PAYLOAD}-byte limit")]
    TooLarge(usize),
    #[error("unknown protocol byte {0}")]
    UnknownProtocol(u8),
    #[error("invalid control message: {0}")]
    BadControl(String),
}

impl WebFrame {
    pub fn control(msg: WebControl) -> Self {
        Self::Control(msg)
    }

    pub fn error(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self::Control(WebControl::Error {
            kind,
            message: message.into(),
        })
    }

    pub fn encode(&self) -> Bytes {
        match self {
            Self::Control(msg) => {
                // Serialising a plain enum of strings and integers cannot fail.
                let json = serde_json::to_vec(msg).unwrap_or_default();
                encode_raw(PROTOCOL_CONTROL, &json)
            }
            Self::Ssh(data) => encode_raw(PROTOCOL_SSH, data),
        }
    }

    /// Decodes one WebSocket message. The length is checked before anything is parsed.
    pub fn decode(msg: Bytes) -> Result<Self, FrameError> {
        if msg.len() < HEADER_LEN {
            return Err(FrameError::Truncated);
        }
        let protocol = msg[0];
        let declared = u32::from_be_bytes([msg[1], msg[2], msg[3], msg[4]]) as usize;
        if declared > MAX_PAYLOAD {
            return Err(FrameError::TooLarge(declared));
        }
        let actual = msg.len() - HEADER_LEN;
        if declared != actual {
            return Err(FrameError::LengthMismatch { declared, actual });
        }
        let payload = msg.slice(HEADER_LEN..);
        match protocol {
            PROTOCOL_CONTROL => serde_json::from_slice(&payload)
                .map(Self::Control)
                .map_err(|e| FrameError::BadControl(e.to_string())),
            PROTOCOL_SSH => Ok(Self::Ssh(payload)),
            other => Err(FrameError::UnknownProtocol(other)),
        }
    }
}

fn encode_raw(protocol: u8, payload: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(HEADER_LEN + payload.len());
    buf.put_u8(protocol);
    buf.put_u32(payload.len() as u32);
    buf.put_slice(payload);
    buf.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let frames = [
            WebFrame::Control(WebControl::OpenTunnel {
                node: "web-1".into(),
                username: "alice".into(),
                password: Some("pw".into()),
                cols: 120,
                rows: 40,
            }),
            WebFrame::Control(WebControl::Resize { cols: 1, rows: 2 }),
            WebFrame::error(ErrorKind::RequiresPassword, "password required"),
            WebFrame::Ssh(Bytes::from_static(b"ls\r")),
        ];
        for f in frames {
            assert_eq!(WebFrame::decode(f.encode()), Ok(f));
        }
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(
            WebFrame::decode(Bytes::from_static(&[0, 0])),
            Err(FrameError::Truncated)
        );
        assert_eq!(
            WebFrame::decode(Bytes::from_static(&[1, 0xff, 0xff, 0xff, 0xff, 1])),
            Err(FrameError::TooLarge(0xffff_ffff))
        );
        assert_eq!(
            WebFrame::decode(Bytes::from_static(&[1, 0, 0, 0, 3, 1])),
            Err(FrameError::LengthMismatch {
                declared: 3,
                actual: 1
            })
        );
        assert_eq!(
            WebFrame::decode(Bytes::from_static(&[7, 0, 0, 0, 0])),
            Err(FrameError::UnknownProtocol(7))
        );
        assert!(matches!(
            WebFrame::decode(encode_raw(0, b"{not json")),
            Err(FrameError::BadControl(_))
        ));
        assert!(matches!(
            WebFrame::decode(encode_raw(0, br#"{"type":"open_tunnel"}"#)),
            Err(FrameError::BadControl(_))
        ));
    }

    #[test]
    fn control_json_is_stable() {
        let json = serde_json::to_string(&WebControl::Error {
            kind: ErrorKind::RequiresPassword,
            message: "x".into(),
        })
        .unwrap_or_default();
        assert_eq!(
            json,
            r#"{"type":"error","kind":"requires_password","message":"x"}"#
        );
    }
}

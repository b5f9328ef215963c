//! `phirepass-ssh-target`: the SSH client an edge uses to reach a relay target, over any
//! `AsyncRead + AsyncWrite` stream (TCP for direct hosts, a TunnelStream for agent nodes).
//!
//! * [`algorithms`]: modern algorithms only unless a target is `insecure`, AES-GCM first,
//!   strict key exchange (Terrapin) requested.
//! * [`Credentials`]: password, private key (with passphrase), or keyboard-interactive answers
//!   from a callback.
//! * [`hostkey`]: exact match against a pin, else a policy (`reject`, `accept-once`,
//!   `prompt`); every message names the key type and SHA256 fingerprint.
//! * [`connect()`]: handshake and login, each bounded by `setup_timeout`; [`handshake()`] then
//!   [`TargetHandshake::login`] when the credentials come later (the browser terminal asks for
//!   a password only once the target's key is verified).
#![forbid(unsafe_code)]

pub mod algorithms;
mod connect;
mod credentials;
mod error;
pub mod hostkey;

pub use connect::{TargetHandler, TargetHandshake, TargetSession, TargetSpec, connect, handshake};
pub use credentials::{Credentials, KbiResponder, KbiRound};
pub use error::TargetError;
pub use hostkey::{
    HostKeyError, HostKeyInfo, HostKeyPolicy, HostKeyPrompt, HostKeyTrust, UnknownHostKey,
};

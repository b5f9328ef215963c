//! Errors, worded for the person who asked for the connection.

use std::time::Duration;

use crate::hostkey::HostKeyError;

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("{target} did not complete the {stage} within {}s", after.as_secs())]
    Timeout {
        target: String,
        stage: &'static str,
        after: Duration,
    },
    /// russh gives up after a bounded number of lines that are not an SSH version line.
    #[error(
        "{target} did not complete the ssh handshake: it sent no SSH version line (is it an SSH server?)"
    )]
    NotSsh { target: String },
    #[error(transparent)]
    HostKey(#[from] HostKeyError),
    #[error("{target} refused the {method} login for user {username:?}")]
    AuthRejected {
        target: String,
        username: String,
        method: &'static str,
    },
    #[error("{0}")]
    Credentials(String),
    #[error("ssh with the target failed: {0}")]
    Protocol(String),
}

//! Why the agent stops: the one error type of the library.

use crate::token;

/// Why the agent stopped (shutdown is not an error).
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The gateway refused the node token (`AuthFailed`); retrying is
    /// pointless until the token is replaced.
    #[error("the gateway rejected the node token: {0}")]
    Rejected(String),
    /// The gateway disconnected the node for good (e.g. token revoked).
    #[error("the gateway disconnected this node: {0}")]
    Disconnected(String),
    #[error(transparent)]
    Token(#[from] token::TokenError),
    #[error(transparent)]
    Config(#[from] phirepass_runtime::ConfigError),
    #[error(transparent)]
    Http(#[from] crate::http::BindError),
    /// The gateway CA file cannot be used, or a URL would carry the token in clear.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}

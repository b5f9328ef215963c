//! The gateway's error type and how it maps to HTTP statuses and browser messages.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tracing::warn;

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("not logged in")]
    Unauthenticated,
    /// A login refused by authz: one answer for an unknown user, a wrong password, a disabled
    /// account, so names cannot be probed.
    #[error("wrong username or password")]
    WrongCredentials,
    #[error("access denied")]
    Forbidden,
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("origin not allowed")]
    ForeignOrigin,
    /// The request conflicts with the current state (setup already done, name taken).
    #[error("{0}")]
    Conflict(String),
    #[error("too many attempts, wait a moment and try again")]
    TooManyRequests,
    /// No such node, or one the user may not see: one answer for both.
    #[error("unknown node {0:?}")]
    UnknownNode(String),
    /// authz refused the action; the message says why (403).
    #[error("access denied: {0}")]
    Denied(String),
    /// The node's agent refused a command (not declared, a parameter it does not accept): 409.
    #[error("{0}")]
    Refused(String),
    /// The node's agent is at its concurrency or rate limit (429, its reason shown).
    #[error("{0}")]
    Busy(String),
    /// No gateway holds the node (503, shown: it is not an internal detail).
    #[error("node {0} is offline")]
    Offline(String),
    /// The stream to the node broke mid-run (502, the reason shown).
    #[error("{0}")]
    NodeLost(String),
    /// The node did not answer in time (504).
    #[error("{0}")]
    NodeTimeout(String),
    /// A backing service failed; the detail is logged, never shown to the client.
    #[error("service unavailable")]
    Upstream(String),
    /// A backing service could not be reached (503); the detail is logged, never shown.
    #[error("service unavailable")]
    Unavailable(String),
    #[error(
        "no users exist yet; a production gateway refuses to start until one does. \
         Create the first with `phirepass admin users add NAME --admin`, or set \
         GATEWAY_FIRST_RUN_SETUP=true and claim the instance at /setup with the setup code \
         authz logs at start"
    )]
    NoUsers,
    /// The gateway cannot start; the message says why and is meant for the operator.
    #[error("{0}")]
    Startup(String),
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

impl GatewayError {
    /// Maps a gRPC status from authz or registry without leaking its internals.
    pub fn from_status(status: tonic::Status, what: &str) -> Self {
        match status.code() {
            tonic::Code::Unauthenticated => Self::Unauthenticated,
            tonic::Code::PermissionDenied => Self::Forbidden,
            tonic::Code::NotFound => Self::NotFound(what.to_string()),
            tonic::Code::InvalidArgument => Self::BadRequest(status.message().to_string()),
            tonic::Code::AlreadyExists | tonic::Code::FailedPrecondition => {
                Self::Conflict(status.message().to_string())
            }
            tonic::Code::ResourceExhausted => Self::TooManyRequests,
            code => Self::Upstream(format!("{what}: {code:?}: {}", status.message())),
        }
    }

    pub fn status_code(&self) -> StatusCode {
        match self {
            Self::Unauthenticated | Self::WrongCredentials => StatusCode::UNAUTHORIZED,
            Self::Forbidden | Self::ForeignOrigin => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::TooManyRequests | Self::Busy(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::UnknownNode(_) => StatusCode::NOT_FOUND,
            Self::Denied(_) => StatusCode::FORBIDDEN,
            Self::Refused(_) => StatusCode::CONFLICT,
            Self::Offline(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::NodeTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Self::NodeLost(_) => StatusCode::BAD_GATEWAY,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Upstream(_) | Self::Io(_) | Self::NoUsers | Self::Startup(_) => {
                StatusCode::BAD_GATEWAY
            }
        }
    }

    /// The text a client may see.
    /// The gRPC status for callers of the gateway's own gRPC service (`Commands`).
    pub fn to_status(&self) -> tonic::Status {
        let message = self.public_message();
        match self {
            Self::Unauthenticated | Self::WrongCredentials => {
                tonic::Status::unauthenticated(message)
            }
            Self::Forbidden | Self::Denied(_) | Self::ForeignOrigin => {
                tonic::Status::permission_denied(message)
            }
            Self::NotFound(_) | Self::UnknownNode(_) => tonic::Status::not_found(message),
            Self::BadRequest(_) => tonic::Status::invalid_argument(message),
            Self::Conflict(_) | Self::Refused(_) => tonic::Status::failed_precondition(message),
            Self::TooManyRequests | Self::Busy(_) => tonic::Status::resource_exhausted(message),
            Self::NodeTimeout(_) => tonic::Status::deadline_exceeded(message),
            _ => tonic::Status::unavailable(message),
        }
    }

    pub fn public_message(&self) -> String {
        match self {
            Self::Upstream(detail) | Self::Unavailable(detail) => {
                warn!(detail = %detail, "upstream call failed");
                "service unavailable, try again".to_string()
            }
            Self::Io(e) => {
                warn!(error = %e, "i/o error");
                "service unavailable, try again".to_string()
            }
            other => other.to_string(),
        }
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let body = serde_json::json!({ "error": self.public_message() });
        (status, Json(body)).into_response()
    }
}

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
            Self::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Upstream(_) | Self::Io(_) | Self::NoUsers | Self::Startup(_) => {
                StatusCode::BAD_GATEWAY
            }
        }
    }

    /// The text a client may see.
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

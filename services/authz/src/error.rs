//! The authz error type and its mapping to gRPC statuses.

use phirepass_presence::PresenceError;
use phirepass_store::StoreError;
use tonic::Status;

/// Everything that can go wrong in authz. Variants marked internal are
/// logged in full and reach clients only as a generic message.
#[derive(Debug, thiserror::Error)]
pub enum AuthzError {
    /// A request field is malformed; the message is safe to return.
    #[error("{0}")]
    InvalidArgument(String),
    /// Bad credentials of any kind; deliberately says nothing more.
    #[error("invalid credentials")]
    Unauthenticated,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0} already exists")]
    AlreadyExists(&'static str),
    #[error("{0}")]
    FailedPrecondition(&'static str),
    /// Like `AlreadyExists`/`NotFound`, with a message that names the object and the fix.
    #[error("{0}")]
    Exists(String),
    #[error("{0}")]
    Missing(String),
    #[error("permission denied")]
    PermissionDenied,
    /// PERMISSION_DENIED with a message that says why and what would help.
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("too many failed attempts, try again later")]
    RateLimited,
    /// Every password-hashing slot is taken and the queue is full: a load
    /// refusal (RESOURCE_EXHAUSTED), not a credential answer.
    #[error("too many login attempts in progress, try again in a moment")]
    Busy,
    /// Internal: database failure.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// Internal: presence (Redis) failure.
    #[error("presence: {0}")]
    Presence(#[from] PresenceError),
    /// Internal: a presence record could not be encoded.
    #[error("record encoding: {0}")]
    Encode(#[from] serde_json::Error),
    /// Internal: password hashing failed or a blocking task died.
    #[error("password hashing: {0}")]
    Hash(String),
    /// The open-ticket key could not be read, written or used (issue #8).
    #[error("{0}")]
    TicketKey(String),
    /// Startup: the audit event log could not be reached.
    #[error("event log: {0}")]
    Bus(#[from] phirepass_bus::BusError),
    /// Startup/serving: the gRPC server failed.
    #[error("grpc: {0}")]
    Grpc(#[from] phirepass_runtime::grpc::GrpcError),
    /// Startup: a setting (e.g. the identity presented to NATS) is missing or invalid.
    #[error("{0}")]
    Config(#[from] phirepass_runtime::ConfigError),
}

impl From<AuthzError> for Status {
    fn from(err: AuthzError) -> Self {
        match err {
            AuthzError::InvalidArgument(msg) => Status::invalid_argument(msg),
            AuthzError::Unauthenticated => Status::unauthenticated("invalid credentials"),
            AuthzError::NotFound(_) => Status::not_found(err.to_string()),
            AuthzError::AlreadyExists(_) => Status::already_exists(err.to_string()),
            AuthzError::FailedPrecondition(msg) => Status::failed_precondition(msg),
            AuthzError::Exists(msg) => Status::already_exists(msg),
            AuthzError::Missing(msg) => Status::not_found(msg),
            AuthzError::PermissionDenied => Status::permission_denied("permission denied"),
            AuthzError::Forbidden(_) => Status::permission_denied(err.to_string()),
            AuthzError::RateLimited | AuthzError::Busy => {
                Status::resource_exhausted(err.to_string())
            }
            AuthzError::Store(StoreError::Conflict) => Status::already_exists("already exists"),
            AuthzError::Store(_)
            | AuthzError::Presence(_)
            | AuthzError::Encode(_)
            | AuthzError::Hash(_)
            | AuthzError::TicketKey(_)
            | AuthzError::Bus(_)
            | AuthzError::Grpc(_)
            | AuthzError::Config(_) => {
                // Full detail (with its source chain) stays in the logs.
                tracing::error!(error = %err, source = ?std::error::Error::source(&err), "internal error");
                Status::internal("internal error")
            }
        }
    }
}

pub(crate) type Result<T, E = AuthzError> = std::result::Result<T, E>;

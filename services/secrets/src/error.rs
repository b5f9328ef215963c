//! The secrets error type and its mapping to gRPC statuses.

use phirepass_runtime::config::ConfigError;
use phirepass_runtime::grpc::GrpcError;
use phirepass_store::StoreError;
use tonic::Status;

use crate::envelope::EnvelopeError;
use crate::keys::{KEY_VAR, KeyError, OLD_KEY_VAR};

/// Everything that can go wrong in the vault. No variant ever carries a
/// secret; internal ones reach clients only as a generic message.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// A request field is malformed; the message is safe to return.
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0} already exists")]
    AlreadyExists(&'static str),
    #[error("{0}")]
    FailedPrecondition(String),
    /// The caller's credential does not allow this RPC.
    #[error("this call needs the internal service token")]
    PermissionDenied,
    /// An API token without the scope this call needs.
    #[error("the api token's scope does not allow this call")]
    ScopeDenied,
    /// An API token whose user is not an admin (now): the vault is admin-only.
    #[error(
        "the api token's user is not an admin; the vault's admin surface needs an admin's token"
    )]
    NotAdmin,
    /// An API token authz does not accept (unknown, revoked, expired...).
    #[error("invalid credentials")]
    Unauthenticated,
    /// Authz could not be asked about an API token.
    #[error("cannot verify the api token now")]
    AuthzUnavailable,
    /// An entry could not be opened (unknown key, wrong key, moved row).
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    /// Startup: no usable master key.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// Startup: entries are sealed under keys this service was not given.
    #[error(
        "vault entries are sealed under master key id(s) {0:?}, which the configured keys do \
         not match: start with the right {KEY_VAR}, or give the previous key as {OLD_KEY_VAR} \
         to rotate"
    )]
    UnknownKeys(Vec<String>),
    /// Internal: database failure.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Grpc(#[from] GrpcError),
    /// Startup: the audit stream could not be reached.
    #[error("bus: {0}")]
    Bus(#[from] phirepass_bus::BusError),
}

impl From<SecretsError> for Status {
    fn from(err: SecretsError) -> Self {
        match err {
            SecretsError::InvalidArgument(msg) => Status::invalid_argument(msg),
            SecretsError::NotFound(_) => Status::not_found(err.to_string()),
            SecretsError::AlreadyExists(_) | SecretsError::Store(StoreError::Conflict) => {
                Status::already_exists(err.to_string())
            }
            SecretsError::FailedPrecondition(msg) => Status::failed_precondition(msg),
            SecretsError::PermissionDenied | SecretsError::ScopeDenied | SecretsError::NotAdmin => {
                Status::permission_denied(err.to_string())
            }
            SecretsError::Unauthenticated => Status::unauthenticated(err.to_string()),
            SecretsError::AuthzUnavailable => Status::unavailable(err.to_string()),
            SecretsError::Envelope(EnvelopeError::UnknownKey(_)) => {
                tracing::warn!(error = %err, "vault entry under an unconfigured key");
                Status::failed_precondition(err.to_string())
            }
            SecretsError::Envelope(_) => {
                tracing::error!(error = %err, "vault entry cannot be opened");
                Status::data_loss(err.to_string())
            }
            SecretsError::Keys(_)
            | SecretsError::UnknownKeys(_)
            | SecretsError::Store(_)
            | SecretsError::Config(_)
            | SecretsError::Grpc(_)
            | SecretsError::Bus(_) => {
                // Full detail (with its source chain) stays in the logs.
                tracing::error!(error = %err, source = ?std::error::Error::source(&err), "internal error");
                Status::internal("internal error")
            }
        }
    }
}

pub(crate) type Result<T, E = SecretsError> = std::result::Result<T, E>;

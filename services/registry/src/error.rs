//! The registry error type and its mapping to gRPC statuses.

use phirepass_presence::PresenceError;
use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// A request field is malformed; the message is safe to return.
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    /// Another holder has it (a tunnel's (name, port)).
    #[error("{0} is held by another session")]
    AlreadyExists(&'static str),
    /// A kick was asked of a registry started without a bus.
    #[error("the registry has no bus to kick sessions with")]
    NoBus,
    /// Internal: publishing on the bus failed.
    #[error("bus: {0}")]
    Bus(#[from] phirepass_bus::BusError),
    /// Internal: the presence store failed.
    #[error("presence: {0}")]
    Presence(#[from] PresenceError),
    /// Internal: a stored record could not be encoded.
    #[error("record encoding: {0}")]
    Encode(#[from] serde_json::Error),
    /// Startup: a setting is missing or malformed.
    #[error(transparent)]
    Config(#[from] phirepass_runtime::ConfigError),
    /// Startup/serving: building or running the gRPC server failed.
    #[error(transparent)]
    Grpc(#[from] phirepass_runtime::GrpcError),
}

impl From<RegistryError> for Status {
    fn from(err: RegistryError) -> Self {
        match err {
            RegistryError::InvalidArgument(msg) => Status::invalid_argument(msg),
            RegistryError::NotFound(_) => Status::not_found(err.to_string()),
            RegistryError::AlreadyExists(_) => Status::already_exists(err.to_string()),
            RegistryError::NoBus => Status::failed_precondition(err.to_string()),
            RegistryError::Presence(_)
            | RegistryError::Bus(_)
            | RegistryError::Encode(_)
            | RegistryError::Config(_)
            | RegistryError::Grpc(_) => {
                tracing::error!(error = %err, source = ?std::error::Error::source(&err), "internal error");
                Status::internal("internal error")
            }
        }
    }
}

pub(crate) type Result<T, E = RegistryError> = std::result::Result<T, E>;

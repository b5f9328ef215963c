//! Which identity a service presents to NATS: its own, unless the operator explicitly chose the
//! plaintext development fallback.

use phirepass_pki::{Identity, ServiceKind};

use crate::ConfigError;
use crate::config::env_or;
use crate::grpc::identity_from_env;

/// `NATS_PLAINTEXT=true`: connect to NATS without TLS or a client certificate. For development
/// against a NATS without the generated configuration only; production NATS refuses it.
pub const NATS_PLAINTEXT_VAR: &str = "NATS_PLAINTEXT";

/// The identity `kind` presents on NATS: `None` only when `NATS_PLAINTEXT=true` (logged), else
/// the service's own identity (`PHIREPASS_TLS_DIR`, reloaded like gRPC's).
pub fn nats_identity(kind: ServiceKind) -> Result<Option<Identity>, ConfigError> {
    if env_or(NATS_PLAINTEXT_VAR, false)? {
        tracing::warn!(
            kind = %kind,
            "NATS_PLAINTEXT=true: NATS without TLS or a client certificate (development only)"
        );
        return Ok(None);
    }
    identity_from_env(kind).map(Some)
}

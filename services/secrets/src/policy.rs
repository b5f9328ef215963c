//! Who may call which Secrets RPC (issue #8). Only ssh-edge decrypts (`ResolveHostAuth`: the
//! relay injects vault credentials); the browser terminal never uses vault credentials, so
//! gateway-ws only reads and pins host keys (`ListOptions`, `SetOption`). Everything else is
//! the admin surface: an API token (scope checked per call) or the admin token, never a bare
//! service certificate. docs/security.md has the table.

use phirepass_pki::ServiceKind::{self, GatewayWs, SshEdge};
use phirepass_runtime::grpc::{Policy, Rule};

const NONE: &[ServiceKind] = &[];

/// The allowlist [`crate::serve`] enforces.
pub const POLICY: Policy = Policy {
    service: crate::SERVICE_NAME,
    rules: &[
        Rule::services("ResolveHostAuth", &[SshEdge]),
        // Host-key pins: accept-once at the relay and in the browser terminal.
        Rule::admin("SetOption", &[GatewayWs, SshEdge]),
        Rule::admin("ListOptions", &[GatewayWs]),
        Rule::admin("UnsetOption", NONE),
        Rule::admin("DeleteHostOptions", NONE),
        Rule::admin("CreateCredential", NONE),
        Rule::admin("ListCredentials", NONE),
        Rule::admin("DeleteCredential", NONE),
        Rule::admin("AssignCredential", NONE),
        Rule::admin("UnassignCredential", NONE),
        Rule::admin("Rotate", NONE),
        Rule::admin("RotationStatus", NONE),
    ],
};

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn every_method_has_exactly_one_row() {
        let proto = include_str!("../../../proto/secrets.proto");
        assert_eq!(POLICY.mismatches_with_proto(proto), Vec::<String>::new());
    }

    #[test]
    fn only_ssh_edge_decrypts() {
        for kind in ServiceKind::ALL {
            assert_eq!(
                POLICY.allows(kind, "ResolveHostAuth"),
                kind == SshEdge,
                "{kind:?}"
            );
        }
    }
}

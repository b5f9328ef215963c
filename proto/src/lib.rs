//! gRPC wire types and service stubs for Phirepass internal services.
//!
//! Generated from `proto/*.proto` at build time. Timestamps are unix epoch
//! milliseconds. Domain types live in the services; these stay at the edges.

#![forbid(unsafe_code)]

/// `phirepass.authz.v1`: users, sessions, node tokens, nodes.
#[allow(clippy::all, missing_docs)] // generated code
pub mod authz {
    tonic::include_proto!("phirepass.authz.v1");
}

/// `phirepass.registry.v1`: presence of nodes and sessions.
#[allow(clippy::all, missing_docs)] // generated code
pub mod registry {
    tonic::include_proto!("phirepass.registry.v1");
}

/// `phirepass.secrets.v1`: the credential vault (host options, shared
/// credentials, key rotation).
#[allow(clippy::all, missing_docs)] // generated code
pub mod secrets {
    tonic::include_proto!("phirepass.secrets.v1");
}

/// `phirepass.commands.v1`: allowlisted commands on nodes, served by gateway-ws.
#[allow(clippy::all, missing_docs)] // generated code
pub mod commands {
    tonic::include_proto!("phirepass.commands.v1");
}

impl authz::ListAccessibleTargetsResponse {
    /// The ids of the targets in the answer (the edges' access re-checks compare these).
    pub fn target_ids(self) -> std::collections::HashSet<String> {
        self.targets
            .into_iter()
            .filter_map(|t| t.target.map(|t| t.id))
            .collect()
    }
}

/// Encoded `FileDescriptorSet` of every Phirepass proto, for
/// `tonic_reflection::server::Builder::register_encoded_file_descriptor_set`.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/phirepass_descriptor.bin"));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_set_contains_both_packages() {
        let bytes = String::from_utf8_lossy(FILE_DESCRIPTOR_SET);
        assert!(bytes.contains("phirepass.authz.v1"));
        assert!(bytes.contains("phirepass.registry.v1"));
        assert!(bytes.contains("phirepass.secrets.v1"));
    }

    #[test]
    fn secrets_credential_passphrase_is_optional() {
        let req = secrets::CreateCredentialRequest {
            name: "db".into(),
            kind: secrets::CredentialKind::SshKey as i32,
            secret: "key".into(),
            passphrase: None,
            meta_json: String::new(),
        };
        assert!(req.passphrase.is_none());
        assert_eq!(req.kind(), secrets::CredentialKind::SshKey);
    }

    #[test]
    fn optional_fields_are_options() {
        let req = authz::CreateNodeTokenRequest {
            username: "alice".into(),
            node_name: "n1".into(),
            expires_in_secs: None,
            rotate: false,
        };
        assert!(req.expires_in_secs.is_none());
        let stats = registry::NodePresence::default().stats;
        assert!(stats.is_none());
    }
}

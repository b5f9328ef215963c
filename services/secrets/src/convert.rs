//! Domain types to wire types and back, for the gRPC handlers, and moving
//! secrets between request, zeroizing storage and response.

use phirepass_proto::secrets as pb;
use zeroize::Zeroizing;

use crate::credentials::{CredentialInfo, CredentialKind};
use crate::rotate::RotationStatus;

fn kind_to_proto(kind: CredentialKind) -> pb::CredentialKind {
    match kind {
        CredentialKind::Password => pb::CredentialKind::Password,
        CredentialKind::SshKey => pb::CredentialKind::SshKey,
    }
}

pub(crate) fn credential_to_proto(c: CredentialInfo) -> pb::Credential {
    pb::Credential {
        kind: kind_to_proto(c.kind) as i32,
        id: c.id,
        name: c.name,
        meta_json: c.meta_json,
        created_at: c.created_at,
        updated_at: c.updated_at,
        assigned_hosts: c.assigned_hosts,
        has_passphrase: c.has_passphrase,
    }
}

pub(crate) fn status_to_proto(s: RotationStatus) -> pb::RotationStatus {
    pb::RotationStatus {
        current_key_id: s.current_key_id,
        keys: s
            .keys
            .into_iter()
            .map(|k| pb::KeyUsage {
                key_id: k.key_id,
                entries: k.entries,
                created_at: k.created_at,
                retired_at: k.retired_at,
                current: k.current,
            })
            .collect(),
        pending: s.pending,
        rotated: s.rotated,
    }
}

/// Moves a secret out of a request into zeroizing storage.
pub(crate) fn take_secret(s: &mut String) -> Zeroizing<String> {
    Zeroizing::new(std::mem::take(s))
}

/// Moves a decrypted value into the response (its last copy leaves us here).
pub(crate) fn reveal(s: Option<Zeroizing<String>>) -> Option<String> {
    s.map(|mut z| std::mem::take(&mut *z))
}

//! Users' SSH public keys: `authorized_keys` lines in, SHA256 fingerprints
//! out (the same text `ssh-keygen -lf` prints).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use phirepass_proto::authz as pb;
use phirepass_store::{StoreError, UserKeyRow, new_id, now_millis};
use sha2::{Digest as _, Sha256};

use crate::accounts::{Accounts, user_to_proto};
use crate::error::{AuthzError, Result};
use crate::lookup;

// Key types OpenSSH accepts for user authentication.
const ALGORITHMS: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];
// An RSA-16384 key is about 2.8 KB of base64; anything longer is not a key.
const MAX_LINE: usize = 8 * 1024;

/// A parsed public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PublicKey {
    pub(crate) algorithm: String,
    /// `<algorithm> <base64>`, normalised.
    pub(crate) openssh: String,
    pub(crate) fingerprint: String,
    pub(crate) comment: String,
}

/// Parses `<type> <base64> [comment]`. Options before the type are refused:
/// authz decides access, not per-key options.
pub(crate) fn parse_public_key(line: &str) -> Result<PublicKey> {
    let bad = |why: &str| AuthzError::InvalidArgument(format!("invalid public key: {why}"));
    let line = line.trim();
    if line.is_empty() || line.len() > MAX_LINE || line.contains('\n') {
        return Err(bad("expected one authorized_keys line"));
    }
    let mut parts = line.splitn(3, char::is_whitespace);
    let algorithm = parts.next().unwrap_or_default();
    if !ALGORITHMS.contains(&algorithm) {
        return Err(bad(
            "unsupported key type (options before the key are not accepted)",
        ));
    }
    let encoded = parts.next().unwrap_or_default().trim();
    let blob = STANDARD
        .decode(encoded)
        .map_err(|_| bad("key data is not base64"))?;
    // The blob starts with its own type as an SSH string; it must agree.
    let inner_type = blob
        .get(..4)
        .and_then(|len| <[u8; 4]>::try_from(len).ok())
        .map(|len| u32::from_be_bytes(len) as usize)
        .and_then(|len| blob.get(4..4 + len));
    if inner_type != Some(algorithm.as_bytes()) || blob.len() < 4 + algorithm.len() + 16 {
        return Err(bad("key data does not match its type"));
    }
    let comment = parts.next().unwrap_or_default().trim();
    if comment.len() > 256 || comment.chars().any(char::is_control) {
        return Err(bad("comment too long or not printable"));
    }
    Ok(PublicKey {
        algorithm: algorithm.to_owned(),
        openssh: format!("{algorithm} {}", STANDARD.encode(&blob)),
        fingerprint: format!("SHA256:{}", STANDARD_NO_PAD.encode(Sha256::digest(&blob))),
        comment: comment.to_owned(),
    })
}

fn key_to_proto(username: &str, key: &UserKeyRow) -> pb::UserKey {
    pb::UserKey {
        username: username.to_owned(),
        fingerprint: key.fingerprint.clone(),
        algorithm: key.algorithm.clone(),
        comment: key.comment.clone(),
        created_at: key.created_at,
        public_key: key.public_key.clone(),
    }
}

impl Accounts {
    pub(crate) async fn add_user_key(&self, req: pb::AddUserKeyRequest) -> Result<pb::UserKey> {
        let user = lookup::user_named(&self.store, &req.username).await?;
        let key = parse_public_key(&req.public_key)?;
        let row = UserKeyRow {
            id: new_id(),
            user_id: user.id.clone(),
            fingerprint: key.fingerprint,
            algorithm: key.algorithm,
            public_key: key.openssh,
            comment: key.comment,
            created_at: now_millis(),
        };
        match self.store.insert_user_key(&row).await {
            Ok(()) => {}
            Err(StoreError::Conflict) => return Err(AuthzError::AlreadyExists("key")),
            Err(e) => return Err(e.into()),
        }
        tracing::info!(user_id = %user.id, fingerprint = %row.fingerprint, "ssh key added");
        self.audit
            .change(
                "user.key.add",
                &[
                    ("username", &user.username),
                    ("fingerprint", &row.fingerprint),
                ],
            )
            .await;
        Ok(key_to_proto(&user.username, &row))
    }

    pub(crate) async fn list_user_keys(
        &self,
        req: pb::ListUserKeysRequest,
    ) -> Result<pb::ListUserKeysResponse> {
        let user = lookup::user_named(&self.store, &req.username).await?;
        let keys = self.store.user_keys(&user.id).await?;
        Ok(pb::ListUserKeysResponse {
            keys: keys
                .iter()
                .map(|k| key_to_proto(&user.username, k))
                .collect(),
        })
    }

    pub(crate) async fn remove_user_key(
        &self,
        req: pb::RemoveUserKeyRequest,
    ) -> Result<pb::RemoveUserKeyResponse> {
        let user = lookup::user_named(&self.store, &req.username).await?;
        if !self
            .store
            .delete_user_key(&user.id, &req.fingerprint)
            .await?
        {
            return Err(AuthzError::NotFound("key"));
        }
        tracing::info!(user_id = %user.id, fingerprint = %req.fingerprint, "ssh key removed");
        self.audit
            .change(
                "user.key.remove",
                &[
                    ("username", &user.username),
                    ("fingerprint", &req.fingerprint),
                ],
            )
            .await;
        Ok(pb::RemoveUserKeyResponse {})
    }

    /// One answer for every refusal, like a password login; a refusal does
    /// not count as a failed login (clients offer several keys in turn), and
    /// only a source over its own limit is held back, never a username.
    pub(crate) async fn verify_user_key(
        &self,
        req: pb::VerifyUserKeyRequest,
    ) -> Result<pb::VerifyUserKeyResponse> {
        let Ok(key) = parse_public_key(&req.public_key) else {
            return Err(AuthzError::Unauthenticated);
        };
        if self
            .limiter
            .source_refused(&req.username, req.client_ip.as_deref())
            .await
        {
            tracing::warn!(username = %req.username, client_ip = ?req.client_ip, "key login refused: too many attempts from this source");
            return Err(AuthzError::RateLimited);
        }
        let Some(user) = self.store.user_by_username(&req.username).await? else {
            return Err(AuthzError::Unauthenticated);
        };
        let found = self.store.user_key(&user.id, &key.fingerprint).await?;
        match found {
            // The fingerprint is a hash of the whole blob, so equal
            // fingerprints mean the same key.
            Some(_) if !user.disabled => Ok(pb::VerifyUserKeyResponse {
                user: Some(user_to_proto(&user)),
                fingerprint: key.fingerprint,
            }),
            _ => {
                tracing::warn!(user_id = %user.id, fingerprint = %key.fingerprint, "ssh key refused");
                Err(AuthzError::Unauthenticated)
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    // `ssh-keygen -t ed25519 -C test@example`; fingerprint from `ssh-keygen -lf`.
    const ED25519: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBTk4ubnNoVOD5u+OTU/LlXTTtlIx1mbfqEdZ9f3TJ3O test@example";

    #[test]
    fn parses_and_fingerprints() {
        let key = parse_public_key(ED25519).unwrap();
        assert_eq!(key.algorithm, "ssh-ed25519");
        assert_eq!(key.comment, "test@example");
        assert_eq!(
            key.fingerprint,
            "SHA256:49sAYB/J5Aq/VSYI5Dns6tvgLugoKwao9p+KHQZOZxY"
        );
        let bare = ED25519.rsplit_once(' ').unwrap().0;
        assert_eq!(parse_public_key(bare).unwrap().fingerprint, key.fingerprint);
    }

    #[test]
    fn refuses_garbage() {
        for bad in [
            "",
            "ssh-ed25519",
            "ssh-ed25519 !!!",
            "ssh-dss AAAAB3NzaC1kc3MAAACBAP",
            "command=\"x\" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
            // The blob says ed25519, the line says rsa.
            "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
        ] {
            assert!(parse_public_key(bad).is_err(), "{bad}");
        }
    }
}

//! Target host-key verification: an exact match against a pinned key, otherwise a policy.
//! Every message names the key type and its SHA256 fingerprint, so an operator can compare.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use russh::keys::{HashAlg, PublicKey};

/// What a presented (or pinned) key looks like to a person and to the vault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostKeyInfo {
    /// e.g. `ssh-ed25519`.
    pub algorithm: String,
    /// `SHA256:<base64>`, as `ssh-keygen -lf` prints it.
    pub fingerprint: String,
    /// The key as one OpenSSH line (`ssh-ed25519 AAAA...`), fit for `hostkey.openssh`.
    pub openssh: String,
}

impl HostKeyInfo {
    pub fn from_key(key: &PublicKey) -> Self {
        let mut plain = key.clone();
        plain.set_comment("");
        Self {
            algorithm: key.algorithm().as_str().to_owned(),
            fingerprint: key.fingerprint(HashAlg::Sha256).to_string(),
            openssh: plain
                .to_openssh()
                .map(|s| s.trim().to_owned())
                .unwrap_or_default(),
        }
    }
}

impl fmt::Display for HostKeyInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.algorithm, self.fingerprint)
    }
}

/// The vault option (per target name) that holds a target's pinned key; both edges read and
/// write the same record, so a key learnt through one is enforced by the other.
pub const PIN_OPTION: &str = "hostkey.openssh";

/// An edge's setting for keys nothing is pinned for (`SSH_EDGE_UNKNOWN_HOSTKEY`,
/// `GATEWAY_UNKNOWN_HOSTKEY`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnknownHostKey {
    /// Accept, tell the user and the log the fingerprint, and pin it for the target.
    AcceptOnce,
    /// Refuse until an administrator pins a key.
    Reject,
    /// Show the user the algorithm and SHA256 fingerprint and ask; pin on "yes", refuse
    /// otherwise or when the user cannot be asked.
    Prompt,
}

impl std::str::FromStr for UnknownHostKey {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "accept-once" => Ok(Self::AcceptOnce),
            "reject" => Ok(Self::Reject),
            "prompt" => Ok(Self::Prompt),
            other => Err(format!(
                "expected accept-once, reject or prompt, got {other:?}"
            )),
        }
    }
}

/// Parses a pinned `hostkey.openssh` value (an OpenSSH public key line, comment optional).
pub fn parse_pin(line: &str) -> Result<PublicKey, String> {
    PublicKey::from_openssh(line.trim()).map_err(|e| format!("pinned host key is unreadable: {e}"))
}

/// Asks someone whether to trust an unpinned key (for the `prompt` policy).
pub trait HostKeyPrompt: Send + Sync {
    fn confirm<'a>(
        &'a self,
        target: &'a str,
        key: &'a HostKeyInfo,
    ) -> Pin<Box<dyn Future<Output = bool> + Send + 'a>>;
}

/// What to do with a key when nothing is pinned for the target.
#[derive(Clone)]
pub enum HostKeyPolicy {
    /// Refuse: an administrator must pin the key first.
    Reject,
    /// Trust it for this connection and report it, so the caller pins it (trust on first use).
    AcceptOnce,
    /// Ask (e.g. the user at a terminal); accepted keys are reported like `AcceptOnce`.
    Prompt(Arc<dyn HostKeyPrompt>),
}

impl fmt::Debug for HostKeyPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HostKeyPolicy::Reject => "reject",
            HostKeyPolicy::AcceptOnce => "accept-once",
            HostKeyPolicy::Prompt(_) => "prompt",
        })
    }
}

/// How a verified key was trusted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostKeyTrust {
    /// It matched the pinned key exactly.
    Pinned,
    /// Nothing was pinned and the policy accepted it: the caller should pin it now.
    AcceptedUnpinned,
}

/// Why a key was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HostKeyError {
    #[error(
        "host key of {target} does not match the pinned key: expected {pinned}, got {presented}; refusing to connect (a changed key may mean an attack; an administrator must re-pin it)"
    )]
    Mismatch {
        target: String,
        pinned: HostKeyInfo,
        presented: HostKeyInfo,
    },
    #[error(
        "host key of {target} is not pinned and the policy refuses unknown keys: got {presented}"
    )]
    Unknown {
        target: String,
        presented: HostKeyInfo,
    },
    #[error("host key of {target} was not accepted: got {presented}")]
    Declined {
        target: String,
        presented: HostKeyInfo,
    },
}

/// Decides about `presented` for `target`.
pub async fn verify(
    target: &str,
    pinned: Option<&PublicKey>,
    policy: &HostKeyPolicy,
    presented: &PublicKey,
) -> Result<HostKeyTrust, HostKeyError> {
    let info = HostKeyInfo::from_key(presented);
    if let Some(pinned) = pinned {
        // Key material only: the comment of a pinned line is not part of the identity.
        return if pinned.key_data() == presented.key_data() {
            Ok(HostKeyTrust::Pinned)
        } else {
            Err(HostKeyError::Mismatch {
                target: target.to_owned(),
                pinned: HostKeyInfo::from_key(pinned),
                presented: info,
            })
        };
    }
    match policy {
        HostKeyPolicy::Reject => Err(HostKeyError::Unknown {
            target: target.to_owned(),
            presented: info,
        }),
        HostKeyPolicy::AcceptOnce => Ok(HostKeyTrust::AcceptedUnpinned),
        HostKeyPolicy::Prompt(prompt) => {
            if prompt.confirm(target, &info).await {
                Ok(HostKeyTrust::AcceptedUnpinned)
            } else {
                Err(HostKeyError::Declined {
                    target: target.to_owned(),
                    presented: info,
                })
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const A: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEMuRtum+t1kOyjud4SWkbKXLpx6ghJ6ILX2119eWqSV a@b";
    const B: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOl3gKz1RsFNhGknK1+wV0K+lU05FO2/+F+7S9tKHeRk";

    #[tokio::test]
    async fn pinned_match_ignores_the_comment() {
        let a = parse_pin(A).unwrap();
        let mut a2 = a.clone();
        a2.set_comment("other");
        let trust = verify("t", Some(&a), &HostKeyPolicy::Reject, &a2).await;
        assert_eq!(trust, Ok(HostKeyTrust::Pinned));
    }

    #[tokio::test]
    async fn mismatch_names_both_fingerprints() {
        let (a, b) = (parse_pin(A).unwrap(), parse_pin(B).unwrap());
        let err = verify("web-1", Some(&a), &HostKeyPolicy::AcceptOnce, &b)
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(&HostKeyInfo::from_key(&a).fingerprint),
            "{msg}"
        );
        assert!(
            msg.contains(&HostKeyInfo::from_key(&b).fingerprint),
            "{msg}"
        );
        assert!(
            msg.contains("ssh-ed25519") && msg.contains("web-1"),
            "{msg}"
        );
    }

    #[tokio::test]
    async fn unpinned_follows_the_policy() {
        let b = parse_pin(B).unwrap();
        assert_eq!(
            verify("t", None, &HostKeyPolicy::AcceptOnce, &b).await,
            Ok(HostKeyTrust::AcceptedUnpinned)
        );
        assert!(matches!(
            verify("t", None, &HostKeyPolicy::Reject, &b).await,
            Err(HostKeyError::Unknown { .. })
        ));
        struct No;
        impl HostKeyPrompt for No {
            fn confirm<'a>(
                &'a self,
                _: &'a str,
                _: &'a HostKeyInfo,
            ) -> Pin<Box<dyn Future<Output = bool> + Send + 'a>> {
                Box::pin(async { false })
            }
        }
        assert!(matches!(
            verify("t", None, &HostKeyPolicy::Prompt(Arc::new(No)), &b).await,
            Err(HostKeyError::Declined { .. })
        ));
    }

    #[test]
    fn info_is_a_pinnable_line() {
        let a = parse_pin(A).unwrap();
        let info = HostKeyInfo::from_key(&a);
        assert!(info.openssh.starts_with("ssh-ed25519 AAAA"));
        assert!(!info.openssh.contains("a@b"));
        assert!(info.fingerprint.starts_with("SHA256:"));
        assert_eq!(parse_pin(&info.openssh).unwrap().key_data(), a.key_data());
    }
}

//! Node host keys for the browser terminal. The pin is the vault record ssh-edge uses (option
//! `hostkey.openssh` of the target's name), read fresh for every terminal, so a key learnt
//! through either edge is enforced by both; an unpinned key follows `GATEWAY_UNKNOWN_HOSTKEY`
//! (the values and behaviour of ssh-edge's `SSH_EDGE_UNKNOWN_HOSTKEY`).

use phirepass_proto::secrets::{ListOptionsRequest, SetOptionRequest};
use phirepass_ssh_target::hostkey::PIN_OPTION;
use phirepass_ssh_target::{
    HostKeyError, HostKeyInfo, HostKeyPolicy, TargetError, TargetSpec, UnknownHostKey,
};
use tracing::warn;

use crate::state::AppState;

/// What the vault says about logging in to one node (credentials stay with the user).
#[derive(Debug, Default)]
pub(super) struct NodeOptions {
    pinned: Option<String>,
    insecure: bool,
    compression: bool,
}

impl NodeOptions {
    /// Applies the pin, the policy for an unpinned key and the algorithm options to `spec`.
    pub(super) fn apply(self, spec: &mut TargetSpec, unknown: UnknownHostKey) {
        spec.pinned_host_key = self.pinned;
        spec.insecure = self.insecure;
        spec.compression = self.compression;
        // Nobody can be asked here: `prompt` refuses an unpinned key like ssh-edge does on a
        // channel that cannot ask.
        spec.policy = match unknown {
            UnknownHostKey::AcceptOnce => HostKeyPolicy::AcceptOnce,
            UnknownHostKey::Reject | UnknownHostKey::Prompt => HostKeyPolicy::Reject,
        };
    }
}

/// Reads the node's pin and options. Without an answer from the vault the key cannot be
/// checked, so no terminal opens (fail closed).
pub(super) async fn node_options(state: &AppState, node_name: &str) -> Result<NodeOptions, String> {
    let unavailable = || {
        format!(
            "the host key of {node_name} cannot be checked: the credential vault is unavailable; \
             try again later"
        )
    };
    let Some(secrets) = state.secrets.clone() else {
        warn!(node = %node_name, "no vault configured (SECRETS_URL): terminal refused");
        return Err(unavailable());
    };
    let request = ListOptionsRequest {
        host: node_name.to_string(),
    };
    let options = match secrets.clone().list_options(request).await {
        Ok(reply) => reply.into_inner().options,
        Err(status) if status.code() == tonic::Code::NotFound => Vec::new(),
        Err(status) => {
            warn!(node = %node_name, error = %status.message(), "vault unavailable");
            return Err(unavailable());
        }
    };
    let value = |key: &str| {
        options
            .iter()
            .find(|o| o.key == key && !o.secret)
            .map(|o| o.value.clone())
    };
    Ok(NodeOptions {
        pinned: value(PIN_OPTION).filter(|p| !p.trim().is_empty()),
        insecure: value("insecure").as_deref() == Some("true"),
        compression: value("compression").as_deref() == Some("true"),
    })
}

/// Pins a key the policy accepted; returns what the user is told.
pub(super) async fn pin(state: &AppState, node_name: &str, key: &HostKeyInfo) -> String {
    warn!(node = %node_name, algorithm = %key.algorithm, fingerprint = %key.fingerprint, "node host key was not pinned: accepted and pinning it");
    let request = SetOptionRequest {
        host: node_name.to_string(),
        key: PIN_OPTION.into(),
        value: key.openssh.clone(),
    };
    let pinned = match state.secrets.clone() {
        Some(mut secrets) => secrets.set_option(request).await.map_err(|s| s.to_string()),
        None => Err("no vault".into()),
    };
    match pinned {
        Ok(_) => format!(
            "The host key of {node_name} was not pinned; it was accepted and pinned now: {key}."
        ),
        Err(error) => {
            warn!(node = %node_name, error = %error, "pinning the node host key failed");
            format!(
                "The host key of {node_name} is not pinned; accepted it once (pinning failed): {key}."
            )
        }
    }
}

/// The words for a refused host key: both fingerprints, and what an administrator does.
pub(super) fn refusal(
    error: &HostKeyError,
    node_name: &str,
    user: &str,
    unknown: UnknownHostKey,
) -> String {
    let (HostKeyError::Mismatch { presented, .. }
    | HostKeyError::Unknown { presented, .. }
    | HostKeyError::Declined { presented, .. }) = error;
    let first = error.to_string();
    let file = pub_file(&presented.algorithm);
    let set = format!(
        "phirepass admin options set {node_name} {PIN_OPTION} --from-file <the node's {file}>"
    );
    let check = format!("`ssh-keygen -lf {file}` on the node");
    match (error, unknown) {
        (HostKeyError::Mismatch { .. }, UnknownHostKey::AcceptOnce) => format!(
            "{first}.\nIf the key changed on purpose (sshd reinstalled, keys regenerated), an \
             administrator compares it with {check} and re-pins it: `{set}`, or \
             `phirepass admin options unset {node_name} {PIN_OPTION}` so the next connection pins \
             the key it finds."
        ),
        (HostKeyError::Mismatch { .. }, _) => format!(
            "{first}.\nIf the key changed on purpose (sshd reinstalled, keys regenerated), an \
             administrator compares it with {check} and re-pins it: `{set}`."
        ),
        (_, UnknownHostKey::Prompt) => format!(
            "{first}.\nThe browser terminal cannot ask you to confirm it: confirm it once with \
             `ssh {user}:{node_name}@<ssh-edge>`, or an administrator compares it with {check} \
             and pins it: `{set}`."
        ),
        _ => format!("{first}.\nAn administrator compares it with {check} and pins it: `{set}`."),
    }
}

/// The words for any failed handshake.
pub(super) fn handshake_failure(
    error: TargetError,
    node_name: &str,
    user: &str,
    unknown: UnknownHostKey,
) -> String {
    match error {
        TargetError::HostKey(refused) => refusal(&refused, node_name, user, unknown),
        TargetError::Timeout { .. } => format!("ssh handshake with {node_name} timed out"),
        other => format!(
            "ssh handshake with {node_name} failed: {other} (is an SSH server listening at the \
             agent's SSH_HOST:SSH_PORT?)"
        ),
    }
}

/// Where OpenSSH keeps the public half of a host key of `algorithm`.
fn pub_file(algorithm: &str) -> &'static str {
    if algorithm.starts_with("ecdsa-") {
        "/etc/ssh/ssh_host_ecdsa_key.pub"
    } else if algorithm.starts_with("rsa-") || algorithm == "ssh-rsa" {
        "/etc/ssh/ssh_host_rsa_key.pub"
    } else {
        "/etc/ssh/ssh_host_ed25519_key.pub"
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use phirepass_ssh_target::hostkey::parse_pin;

    const A: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEMuRtum+t1kOyjud4SWkbKXLpx6ghJ6ILX2119eWqSV";
    const B: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOl3gKz1RsFNhGknK1+wV0K+lU05FO2/+F+7S9tKHeRk";

    fn info(line: &str) -> HostKeyInfo {
        HostKeyInfo::from_key(&parse_pin(line).unwrap())
    }

    #[test]
    fn a_changed_key_names_both_fingerprints_and_the_admin_command() {
        let (a, b) = (info(A), info(B));
        let error = HostKeyError::Mismatch {
            target: "web-1".into(),
            pinned: a.clone(),
            presented: b.clone(),
        };
        let m = refusal(&error, "web-1", "alice", UnknownHostKey::AcceptOnce);
        assert!(
            m.contains(&format!("expected ssh-ed25519 {}", a.fingerprint)),
            "{m}"
        );
        assert!(
            m.contains(&format!("got ssh-ed25519 {}", b.fingerprint)),
            "{m}"
        );
        assert!(
            m.contains("phirepass admin options set web-1 hostkey.openssh"),
            "{m}"
        );
        assert!(m.contains("options unset web-1 hostkey.openssh"), "{m}");
        // Under `reject`, unsetting the pin would lock the node out: only re-pinning is offered.
        let m = refusal(&error, "web-1", "alice", UnknownHostKey::Reject);
        assert!(!m.contains("unset"), "{m}");
    }

    #[test]
    fn prompt_points_at_the_ssh_edge() {
        let error = HostKeyError::Unknown {
            target: "web-1".into(),
            presented: info(A),
        };
        let m = refusal(&error, "web-1", "alice", UnknownHostKey::Prompt);
        assert!(m.contains("ssh alice:web-1@"), "{m}");
        assert!(m.contains(&info(A).fingerprint), "{m}");
    }

    #[test]
    fn prompt_and_reject_refuse_unpinned_keys() {
        for (unknown, accepts) in [
            (UnknownHostKey::AcceptOnce, true),
            (UnknownHostKey::Reject, false),
            (UnknownHostKey::Prompt, false),
        ] {
            let mut spec = TargetSpec::new(
                "n",
                "",
                phirepass_ssh_target::Credentials::Password(String::new()),
            );
            NodeOptions::default().apply(&mut spec, unknown);
            assert_eq!(matches!(spec.policy, HostKeyPolicy::AcceptOnce), accepts);
        }
    }
}

//! authz's ticket keys this agent pinned when it enrolled (issue #8). Every open must carry a
//! ticket signed by one of them for this node, target, edge and stream, checked before
//! anything is dialled. A rotated key joins only when a pinned key endorses it; it is then
//! written back next to the token. An agent with no pins refuses every open until it has some:
//! the device flow pins authz's keys at enrolment; an agent enrolled with a typed token pins
//! the keys its verified gateway sends first (trust on first use, see docs/operations.md).
//! Pinned keys are never replaced by what a gateway offers, only joined by endorsed ones.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use phirepass_ticket::{
    Audience, Claims, KeyEndorsement, KeySet, PublicKey, Scope, TicketError, TicketTarget,
    TicketVerifier,
};
use phirepass_tunnel::OpenRequest;

use crate::token::TokenError;

/// Overrides where the pins live (default: `agent.ticket-keys.json` beside the token file).
pub const PINS_FILE_VAR: &str = "PHIREPASS_AGENT_TICKET_KEYS_FILE";
const PINS_FILE_NAME: &str = "agent.ticket-keys.json";

/// The pins file that goes with the token file `token_path`.
pub fn path_for_token(token_path: &Path) -> PathBuf {
    token_path.with_file_name(PINS_FILE_NAME)
}

/// The pinned keys in `path`; `Ok(None)` when there is no file (an agent enrolled before
/// tickets).
pub fn load(path: &Path) -> Result<Option<KeySet>, TokenError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(TokenError::Io {
                action: "cannot read",
                path: path.to_owned(),
                source,
            });
        }
    };
    let set: KeySet = serde_json::from_str(&text).map_err(|e| TokenError::Io {
        action: "cannot parse",
        path: path.to_owned(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
    })?;
    // Each key is checked against its id.
    let set = KeySet::new(set.keys).map_err(|e| TokenError::Io {
        action: "invalid key in",
        path: path.to_owned(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
    })?;
    Ok(Some(set))
}

/// Writes `keys` to `path` (0600, atomic, like the token).
pub fn store(path: &Path, keys: &KeySet) -> Result<(), TokenError> {
    let json = serde_json::to_string_pretty(keys).unwrap_or_default();
    crate::token::write_private(path, &json)
}

/// What [`crate::streams::open`] checks tickets with.
pub struct Pins {
    verifier: TicketVerifier,
    path: Option<PathBuf>,
}

impl Pins {
    /// The pins in `path` (none when unset or absent: every open is refused, and said so).
    pub fn load(path: Option<&Path>) -> Result<Arc<Self>, TokenError> {
        let keys = match path {
            Some(path) => load(path)?,
            None => None,
        };
        let keys = keys.unwrap_or_default();
        if keys.is_empty() {
            tracing::warn!(
                "no ticket keys pinned: every open will be refused; re-enrol with `phirepass-agent login` (see docs/operations.md)"
            );
        } else {
            let kids: Vec<&str> = keys.keys.iter().map(|k| k.kid.as_str()).collect();
            tracing::info!(keys = ?kids, "ticket keys pinned");
        }
        Ok(Arc::new(Self {
            verifier: TicketVerifier::new(keys, Audience::Agent),
            path: path.map(Path::to_owned),
        }))
    }

    /// Pins fixed in memory (tests).
    pub fn fixed(keys: KeySet) -> Arc<Self> {
        Arc::new(Self {
            verifier: TicketVerifier::new(keys, Audience::Agent),
            path: None,
        })
    }

    /// Checks the open's ticket for node `node_id`.
    pub fn verify(&self, node_id: &str, request: &OpenRequest) -> Result<Claims, TicketError> {
        let scope = Scope {
            node: node_id.to_owned(),
            target: TicketTarget::from(&request.target),
            edge: request.edge_id.clone(),
            stream: request.stream_id.0,
        };
        let now = u64::try_from(phirepass_runtime::clock::now_millis()).unwrap_or_default();
        self.verifier.verify(request.ticket.as_deref(), &scope, now)
    }

    /// An agent that pins nothing yet (enrolled with a typed token, or before tickets) pins the
    /// keys its gateway sends on the link's first `TicketKeys`: the link is TLS to a gateway
    /// whose certificate it verified (or loopback), the same trust the device flow's answer
    /// has. Pins are never replaced this way: later keys need an endorsement.
    pub fn first_use(&self, keys: &[PublicKey]) {
        if keys.is_empty() || !self.verifier.keys().is_empty() {
            return;
        }
        let Ok(set) = KeySet::new(keys.to_vec()) else {
            tracing::warn!("the gateway sent unusable ticket keys; nothing pinned");
            return;
        };
        let kids: Vec<&str> = set.keys.iter().map(|k| k.kid.as_str()).collect();
        tracing::info!(keys = ?kids, "ticket keys pinned on first use (from the verified gateway)");
        self.verifier.set_keys(set.clone());
        if let Some(path) = &self.path
            && let Err(error) = store(path, &set)
        {
            tracing::warn!(%error, "could not save the pinned ticket keys");
        }
    }

    /// Adds the keys a pinned key endorses, and writes the pins back when one was added.
    pub fn accept(&self, endorsements: &[KeyEndorsement]) {
        let added = self.verifier.accept_endorsed(endorsements);
        if added.is_empty() {
            return;
        }
        tracing::info!(keys = ?added, "endorsed ticket keys pinned");
        if let Some(path) = &self.path
            && let Err(error) = store(path, &self.verifier.keys())
        {
            tracing::warn!(%error, "could not save the pinned ticket keys");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use phirepass_ticket::TicketSigner;
    use phirepass_tunnel::StreamId;

    fn request(ticket: Option<String>) -> OpenRequest {
        OpenRequest {
            stream_id: StreamId(9),
            edge_id: "gw-1".into(),
            target: phirepass_tunnel::Target::Port { port: 5432 },
            window: 65536,
            ticket,
        }
    }

    #[test]
    fn endorsed_keys_are_persisted_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(PINS_FILE_NAME);
        let old = TicketSigner::generate().unwrap();
        let new = TicketSigner::generate().unwrap();
        store(&path, &KeySet::new(vec![old.public_key().clone()]).unwrap()).unwrap();
        let pins = Pins::load(Some(&path)).unwrap();
        pins.accept(&[old.endorse(new.public_key())]);
        let reloaded = Pins::load(Some(&path)).unwrap();
        let scope = Scope {
            node: "n-1".into(),
            target: TicketTarget::Port { port: 5432 },
            edge: "gw-1".into(),
            stream: 9,
        };
        let now = u64::try_from(phirepass_runtime::clock::now_millis()).unwrap();
        let ticket = new.sign("u-1", &scope, now, 30_000).unwrap();
        assert!(reloaded.verify("n-1", &request(Some(ticket))).is_ok());
    }

    #[test]
    fn no_pins_refuse_every_open() {
        let dir = tempfile::tempdir().unwrap();
        let pins = Pins::load(Some(&dir.path().join("absent.json"))).unwrap();
        let signer = TicketSigner::generate().unwrap();
        let scope = Scope {
            node: "n-1".into(),
            target: TicketTarget::Port { port: 5432 },
            edge: "gw-1".into(),
            stream: 9,
        };
        let ticket = signer.sign("u-1", &scope, 0, 30_000).unwrap();
        assert_eq!(
            pins.verify("n-1", &request(Some(ticket))),
            Err(TicketError::NoKeys)
        );
    }
}

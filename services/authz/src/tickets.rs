//! Signed opens (issue #8): authz's ticket key ring and `IssueOpenTicket` / `TicketKeys`.
//! Each allowed open gets a short-lived Ed25519 ticket the node's holder and the agent verify
//! (crates/ticket). Rotation keeps the old key's public part (verifiers accept its tickets
//! until they expire) and endorses the new key with the old one, so pinned agents accept it.

use std::path::Path;
use std::sync::{Arc, RwLock};

use phirepass_proto::authz as pb;
use phirepass_ticket::{
    KeyEndorsement, KeySet, MAX_KEYS, PublicKey, Scope, TICKET_TTL_MS, TicketSigner, TicketTarget,
};

use crate::authorize::Decisions;
use crate::decision_cache::Who;
use crate::error::{AuthzError, Result};
use crate::validate;

/// The port a public `ssh -R` HTTP tunnel is reached on.
const PUBLIC_TUNNEL_PORT: u32 = 80;
/// Node ids ssh-edge gives `ssh -R` sessions (tunnels/bind.rs).
const TUNNEL_NODE_PREFIX: &str = "sshr-";

struct Ring {
    current: Arc<TicketSigner>,
    /// Older keys still trusted (their tickets verify until they expire), oldest first.
    previous: Vec<PublicKey>,
    /// Each newer key endorsed by the key before it.
    endorsements: Vec<KeyEndorsement>,
}

/// authz's ticket keys: the one signing now and the ones it rotated away from.
pub struct TicketKeyring {
    ring: RwLock<Ring>,
}

impl std::fmt::Debug for TicketKeyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TicketKeyring")
            .field("current", &self.signer().kid())
            .finish_non_exhaustive()
    }
}

impl TicketKeyring {
    pub fn new(current: TicketSigner) -> Self {
        Self {
            ring: RwLock::new(Ring {
                current: Arc::new(current),
                previous: Vec::new(),
                endorsements: Vec::new(),
            }),
        }
    }

    /// An in-memory key (tests, and a binary started without `AUTHZ_TICKET_KEY_FILE`).
    pub fn generate() -> Result<Self> {
        Ok(Self::new(TicketSigner::generate().map_err(internal)?))
    }

    /// The key in `path` (PKCS#8 PEM), created (mode 0600) when the file does not exist.
    pub fn load_or_create(path: &Path) -> Result<TicketSigner> {
        let pem = match std::fs::read_to_string(path) {
            Ok(pem) => pem,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let pem = phirepass_ticket::generate_pem().map_err(internal)?;
                write_private(path, &pem)?;
                tracing::info!(path = %path.display(), "ticket signing key created");
                pem
            }
            Err(e) => {
                return Err(AuthzError::TicketKey(format!(
                    "reading ticket key {}: {e}",
                    path.display()
                )));
            }
        };
        TicketSigner::from_pem(&pem).map_err(internal)
    }

    /// A ring whose current key is `current`, trusting and endorsed through `previous`
    /// (oldest first): authz restarted after a rotation (`AUTHZ_TICKET_PREVIOUS_KEY_FILES`).
    pub fn with_previous(current: TicketSigner, previous: Vec<TicketSigner>) -> Self {
        let ring = Self::new(current);
        let mut chain: Vec<TicketSigner> = previous;
        if let Some(first) = chain.first() {
            let guard = &mut *ring.write();
            let mut keys = vec![first.public_key().clone()];
            for pair in chain.windows(2) {
                guard
                    .endorsements
                    .push(pair[0].endorse(pair[1].public_key()));
                keys.push(pair[1].public_key().clone());
            }
            if let Some(last) = chain.pop() {
                guard
                    .endorsements
                    .push(last.endorse(guard.current.public_key()));
            }
            guard.previous = keys;
        }
        ring
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Ring> {
        self.ring.write().unwrap_or_else(|p| p.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Ring> {
        self.ring.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn signer(&self) -> Arc<TicketSigner> {
        self.read().current.clone()
    }

    /// Signs with `next` from now on; the current key stays trusted and endorses `next`.
    pub fn rotate(&self, next: TicketSigner) {
        let mut ring = self.write();
        let endorsement = ring.current.endorse(next.public_key());
        let old = ring.current.public_key().clone();
        ring.previous.push(old);
        while ring.previous.len() >= MAX_KEYS {
            ring.previous.remove(0);
        }
        ring.endorsements.push(endorsement);
        ring.current = Arc::new(next);
        tracing::info!(kid = %ring.current.kid(), "ticket signing key rotated");
    }

    /// Every trusted key, oldest first, the current one last.
    pub fn key_set(&self) -> KeySet {
        let ring = self.read();
        let mut keys = ring.previous.clone();
        keys.push(ring.current.public_key().clone());
        KeySet { keys }
    }

    pub fn endorsements(&self) -> Vec<KeyEndorsement> {
        self.read().endorsements.clone()
    }

    pub(crate) fn keys_reply(&self) -> pb::TicketKeysResponse {
        pb::TicketKeysResponse {
            keys: self.key_set().keys.iter().map(key_to_pb).collect(),
            endorsements: self
                .endorsements()
                .into_iter()
                .map(|e| pb::TicketKeyEndorsement {
                    key: Some(key_to_pb(&e.key)),
                    endorser: e.endorser,
                    signature: e.signature,
                })
                .collect(),
            current_kid: self.signer().kid().to_owned(),
        }
    }
}

fn key_to_pb(k: &PublicKey) -> pb::TicketPublicKey {
    pb::TicketPublicKey {
        kid: k.kid.clone(),
        key: k.key.clone(),
    }
}

fn internal(e: phirepass_ticket::TicketError) -> AuthzError {
    AuthzError::TicketKey(format!("ticket key: {e}"))
}

fn write_private(path: &Path, pem: &str) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let fail = |e: std::io::Error| {
        AuthzError::TicketKey(format!("writing ticket key {}: {e}", path.display()))
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(fail)?;
    file.write_all(pem.as_bytes()).map_err(fail)
}

fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The command a ticket request is for, checked: a name and the request's digest, only on
/// the node's own port 0 and never for a public tunnel. `None` when it names no command.
fn command_of(r: &pb::IssueOpenTicketRequest) -> Result<Option<&str>> {
    if r.command.is_empty() && r.command_digest.is_empty() {
        return Ok(None);
    }
    validate::command_name(&r.command)?;
    validate::command_digest(&r.command_digest)?;
    if r.port != 0 || r.public_tunnel || r.tunnel_owner {
        return Err(AuthzError::InvalidArgument(
            "a command ticket takes port 0 and no public_tunnel or tunnel_owner".into(),
        ));
    }
    Ok(Some(&r.command))
}

/// `IssueOpenTicket`: decides again (from the decision cache) and signs.
#[derive(Clone)]
pub(crate) struct OpenTickets {
    pub(crate) decisions: Decisions,
    pub(crate) keyring: Arc<TicketKeyring>,
}

impl OpenTickets {
    pub(crate) async fn issue(
        &self,
        r: pb::IssueOpenTicketRequest,
    ) -> Result<pb::IssueOpenTicketResponse> {
        if !valid_id(&r.node_id) || !valid_id(&r.edge_id) || r.stream_id == 0 {
            return Err(AuthzError::InvalidArgument(
                "node_id, edge_id and stream_id are required".into(),
            ));
        }
        let command = command_of(&r)?;
        let target = match (command, r.port) {
            (Some(name), _) => TicketTarget::Command {
                name: name.to_owned(),
                digest: r.command_digest.clone(),
            },
            (None, 0) => TicketTarget::Ssh,
            (None, p) => TicketTarget::Port {
                port: u16::try_from(p)
                    .map_err(|_| AuthzError::InvalidArgument("port out of range".into()))?,
            },
        };
        let tunnel_node = r.node_id.starts_with(TUNNEL_NODE_PREFIX);
        let user = if r.public_tunnel && command.is_none() {
            if !tunnel_node || r.port != PUBLIC_TUNNEL_PORT {
                tracing::warn!(node = %r.node_id, port = r.port, "public ticket refused: not a tunnel's http port");
                return Err(AuthzError::PermissionDenied);
            }
            String::new()
        } else if tunnel_node && r.tunnel_owner && !r.user_id.is_empty() && command.is_none() {
            // A random tunnel name is no target here: the edge's registry lookup decided.
            r.user_id.clone()
        } else {
            let who = match (r.user_id.is_empty(), r.username.is_empty()) {
                (false, true) => Who::Id(&r.user_id),
                (true, false) => Who::Name(&r.username),
                _ => {
                    return Err(AuthzError::InvalidArgument(
                        "exactly one of user_id and username is required".into(),
                    ));
                }
            };
            let d = self.decisions.allows(who, &r.target, command).await?;
            // A node target is reached at that node only; a tunnel's node id comes from the
            // registry (ssh-edge's session), never an agent's. Commands run on agent nodes.
            let right_node = match d.target_kind.as_deref() {
                Some("node") => d.target_id.as_deref() == Some(r.node_id.as_str()),
                Some("tunnel") => tunnel_node && command.is_none(),
                _ => false,
            };
            if !d.allowed || !right_node {
                tracing::warn!(user = %who.as_str(), target = %r.target, node = %r.node_id, command, allowed = d.allowed, reason = %d.reason, "open ticket refused");
                return Err(AuthzError::PermissionDenied);
            }
            d.user_id.unwrap_or_default()
        };
        let scope = Scope {
            node: r.node_id,
            target,
            edge: r.edge_id,
            stream: r.stream_id,
        };
        let now = phirepass_runtime::clock::now_millis();
        let now = u64::try_from(now).unwrap_or_default();
        let ticket = self
            .keyring
            .signer()
            .sign(&user, &scope, now, TICKET_TTL_MS)
            .map_err(internal)?;
        Ok(pb::IssueOpenTicketResponse {
            ticket,
            expires_at: i64::try_from(now + TICKET_TTL_MS).unwrap_or(i64::MAX),
        })
    }
}

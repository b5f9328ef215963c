//! Signed opens (issue #8) at the gateway. As an edge it asks authz for a ticket for each
//! stream it opens ([`issue`]); as the holder of agents it checks every open's ticket before
//! forwarding it ([`Tickets::check_open`]) and passes authz's key endorsements down each agent
//! link, so a rotated key reaches pinned agents without anyone touching their hosts.

use std::sync::RwLock;
use std::time::Instant;

use phirepass_proto::authz::{IssueOpenTicketRequest, TicketKeysRequest, TicketKeysResponse};
use phirepass_ticket::{
    Audience, Claims, KeyEndorsement, KeySet, PublicKey, RefreshGate, Scope, TicketError,
    TicketTarget, TicketVerifier,
};
use phirepass_tunnel::node_link::{LinkMessage, NodeControl};
use phirepass_tunnel::{OpenError, OpenRequest, StreamId, Target};
use tracing::{info, warn};

use crate::state::Authz;

/// On whose behalf an edge opens a stream.
#[derive(Clone, Copy, Debug)]
pub enum Opener<'a> {
    UserId(&'a str),
    Username(&'a str),
    /// A public `ssh -R` HTTP tunnel: anyone on the internet, no user.
    PublicTunnel,
}

/// authz's ticket for one open of `target` on `node_id` (`target_name`: how authz knows the
/// target, a name or the node id) from this edge, stream `stream`.
pub async fn issue(
    authz: &Authz,
    edge_id: &str,
    opener: Opener<'_>,
    target_name: &str,
    node_id: &str,
    target: &Target,
    stream: StreamId,
) -> Result<Option<String>, OpenError> {
    let (user_id, username, public) = match opener {
        Opener::UserId(id) => (id, "", false),
        Opener::Username(name) => ("", name, false),
        Opener::PublicTunnel => ("", "", true),
    };
    let (port, command, command_digest) = match target {
        Target::Ssh => (0, String::new(), String::new()),
        Target::Port { port } => (u32::from(*port), String::new(), String::new()),
        Target::Command(req) => (0, req.name.clone(), req.digest()),
    };
    let request = IssueOpenTicketRequest {
        user_id: user_id.to_owned(),
        username: username.to_owned(),
        target: target_name.to_owned(),
        node_id: node_id.to_owned(),
        port,
        edge_id: edge_id.to_owned(),
        stream_id: stream.0,
        public_tunnel: public,
        tunnel_owner: false,
        command,
        command_digest,
    };
    match authz.clone().issue_open_ticket(request).await {
        Ok(reply) => Ok(Some(reply.into_inner().ticket)),
        Err(status) if status.code() == tonic::Code::PermissionDenied => {
            Err(OpenError::NoTicket("access denied".into()))
        }
        Err(status) => {
            warn!(code = ?status.code(), node = node_id, "open ticket not issued");
            Err(OpenError::NoTicket(
                "the access service is unavailable".into(),
            ))
        }
    }
}

/// authz's keys as the holder trusts them, and the endorsements agents need.
pub struct Tickets {
    authz: Authz,
    verifier: TicketVerifier,
    endorsements: RwLock<Vec<KeyEndorsement>>,
    /// An unknown key id makes the holder ask authz again, within limits (a forged open with
    /// a made-up key id cannot turn into an RPC per message).
    gate: RefreshGate,
}

/// How long an open waits for authz's keys after a rotation before it is refused.
const REFRESH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

fn from_pb(reply: TicketKeysResponse) -> (KeySet, Vec<KeyEndorsement>) {
    let key = |k: phirepass_proto::authz::TicketPublicKey| PublicKey {
        kid: k.kid,
        key: k.key,
    };
    let keys = KeySet::new(reply.keys.into_iter().map(key).collect()).unwrap_or_default();
    let endorsements = reply
        .endorsements
        .into_iter()
        .filter_map(|e| {
            Some(KeyEndorsement {
                key: key(e.key?),
                endorser: e.endorser,
                signature: e.signature,
            })
        })
        .collect();
    (keys, endorsements)
}

impl Tickets {
    pub fn new(authz: Authz) -> Self {
        Self {
            authz,
            verifier: TicketVerifier::new(KeySet::default(), Audience::Agent),
            endorsements: RwLock::new(Vec::new()),
            gate: RefreshGate::default(),
        }
    }

    /// Asks authz for its keys (trusted as authz's answer over the authenticated channel).
    pub async fn refresh(&self) -> Result<KeySet, tonic::Status> {
        let reply = self
            .authz
            .clone()
            .ticket_keys(TicketKeysRequest {})
            .await?
            .into_inner();
        let (keys, endorsements) = from_pb(reply);
        if keys.keys != self.verifier.keys().keys {
            let kids: Vec<&str> = keys.keys.iter().map(|k| k.kid.as_str()).collect();
            info!(keys = ?kids, "ticket keys from authz");
        }
        self.verifier.set_keys(keys.clone());
        *self.endorsements.write().unwrap_or_else(|p| p.into_inner()) = endorsements;
        Ok(keys)
    }

    /// [`Tickets::refresh`] for a ticket under `kid`, when the gate allows.
    async fn refresh_for(&self, kid: &str) {
        if !self.gate.allow(kid, Instant::now()) {
            return;
        }
        // The agent link waits on this: a stalled authz must not hold it for long.
        match tokio::time::timeout(REFRESH_TIMEOUT, self.refresh()).await {
            Ok(Ok(keys)) if keys.get(kid).is_none() => self.gate.missing(kid, Instant::now()),
            Ok(Ok(_)) => {}
            Ok(Err(status)) => warn!(code = ?status.code(), "ticket keys not refreshed"),
            Err(_) => warn!("ticket keys not refreshed: authz did not answer in time"),
        }
    }

    /// The keys an enrolling agent pins (fresh from authz when it answers).
    pub async fn key_set(&self) -> KeySet {
        match self.refresh().await {
            Ok(keys) => keys,
            Err(_) => self.verifier.keys(),
        }
    }

    fn verify_now(&self, node_id: &str, req: &OpenRequest) -> Result<Claims, TicketError> {
        let scope = Scope {
            node: node_id.to_owned(),
            target: TicketTarget::from(&req.target),
            edge: req.edge_id.clone(),
            stream: req.stream_id.0,
        };
        let now = u64::try_from(phirepass_runtime::clock::now_millis()).unwrap_or_default();
        self.verifier.verify(req.ticket.as_deref(), &scope, now)
    }

    /// Checks an open for `node_id` held here; a key not known yet (authz rotated) is looked
    /// up once before refusing.
    pub async fn check_open(
        &self,
        node_id: &str,
        req: &OpenRequest,
    ) -> Result<Claims, TicketError> {
        match self.verify_now(node_id, req) {
            Err(TicketError::UnknownKey(kid)) => {
                self.refresh_for(&kid).await;
                self.verify_now(node_id, req)
            }
            Err(TicketError::NoKeys) => {
                let kid = req
                    .ticket
                    .as_deref()
                    .and_then(|t| phirepass_ticket::peek(t).ok());
                self.refresh_for(kid.as_ref().map_or("", |c| c.kid.as_str()))
                    .await;
                self.verify_now(node_id, req)
            }
            other => other,
        }
    }

    /// Sends the agent the endorsements it has not had on this link yet, ahead of an open that
    /// may be signed by the newest key. `sent` is 0 before the link's first `TicketKeys`, then
    /// 1 + the endorsements sent; the first one also carries the current keys, which an agent
    /// enrolled with a typed token pins (it has no other source).
    pub fn sync_agent(&self, sent: &mut usize, send: impl FnOnce(LinkMessage)) {
        let all = self.endorsements.read().unwrap_or_else(|p| p.into_inner());
        if *sent == 0 || all.len() + 1 > *sent {
            let keys = match *sent {
                0 => self.verifier.keys().keys,
                _ => Vec::new(),
            };
            *sent = all.len() + 1;
            send(LinkMessage::Control(NodeControl::TicketKeys {
                endorsements: all.clone(),
                keys,
            }));
        }
    }
}

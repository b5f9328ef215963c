//! Signed opens (issue #8) at the SSH edge. As an edge it asks authz for a ticket for each
//! stream it opens (relays to agent nodes, private tcp aliases); as the holder of `ssh -R`
//! tunnel nodes it checks every open's ticket before opening a channel to the client.

use std::time::Instant;

use phirepass_proto::authz::{IssueOpenTicketRequest, TicketKeysRequest};
use phirepass_ticket::{
    Audience, Claims, KeySet, PublicKey, RefreshGate, Scope, TicketError, TicketTarget,
    TicketVerifier,
};
use phirepass_tunnel::{OpenError, OpenRequest, StreamId, Target};
use tracing::{info, warn};

use crate::edge::Edge;

/// What an open is for, as authz is asked about it.
pub(crate) struct Ask<'a> {
    pub user_id: &'a str,
    /// How authz knows the target: a node id, a reserved tunnel name.
    pub target_name: &'a str,
    pub node_id: &'a str,
    pub target: Target,
    /// The registry says the user publishes this `sshr-` tunnel.
    pub tunnel_owner: bool,
}

/// authz's ticket for one open from this edge, stream `stream`.
pub(crate) async fn issue(
    edge: &Edge,
    ask: &Ask<'_>,
    stream: StreamId,
) -> Result<Option<String>, OpenError> {
    let request = IssueOpenTicketRequest {
        user_id: ask.user_id.to_owned(),
        username: String::new(),
        target: ask.target_name.to_owned(),
        node_id: ask.node_id.to_owned(),
        port: match &ask.target {
            Target::Ssh => 0,
            Target::Port { port } => u32::from(*port),
            // ssh-edge runs no commands (gateway-ws does): an empty command makes authz's
            // ticket name no command, which no agent accepts for a command open.
            Target::Command(_) => 0,
        },
        edge_id: edge.config.edge_id.clone(),
        stream_id: stream.0,
        public_tunnel: false,
        tunnel_owner: ask.tunnel_owner,
        command: String::new(),
        command_digest: String::new(),
    };
    match edge.authz.clone().issue_open_ticket(request).await {
        Ok(reply) => Ok(Some(reply.into_inner().ticket)),
        Err(status) if status.code() == tonic::Code::PermissionDenied => {
            Err(OpenError::NoTicket("access denied".into()))
        }
        Err(status) => {
            warn!(code = ?status.code(), node = ask.node_id, "open ticket not issued");
            Err(OpenError::NoTicket(
                "the access service is unavailable".into(),
            ))
        }
    }
}

/// authz's keys as this holder of tunnel nodes trusts them.
pub(crate) struct HolderTickets {
    verifier: TicketVerifier,
    /// An unknown key id makes the holder ask authz again, within limits.
    gate: RefreshGate,
}

impl Default for HolderTickets {
    fn default() -> Self {
        Self {
            // Public HTTP tunnels are opened for nobody in particular.
            verifier: TicketVerifier::new(KeySet::default(), Audience::Tunnel),
            gate: RefreshGate::default(),
        }
    }
}

impl HolderTickets {
    async fn refresh(&self, edge: &Edge, kid: &str) {
        if !self.gate.allow(kid, Instant::now()) {
            return;
        }
        match edge.authz.clone().ticket_keys(TicketKeysRequest {}).await {
            Ok(reply) => {
                let keys = reply
                    .into_inner()
                    .keys
                    .into_iter()
                    .map(|k| PublicKey {
                        kid: k.kid,
                        key: k.key,
                    })
                    .collect();
                let keys = KeySet::new(keys).unwrap_or_default();
                let kids: Vec<&str> = keys.keys.iter().map(|k| k.kid.as_str()).collect();
                info!(keys = ?kids, "ticket keys from authz");
                if keys.get(kid).is_none() {
                    self.gate.missing(kid, Instant::now());
                }
                self.verifier.set_keys(keys);
            }
            Err(status) => warn!(code = ?status.code(), "ticket keys not refreshed"),
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

    /// Checks an open for the tunnel node `node_id`; an unknown key is looked up once.
    pub(crate) async fn check_open(
        &self,
        edge: &Edge,
        node_id: &str,
        req: &OpenRequest,
    ) -> Result<Claims, TicketError> {
        match self.verify_now(node_id, req) {
            Err(TicketError::UnknownKey(kid)) => {
                self.refresh(edge, &kid).await;
                self.verify_now(node_id, req)
            }
            Err(TicketError::NoKeys) => {
                let claims = req
                    .ticket
                    .as_deref()
                    .and_then(|t| phirepass_ticket::peek(t).ok());
                self.refresh(edge, claims.as_ref().map_or("", |c| c.kid.as_str()))
                    .await;
                self.verify_now(node_id, req)
            }
            other => other,
        }
    }
}

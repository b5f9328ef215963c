//! Targets (direct hosts and agent nodes, one namespace of names) and
//! grants of targets to users and groups.

use phirepass_proto::authz as pb;
use phirepass_store::{
    GrantRow, HostRow, NodeRow, PrincipalKind, Store, StoreError, TargetKind, TargetRef,
    TunnelNameRow, new_id, now_millis,
};

use crate::audit::Audit;
use crate::error::{AuthzError, Result};
use crate::lookup;
use crate::requests::{GrantChange, principal_kind};
use crate::validate;

pub(crate) fn kind_to_proto(kind: TargetKind) -> pb::TargetKind {
    match kind {
        TargetKind::Node => pb::TargetKind::Node,
        TargetKind::Host => pb::TargetKind::Host,
        TargetKind::Tunnel => pb::TargetKind::Tunnel,
        TargetKind::NodeGroup => pb::TargetKind::NodeGroup,
    }
}

fn principal_to_proto(kind: PrincipalKind) -> pb::PrincipalKind {
    match kind {
        PrincipalKind::User => pb::PrincipalKind::User,
        PrincipalKind::Group => pb::PrincipalKind::Group,
    }
}

pub(crate) fn host_to_proto(host: &HostRow) -> pb::Target {
    pb::Target {
        kind: pb::TargetKind::Host.into(),
        id: host.id.clone(),
        name: host.name.clone(),
        ip: host.ip.clone(),
        port: u32::from(host.port),
        created_at: host.created_at,
        ..Default::default()
    }
}

pub(crate) fn node_to_target(node: &NodeRow) -> pb::Target {
    pb::Target {
        kind: pb::TargetKind::Node.into(),
        id: node.id.clone(),
        name: node.name.clone(),
        owner_user_id: node.user_id.clone(),
        owner_username: node.username.clone(),
        created_at: node.created_at,
        ..Default::default()
    }
}

pub(crate) fn tunnel_to_target(tunnel: &TunnelNameRow) -> pb::Target {
    pb::Target {
        kind: pb::TargetKind::Tunnel.into(),
        id: tunnel.id.clone(),
        name: tunnel.name.clone(),
        owner_user_id: tunnel.user_id.clone(),
        owner_username: tunnel.username.clone(),
        created_at: tunnel.created_at,
        ..Default::default()
    }
}

fn grant_to_proto(grant: &GrantRow) -> pb::GrantEntry {
    pb::GrantEntry {
        id: grant.id.clone(),
        principal_kind: principal_to_proto(grant.principal_kind).into(),
        principal: grant.principal_name.clone(),
        target: grant.target_name.clone(),
        target_kind: kind_to_proto(grant.target_kind).into(),
        created_at: grant.created_at,
        logins: grant.logins.clone(),
        commands: grant.commands.clone(),
    }
}

/// `ip:port`, with brackets around an IPv6 address.
pub(crate) fn host_address(host: &HostRow) -> String {
    if host.ip.contains(':') {
        format!("[{}]:{}", host.ip, host.port)
    } else {
        format!("{}:{}", host.ip, host.port)
    }
}

/// Hosts and grants (nodes and tunnel names are targets too, created by
/// their own calls).
pub(crate) struct Targets {
    pub(crate) store: Store,
    pub(crate) audit: Audit,
}

impl Targets {
    pub(crate) async fn add_host(&self, req: pb::AddHostRequest) -> Result<pb::Target> {
        validate::target_name(&req.name)?;
        let port = validate::host_address(&req.ip, req.port)?;
        let host = HostRow {
            id: new_id(),
            name: req.name,
            ip: req.ip,
            port,
            created_at: now_millis(),
        };
        match self.store.insert_host(&host).await {
            Ok(()) => {}
            Err(StoreError::Conflict) => return Err(AuthzError::AlreadyExists("target name")),
            Err(e) => return Err(e.into()),
        }
        tracing::info!(host_id = %host.id, host = %host.name, "host added");
        let address = host_address(&host);
        self.audit
            .change("host.add", &[("host", &host.name), ("address", &address)])
            .await;
        Ok(host_to_proto(&host))
    }

    pub(crate) async fn remove_host(
        &self,
        req: pb::RemoveHostRequest,
    ) -> Result<pb::RemoveHostResponse> {
        if !self.store.remove_host(&req.name).await? {
            return Err(AuthzError::NotFound("host"));
        }
        tracing::info!(host = %req.name, "host removed");
        self.audit
            .change("host.remove", &[("host", &req.name)])
            .await;
        Ok(pb::RemoveHostResponse {})
    }

    pub(crate) async fn list_targets(
        &self,
        req: pb::ListTargetsRequest,
    ) -> Result<pb::ListTargetsResponse> {
        let kind = req
            .kind
            .map(|k| pb::TargetKind::try_from(k).unwrap_or(pb::TargetKind::Unspecified));
        // Only nodes are members of node groups.
        let members = match req.node_group.as_deref() {
            Some(name) => {
                let group = lookup::node_group_named(&self.store, name).await?;
                Some(self.store.node_group_member_ids(&group.id).await?)
            }
            None => None,
        };
        let want = |k: pb::TargetKind| {
            (members.is_none() || k == pb::TargetKind::Node)
                && kind.is_none_or(|w| w == k || w == pb::TargetKind::Unspecified)
        };
        let mut targets = Vec::new();
        if want(pb::TargetKind::Host) {
            targets.extend(self.store.list_hosts().await?.iter().map(host_to_proto));
        }
        if want(pb::TargetKind::Node) {
            let node_groups = self.store.node_group_names_by_node().await?;
            for node in self.store.list_nodes(None).await? {
                if members.as_ref().is_some_and(|m| !m.contains(&node.id)) {
                    continue;
                }
                let mut target = node_to_target(&node);
                target.node_groups = node_groups.get(&node.id).cloned().unwrap_or_default();
                targets.push(target);
            }
        }
        if want(pb::TargetKind::Tunnel) {
            targets.extend(
                self.store
                    .list_tunnel_names(None)
                    .await?
                    .iter()
                    .map(tunnel_to_target),
            );
        }
        targets.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(pb::ListTargetsResponse { targets })
    }

    /// The principal's id, by kind and name.
    async fn principal_id(&self, kind: PrincipalKind, name: &str) -> Result<String> {
        Ok(match kind {
            PrincipalKind::User => lookup::user_named(&self.store, name).await?.id,
            PrincipalKind::Group => lookup::group_named(&self.store, name).await?.id,
        })
    }

    /// The grant's target: a target by name, or a node group with `node_group`.
    async fn grant_target(&self, name: &str, node_group: bool) -> Result<TargetRef> {
        if !node_group {
            return lookup::target_named(&self.store, name).await;
        }
        let group = lookup::node_group_named(&self.store, name).await?;
        Ok(TargetRef {
            kind: TargetKind::NodeGroup,
            id: group.id,
            name: group.name,
        })
    }

    pub(crate) async fn grant(&self, req: GrantChange) -> Result<pb::GrantEntry> {
        let kind = req.principal_kind;
        let id = self.principal_id(kind, &req.principal).await?;
        let target = self.grant_target(&req.target, req.node_group).await?;
        if !req.commands.is_empty()
            && !matches!(target.kind, TargetKind::Node | TargetKind::NodeGroup)
        {
            return Err(AuthzError::InvalidArgument(format!(
                "{} is a {}: commands run only on nodes (grant them on a node or a node group)",
                target.name,
                target.kind.as_str()
            )));
        }
        let grant = self
            .store
            .insert_grant(
                (kind, &id),
                (target.kind, &target.id),
                &req.logins,
                &req.commands,
                now_millis(),
            )
            .await?;
        let logins = req.logins.join(",");
        let commands = req.commands.join(",");
        tracing::info!(principal_kind = kind.as_str(), principal = %req.principal, target = %target.name, target_kind = target.kind.as_str(), logins, commands, "access granted");
        self.audit
            .change(
                "grant",
                &[
                    ("principal_kind", kind.as_str()),
                    ("principal", &req.principal),
                    ("target", &target.name),
                    ("target_kind", target.kind.as_str()),
                    ("logins", &logins),
                    ("commands", &commands),
                ],
            )
            .await;
        Ok(grant_to_proto(&grant))
    }

    pub(crate) async fn revoke(&self, req: GrantChange) -> Result<pb::RevokeResponse> {
        let kind = req.principal_kind;
        let id = self.principal_id(kind, &req.principal).await?;
        let target = self.grant_target(&req.target, req.node_group).await?;
        if !self
            .store
            .delete_grant((kind, &id), (target.kind, &target.id))
            .await?
        {
            return Err(AuthzError::NotFound("grant"));
        }
        tracing::info!(principal_kind = kind.as_str(), principal = %req.principal, target = %target.name, "access revoked");
        self.audit
            .change(
                "revoke",
                &[
                    ("principal_kind", kind.as_str()),
                    ("principal", &req.principal),
                    ("target", &target.name),
                    ("target_kind", target.kind.as_str()),
                ],
            )
            .await;
        Ok(pb::RevokeResponse {})
    }

    pub(crate) async fn list_grants(
        &self,
        req: pb::ListGrantsRequest,
    ) -> Result<pb::ListGrantsResponse> {
        let principal = match (req.principal_kind, req.principal.as_deref()) {
            (Some(kind), Some(name)) => {
                let kind = principal_kind(kind)?;
                Some((kind, self.principal_id(kind, name).await?))
            }
            (None, None) => None,
            _ => {
                return Err(AuthzError::InvalidArgument(
                    "principal and principal_kind go together".into(),
                ));
            }
        };
        let target = match req.target.as_deref() {
            Some(name) => Some(self.grant_target(name, req.node_group).await?),
            None => None,
        };
        let grants = self
            .store
            .list_grants(
                principal.as_ref().map(|(k, id)| (*k, id.as_str())),
                target.as_ref().map(|t| (t.kind, t.id.as_str())),
            )
            .await?;
        Ok(pb::ListGrantsResponse {
            grants: grants.iter().map(grant_to_proto).collect(),
        })
    }
}

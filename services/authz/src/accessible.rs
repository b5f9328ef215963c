//! `ListAccessibleTargets`: what the SSH edge offers a user in its target
//! menu. Built from the same facts as `Authorize` (ownership, user grants,
//! group grants, and the same user checks), with the same reason per target
//! and the accounts the grants list (so the menu can ask which one). The
//! edges' access re-checks read it too: `user_gone` ends every
//! connection of the user, and a relay's account is checked against
//! `logins` and `default_login`.

use std::collections::HashMap;

use phirepass_proto::authz as pb;
use phirepass_store::{PrincipalKind, TargetKind};

use crate::authorize::Decisions;
use crate::error::Result;
use crate::targets::{host_to_proto, node_to_target, tunnel_to_target};

/// Why a user reaches a target, strongest first: the order `Authorize`
/// checks them in (owner, direct grant, then groups by name).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Via {
    Owner,
    UserGrant,
    Group(String),
}

impl Via {
    fn reason(&self) -> String {
        match self {
            Self::Owner => "owner".to_owned(),
            Self::UserGrant => "user grant".to_owned(),
            Self::Group(group) => format!("group grant: {group}"),
        }
    }
}

impl Decisions {
    pub(crate) async fn list_accessible_targets(
        &self,
        req: pb::ListAccessibleTargetsRequest,
    ) -> Result<pb::ListAccessibleTargetsResponse> {
        let gone = pb::ListAccessibleTargetsResponse {
            targets: Vec::new(),
            user_gone: true,
        };
        let Some(user) = self.store.user_by_username(&req.username).await? else {
            return Ok(gone);
        };
        if user.disabled {
            tracing::debug!(user_id = %user.id, "no accessible targets: user disabled");
            return Ok(gone);
        }
        let empty = pb::ListAccessibleTargetsResponse {
            targets: Vec::new(),
            user_gone: false,
        };

        // (kind, id) -> strongest reason.
        let mut reach: HashMap<(TargetKind, String), Via> = HashMap::new();
        let mut offer = |kind: TargetKind, id: &str, via: Via| {
            let entry = reach.entry((kind, id.to_owned())).or_insert(via.clone());
            if via < *entry {
                *entry = via;
            }
        };
        let owned = self.store.list_nodes(Some(&user.id)).await?;
        for node in &owned {
            offer(TargetKind::Node, &node.id, Via::Owner);
        }
        for tunnel in self.store.list_tunnel_names(Some(&user.id)).await? {
            offer(TargetKind::Tunnel, &tunnel.id, Via::Owner);
        }
        // (kind, id) -> each grant's logins with its strength, to list strongest first.
        let mut listed: HashMap<(TargetKind, String), Vec<GrantedLogins>> = HashMap::new();
        for grant in self.store.grants_reaching_user(&user.id).await? {
            let via = match grant.principal_kind {
                PrincipalKind::User => Via::UserGrant,
                PrincipalKind::Group => Via::Group(grant.principal_name),
            };
            // A grant on a node group reaches each node in it.
            let reached = if grant.target_kind == TargetKind::NodeGroup {
                self.store
                    .node_group_member_ids(&grant.target_id)
                    .await?
                    .into_iter()
                    .map(|id| (TargetKind::Node, id))
                    .collect()
            } else {
                vec![(grant.target_kind, grant.target_id)]
            };
            for (kind, id) in reached {
                offer(kind, &id, via.clone());
                listed
                    .entry((kind, id))
                    .or_default()
                    .push((via.clone(), grant.logins.clone()));
            }
        }
        // (listed logins, some grant lists none): as Authorize's `logins` and default account.
        let logins = |kind: TargetKind, id: &str| -> (Vec<String>, bool) {
            let mut grants = listed
                .get(&(kind, id.to_owned()))
                .cloned()
                .unwrap_or_default();
            grants.sort_by(|a, b| a.0.cmp(&b.0));
            let default_login = grants.iter().any(|(_, l)| l.is_empty());
            let mut out: Vec<String> = Vec::new();
            for login in grants.into_iter().flat_map(|(_, l)| l) {
                if !out.contains(&login) {
                    out.push(login);
                }
            }
            (out, default_login)
        };
        if reach.is_empty() {
            return Ok(empty);
        }

        let mut targets = Vec::with_capacity(reach.len());
        let needs_hosts = reach.keys().any(|(kind, _)| *kind == TargetKind::Host);
        if needs_hosts {
            for host in self.store.list_hosts().await? {
                if let Some(via) = reach.get(&(TargetKind::Host, host.id.clone())) {
                    let (logins, default_login) = logins(TargetKind::Host, &host.id);
                    targets.push(pb::AccessibleTarget {
                        target: Some(host_to_proto(&host)),
                        reason: via.reason(),
                        logins,
                        default_login,
                    });
                }
            }
        }
        if reach.keys().any(|(kind, _)| *kind == TargetKind::Tunnel) {
            for tunnel in self.store.list_tunnel_names(None).await? {
                if let Some(via) = reach.get(&(TargetKind::Tunnel, tunnel.id.clone())) {
                    targets.push(pb::AccessibleTarget {
                        target: Some(tunnel_to_target(&tunnel)),
                        reason: via.reason(),
                        logins: Vec::new(),
                        default_login: false,
                    });
                }
            }
        }
        let granted_nodes = reach
            .iter()
            .filter(|((kind, _), via)| *kind == TargetKind::Node && **via != Via::Owner)
            .count();
        let nodes = if granted_nodes == 0 {
            owned
        } else {
            self.store.list_nodes(None).await?
        };
        let node_groups = if nodes.is_empty() {
            Default::default()
        } else {
            self.store.node_group_names_by_node().await?
        };
        for node in nodes {
            if let Some(via) = reach.get(&(TargetKind::Node, node.id.clone())) {
                // An owner may use any account: nothing to list.
                let (logins, default_login) = if *via == Via::Owner {
                    (Vec::new(), false)
                } else {
                    logins(TargetKind::Node, &node.id)
                };
                let mut target = node_to_target(&node);
                target.node_groups = node_groups.get(&node.id).cloned().unwrap_or_default();
                targets.push(pb::AccessibleTarget {
                    target: Some(target),
                    reason: via.reason(),
                    logins,
                    default_login,
                });
            }
        }
        targets.sort_by(|a, b| target_name(a).cmp(target_name(b)));
        tracing::debug!(user_id = %user.id, count = targets.len(), "accessible targets listed");
        Ok(pb::ListAccessibleTargetsResponse {
            targets,
            user_gone: false,
        })
    }
}

/// One grant's strength and the logins it lists.
type GrantedLogins = (Via, Vec<String>);

fn target_name(t: &pb::AccessibleTarget) -> &str {
    t.target.as_ref().map_or("", |t| t.name.as_str())
}

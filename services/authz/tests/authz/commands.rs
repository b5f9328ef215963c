//! Command grants (issue #10): Authorize with action `command:<name>` on a node, for its
//! owner or a grant listing the command (or `*`), directly or through a user group, on the
//! node or on a node group holding it; hosts never run commands; every change reaches a
//! cached decision at once; IssueOpenTicket signs exactly the command it was asked for.

use crate::common::{Harness, Options, Stack};
use phirepass_proto::authz as pb;
use phirepass_ticket::{Audience, KeySet, PublicKey, Scope, TicketTarget, TicketVerifier};
use tonic::Code;

on_both_stacks!(
    command_grants_name_the_commands,
    node_group_grants_follow_membership,
    command_tickets_sign_the_command,
);

pub async fn decide(h: &Harness, user: &str, target: &str, action: &str) -> pb::AuthorizeResponse {
    h.client()
        .authorize(pb::AuthorizeRequest {
            username: user.into(),
            target: target.into(),
            action: action.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
}

/// (allowed, reason) of `user` running `command` on `target`.
async fn run(h: &Harness, user: &str, target: &str, command: &str) -> (bool, String) {
    let d = decide(h, user, target, &format!("command:{command}")).await;
    (d.allowed, d.reason)
}

fn grant(
    kind: pb::PrincipalKind,
    principal: &str,
    target: &str,
    commands: &[&str],
) -> pb::GrantRequest {
    pb::GrantRequest {
        principal_kind: kind.into(),
        principal: principal.into(),
        target: target.into(),
        commands: commands.iter().map(|c| (*c).to_owned()).collect(),
        ..Default::default()
    }
}

fn on_node_group(request: pb::GrantRequest) -> pb::GrantRequest {
    pb::GrantRequest {
        node_group: true,
        ..request
    }
}

async fn join(h: &Harness, group: &str, nodes: &[&str]) -> pb::NodeGroup {
    h.client()
        .add_node_group_members(pb::AddNodeGroupMembersRequest {
            group: group.into(),
            nodes: nodes.iter().map(|n| (*n).to_owned()).collect(),
        })
        .await
        .unwrap()
        .into_inner()
}

async fn command_grants_name_the_commands(stack: Stack) {
    use pb::PrincipalKind::{Group, User};
    let h = Harness::on(stack, Options::default()).await;
    for u in ["owner", "alice", "bob", "carol", "dave"] {
        h.create_user(u).await;
    }
    h.node_token("owner", "web-1", None).await.unwrap();
    let mut c = h.client();
    c.add_host(pb::AddHostRequest {
        name: "db".into(),
        ip: "10.0.0.9".into(),
        port: 22,
    })
    .await
    .unwrap();
    c.create_group(pb::CreateGroupRequest { name: "ops".into() })
        .await
        .unwrap();
    c.add_group_member(pb::AddGroupMemberRequest {
        group: "ops".into(),
        username: "carol".into(),
    })
    .await
    .unwrap();
    let entry = c
        .grant(grant(User, "alice", "web-1", &["disk_usage", "disk_usage"]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(entry.commands, ["disk_usage"]);
    c.grant(grant(User, "bob", "web-1", &["*"])).await.unwrap();
    c.grant(grant(Group, "ops", "web-1", &["restart_app"]))
        .await
        .unwrap();
    c.grant(grant(User, "dave", "web-1", &[])).await.unwrap();
    c.grant(grant(User, "alice", "db", &[])).await.unwrap();

    let matrix = [
        ("owner", "web-1", "restart_app", true, "owner"),
        (
            "alice",
            "web-1",
            "disk_usage",
            true,
            "user grant: command:disk_usage",
        ),
        (
            "alice",
            "web-1",
            "restart_app",
            false,
            "no grant for command:restart_app",
        ),
        (
            "bob",
            "web-1",
            "anything-else",
            true,
            "user grant: command:*",
        ),
        (
            "carol",
            "web-1",
            "restart_app",
            true,
            "group grant: ops: command:restart_app",
        ),
        (
            "carol",
            "web-1",
            "disk_usage",
            false,
            "no grant for command:disk_usage",
        ),
        // Reaching the node is not running commands on it.
        (
            "dave",
            "web-1",
            "disk_usage",
            false,
            "no grant for command:disk_usage",
        ),
        (
            "alice",
            "db",
            "disk_usage",
            false,
            "commands run only on nodes",
        ),
        ("ghost", "web-1", "disk_usage", false, "unknown user"),
        ("alice", "nowhere", "disk_usage", false, "unknown target"),
    ];
    for (user, target, command, allowed, reason) in matrix {
        let (got, why) = run(&h, user, target, command).await;
        assert_eq!(
            (got, why.as_str()),
            (allowed, reason),
            "{user} {command} on {target}"
        );
    }
    // The shell decisions are what they were.
    let d = decide(&h, "dave", "web-1", "ssh").await;
    assert_eq!((d.allowed, d.reason.as_str()), (true, "user grant"));
    let d = decide(&h, "alice", "web-1", "ssh").await;
    assert_eq!((d.allowed, d.reason.as_str()), (true, "user grant"));

    // Cached, then granting again replaces the list at once.
    assert!(run(&h, "alice", "web-1", "disk_usage").await.0);
    let events = h.audit_events().await;
    let last = events
        .iter()
        .rev()
        .find(|e| e["kind"] == "authorize")
        .unwrap();
    assert_eq!(
        (last["cached"].as_bool(), last["action"].as_str()),
        (Some(true), Some("command:disk_usage"))
    );
    c.grant(grant(User, "alice", "web-1", &["restart_app"]))
        .await
        .unwrap();
    assert!(!run(&h, "alice", "web-1", "disk_usage").await.0);
    assert!(run(&h, "alice", "web-1", "restart_app").await.0);
    c.revoke(pb::RevokeRequest {
        principal_kind: User.into(),
        principal: "alice".into(),
        target: "web-1".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(
        run(&h, "alice", "web-1", "restart_app").await,
        (false, "no grant for command:restart_app".to_owned())
    );

    // Refused requests: commands on a host, malformed names, too many.
    let refused = c
        .grant(grant(User, "alice", "db", &["x"]))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(refused.message().contains("only on nodes"), "{refused:?}");
    for bad in ["Disk", "-x", "a b", "x;y", "", &"x".repeat(65)] {
        let e = c
            .grant(grant(User, "alice", "web-1", &[bad]))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{bad:?}");
    }
    let many: Vec<String> = (0..65).map(|i| format!("c{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let e = c
        .grant(grant(User, "alice", "web-1", &many))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    for action in ["command:", "command:Disk", "command:a;b", "command:*"] {
        let e = h
            .client()
            .authorize(pb::AuthorizeRequest {
                username: "alice".into(),
                target: "web-1".into(),
                action: action.into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{action}");
    }
    let listed = c
        .list_grants(pb::ListGrantsRequest {
            target: Some("web-1".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .grants;
    let bob = listed.iter().find(|g| g.principal == "bob").unwrap();
    assert_eq!(bob.commands, ["*"]);
    h.stop().await;
}

async fn node_group_grants_follow_membership(stack: Stack) {
    use pb::PrincipalKind::{Group, User};
    let h = Harness::on(stack, Options::default()).await;
    for u in ["owner", "alice", "carol"] {
        h.create_user(u).await;
    }
    for n in ["web-1", "web-2", "db-1"] {
        h.node_token("owner", n, None).await.unwrap();
    }
    let mut c = h.client();
    c.create_group(pb::CreateGroupRequest { name: "ops".into() })
        .await
        .unwrap();
    c.add_group_member(pb::AddGroupMemberRequest {
        group: "ops".into(),
        username: "carol".into(),
    })
    .await
    .unwrap();

    // Unknown groups and nodes are named; a grant on a group needs the group.
    let e = c
        .grant(on_node_group(grant(User, "alice", "web", &["disk_usage"])))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert!(e.message().contains("node group web"), "{e:?}");
    let e = c
        .add_node_group_members(pb::AddNodeGroupMembersRequest {
            group: "web".into(),
            nodes: vec!["web-1".into(), "web-9".into()],
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert!(e.message().contains("node web-9"), "{e:?}");

    let group = join(&h, "web", &["web-1"]).await;
    assert_eq!(group.nodes, ["web-1"]);
    let entry = c
        .grant(on_node_group(grant(User, "alice", "web", &["disk_usage"])))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(entry.target_kind(), pb::TargetKind::NodeGroup);
    assert_eq!(
        (entry.target.as_str(), &entry.commands[..]),
        ("web", &["disk_usage".to_owned()][..])
    );
    c.grant(on_node_group(grant(Group, "ops", "web", &["*"])))
        .await
        .unwrap();

    let via_group = "user grant on node group web: command:disk_usage";
    assert_eq!(
        run(&h, "alice", "web-1", "disk_usage").await,
        (true, via_group.to_owned())
    );
    assert_eq!(
        run(&h, "carol", "web-1", "restart_app").await,
        (
            true,
            "group grant: ops on node group web: command:*".to_owned()
        )
    );
    // A grant on a group reaches its members like a grant on each of them.
    let d = decide(&h, "alice", "web-1", "ssh").await;
    assert_eq!((d.allowed, d.reason.as_str()), (true, "user grant"));
    assert!(!run(&h, "alice", "web-2", "disk_usage").await.0);
    assert!(!decide(&h, "alice", "web-2", "ssh").await.allowed);

    // Joining and leaving take effect at once (the decision cache is on).
    join(&h, "web", &["web-2", "web-1"]).await;
    assert_eq!(
        run(&h, "alice", "web-2", "disk_usage").await,
        (true, via_group.to_owned())
    );
    let group = c
        .remove_node_group_members(pb::RemoveNodeGroupMembersRequest {
            group: "web".into(),
            nodes: vec!["web-1".into()],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(group.nodes, ["web-2"]);
    assert_eq!(
        run(&h, "alice", "web-1", "disk_usage").await,
        (false, "no grant for command:disk_usage".to_owned())
    );
    assert!(!decide(&h, "alice", "web-1", "ssh").await.allowed);

    // Targets say which groups a node is in, and filter by group.
    let targets = c
        .list_targets(pb::ListTargetsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .targets;
    let web2 = targets.iter().find(|t| t.name == "web-2").unwrap();
    assert_eq!(web2.node_groups, ["web"]);
    assert!(
        targets
            .iter()
            .find(|t| t.name == "web-1")
            .unwrap()
            .node_groups
            .is_empty()
    );
    let in_web = c
        .list_targets(pb::ListTargetsRequest {
            node_group: Some("web".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .targets;
    let names: Vec<&str> = in_web.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["web-2"]);
    let accessible = c
        .list_accessible_targets(pb::ListAccessibleTargetsRequest {
            username: "alice".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .targets;
    let names: Vec<&str> = accessible
        .iter()
        .map(|t| t.target.as_ref().unwrap().name.as_str())
        .collect();
    assert_eq!(names, ["web-2"]);
    let listed = c
        .list_node_groups(pb::ListNodeGroupsRequest {})
        .await
        .unwrap()
        .into_inner()
        .groups;
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].name.as_str(), &listed[0].nodes[..]),
        ("web", &["web-2".to_owned()][..])
    );

    // Every change is an audited admin change.
    let events = h.audit_events().await;
    let actions: Vec<&str> = events
        .iter()
        .filter(|e| e["kind"] == "admin")
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(actions.contains(&"node_group.member.add"), "{actions:?}");
    assert!(actions.contains(&"node_group.member.remove"), "{actions:?}");

    // Removing the group takes its grants with it.
    c.remove_node_group(pb::RemoveNodeGroupRequest { name: "web".into() })
        .await
        .unwrap();
    assert!(!run(&h, "alice", "web-2", "disk_usage").await.0);
    let grants = c
        .list_grants(pb::ListGrantsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .grants;
    assert!(grants.is_empty(), "{grants:?}");
    let e = c
        .remove_node_group(pb::RemoveNodeGroupRequest { name: "web".into() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    // Removing a node's owner removes the node from its groups.
    join(&h, "db", &["db-1"]).await;
    c.remove_user(pb::RemoveUserRequest {
        username: "owner".into(),
    })
    .await
    .unwrap();
    let listed = c
        .list_node_groups(pb::ListNodeGroupsRequest {})
        .await
        .unwrap()
        .into_inner()
        .groups;
    assert!(listed.iter().all(|g| g.nodes.is_empty()), "{listed:?}");
    h.stop().await;
}

fn ticket_request(
    user: &str,
    node: &str,
    command: &str,
    digest: &str,
) -> pb::IssueOpenTicketRequest {
    pb::IssueOpenTicketRequest {
        user_id: user.into(),
        target: "web-1".into(),
        node_id: node.into(),
        port: 0,
        edge_id: "gw-1".into(),
        stream_id: 7,
        command: command.into(),
        command_digest: digest.into(),
        ..Default::default()
    }
}

async fn command_tickets_sign_the_command(stack: Stack) {
    let h = Harness::on(stack, Options::default()).await;
    h.create_user("owner").await;
    let alice = h.create_user("alice").await;
    let bob = h.create_user("bob").await;
    let node = h.node_token("owner", "web-1", None).await.unwrap().node_id;
    let mut c = h.client();
    c.grant(grant(
        pb::PrincipalKind::User,
        "alice",
        "web-1",
        &["disk_usage"],
    ))
    .await
    .unwrap();
    c.grant(grant(pb::PrincipalKind::User, "bob", "web-1", &[]))
        .await
        .unwrap();
    let keys = c
        .ticket_keys(pb::TicketKeysRequest {})
        .await
        .unwrap()
        .into_inner();
    let set = KeySet::new(
        keys.keys
            .into_iter()
            .map(|k| PublicKey {
                kid: k.kid,
                key: k.key,
            })
            .collect(),
    )
    .unwrap();
    let verifier = TicketVerifier::new(set, Audience::Agent);
    let digest = "ab".repeat(32);

    let ticket = c
        .issue_open_ticket(ticket_request(&alice.id, &node, "disk_usage", &digest))
        .await
        .unwrap()
        .into_inner()
        .ticket;
    let scope = Scope {
        node: node.clone(),
        target: TicketTarget::Command {
            name: "disk_usage".into(),
            digest: digest.clone(),
        },
        edge: "gw-1".into(),
        stream: 7,
    };
    let now = u64::try_from(phirepass_runtime::clock::now_millis()).unwrap();
    assert_eq!(
        verifier.verify(Some(&ticket), &scope, now).unwrap().user,
        alice.id
    );
    // The ticket is for that command and those parameters only.
    let other = Scope {
        target: TicketTarget::Command {
            name: "disk_usage".into(),
            digest: "cd".repeat(32),
        },
        ..scope.clone()
    };
    assert!(verifier.verify(Some(&ticket), &other, now).is_err());
    let ssh = Scope {
        target: TicketTarget::Ssh,
        ..scope.clone()
    };
    assert!(verifier.verify(Some(&ticket), &ssh, now).is_err());

    let code = |r: Result<tonic::Response<pb::IssueOpenTicketResponse>, tonic::Status>| {
        r.expect_err("refused").code()
    };
    // No grant of the command (bob reaches the node, alice's grant lists another command).
    let refused = c
        .issue_open_ticket(ticket_request(&bob.id, &node, "disk_usage", &digest))
        .await;
    assert_eq!(code(refused), Code::PermissionDenied);
    let refused = c
        .issue_open_ticket(ticket_request(&alice.id, &node, "restart_app", &digest))
        .await;
    assert_eq!(code(refused), Code::PermissionDenied);
    // Malformed: digest, name, a port beside a command, a digest without a command.
    for (command, digest, port) in [
        ("disk_usage", "AB".repeat(32), 0),
        ("disk_usage", "ab".repeat(31), 0),
        ("disk_usage", String::new(), 0),
        ("Disk", "ab".repeat(32), 0),
        ("disk_usage", "ab".repeat(32), 22),
        ("", "ab".repeat(32), 0),
    ] {
        let request = pb::IssueOpenTicketRequest {
            port,
            ..ticket_request(&alice.id, &node, command, &digest)
        };
        assert_eq!(
            code(c.issue_open_ticket(request).await),
            Code::InvalidArgument,
            "{command:?} {digest:?} {port}"
        );
    }
    h.stop().await;
}

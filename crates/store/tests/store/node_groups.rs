//! Node groups and command grants (issue #10), on PostgreSQL and SQLite: membership, the
//! command rights a user's grants give on a node (directly, through user groups, through
//! node groups), and cleanup when a group, a member or its owner goes.

use phirepass_store::{
    CommandGrant, GrantVia, PrincipalKind, Store, TargetKind, new_id, now_millis,
};

use crate::access::{node, user};

phirepass_store::on_both_stores!(node_groups_carry_grants_to_their_members,);

async fn node_groups_carry_grants_to_their_members(store: Store) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let web1 = node(&store, &alice, "web-1").await.unwrap();
    let web2 = node(&store, &alice, "web-2").await.unwrap();
    let group = store
        .add_node_group_members("web", std::slice::from_ref(&web1), now_millis())
        .await
        .unwrap();
    assert_eq!(group.nodes, ["web-1"]);
    let again = store
        .add_node_group_members("web", &[web1.clone(), web2.clone()], now_millis())
        .await
        .unwrap();
    assert_eq!(
        (again.id.as_str(), &again.nodes[..]),
        (
            group.id.as_str(),
            &["web-1".to_owned(), "web-2".to_owned()][..]
        )
    );
    let by_node = store.node_group_names_by_node().await.unwrap();
    assert_eq!(by_node.get(&web2), Some(&vec!["web".to_owned()]));

    let ops = new_id();
    store.insert_group(&ops, "ops", now_millis()).await.unwrap();
    store
        .add_group_member(&ops, &bob.id, now_millis())
        .await
        .unwrap();
    let strings = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    store
        .insert_grant(
            (PrincipalKind::User, &bob.id),
            (TargetKind::Node, &web1),
            &[],
            &strings(&["disk_usage"]),
            now_millis(),
        )
        .await
        .unwrap();
    let on_group = store
        .insert_grant(
            (PrincipalKind::Group, &ops),
            (TargetKind::NodeGroup, &group.id),
            &[],
            &strings(&["*"]),
            now_millis(),
        )
        .await
        .unwrap();
    assert_eq!(
        (
            on_group.target_kind,
            on_group.target_name.as_str(),
            &on_group.commands[..]
        ),
        (TargetKind::NodeGroup, "web", &strings(&["*"])[..])
    );

    // Strongest first: bob's own grant on the node, then ops' on the group.
    let direct = CommandGrant {
        via: GrantVia::User,
        node_group: None,
        commands: strings(&["disk_usage"]),
    };
    let through_group = CommandGrant {
        via: GrantVia::Group("ops".into()),
        node_group: Some("web".into()),
        commands: strings(&["*"]),
    };
    assert_eq!(
        store.command_grants(&bob.id, &web1).await.unwrap(),
        [direct, through_group.clone()]
    );
    assert_eq!(
        store.command_grants(&bob.id, &web2).await.unwrap(),
        [through_group]
    );
    assert!(
        store
            .command_grants(&alice.id, &web2)
            .await
            .unwrap()
            .is_empty()
    );
    // A grant on a group reaches its members for access too.
    let reach = store
        .grant_logins(&bob.id, (TargetKind::Node, &web2))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reach.via, GrantVia::Group("ops".into()));

    // Leaving the group ends it.
    let removed = store
        .remove_node_group_members(&group.id, std::slice::from_ref(&web2))
        .await
        .unwrap();
    assert_eq!(removed, 1);
    assert!(
        store
            .command_grants(&bob.id, &web2)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .grant_logins(&bob.id, (TargetKind::Node, &web2))
            .await
            .unwrap(),
        None
    );

    // Removing the group removes its grants; removing the owner, her nodes' memberships.
    assert!(store.remove_node_group("web").await.unwrap());
    assert!(!store.remove_node_group("web").await.unwrap());
    let grants = store.list_grants(None, None).await.unwrap();
    assert_eq!(grants.len(), 1, "{grants:?}");
    store
        .add_node_group_members("db", std::slice::from_ref(&web1), now_millis())
        .await
        .unwrap();
    assert!(store.remove_user("alice").await.unwrap());
    let groups = store.list_node_groups().await.unwrap();
    assert_eq!(groups.len(), 1);
    assert!(groups[0].nodes.is_empty(), "{groups:?}");
}

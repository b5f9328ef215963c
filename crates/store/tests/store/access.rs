//! The access model tables (groups, hosts, the target namespace, grants,
//! keys, API tokens, user removal), run against PostgreSQL and SQLite.

use phirepass_store::{
    GrantLogins, GrantVia, HostRow, NewApiToken, NewNodeToken, PrincipalKind, SCOPE_NODE_CONNECT,
    Store, StoreError, TOKEN_KIND_API, TOKEN_KIND_NODE, TargetKind, UserKeyRow, UserRow, new_id,
    now_millis,
};

phirepass_store::on_both_stores!(
    hosts_and_nodes_share_one_namespace,
    grants_direct_and_through_groups,
    grant_logins_are_replaced_and_merged,
    removing_things_removes_their_grants,
    keys_roundtrip,
    api_tokens_are_listed_with_their_kind,
);

pub(crate) async fn user(store: &Store, name: &str) -> UserRow {
    let user = UserRow {
        id: new_id(),
        username: name.to_owned(),
        password_hash: "$argon2id$dummy".to_owned(),
        disabled: false,
        admin: false,
        created_at: now_millis(),
    };
    store.insert_user(&user).await.unwrap();
    user
}

pub(crate) async fn node(store: &Store, owner: &UserRow, name: &str) -> Result<String, StoreError> {
    let node = store
        .create_node_token(&NewNodeToken {
            token_id: new_id(),
            token_hash: "h".into(),
            user_id: owner.id.clone(),
            node_name: name.into(),
            scopes: vec![SCOPE_NODE_CONNECT.into()],
            created_at: now_millis(),
            expires_at: None,
        })
        .await?;
    Ok(node.id)
}

fn host(name: &str) -> HostRow {
    HostRow {
        id: new_id(),
        name: name.into(),
        ip: "10.0.0.5".into(),
        port: 22,
        created_at: now_millis(),
    }
}

async fn hosts_and_nodes_share_one_namespace(store: Store) {
    let alice = user(&store, "alice").await;
    let node_id = node(&store, &alice, "web").await.unwrap();
    assert!(matches!(
        store.insert_host(&host("web")).await,
        Err(StoreError::Conflict)
    ));
    store.insert_host(&host("db")).await.unwrap();
    assert!(matches!(
        node(&store, &alice, "db").await,
        Err(StoreError::Conflict)
    ));
    // Rotating an existing node's token is not a clash with itself.
    assert_eq!(node(&store, &alice, "web").await.unwrap(), node_id);

    let web = store.target_by_name("web").await.unwrap().unwrap();
    assert_eq!(
        (web.kind, web.id.as_str()),
        (TargetKind::Node, node_id.as_str())
    );
    let by_id = store.target_by_name(&node_id).await.unwrap().unwrap();
    assert_eq!(by_id.name, "web");
    let db = store.target_by_name("db").await.unwrap().unwrap();
    assert_eq!(db.kind, TargetKind::Host);
    assert_eq!(store.host_by_id(&db.id).await.unwrap().unwrap().port, 22);
    assert!(store.target_by_name("nope").await.unwrap().is_none());
    assert_eq!(store.list_hosts().await.unwrap().len(), 1);

    assert!(store.remove_host("db").await.unwrap());
    assert!(!store.remove_host("db").await.unwrap());
    assert!(
        !store.remove_host("web").await.unwrap(),
        "a node is not a host"
    );
    // The name is free again.
    node(&store, &alice, "db").await.unwrap();
}

async fn grants_direct_and_through_groups(store: Store) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    store.insert_host(&host("db")).await.unwrap();
    let db = store.target_by_name("db").await.unwrap().unwrap();
    let target = (TargetKind::Host, db.id.as_str());

    assert_eq!(store.grant_via(&alice.id, target).await.unwrap(), None);
    let g = store
        .insert_grant(
            (PrincipalKind::User, &alice.id),
            target,
            &[],
            &[],
            now_millis(),
        )
        .await
        .unwrap();
    assert_eq!(g.principal_name, "alice");
    assert_eq!(g.target_name, "db");
    // Idempotent.
    let again = store
        .insert_grant(
            (PrincipalKind::User, &alice.id),
            target,
            &[],
            &[],
            now_millis(),
        )
        .await
        .unwrap();
    assert_eq!(again.id, g.id);
    assert_eq!(
        store.grant_via(&alice.id, target).await.unwrap(),
        Some(GrantVia::User)
    );

    let gid = new_id();
    store.insert_group(&gid, "ops", now_millis()).await.unwrap();
    assert!(matches!(
        store.insert_group(&new_id(), "ops", now_millis()).await,
        Err(StoreError::Conflict)
    ));
    store
        .add_group_member(&gid, &bob.id, now_millis())
        .await
        .unwrap();
    store
        .add_group_member(&gid, &bob.id, now_millis())
        .await
        .unwrap();
    assert_eq!(
        store
            .group_by_name("ops")
            .await
            .unwrap()
            .unwrap()
            .member_count,
        1
    );
    assert_eq!(store.grant_via(&bob.id, target).await.unwrap(), None);
    store
        .insert_grant((PrincipalKind::Group, &gid), target, &[], &[], now_millis())
        .await
        .unwrap();
    assert_eq!(
        store.grant_via(&bob.id, target).await.unwrap(),
        Some(GrantVia::Group("ops".into()))
    );
    let members = store.group_members(&gid).await.unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].username, "bob");

    let all = store.list_grants(None, None).await.unwrap();
    assert_eq!(all.len(), 2);
    let by_group = store
        .list_grants(Some((PrincipalKind::Group, &gid)), Some(target))
        .await
        .unwrap();
    assert_eq!(by_group.len(), 1);
    assert_eq!(by_group[0].principal_name, "ops");

    assert!(store.remove_group_member(&gid, &bob.id).await.unwrap());
    assert!(!store.remove_group_member(&gid, &bob.id).await.unwrap());
    assert_eq!(store.grant_via(&bob.id, target).await.unwrap(), None);

    assert!(
        store
            .delete_grant((PrincipalKind::User, &alice.id), target)
            .await
            .unwrap()
    );
    assert!(
        !store
            .delete_grant((PrincipalKind::User, &alice.id), target)
            .await
            .unwrap()
    );
    assert_eq!(store.grant_via(&alice.id, target).await.unwrap(), None);
}

async fn removing_things_removes_their_grants(store: Store) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let node_id = node(&store, &alice, "web").await.unwrap();
    let gid = new_id();
    store.insert_group(&gid, "ops", now_millis()).await.unwrap();
    store
        .add_group_member(&gid, &bob.id, now_millis())
        .await
        .unwrap();
    let web = (TargetKind::Node, node_id.as_str());
    store
        .insert_grant((PrincipalKind::Group, &gid), web, &[], &[], now_millis())
        .await
        .unwrap();
    store
        .insert_grant((PrincipalKind::User, &bob.id), web, &[], &[], now_millis())
        .await
        .unwrap();
    assert!(store.remove_group("ops").await.unwrap());
    assert!(!store.remove_group("ops").await.unwrap());
    assert_eq!(store.list_grants(None, None).await.unwrap().len(), 1);

    // Removing alice removes her node, its name and the grants on it.
    assert!(store.remove_user("alice").await.unwrap());
    assert!(!store.remove_user("alice").await.unwrap());
    assert!(store.list_grants(None, None).await.unwrap().is_empty());
    assert!(store.target_by_name("web").await.unwrap().is_none());
    assert!(store.list_tokens(None).await.unwrap().is_empty());
    store.insert_host(&host("web")).await.unwrap();
    assert!(store.remove_user("bob").await.unwrap());
    assert_eq!(store.count_users().await.unwrap(), 0);
}

async fn keys_roundtrip(store: Store) {
    let alice = user(&store, "alice").await;
    let key = UserKeyRow {
        id: new_id(),
        user_id: alice.id.clone(),
        fingerprint: "SHA256:abc".into(),
        algorithm: "ssh-ed25519".into(),
        public_key: "ssh-ed25519 AAAA".into(),
        comment: "laptop".into(),
        created_at: now_millis(),
    };
    store.insert_user_key(&key).await.unwrap();
    assert!(matches!(
        store
            .insert_user_key(&UserKeyRow {
                id: new_id(),
                ..key.clone()
            })
            .await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(store.user_keys(&alice.id).await.unwrap(), vec![key.clone()]);
    assert_eq!(
        store.user_key(&alice.id, "SHA256:abc").await.unwrap(),
        Some(key)
    );
    assert!(
        store
            .delete_user_key(&alice.id, "SHA256:abc")
            .await
            .unwrap()
    );
    assert!(
        !store
            .delete_user_key(&alice.id, "SHA256:abc")
            .await
            .unwrap()
    );
    assert!(store.user_keys(&alice.id).await.unwrap().is_empty());
}

async fn api_tokens_are_listed_with_their_kind(store: Store) {
    let alice = user(&store, "alice").await;
    node(&store, &alice, "web").await.unwrap();
    let token_id = new_id();
    store
        .insert_api_token(&NewApiToken {
            token_id: token_id.clone(),
            token_hash: "h".into(),
            user_id: alice.id.clone(),
            name: "ci".into(),
            scopes: vec!["read".into()],
            created_at: now_millis(),
            expires_at: None,
        })
        .await
        .unwrap();
    let info = store.token_info(&token_id).await.unwrap().unwrap();
    assert_eq!(info.kind, TOKEN_KIND_API);
    assert_eq!(info.scopes, vec!["read".to_owned()]);
    assert!(info.node_id.is_none());
    let kinds: Vec<String> = store
        .list_tokens(Some(&alice.id))
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.kind)
        .collect();
    assert!(kinds.contains(&TOKEN_KIND_API.to_owned()));
    assert!(kinds.contains(&TOKEN_KIND_NODE.to_owned()));
    // API tokens never authenticate a node.
    assert!(
        store
            .valid_node_tokens(std::slice::from_ref(&token_id), now_millis())
            .await
            .unwrap()
            .is_empty()
    );
}

async fn grant_logins_are_replaced_and_merged(store: Store) {
    let alice = user(&store, "alice").await;
    store.insert_host(&host("db")).await.unwrap();
    let db = store.target_by_name("db").await.unwrap().unwrap();
    let target = (TargetKind::Host, db.id.as_str());
    let logins = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(store.grant_logins(&alice.id, target).await.unwrap(), None);

    let g = store
        .insert_grant(
            (PrincipalKind::User, &alice.id),
            target,
            &logins(&["deploy", "root"]),
            &[],
            now_millis(),
        )
        .await
        .unwrap();
    assert_eq!(g.logins, logins(&["deploy", "root"]));
    // Granting again replaces the list (here: no list, the default account only).
    let again = store
        .insert_grant(
            (PrincipalKind::User, &alice.id),
            target,
            &[],
            &[],
            now_millis(),
        )
        .await
        .unwrap();
    assert_eq!((again.id.as_str(), again.logins.len()), (g.id.as_str(), 0));
    assert_eq!(
        store.grant_logins(&alice.id, target).await.unwrap(),
        Some(GrantLogins {
            via: GrantVia::User,
            listed: vec![],
            default_allowed: true,
        })
    );

    // A group grant adds its logins after the direct grant's.
    let gid = new_id();
    store.insert_group(&gid, "ops", now_millis()).await.unwrap();
    store
        .add_group_member(&gid, &alice.id, now_millis())
        .await
        .unwrap();
    store
        .insert_grant(
            (PrincipalKind::Group, &gid),
            target,
            &logins(&["ops", "deploy"]),
            &[],
            now_millis(),
        )
        .await
        .unwrap();
    store
        .insert_grant(
            (PrincipalKind::User, &alice.id),
            target,
            &logins(&["deploy"]),
            &[],
            now_millis(),
        )
        .await
        .unwrap();
    assert_eq!(
        store.grant_logins(&alice.id, target).await.unwrap(),
        Some(GrantLogins {
            via: GrantVia::User,
            listed: logins(&["deploy", "ops"]),
            default_allowed: false,
        })
    );
    let listed = store
        .list_grants(Some((PrincipalKind::Group, &gid)), None)
        .await
        .unwrap();
    assert_eq!(listed[0].logins, logins(&["ops", "deploy"]));
}

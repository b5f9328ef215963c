//! One suite, run against a fresh PostgreSQL database and in-memory SQLite.

use phirepass_store::{
    Backend, NewNodeToken, SCOPE_NODE_CONNECT, SessionRow, Store, StoreError, UserRow, new_id,
    now_millis,
};

phirepass_store::on_both_stores!(
    dollar_placeholders_work,
    users_roundtrip,
    duplicate_username_is_conflict,
    sessions_expire_and_delete,
    node_token_create_rotate_revoke,
    node_name_taken_by_other_user,
    valid_node_tokens_filters,
    migrations_are_idempotent,
);

fn user(name: &str) -> UserRow {
    UserRow {
        id: new_id(),
        username: name.to_owned(),
        password_hash: "$argon2id$dummy".to_owned(),
        disabled: false,
        admin: false,
        created_at: now_millis(),
    }
}

fn token(user: &UserRow, node: &str, expires_at: Option<i64>) -> NewNodeToken {
    NewNodeToken {
        token_id: new_id()[..16].to_owned(),
        token_hash: new_id(),
        user_id: user.id.clone(),
        node_name: node.to_owned(),
        scopes: vec![SCOPE_NODE_CONNECT.to_owned()],
        created_at: now_millis(),
        expires_at,
    }
}

async fn dollar_placeholders_work(store: Store) {
    use sqlx::Row;
    // `$2` before `$1` and a repeated `$1`: numbered, not positional.
    let row = sqlx::query("SELECT $2 AS b, $1 AS a, $1 AS a2")
        .bind("one")
        .bind("two")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(row.try_get::<String, _>("a").unwrap(), "one");
    assert_eq!(row.try_get::<String, _>("b").unwrap(), "two");
    assert_eq!(row.try_get::<String, _>("a2").unwrap(), "one");
}

async fn users_roundtrip(store: Store) {
    assert_eq!(store.count_users().await.unwrap(), 0);
    let bob = user("bob");
    let alice = user("alice");
    store.insert_user(&bob).await.unwrap();
    store.insert_user(&alice).await.unwrap();
    assert_eq!(store.count_users().await.unwrap(), 2);
    assert_eq!(
        store.user_by_username("bob").await.unwrap(),
        Some(bob.clone())
    );
    assert_eq!(
        store.user_by_id(&alice.id).await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(store.user_by_username("carol").await.unwrap(), None);
    let names: Vec<_> = store
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(names, ["alice", "bob"]);

    let disabled = store.set_user_disabled("bob", true).await.unwrap().unwrap();
    assert!(disabled.disabled);
    assert!(
        store
            .set_user_disabled("nobody", true)
            .await
            .unwrap()
            .is_none()
    );
    // Debug output never shows the hash.
    assert!(!format!("{disabled:?}").contains("argon2"));
}

async fn duplicate_username_is_conflict(store: Store) {
    store.insert_user(&user("dup")).await.unwrap();
    let err = store.insert_user(&user("dup")).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict), "{err:?}");
}

async fn sessions_expire_and_delete(store: Store) {
    let u = user("sess");
    store.insert_user(&u).await.unwrap();
    let now = now_millis();
    let live = SessionRow {
        id: new_id(),
        token_hash: new_id(),
        user_id: u.id.clone(),
        created_at: now,
        expires_at: now + 60_000,
    };
    let old = SessionRow {
        id: new_id(),
        token_hash: new_id(),
        user_id: u.id.clone(),
        created_at: now - 10,
        expires_at: now - 1,
    };
    store.insert_session(&live).await.unwrap();
    store.insert_session(&old).await.unwrap();

    let (s, su) = store
        .live_session(&live.token_hash, now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s, live);
    assert_eq!(su, u);
    assert!(
        store
            .live_session(&old.token_hash, now)
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.live_session("nope", now).await.unwrap().is_none());

    assert_eq!(store.delete_expired_sessions(now).await.unwrap(), 1);
    assert!(store.delete_session(&live.token_hash).await.unwrap());
    assert!(!store.delete_session(&live.token_hash).await.unwrap());
    assert!(
        store
            .live_session(&live.token_hash, now)
            .await
            .unwrap()
            .is_none()
    );
}

async fn node_token_create_rotate_revoke(store: Store) {
    let u = user("nodeowner");
    store.insert_user(&u).await.unwrap();
    let first = token(&u, "web-1", None);
    let node = store.create_node_token(&first).await.unwrap();
    assert_eq!(node.name, "web-1");
    assert_eq!(node.username, "nodeowner");
    assert_eq!(node.token_id, first.token_id);

    let info = store.token_info(&first.token_id).await.unwrap().unwrap();
    assert_eq!(info.node_id.as_deref(), Some(node.id.as_str()));
    assert_eq!(info.scopes, [SCOPE_NODE_CONNECT]);
    assert_eq!(info.revoked_at, None);
    assert!(!info.user_disabled);

    // Re-issuing for the same node rotates: same node id, old token revoked.
    let second = token(&u, "web-1", Some(now_millis() + 1000));
    let rotated = store.create_node_token(&second).await.unwrap();
    assert_eq!(rotated.id, node.id);
    assert_eq!(rotated.token_id, second.token_id);
    let old = store.token_info(&first.token_id).await.unwrap().unwrap();
    assert!(old.revoked_at.is_some());
    assert_eq!(old.node_id, None);

    assert_eq!(store.list_tokens(Some(&u.id)).await.unwrap().len(), 2);
    assert_eq!(store.list_tokens(Some("other")).await.unwrap().len(), 0);
    assert_eq!(
        store.list_nodes(Some(&u.id)).await.unwrap(),
        vec![rotated.clone()]
    );
    assert_eq!(
        store.node_by_id(&node.id).await.unwrap(),
        Some(rotated.clone())
    );

    assert!(
        store
            .revoke_token(&second.token_id, now_millis())
            .await
            .unwrap()
    );
    let first_revocation = store
        .token_info(&second.token_id)
        .await
        .unwrap()
        .unwrap()
        .revoked_at;
    assert!(
        store
            .revoke_token(&second.token_id, now_millis() + 5000)
            .await
            .unwrap()
    );
    let again = store
        .token_info(&second.token_id)
        .await
        .unwrap()
        .unwrap()
        .revoked_at;
    assert_eq!(first_revocation, again, "first revocation time is kept");
    assert!(!store.revoke_token("unknown", now_millis()).await.unwrap());
}

async fn node_name_taken_by_other_user(store: Store) {
    let a = user("owner-a");
    let b = user("owner-b");
    store.insert_user(&a).await.unwrap();
    store.insert_user(&b).await.unwrap();
    store
        .create_node_token(&token(&a, "shared", None))
        .await
        .unwrap();
    let t = token(&b, "shared", None);
    let err = store.create_node_token(&t).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict), "{err:?}");
    // The transaction rolled back: b's token was not stored.
    assert!(store.token_info(&t.token_id).await.unwrap().is_none());
}

async fn valid_node_tokens_filters(store: Store) {
    let u = user("checker");
    let off = user("off");
    store.insert_user(&u).await.unwrap();
    store.insert_user(&off).await.unwrap();
    let now = now_millis();
    let good = token(&u, "n-good", None);
    let expired = token(&u, "n-exp", Some(now - 1));
    let future = token(&u, "n-future", Some(now + 60_000));
    let revoked = token(&u, "n-rev", None);
    let disabled = token(&off, "n-off", None);
    for t in [&good, &expired, &future, &revoked, &disabled] {
        store.create_node_token(t).await.unwrap();
    }
    store.revoke_token(&revoked.token_id, now).await.unwrap();
    store.set_user_disabled("off", true).await.unwrap();

    let ids: Vec<String> = [&good, &expired, &future, &revoked, &disabled]
        .iter()
        .map(|t| t.token_id.clone())
        .chain(["unknown".to_owned()])
        .collect();
    let valid = store.valid_node_tokens(&ids, now).await.unwrap();
    let mut valid: Vec<_> = valid.into_iter().collect();
    valid.sort();
    let mut expect = vec![good.token_id.clone(), future.token_id.clone()];
    expect.sort();
    assert_eq!(valid, expect);
    assert!(store.valid_node_tokens(&[], now).await.unwrap().is_empty());

    // More ids than one IN chunk.
    let many: Vec<String> = (0..1200)
        .map(|i| format!("x{i}"))
        .chain([good.token_id.clone()])
        .collect();
    assert_eq!(store.valid_node_tokens(&many, now).await.unwrap().len(), 1);
}

async fn migrations_are_idempotent(store: Store) {
    use sqlx::Row;
    // Reconnecting to a migrated database applies nothing, fails nothing and
    // keeps the data.
    let url = match store.backend() {
        Backend::Postgres => {
            let row = sqlx::query("SELECT current_database()::text AS db")
                .fetch_one(store.pool())
                .await
                .unwrap();
            let db: String = row.try_get("db").unwrap();
            let admin = std::env::var("DATABASE_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
            let (base, query) = admin.split_once('?').unwrap_or((&admin, ""));
            let root = &base[..base.rfind('/').unwrap()];
            format!("{root}/{db}?{query}")
                .trim_end_matches('?')
                .to_owned()
        }
        Backend::Sqlite => {
            // An in-memory database cannot be reopened: use a file.
            let path = std::env::temp_dir().join(format!("pp-store-{}.db", new_id()));
            format!("sqlite://{}?mode=rwc", path.display())
        }
    };
    let first = Store::connect(&url).await.unwrap();
    first.insert_user(&user("persist")).await.unwrap();
    first.close().await;
    let again = Store::connect(&url).await.unwrap();
    assert_eq!(again.count_users().await.unwrap(), 1);
    again.close().await;
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .and_then(|u| u.split('?').next())
    {
        let _ = std::fs::remove_file(path);
    }
}

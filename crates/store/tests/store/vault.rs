//! The credential vault's tables: sealed host options, relay credentials,
//! master keys and settings. Envelopes are opaque strings to the store.

use phirepass_store::{RelayCredentialRow, RelayOptionRow, Store, StoreError, new_id};

phirepass_store::on_both_stores!(
    options_upsert_list_and_delete,
    option_reseal_is_compare_and_swap,
    credentials_insert_find_and_delete_with_assignments,
    credential_reseal_is_compare_and_swap,
    keys_settings_and_usage,
);

fn option(host: &str, key: &str, envelope: &str, key_id: &str) -> RelayOptionRow {
    RelayOptionRow {
        host: host.to_owned(),
        key: key.to_owned(),
        value_envelope: envelope.to_owned(),
        key_id: key_id.to_owned(),
        updated_at: 1_000,
    }
}

fn credential(name: &str, key_id: &str) -> RelayCredentialRow {
    RelayCredentialRow {
        id: new_id(),
        name: name.to_owned(),
        kind: "ssh_key".to_owned(),
        secret_envelope: format!("secret-of-{name}"),
        passphrase_envelope: Some(format!("pass-of-{name}")),
        key_id: key_id.to_owned(),
        meta: "{}".to_owned(),
        created_at: 1_000,
        updated_at: 1_000,
    }
}

fn keys_of(rows: &[RelayOptionRow]) -> Vec<&str> {
    rows.iter().map(|r| r.key.as_str()).collect()
}

async fn options_upsert_list_and_delete(store: Store) {
    store
        .put_relay_options(&[
            option("web1", "auth.username", "e1", "k1"),
            option("web1", "auth.id", "e2", "k1"),
            option("web2", "auth.id", "e3", "k1"),
        ])
        .await
        .unwrap();
    // An upsert replaces value, key id and time.
    let mut newer = option("web1", "auth.username", "e1b", "k2");
    newer.updated_at = 2_000;
    store.put_relay_options(&[newer.clone()]).await.unwrap();

    let web1 = store.relay_options("web1").await.unwrap();
    assert_eq!(keys_of(&web1), ["auth.id", "auth.username"], "by key");
    assert_eq!(web1[1], newer);
    let assigned = store.relay_options_with_key("auth.id").await.unwrap();
    let hosts: Vec<_> = assigned.iter().map(|r| r.host.as_str()).collect();
    assert_eq!(hosts, ["web1", "web2"], "by host");

    assert!(store.delete_relay_option("web1", "auth.id").await.unwrap());
    assert!(!store.delete_relay_option("web1", "auth.id").await.unwrap());
    assert!(
        store
            .clear_relay_options("web2", &["auth.source", "auth.id"])
            .await
            .unwrap()
    );
    assert!(
        !store
            .clear_relay_options("web2", &["auth.source", "auth.id"])
            .await
            .unwrap()
    );
    assert_eq!(store.delete_relay_options("web1").await.unwrap(), 1);
    assert_eq!(store.delete_relay_options("web1").await.unwrap(), 0);
    assert!(store.relay_options("web1").await.unwrap().is_empty());
}

async fn option_reseal_is_compare_and_swap(store: Store) {
    store
        .put_relay_options(&[
            option("a", "x", "old-a", "k1"),
            option("b", "x", "old-b", "k1"),
            option("c", "x", "new-c", "k2"),
        ])
        .await
        .unwrap();
    let stale = store.relay_options_not_under("k2", 10).await.unwrap();
    let hosts: Vec<_> = stale.iter().map(|r| r.host.as_str()).collect();
    assert_eq!(hosts, ["a", "b"]);
    assert_eq!(
        store.relay_options_not_under("k2", 1).await.unwrap().len(),
        1
    );

    assert!(
        store
            .reseal_relay_option(&stale[0], "resealed-a", "k2", 3_000)
            .await
            .unwrap()
    );
    // A concurrent write changed b: the swap misses and keeps that write.
    store
        .put_relay_options(&[option("b", "x", "written-b", "k2")])
        .await
        .unwrap();
    assert!(
        !store
            .reseal_relay_option(&stale[1], "resealed-b", "k2", 3_000)
            .await
            .unwrap()
    );
    let a = &store.relay_options("a").await.unwrap()[0];
    assert_eq!(
        (a.value_envelope.as_str(), a.key_id.as_str()),
        ("resealed-a", "k2")
    );
    assert_eq!(a.updated_at, 3_000);
    let b = &store.relay_options("b").await.unwrap()[0];
    assert_eq!(b.value_envelope, "written-b");
    assert!(
        store
            .relay_options_not_under("k2", 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn credentials_insert_find_and_delete_with_assignments(store: Store) {
    let deploy = credential("deploy-key", "k1");
    let mut db = credential("db-pass", "k1");
    db.kind = "password".to_owned();
    db.passphrase_envelope = None;
    store.insert_relay_credential(&deploy).await.unwrap();
    store.insert_relay_credential(&db).await.unwrap();
    let taken = store
        .insert_relay_credential(&credential("db-pass", "k1"))
        .await;
    assert!(matches!(taken, Err(StoreError::Conflict)), "{taken:?}");

    let names: Vec<_> = store.relay_credentials().await.unwrap();
    let names: Vec<_> = names.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["db-pass", "deploy-key"], "by name");
    let found = store.relay_credential_by_name("db-pass").await.unwrap();
    assert_eq!(found.as_ref(), Some(&db));
    let found = store.relay_credential_by_id(&deploy.id).await.unwrap();
    assert_eq!(found.as_ref(), Some(&deploy));
    assert_eq!(store.relay_credential_by_name("nope").await.unwrap(), None);

    store
        .put_relay_options(&[
            option("web1", "auth.source", "s", "k1"),
            option("web1", "auth.id", "i", "k1"),
            option("web1", "compression", "c", "k1"),
        ])
        .await
        .unwrap();
    store
        .delete_relay_credential(
            &deploy.id,
            &["web1".to_owned()],
            &["auth.source", "auth.id"],
        )
        .await
        .unwrap();
    assert_eq!(
        store.relay_credential_by_id(&deploy.id).await.unwrap(),
        None
    );
    let left = store.relay_options("web1").await.unwrap();
    assert_eq!(keys_of(&left), ["compression"], "only the assignment goes");
}

async fn credential_reseal_is_compare_and_swap(store: Store) {
    let old = credential("deploy-key", "k1");
    store.insert_relay_credential(&old).await.unwrap();
    let current = credential("current", "k2");
    store.insert_relay_credential(&current).await.unwrap();
    let stale = store.relay_credentials_not_under("k2", 10).await.unwrap();
    assert_eq!(stale, std::slice::from_ref(&old));

    assert!(
        store
            .reseal_relay_credential(&old, "s2", None, "k2", 3_000)
            .await
            .unwrap()
    );
    // The row no longer holds `old`'s secret: a second swap misses.
    assert!(
        !store
            .reseal_relay_credential(&old, "s3", Some("p3"), "k2", 4_000)
            .await
            .unwrap()
    );
    let row = store
        .relay_credential_by_id(&old.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.secret_envelope, "s2");
    assert_eq!(row.passphrase_envelope, None, "changes with the secret");
    assert_eq!((row.key_id.as_str(), row.updated_at), ("k2", 3_000));
    assert!(
        store
            .relay_credentials_not_under("k2", 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn keys_settings_and_usage(store: Store) {
    let first = store
        .vault_setting_or_insert("kdf_salt", "aa")
        .await
        .unwrap();
    let again = store
        .vault_setting_or_insert("kdf_salt", "bb")
        .await
        .unwrap();
    assert_eq!((first.as_str(), again.as_str()), ("aa", "aa"), "first wins");

    store
        .put_relay_options(&[option("h", "a", "e", "k1"), option("h", "b", "e", "k2")])
        .await
        .unwrap();
    store
        .insert_relay_credential(&credential("c", "k2"))
        .await
        .unwrap();
    let in_use: Vec<_> = store
        .vault_key_ids_in_use()
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(in_use, ["k1", "k2"]);
    let mut counts = store.vault_entries_per_key().await.unwrap();
    counts.sort();
    assert_eq!(counts, [("k1".to_owned(), 1), ("k2".to_owned(), 2)]);

    store
        .register_vault_keys(&["k1"], "k1", 1_000)
        .await
        .unwrap();
    store
        .register_vault_keys(&["k2", "k1"], "k2", 2_000)
        .await
        .unwrap();
    store.retire_vault_key("k1", 3_000).await.unwrap();
    let keys = store.vault_keys().await.unwrap();
    let summary: Vec<_> = keys
        .iter()
        .map(|k| (k.key_id.as_str(), k.created_at, k.retired_at))
        .collect();
    assert_eq!(
        summary,
        [("k1", 1_000, Some(3_000)), ("k2", 2_000, None)],
        "oldest first; registering again keeps the first use"
    );
    // A key that comes back into use is no longer retired.
    store
        .register_vault_keys(&["k1"], "k1", 4_000)
        .await
        .unwrap();
    let keys = store.vault_keys().await.unwrap();
    assert_eq!(keys[0].retired_at, None);
}

//! The vault over real gRPC, on a fresh PostgreSQL database and on SQLite:
//! round trips, listings without secrets, moved ciphertexts, wrong keys,
//! and who may decrypt.

use crate::common::{self, Harness, raw};
use phirepass_proto::secrets as pb;
use phirepass_secrets::{KeySource, MasterKey, SecretsConfig, SecretsError, keys};
use phirepass_store::Store;
use tonic::Code;

phirepass_store::on_both_stores!(
    round_trip_of_every_kind,
    listings_never_contain_secrets,
    credential_lifecycle,
    invalid_requests_are_refused,
    only_internal_callers_decrypt,
    edges_set_only_host_key_pins,
    moved_ciphertext_fails_to_decrypt,
    wrong_master_key_gives_a_clear_error,
    passphrase_key_is_stable_across_restarts,
);

async fn round_trip_of_every_kind(store: Store) {
    let key = MasterKey::generate();
    let h = Harness::start(store, raw(&key), None).await;
    common::populate(&h).await;
    common::check_all(&h).await;
    // And again from a fresh process with the same key.
    let h = h.restart(raw(&key), None).await;
    common::check_all(&h).await;

    // Unassigning falls back to the inline options.
    let mut admin = h.admin.clone();
    let out = admin
        .unassign_credential(pb::UnassignCredentialRequest {
            host: "web3".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(out.was_assigned);
    let web3 = h.resolve("web3").await.unwrap();
    assert_eq!(web3.source(), pb::AuthSource::Inline);
    assert_eq!(web3.method, "password");
    assert_eq!(web3.username.as_deref(), Some("inline-user"));
    assert_eq!(web3.password.as_deref(), Some(common::PW_INLINE_WEB3));

    // Unset one option, then delete a host's options entirely.
    let removed = admin
        .unset_option(pb::UnsetOptionRequest {
            host: "web1".into(),
            key: "compression".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .removed;
    assert!(removed);
    assert!(
        !h.resolve("web1")
            .await
            .unwrap()
            .options
            .contains_key("compression")
    );
    let gone = admin
        .delete_host_options(pb::DeleteHostOptionsRequest {
            host: "web1".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .removed;
    assert_eq!(gone, 4);
    assert_eq!(h.resolve("web1").await.unwrap_err().code(), Code::NotFound);
}

async fn listings_never_contain_secrets(store: Store) {
    let h = Harness::start(store, raw(&MasterKey::generate()), None).await;
    common::populate(&h).await;
    let mut shown = String::new();
    for host in ["web1", "web2", "web3", "web4"] {
        let options = h.options(host).await;
        for o in &options {
            assert_eq!(
                o.secret,
                phirepass_secrets::SECRET_KEYS.contains(&o.key.as_str())
            );
            if o.secret {
                assert_eq!(o.value, phirepass_secrets::REDACTED);
            }
        }
        shown.push_str(&format!("{options:?}"));
    }
    let web1 = h.options("web1").await;
    let value = |k: &str| web1.iter().find(|o| o.key == k).map(|o| o.value.clone());
    assert_eq!(value("auth.username").as_deref(), Some("root"));
    assert_eq!(value("auth.password").as_deref(), Some("<set>"));
    assert_eq!(value("hostkey.openssh").as_deref(), Some(common::HOSTKEY));

    let creds = h.credentials().await;
    shown.push_str(&format!("{creds:?}"));
    let deploy = creds.iter().find(|c| c.name == "deploy-key").unwrap();
    assert_eq!(deploy.kind(), pb::CredentialKind::SshKey);
    assert_eq!(deploy.meta_json, r#"{"username":"ops"}"#);
    assert_eq!(deploy.assigned_hosts, vec!["web3".to_owned()]);
    assert!(deploy.has_passphrase);
    for secret in common::SECRETS {
        assert!(!shown.contains(secret), "listing leaked {secret}");
    }

    // Nor is any plaintext stored: the raw tables hold envelopes only.
    let mut raw_rows = String::new();
    for sql in [
        "SELECT value_envelope AS v FROM relay_host_options",
        "SELECT secret_envelope AS v FROM relay_credentials",
        "SELECT passphrase_envelope AS v FROM relay_credentials WHERE passphrase_envelope IS NOT NULL",
    ] {
        for row in sqlx::query(sql).fetch_all(h.store.pool()).await.unwrap() {
            raw_rows.push_str(&sqlx::Row::get::<String, _>(&row, "v"));
        }
    }
    for plain in common::SECRETS
        .iter()
        .chain(&["root", "password", "publickey"])
    {
        assert!(!raw_rows.contains(plain), "stored in clear: {plain}");
    }
}

async fn credential_lifecycle(store: Store) {
    let h = Harness::start(store, raw(&MasterKey::generate()), None).await;
    common::populate(&h).await;
    let mut admin = h.admin.clone();
    h.assign("web1", "db-pass").await;

    let dup = admin
        .create_credential(pb::CreateCredentialRequest {
            name: "db-pass".into(),
            kind: pb::CredentialKind::Password as i32,
            secret: "x".into(),
            passphrase: None,
            meta_json: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(dup.code(), Code::AlreadyExists);

    let refused = admin
        .delete_credential(pb::DeleteCredentialRequest {
            name: "db-pass".into(),
            force: false,
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(refused.message().contains("web1") && refused.message().contains("web4"));
    assert_eq!(
        h.resolve("web4").await.unwrap().password.as_deref(),
        Some(common::PW_CRED)
    );

    let out = admin
        .delete_credential(pb::DeleteCredentialRequest {
            name: "db-pass".into(),
            force: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        out.unassigned_hosts,
        vec!["web1".to_owned(), "web4".to_owned()]
    );
    assert_eq!(h.credentials().await.len(), 1);
    // web1 falls back to its inline password; web4 has no secret left.
    assert_eq!(
        h.resolve("web1").await.unwrap().password.as_deref(),
        Some(common::PW_WEB1)
    );
    let web4 = h.resolve("web4").await.unwrap();
    assert_eq!(web4.source(), pb::AuthSource::Inline);
    assert_eq!(web4.password, None);

    let missing = admin
        .delete_credential(pb::DeleteCredentialRequest {
            name: "db-pass".into(),
            force: true,
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    let missing = admin
        .assign_credential(pb::AssignCredentialRequest {
            host: "web1".into(),
            name: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
}

async fn invalid_requests_are_refused(store: Store) {
    let h = Harness::start(store, raw(&MasterKey::generate()), None).await;
    let mut admin = h.admin.clone();
    for (host, key, value) in [
        ("web1", "auth.source", "credential"),
        ("web1", "auth.id", "x"),
        ("web1", "bogus", "x"),
        ("web1", "auth.method", "kerberos"),
        ("web1", "insecure", "yes"),
        ("", "auth.username", "root"),
    ] {
        let err = admin
            .set_option(pb::SetOptionRequest {
                host: host.into(),
                key: key.into(),
                value: value.into(),
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{key}={value}");
        assert!(
            !err.message().contains(value) || value == "x",
            "echoed value: {err:?}"
        );
    }
    for (kind, passphrase, meta) in [
        (pb::CredentialKind::Unspecified, None, ""),
        (pb::CredentialKind::Password, Some("p"), ""),
        (pb::CredentialKind::Password, None, "[1]"),
        (pb::CredentialKind::Password, None, "not json"),
    ] {
        let err = admin
            .create_credential(pb::CreateCredentialRequest {
                name: "c".into(),
                kind: kind as i32,
                secret: "s3cret".into(),
                passphrase: passphrase.map(Into::into),
                meta_json: meta.into(),
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{kind:?} {meta}");
    }
    assert!(h.credentials().await.is_empty());
}

async fn edges_set_only_host_key_pins(store: Store) {
    let h = Harness::start(store, raw(&MasterKey::generate()), None).await;
    common::populate(&h).await;
    let pin = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFZDwduqJrZT6jFEJNe0weGd40uh1jnDepFcnMbIcS1v";
    for kind in [
        phirepass_pki::ServiceKind::GatewayWs,
        phirepass_pki::ServiceKind::SshEdge,
    ] {
        let mut client = h.as_service(kind);
        // Turning off host-key checks, or moving the host, is an admin's change only.
        for (key, value) in [("insecure", "true"), ("compression", "true")] {
            let denied = client
                .set_option(pb::SetOptionRequest {
                    host: "web1".into(),
                    key: key.into(),
                    value: value.into(),
                })
                .await
                .unwrap_err();
            assert_eq!(denied.code(), Code::PermissionDenied, "{kind:?} {key}");
            assert_eq!(
                denied.message(),
                format!("{} may set only hostkey.openssh", kind.name())
            );
        }
        client
            .set_option(pb::SetOptionRequest {
                host: "web1".into(),
                key: "hostkey.openssh".into(),
                value: pin.into(),
            })
            .await
            .unwrap_or_else(|e| panic!("{kind:?} pins a host key: {e:?}"));
    }
}

async fn only_internal_callers_decrypt(store: Store) {
    let h = Harness::start(store, raw(&MasterKey::generate()), None).await;
    common::populate(&h).await;
    let denied = h
        .admin
        .clone()
        .resolve_host_auth(pb::ResolveHostAuthRequest {
            host: "web1".into(),
        })
        .await
        .unwrap_err();
    // The admin token comes without a certificate: decrypting needs one (ssh-edge's).
    assert_eq!(denied.code(), Code::Unauthenticated);
    let resolve = |kind| {
        let mut client = h.as_service(kind);
        async move {
            client
                .resolve_host_auth(pb::ResolveHostAuthRequest {
                    host: "web1".into(),
                })
                .await
        }
    };
    // The browser terminal never injects vault credentials: gateway-ws may not decrypt.
    let denied = resolve(phirepass_pki::ServiceKind::GatewayWs)
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert_eq!(denied.message(), "gateway-ws may not call ResolveHostAuth");
    for kind in [
        phirepass_pki::ServiceKind::Registry,
        phirepass_pki::ServiceKind::Secrets,
    ] {
        assert_eq!(
            resolve(kind).await.unwrap_err().code(),
            Code::PermissionDenied
        );
    }
    assert!(resolve(phirepass_pki::ServiceKind::SshEdge).await.is_ok());

    // No token, or a wrong one, is refused everywhere.
    let url = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}", listener.local_addr().unwrap());
        let config = common::config(&h.pki, raw(&MasterKey::generate()));
        let store = Store::memory_sqlite().await.unwrap();
        tokio::spawn(phirepass_secrets::serve(
            config,
            listener,
            phirepass_secrets::SecretsDeps::new(store),
            std::future::pending(),
        ));
        url
    };
    let trust = phirepass_runtime::grpc::trust_certs(h.pki.trust_pem()).unwrap();
    let stranger = phirepass_runtime::grpc::admin_channel(
        &url,
        &trust,
        phirepass_pki::ServiceKind::Secrets,
        "wrong",
    )
    .unwrap();
    let err = pb::secrets_client::SecretsClient::new(stranger)
        .list_credentials(pb::ListCredentialsRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    // Without an admin token configured, an admin-looking token is nobody.
    let admin_elsewhere = phirepass_runtime::grpc::admin_channel(
        &url,
        &trust,
        phirepass_pki::ServiceKind::Secrets,
        &h.admin_token,
    )
    .unwrap();
    let err = pb::secrets_client::SecretsClient::new(admin_elsewhere)
        .list_credentials(pb::ListCredentialsRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
}

async fn moved_ciphertext_fails_to_decrypt(store: Store) {
    let h = Harness::start(store, raw(&MasterKey::generate()), None).await;
    common::populate(&h).await;
    let pool = h.store.pool();
    // web1's password envelope pasted over web3's inline password.
    sqlx::query(
        "UPDATE relay_host_options SET value_envelope = \
         (SELECT value_envelope FROM relay_host_options WHERE host = 'web1' AND key = 'auth.password') \
         WHERE host = 'web3' AND key = 'auth.password'",
    )
    .execute(pool)
    .await
    .unwrap();
    h.admin
        .clone()
        .unassign_credential(pb::UnassignCredentialRequest {
            host: "web3".into(),
        })
        .await
        .unwrap();
    let err = h.resolve("web3").await.unwrap_err();
    assert_eq!(err.code(), Code::DataLoss);
    assert!(err.message().contains("moved ciphertext"), "{err:?}");
    assert!(!err.message().contains(common::PW_WEB1));

    // A credential secret copied into another credential's row.
    sqlx::query(
        "UPDATE relay_credentials SET secret_envelope = \
         (SELECT secret_envelope FROM relay_credentials WHERE name = 'deploy-key') \
         WHERE name = 'db-pass'",
    )
    .execute(pool)
    .await
    .unwrap();
    assert_eq!(h.resolve("web4").await.unwrap_err().code(), Code::DataLoss);
    // Untouched rows still open.
    assert_eq!(
        h.resolve("web1").await.unwrap().password.as_deref(),
        Some(common::PW_WEB1)
    );
}

async fn wrong_master_key_gives_a_clear_error(store: Store) {
    let right = MasterKey::generate();
    let mut h = Harness::start(store.clone(), raw(&right), None).await;
    common::populate(&h).await;
    h.shutdown().await;

    let wrong = MasterKey::generate();
    let pki = phirepass_pki::LocalPki::generate().unwrap();
    let (_url, _stop, task) = common::spawn(store.clone(), common::config(&pki, raw(&wrong))).await;
    let err = task.await.unwrap().unwrap_err();
    assert!(
        matches!(err, SecretsError::UnknownKeys(ref ids) if ids == &vec![right.id().to_owned()])
    );
    let message = err.to_string();
    assert!(
        message.contains(right.id()) && message.contains(keys::KEY_VAR),
        "{message}"
    );

    // No key at all: the service does not start and says what to set.
    let config = SecretsConfig {
        key: None,
        ..common::config(&pki, raw(&wrong))
    };
    let (_url, _stop, task) = common::spawn(store, config).await;
    let message = task.await.unwrap().unwrap_err().to_string();
    assert!(
        message.contains(keys::KEY_VAR) && message.contains(keys::PASSPHRASE_VAR),
        "{message}"
    );
}

async fn passphrase_key_is_stable_across_restarts(store: Store) {
    let pass =
        || KeySource::passphrase(keys::PASSPHRASE_VAR, "correct horse battery".into()).unwrap();
    let h = Harness::start(store.clone(), pass(), None).await;
    common::populate(&h).await;
    let h = h.restart(pass(), None).await;
    common::check_all(&h).await;
    drop(h);

    let wrong = KeySource::passphrase(keys::PASSPHRASE_VAR, "incorrect horse".into()).unwrap();
    let pki = phirepass_pki::LocalPki::generate().unwrap();
    let (_url, _stop, task) = common::spawn(store, common::config(&pki, wrong)).await;
    assert!(matches!(
        task.await.unwrap().unwrap_err(),
        SecretsError::UnknownKeys(_)
    ));
}

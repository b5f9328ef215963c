//! Authz API tokens on the vault's admin surface, against a real authz:
//! scope admin changes, scope read lists, nobody but the service token
//! decrypts; revocation takes effect once the short cache expires; every
//! change is an audit event naming the token's user and no secret.

use crate::common;
use std::sync::Arc;
use std::time::Duration;

use phirepass_authz::{AuthzConfig, AuthzDeps};
use phirepass_bus::{EventLog, MemoryEventLog};
use phirepass_pki::{LocalPki, ServiceKind};
use phirepass_presence::MemoryPresence;
use phirepass_proto::authz as az;
use phirepass_proto::authz::authz_client::AuthzClient;
use phirepass_proto::secrets as pb;
use phirepass_proto::secrets::secrets_client::SecretsClient;
use phirepass_runtime::grpc::{AuthedChannel, admin_channel, channel, trust_certs};
use phirepass_secrets::{MasterKey, SecretsConfig, SecretsDeps, serve};
use phirepass_store::Store;
use tonic::Code;

const SECRET: &str = "hunter2-very-secret";

pub(crate) struct Stack {
    pub(crate) authz: AuthzClient<AuthedChannel>,
    secrets_url: String,
    pki: Arc<LocalPki>,
    service: SecretsClient<AuthedChannel>,
    events: Arc<dyn EventLog>,
}

/// authz and secrets on one store and one CA; the harness's clients present the `authz`
/// certificate, which both (widened) policies let call everything.
pub(crate) async fn stack(store: Store, with_authz: bool) -> Stack {
    let pki = Arc::new(LocalPki::generate().unwrap());
    let harness = pki.identity(ServiceKind::Authz).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let authz_url = format!("https://{}", listener.local_addr().unwrap());
    let authz_config = AuthzConfig {
        issue_setup_code: false,
        policy: phirepass_authz::policy::POLICY.also_allowing(ServiceKind::Authz),
        ..AuthzConfig::new(pki.identity(ServiceKind::Authz).unwrap())
    };
    let deps = AuthzDeps::new(store.clone(), Arc::new(MemoryPresence::new()));
    tokio::spawn(phirepass_authz::serve(
        authz_config,
        listener,
        deps,
        std::future::pending(),
    ));

    let events: Arc<dyn EventLog> = Arc::new(MemoryEventLog::new());
    let config = SecretsConfig {
        authz_url: with_authz.then(|| authz_url.clone()),
        api_token_cache: Duration::from_millis(500),
        ..common::config(&pki, common::raw(&MasterKey::generate()))
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let secrets_url = format!("https://{}", listener.local_addr().unwrap());
    let deps = SecretsDeps::new(store).with_events(events.clone());
    tokio::spawn(serve(config, listener, deps, std::future::pending()));
    let stack = Stack {
        authz: AuthzClient::new(channel(&authz_url, &harness, ServiceKind::Authz).unwrap()),
        secrets_url: secrets_url.clone(),
        service: SecretsClient::new(channel(&secrets_url, &harness, ServiceKind::Secrets).unwrap()),
        pki,
        events,
    };
    // Both up: retry the first calls until they answer.
    for _ in 0..100 {
        let a = stack
            .authz
            .clone()
            .count_users(az::CountUsersRequest {})
            .await;
        let s = stack
            .service
            .clone()
            .rotation_status(pb::RotationStatusRequest {})
            .await;
        if a.is_ok() && s.is_ok() {
            return stack;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("authz or secrets did not start");
}

impl Stack {
    /// Sets `user`'s admin role; API tokens are capped by it.
    pub(crate) async fn set_admin(&self, user: &str, admin: bool) {
        self.authz
            .clone()
            .set_user_admin(az::SetUserAdminRequest {
                username: user.into(),
                admin,
            })
            .await
            .unwrap();
    }

    /// An API token for `user` (created as an admin if new).
    pub(crate) async fn api_token(
        &self,
        user: &str,
        scopes: &[&str],
    ) -> az::CreateApiTokenResponse {
        let mut c = self.authz.clone();
        if c.list_users(az::ListUsersRequest {})
            .await
            .unwrap()
            .into_inner()
            .users
            .iter()
            .all(|u| u.username != user)
        {
            c.create_user(az::CreateUserRequest {
                username: user.into(),
                password: "correct horse battery".into(),
            })
            .await
            .unwrap();
            self.set_admin(user, true).await;
        }
        c.create_api_token(az::CreateApiTokenRequest {
            username: user.into(),
            name: "vault".into(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            expires_in_secs: None,
        })
        .await
        .unwrap()
        .into_inner()
    }

    pub(crate) fn as_token(&self, token: &str) -> SecretsClient<AuthedChannel> {
        let trust = trust_certs(self.pki.trust_pem()).unwrap();
        SecretsClient::new(
            admin_channel(&self.secrets_url, &trust, ServiceKind::Secrets, token).unwrap(),
        )
    }
}

fn set(host: &str, key: &str, value: &str) -> pb::SetOptionRequest {
    pb::SetOptionRequest {
        host: host.into(),
        key: key.into(),
        value: value.into(),
    }
}

phirepass_store::on_both_stores!(
    scopes_gate_the_admin_surface,
    revocation_and_unknown_tokens,
    without_authz_api_tokens_are_refused
);

async fn scopes_gate_the_admin_surface(store: Store) {
    let s = stack(store, true).await;
    let admin = s.as_token(&s.api_token("ops", &["admin"]).await.token);
    let read = s.as_token(&s.api_token("auditor", &["read"]).await.token);

    // admin: every change and every list.
    let mut a = admin.clone();
    a.set_option(set("db-1", "auth.username", "deploy"))
        .await
        .unwrap();
    a.set_option(set("db-1", "auth.password", SECRET))
        .await
        .unwrap();
    a.create_credential(pb::CreateCredentialRequest {
        name: "shared".into(),
        kind: pb::CredentialKind::Password.into(),
        secret: SECRET.into(),
        ..Default::default()
    })
    .await
    .unwrap();
    a.assign_credential(pb::AssignCredentialRequest {
        host: "db-2".into(),
        name: "shared".into(),
    })
    .await
    .unwrap();
    a.unassign_credential(pb::UnassignCredentialRequest {
        host: "db-2".into(),
    })
    .await
    .unwrap();
    a.unset_option(pb::UnsetOptionRequest {
        host: "db-1".into(),
        key: "auth.username".into(),
    })
    .await
    .unwrap();
    a.list_credentials(pb::ListCredentialsRequest {})
        .await
        .unwrap();

    // read: lists and status only.
    let mut r = read.clone();
    let listed = r
        .list_options(pb::ListOptionsRequest {
            host: "db-1".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .options;
    assert!(listed.iter().all(|o| o.value != SECRET));
    r.list_credentials(pb::ListCredentialsRequest {})
        .await
        .unwrap();
    r.rotation_status(pb::RotationStatusRequest {})
        .await
        .unwrap();
    let denied = [
        r.set_option(set("db-1", "auth.method", "password"))
            .await
            .map(|_| ()),
        r.unset_option(pb::UnsetOptionRequest {
            host: "db-1".into(),
            key: "auth.password".into(),
        })
        .await
        .map(|_| ()),
        r.delete_host_options(pb::DeleteHostOptionsRequest {
            host: "db-1".into(),
        })
        .await
        .map(|_| ()),
        r.create_credential(pb::CreateCredentialRequest {
            name: "x".into(),
            kind: pb::CredentialKind::Password.into(),
            secret: "x".into(),
            ..Default::default()
        })
        .await
        .map(|_| ()),
        r.delete_credential(pb::DeleteCredentialRequest {
            name: "shared".into(),
            force: true,
        })
        .await
        .map(|_| ()),
        r.assign_credential(pb::AssignCredentialRequest {
            host: "db-3".into(),
            name: "shared".into(),
        })
        .await
        .map(|_| ()),
        r.unassign_credential(pb::UnassignCredentialRequest {
            host: "db-2".into(),
        })
        .await
        .map(|_| ()),
        r.rotate(pb::RotateRequest::default()).await.map(|_| ()),
    ];
    for (i, d) in denied.into_iter().enumerate() {
        assert_eq!(d.unwrap_err().code(), Code::PermissionDenied, "call {i}");
    }

    // Decrypting stays internal: no API token may, whatever its scope.
    for mut c in [admin, read] {
        let err = c
            .resolve_host_auth(pb::ResolveHostAuthRequest {
                host: "db-1".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated);
    }
    let auth = s
        .service
        .clone()
        .resolve_host_auth(pb::ResolveHostAuthRequest {
            host: "db-1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(auth.password.as_deref(), Some(SECRET));

    // Every change is an audit event naming the token's user, never a secret.
    let events = s.events.read("pp.events.audit", 0, 1000).await.unwrap();
    let events: Vec<serde_json::Value> = events
        .iter()
        .map(|(_, p)| {
            assert!(!String::from_utf8_lossy(p).contains(SECRET));
            serde_json::from_slice(p).unwrap()
        })
        .collect();
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "option.set",
            "option.set",
            "credential.create",
            "credential.assign",
            "credential.unassign",
            "option.unset"
        ]
    );
    assert!(
        events
            .iter()
            .all(|e| e["actor"] == "ops" && e["service"] == "secrets")
    );
    assert_eq!(events[1]["details"]["key"], "auth.password");
}

async fn revocation_and_unknown_tokens(store: Store) {
    let s = stack(store, true).await;
    let token = s.api_token("ops", &["admin"]).await;
    let mut c = s.as_token(&token.token);
    c.list_credentials(pb::ListCredentialsRequest {})
        .await
        .unwrap();
    s.authz
        .clone()
        .revoke_token(az::RevokeTokenRequest {
            token_id: token.token_id.clone(),
        })
        .await
        .unwrap();
    // Trusted for at most the cache TTL (500 ms here), then refused.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let err = c
        .list_credentials(pb::ListCredentialsRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    // A made-up token of the right shape, and a wrong secret.
    let forged = format!("{}x", &token.token[..token.token.len() - 1]);
    for bogus in ["pp_api_0123456789abcdef_00", forged.as_str()] {
        let err = s
            .as_token(bogus)
            .list_options(pb::ListOptionsRequest { host: "h".into() })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated, "{bogus}");
    }
}

async fn without_authz_api_tokens_are_refused(store: Store) {
    let s = stack(store, false).await;
    let token = s.api_token("ops", &["admin"]).await;
    let err = s
        .as_token(&token.token)
        .list_credentials(pb::ListCredentialsRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
}

//! A real secrets server on 127.0.0.1:0 with an internal client (a service certificate the
//! harness's policy lets call everything) and an admin client (the admin token, no
//! certificate), restartable with other keys on the same store.

use phirepass_proto::secrets as pb;
use phirepass_proto::secrets::secrets_client::SecretsClient;
use std::sync::Arc;

use phirepass_pki::{LocalPki, ServiceKind};
use phirepass_runtime::grpc::{AuthedChannel, admin_channel, channel, trust_certs};
use phirepass_secrets::{KeySource, MasterKey, SecretsConfig, SecretsDeps, SecretsError, serve};
use phirepass_store::Store;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub type Client = SecretsClient<AuthedChannel>;

/// A config whose server identity comes from `pki`, with the real allowlist widened to the
/// harness's `authz` client (standing in for every service).
pub fn config(pki: &LocalPki, key: KeySource) -> SecretsConfig {
    SecretsConfig {
        policy: phirepass_secrets::policy::POLICY.also_allowing(ServiceKind::Authz),
        ..SecretsConfig::new(pki.identity(ServiceKind::Secrets).unwrap(), key)
    }
}

pub async fn postgres() -> Store {
    Store::fresh_postgres_for_test().await.unwrap()
}

pub async fn sqlite() -> Store {
    Store::memory_sqlite().await.unwrap()
}

pub fn raw(key: &MasterKey) -> KeySource {
    KeySource::Raw(key.clone())
}

pub struct Harness {
    pub url: String,
    pub store: Store,
    pub internal: Client,
    pub admin: Client,
    pub pki: Arc<LocalPki>,
    pub admin_token: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), SecretsError>>>,
}

/// Serves on a fresh listener; returns the serve task and its stop switch.
pub async fn spawn(
    store: Store,
    config: SecretsConfig,
) -> (
    String,
    oneshot::Sender<()>,
    JoinHandle<Result<(), SecretsError>>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(config, listener, SecretsDeps::new(store), async {
        let _ = stopped.await;
    }));
    (url, stop, task)
}

impl Harness {
    pub async fn start(store: Store, key: KeySource, old: Option<KeySource>) -> Self {
        let pki = Arc::new(LocalPki::generate().unwrap());
        let admin_token = format!("admin-{:032x}", rand::random::<u128>());
        Self::start_with(store, key, old, pki, admin_token).await
    }

    async fn start_with(
        store: Store,
        key: KeySource,
        old: Option<KeySource>,
        pki: Arc<LocalPki>,
        admin_token: String,
    ) -> Self {
        let config = SecretsConfig {
            admin_token: Some(phirepass_secrets::AdminToken(admin_token.clone())),
            old_key: old,
            ..config(&pki, key)
        };
        let (url, stop, task) = spawn(store.clone(), config).await;
        let id = pki.identity(ServiceKind::Authz).unwrap();
        let internal = SecretsClient::new(channel(&url, &id, ServiceKind::Secrets).unwrap());
        let trust = trust_certs(pki.trust_pem()).unwrap();
        let admin = SecretsClient::new(
            admin_channel(&url, &trust, ServiceKind::Secrets, &admin_token).unwrap(),
        );
        Self {
            url,
            store,
            internal,
            admin,
            pki,
            admin_token,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// A client presenting `kind`'s certificate, held to `kind`'s real allowlist rows.
    pub fn as_service(&self, kind: ServiceKind) -> Client {
        let id = self.pki.identity(kind).unwrap();
        SecretsClient::new(channel(&self.url, &id, ServiceKind::Secrets).unwrap())
    }

    /// Stops the server (as if killed between two calls) and starts a new
    /// one on the same store with these keys.
    pub async fn restart(mut self, key: KeySource, old: Option<KeySource>) -> Self {
        self.shutdown().await;
        let (store, s, a) = (
            self.store.clone(),
            self.pki.clone(),
            self.admin_token.clone(),
        );
        Self::start_with(store, key, old, s, a).await
    }

    pub async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }

    pub async fn set(&self, host: &str, key: &str, value: &str) {
        self.admin
            .clone()
            .set_option(pb::SetOptionRequest {
                host: host.into(),
                key: key.into(),
                value: value.into(),
            })
            .await
            .unwrap();
    }

    pub async fn create(
        &self,
        name: &str,
        kind: pb::CredentialKind,
        secret: &str,
        passphrase: Option<&str>,
        meta_json: &str,
    ) -> pb::Credential {
        self.admin
            .clone()
            .create_credential(pb::CreateCredentialRequest {
                name: name.into(),
                kind: kind as i32,
                secret: secret.into(),
                passphrase: passphrase.map(Into::into),
                meta_json: meta_json.into(),
            })
            .await
            .unwrap()
            .into_inner()
    }

    pub async fn assign(&self, host: &str, name: &str) {
        self.admin
            .clone()
            .assign_credential(pb::AssignCredentialRequest {
                host: host.into(),
                name: name.into(),
            })
            .await
            .unwrap();
    }

    pub async fn resolve(&self, host: &str) -> Result<pb::HostAuth, tonic::Status> {
        self.internal
            .clone()
            .resolve_host_auth(pb::ResolveHostAuthRequest { host: host.into() })
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn options(&self, host: &str) -> Vec<pb::HostOption> {
        self.admin
            .clone()
            .list_options(pb::ListOptionsRequest { host: host.into() })
            .await
            .unwrap()
            .into_inner()
            .options
    }

    pub async fn credentials(&self) -> Vec<pb::Credential> {
        self.admin
            .clone()
            .list_credentials(pb::ListCredentialsRequest {})
            .await
            .unwrap()
            .into_inner()
            .credentials
    }

    pub async fn status(&self) -> pb::RotationStatus {
        self.admin
            .clone()
            .rotation_status(pb::RotationStatusRequest {})
            .await
            .unwrap()
            .into_inner()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

// A fixed data set: every kind of entry, with recognisable secrets.
pub const PW_WEB1: &str = "pw-web1-Qz81xk";
pub const KEY_WEB2: &str =
    "-----BEGIN OPENSSH PRIVATE KEY-----\nweb2-key-Hk27\n-----END OPENSSH PRIVATE KEY-----\n";
pub const PASS_WEB2: &str = "pass-web2-Lm44";
pub const PW_INLINE_WEB3: &str = "pw-inline-web3-Rt09";
pub const KEY_CRED: &str =
    "-----BEGIN OPENSSH PRIVATE KEY-----\ncred-key-Vb63\n-----END OPENSSH PRIVATE KEY-----\n";
pub const PASS_CRED: &str = "pass-cred-Np12";
pub const PW_CRED: &str = "pw-cred-Xw55";
pub const HOSTKEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKeyWeb1";
/// Every secret plaintext in the data set.
pub const SECRETS: &[&str] = &[
    PW_WEB1,
    "web2-key-Hk27",
    PASS_WEB2,
    PW_INLINE_WEB3,
    "cred-key-Vb63",
    PASS_CRED,
    PW_CRED,
];
/// How many sealed entries [`populate`] writes (option rows + credentials).
pub const ENTRIES: u64 = 5 + 4 + 4 + 3 + 2;

pub async fn populate(h: &Harness) {
    use pb::CredentialKind::{Password, SshKey};
    h.set("web1", "auth.method", "password").await;
    h.set("web1", "auth.username", "root").await;
    h.set("web1", "auth.password", PW_WEB1).await;
    h.set("web1", "compression", "true").await;
    h.set("web1", "hostkey.openssh", HOSTKEY).await;
    h.set("web2", "auth.method", "publickey").await;
    h.set("web2", "auth.username", "deploy").await;
    h.set("web2", "auth.identity", KEY_WEB2).await;
    h.set("web2", "auth.passphrase", PASS_WEB2).await;
    h.set("web3", "auth.username", "inline-user").await;
    h.set("web3", "auth.password", PW_INLINE_WEB3).await;
    h.create(
        "deploy-key",
        SshKey,
        KEY_CRED,
        Some(PASS_CRED),
        r#"{"username":"ops"}"#,
    )
    .await;
    h.assign("web3", "deploy-key").await;
    h.set("web4", "auth.username", "admin").await;
    h.create("db-pass", Password, PW_CRED, None, "").await;
    h.assign("web4", "db-pass").await;
}

/// Asserts every host of [`populate`] resolves to exactly its material.
pub async fn check_all(h: &Harness) {
    use pb::AuthSource::{Credential, Inline};
    let web1 = h.resolve("web1").await.unwrap();
    assert_eq!(web1.source(), Inline);
    assert_eq!(web1.method, "password");
    assert_eq!(web1.username.as_deref(), Some("root"));
    assert_eq!(web1.password.as_deref(), Some(PW_WEB1));
    assert_eq!(web1.identity, None);
    assert_eq!(
        web1.options.get("compression").map(String::as_str),
        Some("true")
    );
    assert_eq!(
        web1.options.get("hostkey.openssh").map(String::as_str),
        Some(HOSTKEY)
    );

    let web2 = h.resolve("web2").await.unwrap();
    assert_eq!(web2.source(), Inline);
    assert_eq!(web2.method, "publickey");
    assert_eq!(web2.username.as_deref(), Some("deploy"));
    assert_eq!(web2.identity.as_deref(), Some(KEY_WEB2));
    assert_eq!(web2.passphrase.as_deref(), Some(PASS_WEB2));
    assert_eq!(web2.password, None);

    // The assigned credential overrides the inline password and username.
    let web3 = h.resolve("web3").await.unwrap();
    assert_eq!(web3.source(), Credential);
    assert_eq!(web3.credential_name.as_deref(), Some("deploy-key"));
    assert_eq!(web3.method, "publickey");
    assert_eq!(web3.username.as_deref(), Some("ops"));
    assert_eq!(web3.identity.as_deref(), Some(KEY_CRED));
    assert_eq!(web3.passphrase.as_deref(), Some(PASS_CRED));
    assert_eq!(web3.password, None);

    // No username in the credential's meta: the inline one is used.
    let web4 = h.resolve("web4").await.unwrap();
    assert_eq!(web4.source(), Credential);
    assert_eq!(web4.method, "password");
    assert_eq!(web4.username.as_deref(), Some("admin"));
    assert_eq!(web4.password.as_deref(), Some(PW_CRED));
    assert_eq!(web4.passphrase, None);

    // Admin listings decrypt the non-secret values too.
    for host in ["web1", "web2", "web3", "web4"] {
        assert!(!h.options(host).await.is_empty());
    }
    assert_eq!(h.credentials().await.len(), 2);
}

//! A real authz server on 127.0.0.1:0 and clients for it.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use phirepass_authz::{AuthzConfig, AuthzDeps, HashLimits, LoginLimits, UserLimits, serve};
use phirepass_bus::{EventLog, JetStreamEventLog, MemoryEventLog, NatsBus};
use phirepass_pki::{LocalPki, ServiceKind};
use phirepass_presence::{MemoryPresence, Presence, RedisPresence};
use phirepass_proto::authz as pb;
use phirepass_proto::authz::authz_client::AuthzClient;
use phirepass_runtime::grpc::{AuthedChannel, admin_channel, channel, trust_certs};
use phirepass_store::Store;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Runs each named `async fn(Stack)` as two tests: `production::<name>` on
/// PostgreSQL + Redis + NATS and `embedded::<name>` on SQLite + memory.
/// Invoked once per test module, so the module path keeps names unique.
#[allow(unused_macros)] // the benchmark shares this module without it
macro_rules! on_both_stacks {
    ($($name:ident),* $(,)?) => {
        mod production {
            $(#[tokio::test]
            async fn $name() {
                super::$name($crate::common::Stack::Production).await;
            })*
        }
        mod embedded {
            $(#[tokio::test]
            async fn $name() {
                super::$name($crate::common::Stack::Embedded).await;
            })*
        }
    };
}

pub const PASSWORD: &str = "correct horse battery";

/// How long to sleep until just past `deadline_millis` (unix millis).
pub fn until(deadline_millis: i64) -> Duration {
    let left = deadline_millis - phirepass_store::now_millis() + 200;
    Duration::from_millis(u64::try_from(left).unwrap_or(0))
}

pub struct Harness {
    pub url: String,
    /// The deployment's CA; [`Harness::client`] presents its `authz` certificate, which the
    /// harness's policy lets call everything (standing in for every service at once).
    pub pki: Arc<LocalPki>,
    pub client: AuthzClient<AuthedChannel>,
    pub events: Arc<dyn EventLog>,
    pub audit_subject: String,
    /// The first-run code issued at start (the store had no user).
    pub setup_code: Option<String>,
    pub store: Store,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), phirepass_authz::AuthzError>>>,
}

pub async fn postgres() -> Store {
    Store::fresh_postgres_for_test().await.unwrap()
}

pub async fn sqlite() -> Store {
    Store::memory_sqlite().await.unwrap()
}

/// The two deployments every access test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stack {
    /// PostgreSQL + Redis + NATS JetStream.
    Production,
    /// SQLite + in-memory presence + in-memory event log.
    Embedded,
}

/// What a test may change about the server.
pub struct Options {
    pub session_ttl: Duration,
    pub limits: LoginLimits,
    pub user_limits: UserLimits,
    pub hash_limits: HashLimits,
    pub device_starts_per_minute: u64,
    pub device_code_ttl: Duration,
    pub decision_cache_ttl: Duration,
    pub tunnel_name_policy: phirepass_authz::TunnelNamePolicy,
    pub tunnel_reserved_names: Vec<String>,
    pub app_token_ttl: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            session_ttl: Duration::from_secs(3600),
            limits: LoginLimits::default(),
            user_limits: UserLimits::default(),
            hash_limits: HashLimits::default(),
            device_starts_per_minute: 10,
            device_code_ttl: phirepass_authz::DEVICE_CODE_TTL,
            decision_cache_ttl: Duration::from_secs(5),
            tunnel_name_policy: phirepass_authz::TunnelNamePolicy::Any,
            tunnel_reserved_names: Vec::new(),
            app_token_ttl: Duration::from_secs(15 * 60),
        }
    }
}

impl Harness {
    pub async fn start(store: Store) -> Self {
        Self::start_with_ttl(store, Duration::from_secs(3600)).await
    }

    pub async fn start_with_ttl(store: Store, session_ttl: Duration) -> Self {
        let options = Options {
            session_ttl,
            ..Options::default()
        };
        let prefix = phirepass_bus::conformance::random_prefix();
        Self::start_with(
            store,
            Arc::new(MemoryPresence::new()),
            Arc::new(MemoryEventLog::new()),
            &prefix,
            options,
        )
        .await
    }

    /// The store, presence and event log of a fresh `stack`, isolated by
    /// `prefix`: give the same ones to two servers to get two replicas.
    pub async fn deps(stack: Stack, prefix: &str) -> (Store, Arc<dyn Presence>, Arc<dyn EventLog>) {
        match stack {
            Stack::Production => {
                let redis = std::env::var("REDIS_URL")
                    .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
                let nats = std::env::var("NATS_URL")
                    .unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned());
                let presence = RedisPresence::connect(&redis, &format!("{prefix}:"))
                    .await
                    .unwrap();
                let bus = NatsBus::connect(&nats).await.unwrap();
                let events =
                    JetStreamEventLog::with_stream(&bus, prefix, &format!("PP_TEST_{prefix}"))
                        .await
                        .unwrap();
                (postgres().await, Arc::new(presence), Arc::new(events))
            }
            Stack::Embedded => (
                sqlite().await,
                Arc::new(MemoryPresence::new()),
                Arc::new(MemoryEventLog::new()),
            ),
        }
    }

    /// A server on `stack`, each test isolated by a random prefix (its own
    /// database, Redis key prefix and JetStream stream).
    pub async fn on(stack: Stack, options: Options) -> Self {
        let prefix = phirepass_bus::conformance::random_prefix();
        let (store, presence, events) = Self::deps(stack, &prefix).await;
        Self::start_with(store, presence, events, &prefix, options).await
    }

    pub async fn start_with(
        store: Store,
        presence: Arc<dyn Presence>,
        events: Arc<dyn EventLog>,
        prefix: &str,
        options: Options,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}", listener.local_addr().unwrap());
        let pki = Arc::new(LocalPki::generate().unwrap());
        let audit_subject = format!("{prefix}.events.audit");
        let config = AuthzConfig {
            session_ttl: options.session_ttl,
            login_limits: options.limits,
            user_limits: options.user_limits,
            hash_limits: options.hash_limits,
            audit_subject: audit_subject.clone(),
            issue_setup_code: false,
            device_starts_per_minute: options.device_starts_per_minute,
            device_code_ttl: options.device_code_ttl,
            decision_cache_ttl: options.decision_cache_ttl,
            tunnel_name_policy: options.tunnel_name_policy,
            tunnel_reserved_names: options.tunnel_reserved_names,
            app_token_ttl: options.app_token_ttl,
            policy: phirepass_authz::policy::POLICY.also_allowing(ServiceKind::Authz),
            ..AuthzConfig::new(pki.identity(ServiceKind::Authz).unwrap())
        };
        let setup_code = phirepass_authz::issue_setup_code(&store).await.unwrap();
        let deps = AuthzDeps {
            store: store.clone(),
            presence,
            events: events.clone(),
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(config, listener, deps, async {
            let _ = stopped.await;
        }));
        let harness_id = pki.identity(ServiceKind::Authz).unwrap();
        let client = AuthzClient::new(channel(&url, &harness_id, ServiceKind::Authz).unwrap());
        Self {
            url,
            pki,
            client,
            events,
            audit_subject,
            setup_code,
            store,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn client(&self) -> AuthzClient<AuthedChannel> {
        self.client.clone()
    }

    /// A client without a certificate that sends `authorization: Bearer <api token>` (the
    /// admin CLI).
    pub fn as_token(&self, token: &str) -> AuthzClient<AuthedChannel> {
        let trust = trust_certs(self.pki.trust_pem()).unwrap();
        AuthzClient::new(admin_channel(&self.url, &trust, ServiceKind::Authz, token).unwrap())
    }

    /// A client presenting `kind`'s certificate, held to the real allowlist rows of `kind`.
    pub fn as_service(&self, kind: ServiceKind) -> AuthzClient<AuthedChannel> {
        let id = self.pki.identity(kind).unwrap();
        AuthzClient::new(channel(&self.url, &id, ServiceKind::Authz).unwrap())
    }

    /// An API token for `username` with `scopes`.
    pub async fn api_token(&self, username: &str, scopes: &[&str]) -> String {
        self.client()
            .create_api_token(pb::CreateApiTokenRequest {
                username: username.into(),
                name: "test".into(),
                scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
                expires_in_secs: None,
            })
            .await
            .unwrap()
            .into_inner()
            .token
    }

    /// Audit events published so far, decoded (decisions and admin changes).
    pub async fn audit_events(&self) -> Vec<serde_json::Value> {
        self.events
            .read(&self.audit_subject, 0, 10_000)
            .await
            .unwrap()
            .iter()
            .map(|(_, payload)| serde_json::from_slice(payload).unwrap())
            .collect()
    }

    /// Sets `username`'s admin role (API tokens are capped by it).
    pub async fn set_admin(&self, username: &str, admin: bool) -> pb::User {
        self.client()
            .set_user_admin(pb::SetUserAdminRequest {
                username: username.into(),
                admin,
            })
            .await
            .unwrap()
            .into_inner()
    }

    pub async fn create_user(&self, username: &str) -> pb::User {
        self.client()
            .create_user(pb::CreateUserRequest {
                username: username.into(),
                password: PASSWORD.into(),
            })
            .await
            .unwrap()
            .into_inner()
    }

    pub async fn login(
        &self,
        username: &str,
        password: &str,
    ) -> Result<pb::LoginResponse, tonic::Status> {
        self.client()
            .login(pb::LoginRequest {
                username: username.into(),
                password: password.into(),
                client_ip: None,
            })
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn node_token(
        &self,
        username: &str,
        node: &str,
        expires_in_secs: Option<u64>,
    ) -> Result<pb::CreateNodeTokenResponse, tonic::Status> {
        self.client()
            .create_node_token(pb::CreateNodeTokenRequest {
                username: username.into(),
                node_name: node.into(),
                expires_in_secs,
                rotate: false,
            })
            .await
            .map(tonic::Response::into_inner)
    }

    /// Replaces the token of `user`'s existing node `node`.
    pub async fn rotate_node_token(
        &self,
        username: &str,
        node: &str,
    ) -> Result<pb::CreateNodeTokenResponse, tonic::Status> {
        self.client()
            .create_node_token(pb::CreateNodeTokenRequest {
                username: username.into(),
                node_name: node.into(),
                expires_in_secs: None,
                rotate: true,
            })
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn verify_node(&self, token: &str) -> Result<pb::Node, tonic::Status> {
        self.client()
            .verify_node_token(pb::VerifyNodeTokenRequest {
                token: token.into(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn invalid_tokens(&self, ids: &[&str]) -> Vec<String> {
        self.client()
            .check_tokens(pb::CheckTokensRequest {
                token_ids: ids.iter().map(|s| (*s).to_owned()).collect(),
            })
            .await
            .unwrap()
            .into_inner()
            .invalid_token_ids
    }

    /// Stops the server and checks it shut down cleanly.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("server stops")
                .unwrap()
                .unwrap();
        }
    }
}

//! A whole Phirepass deployment inside one test, built with the same [`Stack`] as
//! `phirepass dev`: authz, registry, secrets, N gateway-ws and any number of ssh-edges, on the
//! real NATS + Redis + PostgreSQL or on the embedded defaults. Dropping the cluster stops every
//! service and fails the test if one of them failed while it ran.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use phirepass::stack::{Stack, loopback};
use phirepass_pki::{LocalPki, ServiceKind};
use phirepass_proto::authz::authz_client::AuthzClient;
use phirepass_proto::authz::{CreateNodeTokenRequest, CreateUserRequest};
use phirepass_proto::registry::registry_client::RegistryClient;
use phirepass_proto::secrets::secrets_client::SecretsClient;
use phirepass_runtime::grpc::{AuthedChannel, channel};
use phirepass_testkit::unique;

use super::{SharedBus, nats_url, redis_url};

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// NATS, Redis and PostgreSQL on loopback.
    Real,
    /// In-process bus, in-memory presence, SQLite in memory.
    Embedded,
}

/// What to deploy besides authz, registry and secrets.
pub struct Layout<'a> {
    pub backend: Backend,
    pub gateways: usize,
    /// (name, password) of users that exist before any gateway starts (a production gateway
    /// refuses to start without one).
    pub users: &'a [(&'a str, &'a str)],
    /// The registry and every gateway on their own NATS connection, as separate processes
    /// would be (`Backend::Real` only).
    pub own_connections: bool,
    /// Issue the first-run setup code (kept in [`Cluster::setup_code`]) before authz starts.
    pub setup_code: bool,
    /// Lifetime of app tokens (authz's default when `None`).
    pub app_token_ttl: Option<Duration>,
}

impl Layout<'_> {
    pub fn new(backend: Backend, gateways: usize) -> Self {
        Self {
            backend,
            gateways,
            users: &[],
            own_connections: false,
            setup_code: false,
            app_token_ttl: None,
        }
    }
}

pub struct Gateway {
    pub addr: String,
    pub id: String,
    /// Its internal `Commands` gRPC service (`https://127.0.0.1:PORT`).
    pub commands_url: String,
}

/// The admin account whose API token the tests' admin CLI runs use
/// ([`Cluster::operator_token`]).
pub const OPERATOR: &str = "operator";

/// A running ssh-edge instance.
pub struct SshEdge {
    pub addr: SocketAddr,
    pub id: String,
}

pub struct Cluster {
    pub authz_url: String,
    pub registry_url: String,
    pub secrets_url: String,
    /// The deployment's CA. The test's own clients ([`Cluster::authz`] and co.) present its
    /// `authz` certificate, which this deployment's (widened) allowlists let call everything;
    /// gateways and ssh-edges get their own certificates and the real rows.
    pub pki: Arc<LocalPki>,
    pub gateways: Vec<Gateway>,
    /// The audit event log authz (and the ssh-edges) write to.
    pub events: Arc<dyn phirepass_bus::EventLog>,
    /// The subject prefix of this deployment (events: `<prefix>.events.audit`).
    pub prefix: String,
    pub backend: Backend,
    /// The first-run setup code, when the layout asked for one.
    pub setup_code: Option<String>,
    /// authz's ticket keys (issue #8): a test may rotate them while everything runs.
    pub tickets: Arc<phirepass_authz::TicketKeyring>,
    bus: SharedBus,
    stack: Stack,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // The stack, dropped right after this, stops every service.
        if let Some(failure) = self.stack.failure()
            && !std::thread::panicking()
        {
            panic!("a service of the test deployment failed: {failure}");
        }
    }
}

async fn connect_bus(backend: Backend) -> SharedBus {
    match backend {
        Backend::Real => phirepass_bus::connect(Some(&nats_url()))
            .await
            .expect("nats"),
        Backend::Embedded => phirepass_bus::connect(None).await.expect("memory bus"),
    }
}

impl Cluster {
    pub async fn start(backend: Backend, gateways: usize) -> Self {
        Self::start_with(backend, gateways, &[], |_| {}).await
    }

    /// Starts the services; `users` (name, password) exist before any gateway starts;
    /// `tweak` adjusts each gateway's config.
    pub async fn start_with(
        backend: Backend,
        gateways: usize,
        users: &[(&str, &str)],
        tweak: impl Fn(&mut phirepass_gateway_ws::GatewayConfig),
    ) -> Self {
        let layout = Layout {
            users,
            ..Layout::new(backend, gateways)
        };
        Self::start_layout(layout, |config, _| tweak(config)).await
    }

    /// Starts `layout`; `tweak` adjusts each gateway's config, given the address it serves.
    pub async fn start_layout(
        layout: Layout<'_>,
        tweak: impl Fn(&mut phirepass_gateway_ws::GatewayConfig, SocketAddr),
    ) -> Self {
        let _ = phirepass_runtime::telemetry::init("phirepass-tests");
        let backend = layout.backend;
        let pki = Arc::new(LocalPki::generate().expect("test ca"));
        let (store, presence) = match backend {
            Backend::Real => (
                phirepass_store::Store::fresh_postgres_for_test()
                    .await
                    .expect("fresh postgres database"),
                phirepass_presence::connect(Some(&redis_url()), &unique("t:"))
                    .await
                    .expect("redis"),
            ),
            Backend::Embedded => (
                phirepass_store::Store::memory_sqlite()
                    .await
                    .expect("sqlite"),
                phirepass_presence::connect(None, "pp:")
                    .await
                    .expect("memory presence"),
            ),
        };
        let bus = connect_bus(backend).await;
        // Every gateway of one deployment shares the subject prefix; tests get their own.
        let prefix = unique("t");
        let events: Arc<dyn phirepass_bus::EventLog> = match backend {
            Backend::Real => {
                let nats = phirepass_bus::NatsBus::connect(&nats_url())
                    .await
                    .expect("nats");
                let stream = format!("PP_EVENTS_{}", prefix.to_uppercase());
                Arc::new(
                    phirepass_bus::JetStreamEventLog::with_stream(&nats, &prefix, &stream)
                        .await
                        .expect("jetstream"),
                )
            }
            Backend::Embedded => Arc::new(phirepass_bus::MemoryEventLog::new()),
        };
        let setup_code = match layout.setup_code {
            true => phirepass_authz::issue_setup_code(&store)
                .await
                .expect("issue setup code"),
            false => None,
        };
        let own_bus = || async {
            match layout.own_connections {
                true => connect_bus(backend).await,
                false => bus.clone(),
            }
        };

        let mut stack = Stack::new(pki.clone(), prefix.clone());
        let identity = |kind| pki.identity(kind).expect("identity");
        let tickets = super::tickets::keyring();
        let mut authz_config = phirepass_authz::AuthzConfig::with_tickets(
            identity(ServiceKind::Authz),
            tickets.clone(),
        );
        authz_config.policy = phirepass_authz::policy::POLICY.also_allowing(ServiceKind::Authz);
        // Inside this deployment's event stream (`<prefix>.events.>`), so tests can read it.
        authz_config.audit_subject = stack.audit_subject();
        authz_config.issue_setup_code = false;
        if let Some(ttl) = layout.app_token_ttl {
            authz_config.app_token_ttl = ttl;
        }
        let authz_deps = phirepass_authz::AuthzDeps {
            store: store.clone(),
            presence: presence.clone(),
            events: events.clone(),
        };
        let authz_url = stack
            .start_authz(authz_config, authz_deps)
            .await
            .expect("start authz");
        let secrets_config = phirepass_secrets::SecretsConfig {
            policy: phirepass_secrets::policy::POLICY.also_allowing(ServiceKind::Authz),
            // Admin clients' API tokens (the operator's) work on the vault too, as in dev.
            authz_url: Some(authz_url.clone()),
            ..phirepass_secrets::SecretsConfig::new(
                identity(ServiceKind::Secrets),
                phirepass_secrets::KeySource::Raw(phirepass_secrets::MasterKey::generate()),
            )
        };
        let secrets_deps = phirepass_secrets::SecretsDeps::new(store.clone());
        let secrets_url = stack
            .start_secrets(secrets_config, secrets_deps)
            .await
            .expect("start secrets");
        let registry_config = phirepass_registry::RegistryConfig {
            subject_prefix: prefix.clone(),
            policy: phirepass_registry::policy::POLICY.also_allowing(ServiceKind::Authz),
            ..phirepass_registry::RegistryConfig::new(identity(ServiceKind::Registry))
        };
        let registry_deps = phirepass_registry::RegistryDeps {
            presence,
            bus: Some(own_bus().await),
        };
        let registry_url = stack
            .start_registry(registry_config, registry_deps)
            .await
            .expect("start registry");

        let harness = identity(ServiceKind::Authz);
        let authz =
            AuthzClient::new(channel(&authz_url, &harness, ServiceKind::Authz).expect("channel"));
        for (username, password) in layout.users {
            let req = CreateUserRequest {
                username: username.to_string(),
                password: password.to_string(),
            };
            authz.clone().create_user(req).await.expect("create user");
        }
        let mut gateways = Vec::new();
        for _ in 0..layout.gateways {
            let listener = loopback().await.expect("bind");
            let addr = listener.local_addr().expect("addr");
            let mut config = stack.gateway_config().expect("gateway config");
            tweak(&mut config, addr);
            let id = config.gateway_id.clone();
            let deps =
                phirepass_gateway_ws::GatewayDeps::new(own_bus().await).with_events(events.clone());
            stack
                .start_gateway(listener, config, deps)
                .expect("start gateway");
            gateways.push(Gateway {
                addr: addr.to_string(),
                id,
                commands_url: stack.commands_url().expect("commands url"),
            });
        }
        Self {
            authz_url,
            registry_url,
            secrets_url,
            pki,
            gateways,
            events,
            prefix,
            backend,
            setup_code,
            tickets,
            bus,
            stack,
        }
    }

    /// Starts an ssh-edge on its own bus connection (it shares nothing in-process with the
    /// gateways: nodes are reached over NATS only). `tweak` adjusts its config.
    pub async fn start_ssh_edge(
        &self,
        host_key_file: &std::path::Path,
        tweak: impl FnOnce(&mut phirepass_ssh_edge::SshEdgeConfig),
    ) -> SshEdge {
        let ssh = loopback().await.expect("bind");
        let host_key = phirepass_ssh_edge::HostKeySource::File(host_key_file.to_path_buf());
        let mut config = self.stack.ssh_edge_config(host_key).expect("edge config");
        config.ssh_addr = ssh.local_addr().expect("addr");
        tweak(&mut config);
        let id = config.edge_id.clone();
        let bus = match self.backend {
            Backend::Real => connect_bus(Backend::Real).await,
            Backend::Embedded => self.bus.clone(),
        };
        let deps = phirepass_ssh_edge::SshEdgeDeps {
            bus,
            events: self.events.clone(),
        };
        let addr = self
            .stack
            .start_ssh_edge(ssh, config, deps)
            .await
            .expect("start ssh-edge");
        SshEdge { addr, id }
    }

    pub fn bus(&self) -> SharedBus {
        self.bus.clone()
    }

    /// A channel presenting the harness's `authz` certificate.
    fn harness_channel(&self, url: &str, server: ServiceKind) -> AuthedChannel {
        let harness = self.pki.identity(ServiceKind::Authz).expect("identity");
        channel(url, &harness, server).expect("channel")
    }

    pub fn authz(&self) -> AuthzClient<AuthedChannel> {
        AuthzClient::new(self.harness_channel(&self.authz_url, ServiceKind::Authz))
    }

    pub fn registry(&self) -> RegistryClient<AuthedChannel> {
        RegistryClient::new(self.harness_channel(&self.registry_url, ServiceKind::Registry))
    }

    pub fn secrets(&self) -> SecretsClient<AuthedChannel> {
        SecretsClient::new(self.harness_channel(&self.secrets_url, ServiceKind::Secrets))
    }

    /// An admin-scope API token of [`OPERATOR`], an admin account created on first use: what
    /// the admin CLI presents (there is no service token any more).
    pub async fn operator_token(&self) -> String {
        let mut authz = self.authz();
        let created = authz
            .create_user(CreateUserRequest {
                username: OPERATOR.into(),
                password: "operator-password-unused".into(),
            })
            .await;
        if let Err(status) = created
            && status.code() != tonic::Code::AlreadyExists
        {
            panic!("create the operator: {status:?}");
        }
        authz
            .set_user_admin(phirepass_proto::authz::SetUserAdminRequest {
                username: OPERATOR.into(),
                admin: true,
            })
            .await
            .expect("make the operator an admin");
        authz
            .create_api_token(phirepass_proto::authz::CreateApiTokenRequest {
                username: OPERATOR.into(),
                name: "tests".into(),
                scopes: vec!["admin".into()],
                expires_in_secs: None,
            })
            .await
            .expect("operator api token")
            .into_inner()
            .token
    }

    /// Writes the deployment's CA certificate into `dir/pki/trust.crt`, where the admin CLI
    /// looks for it (as in `phirepass dev`'s data dir); returns the file.
    pub fn write_trust(&self, dir: &std::path::Path) -> std::path::PathBuf {
        let path = dir.join("pki").join("trust.crt");
        std::fs::create_dir_all(dir.join("pki")).expect("pki dir");
        std::fs::write(&path, self.pki.trust_pem()).expect("write trust.crt");
        path
    }

    /// Audit events (JSON) written so far to `<prefix>.events.audit`.
    pub async fn audit_events(&self) -> Vec<serde_json::Value> {
        let subject = format!("{}.events.audit", self.prefix);
        let mut out = Vec::new();
        let mut from = 1;
        loop {
            let batch = self
                .events
                .read(&subject, from, phirepass_bus::MAX_READ)
                .await
                .expect("read events");
            let Some((last, _)) = batch.last() else {
                break;
            };
            from = last + 1;
            out.extend(
                batch
                    .iter()
                    .filter_map(|(_, p)| serde_json::from_slice(p).ok()),
            );
        }
        out
    }

    pub async fn add_user(&self, username: &str, password: &str) {
        self.authz()
            .create_user(CreateUserRequest {
                username: username.into(),
                password: password.into(),
            })
            .await
            .expect("create user");
    }

    /// Registers `node` for `user`; returns (token, token_id).
    pub async fn node_token(&self, user: &str, node: &str) -> (String, String) {
        let r = self
            .authz()
            .create_node_token(CreateNodeTokenRequest {
                username: user.into(),
                node_name: node.into(),
                expires_in_secs: None,
                rotate: false,
            })
            .await
            .expect("create node token")
            .into_inner();
        (r.token, r.token_id)
    }

    pub async fn add_host(&self, name: &str, addr: SocketAddr) {
        self.authz()
            .add_host(phirepass_proto::authz::AddHostRequest {
                name: name.into(),
                ip: addr.ip().to_string(),
                port: addr.port() as u32,
            })
            .await
            .expect("add host");
    }

    pub async fn set_option(&self, host: &str, key: &str, value: &str) {
        self.secrets()
            .set_option(phirepass_proto::secrets::SetOptionRequest {
                host: host.into(),
                key: key.into(),
                value: value.into(),
            })
            .await
            .expect("set option");
    }

    /// Vault credentials for the TestSshd account on `target`.
    pub async fn set_password_login(&self, target: &str) {
        use phirepass_testkit::sshd::{TEST_PASSWORD, TEST_USER};
        self.set_option(target, "auth.method", "password").await;
        self.set_option(target, "auth.username", TEST_USER).await;
        self.set_option(target, "auth.password", TEST_PASSWORD)
            .await;
    }

    pub async fn grant(&self, user: &str, target: &str) {
        self.authz()
            .grant(phirepass_proto::authz::GrantRequest {
                principal_kind: phirepass_proto::authz::PrincipalKind::User as i32,
                principal: user.into(),
                target: target.into(),
                ..Default::default()
            })
            .await
            .expect("grant");
    }

    /// Waits until the registry lists node `name` (looked up by name in authz) as connected.
    pub async fn wait_node_online(&self, name: &str) {
        let nodes = self
            .authz()
            .list_nodes(phirepass_proto::authz::ListNodesRequest { user_id: None })
            .await
            .expect("list nodes")
            .into_inner()
            .nodes;
        let id = nodes
            .iter()
            .find(|n| n.name == name)
            .map(|n| n.node_id.clone())
            .expect("node registered");
        let registry = self.registry();
        for _ in 0..200 {
            let found = registry
                .clone()
                .get_node(phirepass_proto::registry::GetNodeRequest {
                    node_id: id.clone(),
                })
                .await;
            if found.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("node {name} did not come online");
    }
}

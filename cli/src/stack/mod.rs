//! One deployment builder for `phirepass dev` and the cross-service tests: it
//! binds listeners (on `127.0.0.1:0` unless given one), wires authz, registry,
//! secrets, gateways and ssh-edges to each other (URLs, each service's own certificate from
//! the deployment's [`LocalPki`], subject prefix), and keeps every service task in a [`ServiceSet`], so a `serve`
//! that fails, returns early or panics is reported instead of vanishing.
//!
//! The stack does not choose backends: the caller passes the store, presence,
//! bus and event log (embedded or NATS + Redis + PostgreSQL) in each service's
//! deps, exactly as production `main`s do.

use std::net::SocketAddr;

use std::sync::Arc;

use anyhow::Context;
use phirepass_pki::{Identity, LocalPki, ServiceKind};
use phirepass_runtime::services::{ServiceFailure, ServiceSet};
use tokio::net::TcpListener;

/// A running deployment (or the part of one started so far).
pub struct Stack {
    pki: Arc<LocalPki>,
    /// Bus subject prefix shared by every gateway and ssh-edge (`pp` in production).
    prefix: String,
    authz_url: Option<String>,
    registry_url: Option<String>,
    secrets_url: Option<String>,
    /// The ssh-edge started last, for the commands the gateway's dashboard shows.
    ssh_edge_addr: std::sync::Mutex<Option<SocketAddr>>,
    /// The `Commands` gRPC URL of each gateway started, in order.
    commands_urls: std::sync::Mutex<Vec<String>>,
    services: ServiceSet,
}

/// Binds a free loopback port.
pub async fn loopback() -> anyhow::Result<TcpListener> {
    TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding a loopback port")
}

fn url(listener: &TcpListener) -> anyhow::Result<String> {
    Ok(format!("https://{}", listener.local_addr()?))
}

impl Stack {
    /// An empty deployment whose services get their certificates from `pki` and share the bus
    /// subject `prefix`.
    pub fn new(pki: impl Into<Arc<LocalPki>>, prefix: impl Into<String>) -> Self {
        Self {
            pki: pki.into(),
            prefix: prefix.into(),
            authz_url: None,
            registry_url: None,
            secrets_url: None,
            ssh_edge_addr: std::sync::Mutex::new(None),
            commands_urls: std::sync::Mutex::new(Vec::new()),
            services: ServiceSet::new(),
        }
    }

    /// The deployment's CA and certificates.
    pub fn pki(&self) -> &Arc<LocalPki> {
        &self.pki
    }

    /// `kind`'s identity (from the PKI directory, reloadable; or freshly issued in memory).
    pub fn identity(&self, kind: ServiceKind) -> anyhow::Result<Identity> {
        self.pki
            .identity(kind)
            .with_context(|| format!("the {} certificate", kind.name()))
    }

    /// Where services publish audit events: `<prefix>.events.audit`.
    pub fn audit_subject(&self) -> String {
        format!("{}.events.audit", self.prefix)
    }

    pub fn authz_url(&self) -> anyhow::Result<&str> {
        self.authz_url.as_deref().context("authz is not started")
    }

    pub fn registry_url(&self) -> anyhow::Result<&str> {
        self.registry_url
            .as_deref()
            .context("registry is not started")
    }

    pub fn secrets_url(&self) -> anyhow::Result<&str> {
        self.secrets_url
            .as_deref()
            .context("secrets is not started")
    }

    /// The first service failure so far (a test deployment checks it when dropped).
    pub fn failure(&self) -> Option<ServiceFailure> {
        self.services.failure()
    }

    /// Starts authz on a free loopback port; returns its URL.
    pub async fn start_authz(
        &mut self,
        config: phirepass_authz::AuthzConfig,
        deps: phirepass_authz::AuthzDeps,
    ) -> anyhow::Result<String> {
        let listener = loopback().await?;
        let url = url(&listener)?;
        let stop = self.services.shutdown();
        self.services.spawn(
            "authz",
            phirepass_authz::serve(config, listener, deps, stop),
        );
        self.authz_url = Some(url.clone());
        Ok(url)
    }

    /// Starts the registry on a free loopback port; returns its URL.
    /// Unless told otherwise, it verifies admin clients' API tokens with this stack's authz.
    pub async fn start_registry(
        &mut self,
        mut config: phirepass_registry::RegistryConfig,
        deps: phirepass_registry::RegistryDeps,
    ) -> anyhow::Result<String> {
        if config.authz_url.is_none() {
            config.authz_url = self.authz_url.clone();
        }
        let listener = loopback().await?;
        let url = url(&listener)?;
        let stop = self.services.shutdown();
        self.services.spawn(
            "registry",
            phirepass_registry::serve(config, listener, deps, stop),
        );
        self.registry_url = Some(url.clone());
        Ok(url)
    }

    /// Starts the vault on a free loopback port; returns its URL.
    pub async fn start_secrets(
        &mut self,
        config: phirepass_secrets::SecretsConfig,
        deps: phirepass_secrets::SecretsDeps,
    ) -> anyhow::Result<String> {
        let listener = loopback().await?;
        let url = url(&listener)?;
        let stop = self.services.shutdown();
        self.services.spawn(
            "secrets",
            phirepass_secrets::serve(config, listener, deps, stop),
        );
        self.secrets_url = Some(url.clone());
        Ok(url)
    }

    /// A gateway config wired to this deployment's authz, registry, certificate and prefix.
    pub fn gateway_config(&self) -> anyhow::Result<phirepass_gateway_ws::GatewayConfig> {
        let mut config = phirepass_gateway_ws::GatewayConfig::local(
            self.authz_url()?.to_owned(),
            self.registry_url()?.to_owned(),
            self.identity(ServiceKind::GatewayWs)?,
        );
        config.subject_prefix = self.prefix.clone();
        // The browser terminal reads and writes node host-key pins in this vault.
        config.secrets_url = self.secrets_url.clone();
        // A gateway started after the edge names it in the dashboard's `ssh` commands.
        if let Some(addr) = *self.ssh_edge_addr.lock().unwrap_or_else(|e| e.into_inner()) {
            config.proxy.ssh_edge_addr = Some(addr.to_string());
        }
        Ok(config)
    }

    /// The `Commands` gRPC URL (`https://127.0.0.1:PORT`) of the gateway started last.
    pub fn commands_url(&self) -> anyhow::Result<String> {
        self.commands_urls()
            .last()
            .cloned()
            .context("no gateway is started")
    }

    /// The `Commands` gRPC URL of every gateway started, in the order they started.
    pub fn commands_urls(&self) -> Vec<String> {
        self.commands_urls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Starts a gateway on `listener`; returns the address it serves. Its internal `Commands`
    /// gRPC service listens on `deps.commands_listener`, else on a free loopback port (see
    /// [`Stack::commands_url`]).
    pub fn start_gateway(
        &self,
        listener: TcpListener,
        config: phirepass_gateway_ws::GatewayConfig,
        mut deps: phirepass_gateway_ws::GatewayDeps,
    ) -> anyhow::Result<SocketAddr> {
        let addr = listener.local_addr()?;
        let grpc = match deps.commands_listener.take() {
            Some(grpc) => grpc,
            None => {
                let std = std::net::TcpListener::bind("127.0.0.1:0")
                    .context("binding a loopback port for the gateway's gRPC service")?;
                std.set_nonblocking(true)?;
                TcpListener::from_std(std)?
            }
        };
        let commands_url = format!("https://{}", grpc.local_addr()?);
        deps.commands_listener = Some(grpc);
        self.commands_urls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(commands_url);
        let stop = self.services.shutdown();
        self.services.spawn(
            "gateway-ws",
            phirepass_gateway_ws::serve(config, listener, deps, stop),
        );
        Ok(addr)
    }

    /// An ssh-edge config wired to this deployment's services, certificate, prefix and audit
    /// subject.
    pub fn ssh_edge_config(
        &self,
        host_key: phirepass_ssh_edge::HostKeySource,
    ) -> anyhow::Result<phirepass_ssh_edge::SshEdgeConfig> {
        let mut config = phirepass_ssh_edge::SshEdgeConfig::local(
            self.authz_url()?.to_owned(),
            self.secrets_url()?.to_owned(),
            self.registry_url()?.to_owned(),
            self.identity(ServiceKind::SshEdge)?,
            host_key,
        );
        config.subject_prefix = self.prefix.clone();
        config.audit_subject = self.audit_subject();
        Ok(config)
    }

    /// Starts an ssh-edge on `ssh` (its health endpoint on a free loopback port);
    /// `config.ssh_addr` is set to the listener's address.
    pub async fn start_ssh_edge(
        &self,
        ssh: TcpListener,
        mut config: phirepass_ssh_edge::SshEdgeConfig,
        deps: phirepass_ssh_edge::SshEdgeDeps,
    ) -> anyhow::Result<SocketAddr> {
        let addr = ssh.local_addr()?;
        config.ssh_addr = addr;
        *self.ssh_edge_addr.lock().unwrap_or_else(|e| e.into_inner()) = Some(addr);
        let listeners = phirepass_ssh_edge::SshEdgeListeners {
            health: loopback().await?,
            ssh,
        };
        let stop = self.services.shutdown();
        self.services.spawn(
            "ssh-edge",
            phirepass_ssh_edge::serve(config, listeners, deps, stop),
        );
        Ok(addr)
    }

    /// Runs until `signal` resolves or a service fails, then stops every
    /// service and waits for them (bounded).
    pub async fn run_until(self, signal: impl Future<Output = ()>) -> anyhow::Result<()> {
        self.services
            .run_until(signal)
            .await
            .map_err(|failure| anyhow::anyhow!("{failure}"))
    }
}

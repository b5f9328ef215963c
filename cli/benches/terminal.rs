#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `cargo bench -p phirepass --bench terminal`: the browser path against direct OpenSSH, measured
//! in one run. Figures go to docs/benchmarks.md.
//!
//! 1. bulk output: `cat` of 256 MiB through gateway A -> NATS -> gateway B -> agent -> sshd,
//!    vs `ssh -tt` straight to the same sshd with the same cipher (aes128-gcm);
//! 2. keystroke echo round trip, p50 and p99, both paths;
//! 3. memory per idle agent connection with 1,000 agents on one gateway process.
//!
//! Needs root (it creates the sshd test account), NATS, Redis and PostgreSQL on loopback.

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Backend, Cluster, NODE, start_agent, wait_node_listed};
use phirepass_gateway_ws::browser_protocol::{WebControl, WebFrame};
use phirepass_testkit::browser::{Browser, login};
use phirepass_testkit::sshd::{TEST_PASSWORD, TEST_USER, TestSshd};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

const BULK_BYTES: u64 = 256 * 1024 * 1024;
const KEYSTROKES: usize = 400;
const IDLE_AGENTS: usize = 1000;
const DONE: &str = "PP-BENCH-DONE";

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let cluster = Cluster::start(Backend::Real, 2).await;
    let (a, b) = (&cluster.gateways[0], &cluster.gateways[1]);
    cluster.add_user("alice", "alice-password").await;
    let (token, _) = cluster.node_token("alice", NODE).await;
    let sshd = TestSshd::start().await?;
    let _agent = start_agent(&b.addr, &token, sshd.addr);
    let session = login(&a.addr, "alice", "alice-password").await?;
    anyhow::ensure!(
        wait_node_listed(&a.addr, &session, NODE, true, Duration::from_secs(20)).await,
        "node offline"
    );
    let key = DirectSsh::setup(sshd.addr).await?;
    let file = bulk_file().await?;

    println!(
        "phirepass bench: {} MiB bulk, {KEYSTROKES} keystrokes, {IDLE_AGENTS} idle agents",
        BULK_BYTES >> 20
    );
    let mut browser = Browser::connect(&a.addr, &session).await?;
    browser.control(Duration::from_secs(10)).await?;
    let opened = browser
        .open_tunnel(NODE, TEST_USER, Some(TEST_PASSWORD))
        .await?;
    anyhow::ensure!(
        matches!(opened, WebControl::Ok { .. }),
        "open failed: {opened:?}"
    );

    let via = bulk_via_browser(&mut browser, &file).await?;
    let direct = key.bulk(&file).await?;
    println!(
        "bulk output   phirepass {:>8.1} MiB/s   direct ssh {:>8.1} MiB/s   ratio {:.2}x",
        mibs(via),
        mibs(direct),
        direct.as_secs_f64() / via.as_secs_f64()
    );

    let via = echo_via_browser(&mut browser).await?;
    let direct = key.echo().await?;
    let (vp50, vp99) = (pct(&via, 50), pct(&via, 99));
    let (dp50, dp99) = (pct(&direct, 50), pct(&direct, 99));
    println!(
        "keystroke rtt phirepass p50 {vp50:>6.3} ms p99 {vp99:>6.3} ms   direct ssh p50 {dp50:>6.3} ms p99 {dp99:>6.3} ms   p99 added {:+.3} ms",
        vp99 - dp99
    );

    let per_agent = idle_agent_memory(sshd.addr).await?;
    println!(
        "idle agents   {IDLE_AGENTS} on one gateway process: {:.1} KiB each",
        per_agent / 1024.0
    );
    let _ = tokio::fs::remove_file(&file).await;
    Ok(())
}

fn mibs(d: Duration) -> f64 {
    (BULK_BYTES as f64 / (1024.0 * 1024.0)) / d.as_secs_f64()
}

fn pct(samples: &[f64], p: usize) -> f64 {
    let mut s = samples.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    s[(s.len() * p / 100).min(s.len() - 1)]
}

/// Printable data (base64 lines), so the PTY passes it through unchanged apart from CRLF.
async fn bulk_file() -> anyhow::Result<String> {
    let path = "/tmp/phirepass-bench-bulk.txt".to_string();
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("head -c {} /dev/urandom | base64 -w 76 | head -c {BULK_BYTES} > {path} && chmod 644 {path}", BULK_BYTES * 3 / 4 + 4096))
        .status()
        .await?;
    anyhow::ensure!(status.success(), "could not create the bulk file");
    Ok(path)
}

async fn bulk_via_browser(browser: &mut Browser, file: &str) -> anyhow::Result<Duration> {
    browser.type_text("stty -echo\r").await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    drain(browser).await;
    let start = Instant::now();
    browser
        .type_text(&format!("cat {file}; echo {DONE}\r"))
        .await?;
    let mut tail = String::new();
    let mut received: u64 = 0;
    loop {
        match browser.recv(Duration::from_secs(120)).await? {
            Some(WebFrame::Ssh(data)) => {
                received += data.len() as u64;
                tail.push_str(&String::from_utf8_lossy(&data));
                if tail.contains(DONE) {
                    break;
                }
                let keep = tail.len().saturating_sub(64);
                let cut = (keep..=tail.len())
                    .find(|i| tail.is_char_boundary(*i))
                    .unwrap_or(0);
                tail.drain(..cut);
                browser.output.clear();
            }
            Some(_) => {}
            None => anyhow::bail!("terminal closed during bulk"),
        }
    }
    let elapsed = start.elapsed();
    anyhow::ensure!(received >= BULK_BYTES, "only {received} bytes arrived");
    browser.type_text("stty echo\r").await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    drain(browser).await;
    Ok(elapsed)
}

async fn drain(browser: &mut Browser) {
    while let Ok(Some(_)) = browser.recv(Duration::from_millis(200)).await {}
    browser.output.clear();
}

async fn echo_via_browser(browser: &mut Browser) -> anyhow::Result<Vec<f64>> {
    browser.type_text("cat\r").await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    drain(browser).await;
    let mut samples = Vec::with_capacity(KEYSTROKES);
    for i in 0..KEYSTROKES {
        let start = Instant::now();
        browser.type_text("k").await?;
        loop {
            match browser.recv(Duration::from_secs(10)).await? {
                Some(WebFrame::Ssh(data)) if data.contains(&b'k') => break,
                Some(_) => {}
                None => anyhow::bail!("terminal closed"),
            }
        }
        samples.push(start.elapsed().as_secs_f64() * 1000.0);
        if i % 50 == 49 {
            browser.type_text("\x15").await?; // kill the line so it never grows long
            drain(browser).await;
        }
    }
    browser.type_text("\x03").await?;
    drain(browser).await;
    Ok(samples)
}

/// OpenSSH's own client, key-authenticated, same sshd and cipher.
struct DirectSsh {
    addr: std::net::SocketAddr,
    key: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl DirectSsh {
    async fn setup(addr: std::net::SocketAddr) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let key = dir.path().join("id_ed25519");
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key)
            .status()
            .await?;
        let public = tokio::fs::read_to_string(key.with_extension("pub")).await?;
        let home = format!("/home/{TEST_USER}/.ssh");
        tokio::fs::create_dir_all(&home).await?;
        let mut keys = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(format!("{home}/authorized_keys"))
            .await?;
        keys.write_all(public.as_bytes()).await?;
        Ok(Self {
            addr,
            key,
            _dir: dir,
        })
    }

    fn ssh(&self, command: &str) -> Command {
        let mut cmd = Command::new("ssh");
        cmd.arg("-tt")
            .args([
                "-c",
                "aes128-gcm@openssh.com",
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
            ])
            .args(["-o", "LogLevel=ERROR", "-o", "BatchMode=yes", "-i"])
            .arg(&self.key)
            .args(["-p", &self.addr.port().to_string()])
            .arg(format!("{TEST_USER}@{}", self.addr.ip()))
            .arg(command)
            .kill_on_drop(true);
        cmd
    }

    async fn bulk(&self, file: &str) -> anyhow::Result<Duration> {
        let start = Instant::now();
        let mut child = self
            .ssh(&format!("cat {file}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let mut out = child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
        let mut buf = vec![0u8; 256 * 1024];
        let mut received = 0u64;
        loop {
            let n = out.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            received += n as u64;
        }
        let elapsed = start.elapsed();
        child.wait().await?;
        anyhow::ensure!(
            received >= BULK_BYTES,
            "direct ssh delivered only {received} bytes"
        );
        Ok(elapsed)
    }

    async fn echo(&self) -> anyhow::Result<Vec<f64>> {
        let mut child = self
            .ssh("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let mut stdin = child
            .stdin
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdin"))?;
        let mut out = child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let mut buf = [0u8; 4096];
        let mut samples = Vec::with_capacity(KEYSTROKES);
        for i in 0..KEYSTROKES {
            let start = Instant::now();
            stdin.write_all(b"k").await?;
            stdin.flush().await?;
            loop {
                let n = tokio::time::timeout(Duration::from_secs(10), out.read(&mut buf)).await??;
                anyhow::ensure!(n > 0, "ssh closed");
                if buf[..n].contains(&b'k') {
                    break;
                }
            }
            samples.push(start.elapsed().as_secs_f64() * 1000.0);
            if i % 50 == 49 {
                stdin.write_all(b"\x15").await?;
                tokio::time::sleep(Duration::from_millis(50)).await;
                while let Ok(Ok(n)) =
                    tokio::time::timeout(Duration::from_millis(100), out.read(&mut buf)).await
                {
                    if n == 0 {
                        break;
                    }
                }
            }
        }
        let _ = child.kill().await;
        Ok(samples)
    }
}

/// One `phirepass dev` process (embedded defaults) holds 1,000 agents run by this process;
/// the growth of its resident memory, divided by 1,000, is the cost of an idle agent.
async fn idle_agent_memory(ssh: std::net::SocketAddr) -> anyhow::Result<f64> {
    let data = tempfile::tempdir()?;
    let mut dev = Command::new(env!("CARGO_BIN_EXE_phirepass"))
        .args(["dev", "--port", "0"])
        .env("PHIREPASS_DATA_DIR", data.path())
        .env("RUST_LOG", "warn")
        .env_remove("NATS_URL")
        .env_remove("REDIS_URL")
        .env_remove("DATABASE_URL")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let pid = dev.id().ok_or_else(|| anyhow::anyhow!("no pid"))?;
    let mut stdout = tokio::io::BufReader::new(
        dev.stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdout"))?,
    );
    let gateway = loop {
        use tokio::io::AsyncBufReadExt;
        let mut line = String::new();
        anyhow::ensure!(
            stdout.read_line(&mut line).await? > 0,
            "phirepass dev exited"
        );
        if let Some(url) = line.trim().strip_prefix("ready: gateway=http://") {
            break url.to_string();
        }
    };
    let endpoints: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data.path().join("dev.json"))?)?;
    // dev's operator API token, over TLS verified against dev's CA.
    let token = std::fs::read_to_string(data.path().join("operator.token"))?;
    let trust = phirepass_pki::read_certs(&data.path().join("pki").join("trust.crt"))?;
    let authz = phirepass_proto::authz::authz_client::AuthzClient::new(
        phirepass_runtime::grpc::admin_channel(
            endpoints["authz_url"].as_str().unwrap_or_default(),
            &trust,
            phirepass_pki::ServiceKind::Authz,
            token.trim(),
        )?,
    );
    let mut authz = authz;
    authz
        .create_user(phirepass_proto::authz::CreateUserRequest {
            username: "fleet".into(),
            password: "fleet-password".into(),
        })
        .await?;
    let mut tokens = Vec::with_capacity(IDLE_AGENTS);
    for i in 0..IDLE_AGENTS {
        let r = authz
            .create_node_token(phirepass_proto::authz::CreateNodeTokenRequest {
                username: "fleet".into(),
                node_name: format!("idle-{i}"),
                expires_in_secs: None,
                rotate: false,
            })
            .await?
            .into_inner();
        tokens.push(r.token);
    }
    // Let the process settle after token creation before the baseline.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = phirepass_testkit::rss_bytes(&pid.to_string());
    let agents: Vec<_> = tokens
        .iter()
        .map(|t| start_agent(&gateway, t, ssh))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let stats = phirepass_testkit::browser::http(&gateway, "GET", "/stats", &[], "").await?;
        let json: serde_json::Value = serde_json::from_str(&stats.body)?;
        if json["local"]["nodes"].as_u64() == Some(IDLE_AGENTS as u64) {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "agents did not all connect: {}",
            stats.body
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = phirepass_testkit::rss_bytes(&pid.to_string());
    drop(agents);
    let _ = dev.kill().await;
    Ok(after.saturating_sub(before) as f64 / IDLE_AGENTS as f64)
}

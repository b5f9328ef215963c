#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `cargo bench -p phirepass --bench tunnels`: one local HTTP server reached four ways, in one
//! run: direct, through a Phirepass `ssh -R` tunnel (OpenSSH client -> ssh-edge -> NATS ->
//! gateway-ws HTTP proxy, `Host: bench.tunnel.localhost`), through sandhole, and through
//! OpenSSH `ssh -R` (wrk hits the port sshd listens on). For each: `wrk -t2 -c64 -d10s`
//! requests per second and p99 latency, then the throughput of a 1 GiB download (curl).
//!
//! Target: Phirepass >= 1.0x sandhole on requests per second and throughput. Needs root (sshd
//! test account), NATS, Redis and PostgreSQL on loopback, `wrk`, `curl` and sandhole at
//! `/opt/sandhole/bin/sandhole` (or `SANDHOLE_BIN`). Every ssh client uses the same key and
//! cipher (aes256-gcm@openssh.com: sandhole offers no aes128-gcm).

#[path = "../tests/common/mod.rs"]
mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use common::*;
use phirepass_testkit::sshd::{TEST_USER, TestSshd};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};

const CONNECTIONS: u32 = 64;
const WRK_SECS: u32 = 10;
const DOWNLOAD: u64 = 1 << 30;
const TUNNEL_NAME: &str = "bench";
/// Upper bound for any one step (setup, readiness, wrk, download).
const STEP: Duration = Duration::from_secs(300);
const READY: Duration = Duration::from_secs(30);
const SMALL_BODY: &[u8] = b"hello from the phirepass tunnel bench\n";
static ZEROS: [u8; 1 << 20] = [0; 1 << 20];

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run())
}

async fn within<T>(
    what: &str,
    limit: Duration,
    f: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    tokio::time::timeout(limit, f)
        .await
        .with_context(|| format!("{what}: no answer within {limit:?}"))?
}

// ---- the local HTTP server: its own runtime, so the in-process services do not starve it ----

fn start_server() -> anyhow::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    std::thread::spawn(move || {
        rt.block_on(async move {
            let listener = TcpListener::from_std(listener).expect("listener");
            while let Ok((socket, _)) = listener.accept().await {
                let _ = socket.set_nodelay(true);
                tokio::spawn(serve_http(socket));
            }
        })
    });
    Ok(addr)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// HTTP/1.1 keep-alive: `/1g` streams 1 GiB of zeros from one static buffer, anything else
/// answers a small body. Request bodies are read and dropped.
async fn serve_http(mut s: TcpStream) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(16 * 1024);
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i + 4;
            }
            if buf.len() > 64 * 1024 {
                return Ok(());
            }
            let n = s.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let big = head.split_whitespace().nth(1) == Some("/1g");
        let close = head.contains("\r\nconnection: close");
        let mut body: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        buf.drain(..end);
        let buffered = body.min(buf.len());
        buf.drain(..buffered);
        body -= buffered;
        while body > 0 {
            let n = s.read(&mut chunk[..body.min(16 * 1024)]).await?;
            if n == 0 {
                return Ok(());
            }
            body -= n;
        }
        let length = if big {
            DOWNLOAD
        } else {
            SMALL_BODY.len() as u64
        };
        let connection = if close { "Connection: close\r\n" } else { "" };
        let header = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {length}\r\n{connection}\r\n"
        );
        if big {
            s.write_all(header.as_bytes()).await?;
            for _ in 0..(DOWNLOAD >> 20) {
                s.write_all(&ZEROS).await?;
            }
        } else {
            s.write_all(&[header.as_bytes(), SMALL_BODY].concat())
                .await?;
        }
        if close {
            return Ok(());
        }
    }
}

// ---- measuring one path ----

/// Where a path is reached: a URL base (`http://127.0.0.1:port`) and the Host header to send.
struct Endpoint {
    base: String,
    host: String,
}

struct Figures {
    rps: f64,
    p99_ms: f64,
    /// wrk's non-2xx/3xx responses and socket errors (should be 0).
    errors: u64,
    mib_s: f64,
}

/// `curl` GET; returns (status, bytes, bytes per second).
async fn curl(ep: &Endpoint, path: &str, limit: Duration) -> anyhow::Result<(u16, u64, f64)> {
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "--max-time"])
        .arg(limit.as_secs().to_string())
        .args([
            "-w",
            "%{http_code} %{size_download} %{speed_download}",
            "-H",
        ])
        .arg(format!("Host: {}", ep.host))
        .arg(format!("{}{path}", ep.base))
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .context("running curl")?;
    let text = text(&out.stdout);
    let mut parts = text.split_whitespace();
    let mut next = || parts.next().unwrap_or("0");
    let status = next().parse().unwrap_or(0);
    let size = next().parse().unwrap_or(0);
    let speed = next().parse().unwrap_or(0.0);
    Ok((status, size, speed))
}

/// Polls `GET /` until it answers 200 (the warm-up request); `child` must stay alive meanwhile.
async fn wait_ready(ep: &Endpoint, mut child: Option<&mut Child>) -> anyhow::Result<()> {
    let deadline = Instant::now() + READY;
    let mut last = 0;
    while Instant::now() < deadline {
        if let Some(c) = child.as_deref_mut()
            && let Some(status) = c.try_wait()?
        {
            bail!("the tunnel client exited early ({status})");
        }
        let (status, _, _) = curl(ep, "/", Duration::from_secs(5)).await?;
        if status == 200 {
            return Ok(());
        }
        last = status;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!(
        "{}/ with Host {} never answered 200 (last status {last})",
        ep.base,
        ep.host
    )
}

/// Parses wrk's `99%  1.23ms` into milliseconds.
fn wrk_time_ms(v: &str) -> Option<f64> {
    let split = v.find(|c: char| c.is_ascii_alphabetic())?;
    let (n, unit) = v.split_at(split);
    let n: f64 = n.parse().ok()?;
    Some(match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        _ => return None,
    })
}

fn parse_wrk(out: &str) -> anyhow::Result<(f64, f64, u64)> {
    let mut rps = None;
    let mut p99 = None;
    let mut errors = 0u64;
    for line in out.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("Requests/sec:") {
            rps = v.trim().parse().ok();
        } else if let Some(v) = line.strip_prefix("99%") {
            p99 = wrk_time_ms(v.trim());
        } else if let Some(v) = line.strip_prefix("Non-2xx or 3xx responses:") {
            errors += v.trim().parse::<u64>().unwrap_or(0);
        } else if let Some(v) = line.strip_prefix("Socket errors:") {
            // "connect 0, read 0, write 0, timeout 0"
            errors += v
                .split(',')
                .filter_map(|p| p.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum::<u64>();
        }
    }
    match (rps, p99) {
        (Some(rps), Some(p99)) => Ok((rps, p99, errors)),
        _ => bail!("could not parse wrk output:\n{out}"),
    }
}

async fn measure(label: &str, ep: &Endpoint) -> anyhow::Result<Figures> {
    let out = within("wrk", STEP, async {
        Ok(Command::new("wrk")
            .args([
                "-t2",
                &format!("-c{CONNECTIONS}"),
                &format!("-d{WRK_SECS}s"),
            ])
            .args(["--latency", "-H", &format!("Host: {}", ep.host)])
            .arg(format!("{}/", ep.base))
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output()
            .await?)
    })
    .await?;
    anyhow::ensure!(out.status.success(), "wrk failed: {}", text(&out.stderr));
    let (rps, p99_ms, errors) = parse_wrk(&text(&out.stdout))?;
    let started = Instant::now();
    let (status, size, speed) = within("download", STEP, curl(ep, "/1g", STEP)).await?;
    let wall = started.elapsed();
    anyhow::ensure!(
        status == 200 && size == DOWNLOAD,
        "{label}: 1 GiB download got status {status}, {size} bytes after {wall:?}"
    );
    let mib_s = speed / f64::from(1u32 << 20);
    println!(
        "  {label:<22} {rps:>10.0} req/s   p99 {p99_ms:>8.2} ms   {mib_s:>8.1} MiB/s   errors {errors}"
    );
    Ok(Figures {
        rps,
        p99_ms,
        errors,
        mib_s,
    })
}

// ---- the tunnels ----

/// A free loopback port for programs that bind their own listeners (sshd's remote forward,
/// sandhole): bound, read and released, so a tiny race is possible.
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// sandhole offers no aes128-gcm, so every tunnel client uses this cipher.
const CIPHER: &str = "aes256-gcm@openssh.com";

/// `ssh -N -R spec login@127.0.0.1 -p port`, stderr to `log` (kept for failure reports).
fn ssh_forward(client: &SshClient, login: &str, spec: &str, log: &Path) -> anyhow::Result<Child> {
    let options = client.options().into_iter().map(|o| {
        if o.starts_with("Ciphers=") {
            format!("Ciphers={CIPHER}")
        } else {
            o
        }
    });
    let mut c = client.command("ssh");
    c.args(options)
        .args(["-p", &client.port.to_string(), "-N"])
        .args([
            "-o",
            "ExitOnForwardFailure=yes",
            "-o",
            "ServerAliveInterval=15",
        ])
        .args(["-R", spec])
        .arg(format!("{login}@127.0.0.1"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log)?);
    Ok(c.spawn()?)
}

async fn stop(mut child: Child) {
    let _ = child.start_kill();
    let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
}

/// Measures `ep` once `child` (the tunnel client) serves it; the client's log on failure.
async fn through(
    label: &str,
    ep: &Endpoint,
    mut child: Child,
    log: &Path,
) -> anyhow::Result<Figures> {
    let result = match wait_ready(ep, Some(&mut child)).await {
        Ok(()) => measure(label, ep).await,
        Err(e) => Err(e),
    };
    stop(child).await;
    result.map_err(|e| {
        let log = std::fs::read_to_string(log).unwrap_or_default();
        e.context(format!("ssh client log: {}", log.trim()))
    })
}

async fn phirepass(
    server: SocketAddr,
    key: &Path,
    public: &str,
    dir: &Path,
) -> anyhow::Result<Figures> {
    use phirepass_proto::authz::AddUserKeyRequest;
    let cluster = Cluster::start_with(Backend::Real, 1, &[(ALICE, ALICE_PASSWORD)], |_| {}).await;
    cluster
        .authz()
        .add_user_key(AddUserKeyRequest {
            username: ALICE.into(),
            public_key: public.into(),
        })
        .await?;
    let edge = cluster
        .start_ssh_edge(&dir.join("edge_host_key"), |_| {})
        .await;
    let client = SshClient::with_key(edge.addr.port(), key);
    let log = dir.join("phirepass-ssh.log");
    let spec = format!("{TUNNEL_NAME}:80:127.0.0.1:{}", server.port());
    let child = ssh_forward(&client, ALICE, &spec, &log)?;
    let ep = Endpoint {
        base: format!("http://{}", cluster.gateways[0].addr),
        host: format!("{TUNNEL_NAME}.tunnel.localhost"),
    };
    through("phirepass ssh -R", &ep, child, &log).await
}

async fn openssh(
    server: SocketAddr,
    key: &Path,
    public: &str,
    dir: &Path,
) -> anyhow::Result<Figures> {
    let sshd = TestSshd::start().await?;
    let home = format!("/home/{TEST_USER}/.ssh");
    std::fs::create_dir_all(&home)?;
    let keys = format!("{home}/authorized_keys");
    if !std::fs::read_to_string(&keys)
        .unwrap_or_default()
        .contains(public)
    {
        tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&keys)
            .await?
            .write_all(format!("{public}\n").as_bytes())
            .await?;
    }
    let port = free_port()?;
    let client = SshClient::with_key(sshd.addr.port(), key);
    let log = dir.join("openssh-ssh.log");
    let spec = format!("127.0.0.1:{port}:127.0.0.1:{}", server.port());
    let child = ssh_forward(&client, TEST_USER, &spec, &log)?;
    let ep = Endpoint {
        base: format!("http://127.0.0.1:{port}"),
        host: format!("127.0.0.1:{port}"),
    };
    through("openssh ssh -R", &ep, child, &log).await
}

fn sandhole_bin() -> PathBuf {
    std::env::var_os("SANDHOLE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/sandhole/bin/sandhole"))
}

async fn sandhole(
    server: SocketAddr,
    key: &Path,
    public: &str,
    dir: &Path,
) -> anyhow::Result<Figures> {
    let bin = sandhole_bin();
    anyhow::ensure!(bin.exists(), "{} is not installed", bin.display());
    let root = dir.join("sandhole");
    std::fs::create_dir_all(root.join("user_keys"))?;
    std::fs::create_dir_all(root.join("admin_keys"))?;
    std::fs::create_dir_all(root.join("certificates"))?;
    std::fs::write(root.join("user_keys/bench.pub"), format!("{public}\n"))?;
    let (ssh_port, http_port, https_port) = (free_port()?, free_port()?, free_port()?);
    let domain = "sandhole.localhost";
    let d = |p: &str| root.join(p).display().to_string();
    let mut server_cmd = Command::new(&bin);
    server_cmd
        .args(["--domain", domain, "--listen-address", "127.0.0.1"])
        .args(["--user-keys-directory", &d("user_keys")])
        .args(["--admin-keys-directory", &d("admin_keys")])
        .args(["--certificates-directory", &d("certificates")])
        .args(["--private-key-file", &d("server_key")])
        .args(["--ssh-port", &ssh_port.to_string()])
        .args(["--http-port", &http_port.to_string()])
        .args(["--https-port", &https_port.to_string()])
        .args([
            "--disable-https",
            "--disable-http-logs",
            "--allow-requested-subdomains",
        ])
        // Its default (64) would equal wrk's connections exactly; do not let it cap the run.
        .args(["--max-simultaneous-connections-per-ip", "4096"])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(root.join("sandhole.log"))?)
        .stderr(std::fs::File::create(root.join("sandhole.err"))?)
        .kill_on_drop(true);
    let mut proc = server_cmd.spawn().context("starting sandhole")?;
    let up = within("sandhole start", READY, async {
        loop {
            if let Some(status) = proc.try_wait()? {
                let err = std::fs::read_to_string(root.join("sandhole.err")).unwrap_or_default();
                bail!("sandhole exited ({status}): {}", err.trim());
            }
            if TcpStream::connect(("127.0.0.1", ssh_port)).await.is_ok() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    let result = match up {
        Ok(()) => {
            let client = SshClient::with_key(ssh_port, key);
            let log = dir.join("sandhole-ssh.log");
            let spec = format!("{TUNNEL_NAME}:80:127.0.0.1:{}", server.port());
            let child = ssh_forward(&client, "bench", &spec, &log)?;
            let ep = Endpoint {
                base: format!("http://127.0.0.1:{http_port}"),
                host: format!("{TUNNEL_NAME}.{domain}"),
            };
            through("sandhole", &ep, child, &log).await
        }
        Err(e) => Err(e),
    };
    stop(proc).await;
    result
}

async fn run() -> anyhow::Result<()> {
    let server = start_server()?;
    let keys = tempfile::tempdir()?;
    let (key, public) = new_user_key(keys.path(), "bench");
    println!(
        "phirepass tunnels bench: wrk -t2 -c{CONNECTIONS} -d{WRK_SECS}s GET / ({} B body), then a {} MiB download (curl); ssh cipher {CIPHER}",
        SMALL_BODY.len(),
        DOWNLOAD >> 20
    );
    let direct = Endpoint {
        base: format!("http://{server}"),
        host: server.to_string(),
    };
    let mut results: Vec<(&str, anyhow::Result<Figures>)> = Vec::new();
    let first = match wait_ready(&direct, None).await {
        Ok(()) => measure("direct", &direct).await,
        Err(e) => Err(e),
    };
    results.push(("direct", first));
    let dir = keys.path();
    results.push((
        "phirepass ssh -R",
        phirepass(server, &key, &public, dir).await,
    ));
    results.push(("sandhole", sandhole(server, &key, &public, dir).await));
    results.push(("openssh ssh -R", openssh(server, &key, &public, dir).await));
    println!();
    println!(
        "  {:<22} {:>10} {:>10} {:>10} {:>7} {:>9} {:>9}",
        "path", "req/s", "p99 ms", "MiB/s", "errors", "req/s x", "MiB/s x"
    );
    let base = results
        .iter()
        .find(|(l, _)| *l == "sandhole")
        .and_then(|(_, r)| r.as_ref().ok())
        .map(|f| (f.rps, f.mib_s));
    for (label, r) in &results {
        match r {
            Ok(f) => {
                let (rx, tx) = base
                    .map(|(rps, mib)| {
                        (
                            format!("{:.2}", f.rps / rps),
                            format!("{:.2}", f.mib_s / mib),
                        )
                    })
                    .unwrap_or(("-".into(), "-".into()));
                println!(
                    "  {label:<22} {:>10.0} {:>10.2} {:>10.1} {:>7} {rx:>9} {tx:>9}",
                    f.rps, f.p99_ms, f.mib_s, f.errors
                );
            }
            Err(e) => println!("  {label:<22} FAILED: {e:#}"),
        }
    }
    println!("  (x = ratio vs sandhole; target for phirepass ssh -R: >= 1.0 on both)");
    if results.iter().any(|(_, r)| r.is_err()) {
        bail!("some paths failed (see above)");
    }
    Ok(())
}

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

#[path = "../../tests/common/mod.rs"]
mod common;
mod http_load;
mod peers;

use http_load::*;
use peers::*;

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
        through_phirepass(server, &key, &public, dir).await,
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

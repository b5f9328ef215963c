#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `cargo bench -p phirepass --bench ssh_edge`: the SSH edge against OpenSSH, in one run, same
//! cipher (aes128-gcm@openssh.com), same sshd target:
//!
//! 1. throughput: `head -c 1GiB /dev/zero | ssh X 'cat > /dev/null'` for X = ssh-edge -> direct
//!    host, ssh-edge -> agent node (NATS), OpenSSH `ssh -J` through a second sshd, direct ssh;
//! 2. setup: median wall time of `ssh X true` (5 runs) for each.
//!
//! Targets: relay throughput >= 1.0x `ssh -J`; setup <= 1.5x `ssh -J`. Needs root (sshd test
//! account), NATS, Redis and PostgreSQL on loopback.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::*;
use phirepass_testkit::sshd::{TEST_USER, TestSshd};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

const BYTES: u64 = 1 << 30;
const SETUP_RUNS: usize = 5;

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run())
}

/// Writes an ssh_config with one Host per path; all use the same key and cipher.
fn config(
    dir: &std::path::Path,
    key: &std::path::Path,
    f: &EdgeFixture,
    jump: &TestSshd,
) -> std::path::PathBuf {
    let target = f.host_sshd.addr;
    let edge = f.edge.addr.port();
    let text = format!(
        "Host direct\n  HostName 127.0.0.1\n  Port {tp}\n  User {TEST_USER}\n\
         Host jump\n  HostName 127.0.0.1\n  Port {jp}\n  User {TEST_USER}\n\
         Host via-jump\n  HostName 127.0.0.1\n  Port {tp}\n  User {TEST_USER}\n  ProxyJump jump\n\
         Host edge-host\n  HostName 127.0.0.1\n  Port {edge}\n  User {ALICE}:{HOST}\n\
         Host edge-node\n  HostName 127.0.0.1\n  Port {edge}\n  User {ALICE}:{AGENT_NODE}\n\
         Host *\n  IdentityFile {key}\n  IdentitiesOnly yes\n  BatchMode yes\n  UserKnownHostsFile /dev/null\n\
         \x20 StrictHostKeyChecking no\n  LogLevel ERROR\n  Ciphers aes128-gcm@openssh.com\n",
        tp = target.port(),
        jp = jump.addr.port(),
        key = key.display(),
    );
    let path = dir.join("ssh_config");
    std::fs::write(&path, text).unwrap();
    path
}

async fn ssh(cfg: &std::path::Path, host: &str, command: &str) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let status = Command::new("ssh")
        .arg("-F")
        .arg(cfg)
        .args([host, command])
        .stdin(std::process::Stdio::null())
        .status()
        .await?;
    anyhow::ensure!(status.success(), "ssh {host} {command} failed");
    Ok(started.elapsed())
}

async fn throughput(cfg: &std::path::Path, host: &str) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut child = Command::new("ssh")
        .arg("-F")
        .arg(cfg)
        .args([host, "cat > /dev/null"])
        .stdin(std::process::Stdio::piped())
        .spawn()?;
    let mut stdin = child.stdin.take().expect("stdin");
    let chunk = vec![0u8; 1 << 20];
    for _ in 0..(BYTES >> 20) {
        stdin.write_all(&chunk).await?;
    }
    drop(stdin);
    anyhow::ensure!(child.wait().await?.success(), "bulk copy to {host} failed");
    Ok(BYTES as f64 / started.elapsed().as_secs_f64() / (1 << 20) as f64)
}

async fn setup(cfg: &std::path::Path, host: &str) -> anyhow::Result<Duration> {
    let mut runs = Vec::new();
    for _ in 0..SETUP_RUNS {
        runs.push(ssh(cfg, host, "true").await?);
    }
    runs.sort();
    Ok(runs[SETUP_RUNS / 2])
}

async fn run() -> anyhow::Result<()> {
    let f = EdgeFixture::start(|_| {}).await;
    let jump = TestSshd::start().await?;
    // One key for everything: alice's edge key is also authorised for the sshd test account.
    let public = std::fs::read_to_string(f.alice_key.with_extension("pub"))?;
    let home = format!("/home/{TEST_USER}/.ssh");
    std::fs::create_dir_all(&home)?;
    tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(format!("{home}/authorized_keys"))
        .await?
        .write_all(public.as_bytes())
        .await?;
    let dir = tempfile::tempdir()?;
    let cfg = config(dir.path(), &f.alice_key, &f, &jump);
    // Pin the targets' host keys (first use) outside the measurements.
    for host in ["direct", "via-jump", "edge-host", "edge-node"] {
        ssh(&cfg, host, "true").await?;
    }
    println!(
        "phirepass ssh-edge bench: {} MiB, aes128-gcm@openssh.com, setup = median of {SETUP_RUNS}",
        BYTES >> 20
    );
    let paths = [
        ("ssh-edge -> direct host", "edge-host"),
        ("ssh-edge -> agent node", "edge-node"),
        ("ssh -J (OpenSSH bastion)", "via-jump"),
        ("direct ssh", "direct"),
    ];
    // `SSH_EDGE_BENCH_ONLY=edge-node,via-jump` measures a subset (the ratios need `via-jump`).
    let only = std::env::var("SSH_EDGE_BENCH_ONLY").ok();
    let wanted = |host: &str| {
        only.as_deref()
            .is_none_or(|o| o.split(',').any(|h| h == host))
    };
    let mut results = Vec::new();
    for (label, host) in paths.into_iter().filter(|(_, host)| wanted(host)) {
        let mib_s = throughput(&cfg, host).await?;
        let setup = setup(&cfg, host).await?;
        println!(
            "  {label:<26} {mib_s:>8.1} MiB/s   setup {:>6.1} ms",
            setup.as_secs_f64() * 1000.0
        );
        results.push((label, mib_s, setup));
    }
    let Some(&(_, jump_mib, jump_setup)) = results.iter().find(|r| r.0 == paths[2].0) else {
        return Ok(());
    };
    for (label, mib_s, setup) in results.iter().filter(|r| r.0.starts_with("ssh-edge")) {
        println!(
            "  {label}: throughput {:.2}x ssh -J (target >= 1.0), setup {:.2}x ssh -J (target <= 1.5)",
            mib_s / jump_mib,
            setup.as_secs_f64() / jump_setup.as_secs_f64()
        );
    }
    Ok(())
}

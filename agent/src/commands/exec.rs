//! Runs a checked command: `execve` of the declared program with its argv (no shell), an
//! empty environment but a fixed PATH and LANG, cwd `/`, stdin from /dev/null, its own process
//! group (killed whole on timeout or cancel), stdout and stderr read concurrently, counted in
//! full and kept up to the output limit.

use std::future::Future;
use std::os::unix::process::ExitStatusExt as _;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use phirepass_tunnel::command::{Record, RunResult};
use tokio::io::{AsyncRead, AsyncReadExt as _};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::Prepared;

/// The environment every command gets (nothing of the agent's leaks in).
pub const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
pub const LANG: &str = "C.UTF-8";
const READ_CHUNK: usize = 16 * 1024;

/// What one output pipe produced so far (shared, so an abandoned reader still reports).
#[derive(Debug, Default)]
struct Counted {
    total: AtomicU64,
    truncated: AtomicBool,
}

/// How long pipes may stay open after the group was killed (a process that left the group
/// with `setsid` can hold them): then they are abandoned.
const PIPE_GRACE: Duration = Duration::from_secs(2);

/// Runs `prepared`, sending output records to `out` as they come (the final `Done` is the
/// caller's: it gets the result). `cancel` resolving kills the process group.
pub async fn run(
    prepared: &Prepared,
    out: mpsc::Sender<Record>,
    cancel: impl Future<Output = ()>,
) -> RunResult {
    let started = Instant::now();
    let mut command = tokio::process::Command::new(&prepared.program);
    command
        .args(&prepared.argv)
        .env_clear()
        .env("PATH", PATH)
        .env("LANG", LANG)
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(user) = &prepared.run_as {
        // std also drops the agent's supplementary groups when it sets the uid.
        command.uid(user.uid).gid(user.gid);
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            return RunResult {
                error: Some(format!("cannot start {}: {e}", prepared.program.display())),
                duration_ms: elapsed_ms(started),
                ..RunResult::default()
            };
        }
    };
    let pgid = child.id();
    let limit = prepared.output_limit;
    let (out_count, err_count) = (Arc::new(Counted::default()), Arc::new(Counted::default()));
    let mut readers = tokio::task::JoinSet::new();
    if let Some(pipe) = child.stdout.take() {
        readers.spawn(drain(pipe, limit, out.clone(), false, out_count.clone()));
    }
    if let Some(pipe) = child.stderr.take() {
        readers.spawn(drain(pipe, limit, out.clone(), true, err_count.clone()));
    }
    drop(out);

    let deadline = started + prepared.timeout;
    let mut stop: Option<Stop> = None;
    tokio::pin!(cancel);
    let status: Option<ExitStatus> = tokio::select! {
        status = child.wait() => status.ok(),
        () = tokio::time::sleep_until(deadline) => {
            stop = Some(Stop::TimedOut);
            kill_group(pgid);
            child.wait().await.ok()
        }
        () = &mut cancel => {
            stop = Some(Stop::Cancelled);
            kill_group(pgid);
            child.wait().await.ok()
        }
    };
    // Output ends when every process of the group has let go of the pipes: one left behind
    // holding them is killed with the group at the deadline (or on cancel).
    if stop.is_none() {
        tokio::select! {
            () = join_all(&mut readers) => {}
            () = tokio::time::sleep_until(deadline) => {
                stop = Some(Stop::TimedOut);
                kill_group(pgid);
            }
            () = &mut cancel => {
                stop = Some(Stop::Cancelled);
                kill_group(pgid);
            }
        }
    }
    let mut abandoned = false;
    if tokio::time::timeout(PIPE_GRACE, join_all(&mut readers))
        .await
        .is_err()
    {
        readers.abort_all();
        abandoned = true;
    }
    let error = match stop {
        Some(Stop::TimedOut) => Some(format!(
            "timed out after {} s: the command's process group was killed",
            prepared.timeout.as_secs()
        )),
        Some(Stop::Cancelled) => {
            Some("cancelled by the caller: the command's process group was killed".to_owned())
        }
        None => None,
    };
    let error = match (error, abandoned) {
        (error, false) => error,
        (error, true) => Some(format!(
            "{}output pipes still held by a process outside the command's group were abandoned",
            error.map(|e| format!("{e}; ")).unwrap_or_default()
        )),
    };
    RunResult {
        exit_code: status.and_then(|s| s.code()),
        signal: status.and_then(|s| s.signal()),
        duration_ms: elapsed_ms(started),
        stdout_bytes: out_count.total.load(Ordering::Relaxed),
        stderr_bytes: err_count.total.load(Ordering::Relaxed),
        stdout_truncated: out_count.truncated.load(Ordering::Relaxed),
        stderr_truncated: err_count.truncated.load(Ordering::Relaxed),
        timed_out: stop == Some(Stop::TimedOut),
        error,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    TimedOut,
    Cancelled,
}

async fn join_all(readers: &mut tokio::task::JoinSet<()>) {
    while readers.join_next().await.is_some() {}
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// SIGKILL to the whole group (the leader is not reaped yet, so its pid still names the group).
fn kill_group(pgid: Option<u32>) {
    let pid = pgid
        .and_then(|p| i32::try_from(p).ok())
        .and_then(rustix::process::Pid::from_raw);
    if let Some(pid) = pid
        && let Err(error) = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL)
    {
        // ESRCH: everything already exited.
        tracing::debug!(%error, "kill of the command's process group");
    }
}

/// Reads a pipe to its end: every byte counted, the first `limit` sent on as records.
async fn drain(
    mut pipe: impl AsyncRead + Unpin,
    limit: u64,
    out: mpsc::Sender<Record>,
    stderr: bool,
    counted: Arc<Counted>,
) {
    let mut buf = vec![0u8; READ_CHUNK];
    let mut total = 0u64;
    let mut forwarding = true;
    loop {
        let n = match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let room = limit.saturating_sub(total);
        total = total.saturating_add(n as u64);
        counted.total.store(total, Ordering::Relaxed);
        let keep = usize::try_from(room).unwrap_or(usize::MAX).min(n);
        if keep < n {
            counted.truncated.store(true, Ordering::Relaxed);
        }
        // A caller that stopped listening still lets the program finish (its result counts).
        if keep > 0 && forwarding {
            for record in Record::output_chunks(stderr, Bytes::copy_from_slice(&buf[..keep])) {
                forwarding = forwarding && out.send(record).await.is_ok();
            }
        }
    }
}

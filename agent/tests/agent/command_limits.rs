//! Limits of a run: the timeout kills the whole process group, output past the limit is
//! counted but cut and flagged, the concurrency limit and the rate limit refuse clearly, and
//! a reset from the edge cancels the run.

use std::time::Duration;

use phirepass_tunnel::command::{Record, RecordDecoder};
use tokio::io::AsyncReadExt as _;

use crate::commands::{Host, accepted, audit, open, request, run_command};

/// Whether `pid` is gone (or a zombie nobody reaped yet: it no longer runs).
fn dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

async fn wait_dead(pid: u32) -> bool {
    for _ in 0..100 {
        if dead(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// The first stdout record of a running command.
async fn first_stdout(stream: &mut phirepass_tunnel::TunnelStream) -> String {
    let mut decoder = RecordDecoder::new();
    let mut buf = [0u8; 256];
    loop {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "the stream ended before any output");
        decoder.push(&buf[..n]);
        if let Some(Record::Stdout(bytes)) = decoder.next_record().unwrap() {
            return String::from_utf8(bytes.to_vec()).unwrap();
        }
    }
}

const TOML: &str = r#"
[limits]
max_concurrent = 1

[[command]]
name = "fork_and_sleep"
program = "{dir}/fork-and-sleep"
timeout = 1

[[command]]
name = "flood"
program = "{dir}/flood"
output_limit = 1000

[[command]]
name = "block"
program = "{dir}/block"
timeout = 60

[[command]]
name = "quick"
program = "{dir}/quick"
rate = "2/min"
"#;

fn scripts(host: &Host) {
    // The child sleeps in the background; the script waits for it.
    host.script("fork-and-sleep", "sleep 300 &\necho \"child $!\"\nwait");
    host.script("flood", "head -c 100000 /dev/zero\necho done >&2");
    host.script("block", "echo \"pid $$\"\nexec sleep 300");
    host.script("quick", "echo ok");
}

#[tokio::test]
async fn a_timeout_kills_the_whole_process_group() {
    let host = Host::new();
    scripts(&host);
    let (mut link, pinned) = host.agent(TOML).await;
    let ran = run_command(&mut link, open(&pinned, 1, request("fork_and_sleep", &[])))
        .await
        .unwrap();
    assert!(ran.result.timed_out, "{:?}", ran.result);
    assert_eq!(ran.result.exit_code, None);
    assert_eq!(ran.result.signal, Some(9));
    assert!(ran.result.error.unwrap().contains("timed out after 1 s"));
    assert!(ran.result.duration_ms >= 1000 && ran.result.duration_ms < 10_000);
    let out = String::from_utf8(ran.stdout).unwrap();
    let child: u32 = out.trim().strip_prefix("child ").unwrap().parse().unwrap();
    assert!(
        wait_dead(child).await,
        "the forked child {child} survived the timeout"
    );
}

#[tokio::test]
async fn output_over_the_limit_is_truncated_and_flagged() {
    let host = Host::new();
    scripts(&host);
    let (mut link, pinned) = host.agent(TOML).await;
    let ran = run_command(&mut link, open(&pinned, 1, request("flood", &[])))
        .await
        .unwrap();
    assert_eq!(ran.result.exit_code, Some(0));
    assert_eq!(ran.stdout.len(), 1000);
    assert_eq!(ran.result.stdout_bytes, 100_000, "every byte is counted");
    assert!(ran.result.stdout_truncated);
    assert_eq!(ran.stderr, b"done\n");
    assert!(!ran.result.stderr_truncated);
}

#[tokio::test]
async fn the_concurrency_limit_refuses_and_an_edge_reset_cancels_the_run() {
    let host = Host::new();
    scripts(&host);
    let (mut link, pinned) = host.agent(TOML).await;
    let id = accepted(&mut link, open(&pinned, 1, request("block", &[])))
        .await
        .unwrap();
    let mut stream = link.stream(id);
    // Its first output says the program runs (the slot is held since admission anyway).
    let text = first_stdout(&mut stream).await;
    let pid: u32 = text.trim().strip_prefix("pid ").unwrap().parse().unwrap();

    let error = accepted(&mut link, open(&pinned, 2, request("quick", &[])))
        .await
        .unwrap_err();
    assert!(
        error.starts_with("agent busy") && error.contains("max_concurrent = 1"),
        "{error}"
    );
    let refused = audit(&mut link, "command.refused", "corr-quick").await;
    assert_eq!(refused.reason.as_deref(), Some(error.as_str()));

    // The edge drops its stream: the agent kills the run and frees the slot.
    drop(stream);
    let finished = audit(&mut link, "command.finished", "corr-block").await;
    assert!(finished.reason.unwrap().contains("cancelled"));
    assert!(
        wait_dead(pid).await,
        "the cancelled program {pid} still runs"
    );
    let ran = run_command(&mut link, open(&pinned, 3, request("quick", &[])))
        .await
        .unwrap();
    assert_eq!(ran.stdout, b"ok\n");
}

#[tokio::test]
async fn the_rate_limit_refuses_clearly() {
    let host = Host::new();
    scripts(&host);
    let (mut link, pinned) = host.agent(TOML).await;
    for stream in 1..=2 {
        run_command(&mut link, open(&pinned, stream, request("quick", &[])))
            .await
            .unwrap();
    }
    let error = accepted(&mut link, open(&pinned, 3, request("quick", &[])))
        .await
        .unwrap_err();
    assert!(
        error.starts_with("rate limited")
            && error.contains("2/min")
            && error.contains("try again in"),
        "{error}"
    );
}

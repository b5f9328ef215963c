//! The SSH edge relays real OpenSSH clients (`ssh`, `scp`, `sftp`) to a direct host and to a
//! host behind an agent held by a gateway the edge never talked to (NATS + Redis + PostgreSQL).

use crate::common::*;
use serde_json::json;

fn sha256(path: &std::path::Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    text(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn echo_exit_status_and_accept_once_warning_on_both_kinds_of_target() {
    let f = EdgeFixture::start(|_| {}).await;
    let alice = f.alice();
    for target in [HOST, AGENT_NODE] {
        let login = format!("{ALICE}:{target}");
        let first = alice.ssh(&login, &["echo", "hello"]).await;
        assert_eq!(text(&first.stdout), "hello\n", "{}", text(&first.stderr));
        assert_eq!(first.status.code(), Some(0));
        let warning = text(&first.stderr);
        assert!(
            warning.contains("was not pinned; accepted it and pinned it now: ssh-ed25519 SHA256:"),
            "{warning}"
        );
        let again = alice.ssh(&login, &["uname", "-s"]).await;
        assert_eq!(text(&again.stdout), "Linux\n");
        assert!(!text(&again.stderr).contains("pinned"), "warned only once");
        let exit = alice.ssh(&login, &["exit 3"]).await;
        assert_eq!(exit.status.code(), Some(3), "{}", text(&exit.stderr));
        let stdin_eof = alice.ssh(&login, &["cat; echo done"]).await;
        assert_eq!(text(&stdin_eof.stdout), "done\n", "EOF reaches the target");
    }
    let sessions = f.cluster.registry();
    // The edge records the close when the client's TCP connection ends, a moment after
    // the ssh process exits.
    let mut listed = Vec::new();
    for _ in 0..30 {
        listed = sessions
            .clone()
            .list_sessions(phirepass_proto::registry::ListSessionsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .sessions;
        if listed.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        listed.is_empty(),
        "closed sessions leave the registry: {listed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pty_shell_reports_its_size_after_a_resize_and_its_exit_code() {
    let f = EdgeFixture::start(|_| {}).await;
    let alice = f.alice();
    for target in [HOST, AGENT_NODE] {
        let steps = json!([
            ["send", "echo SIZE=$(stty size)=\r"],
            ["expect", "SIZE=24 80="],
            ["resize", 40, 100],
            ["send", "sleep 0.3; echo SIZE=$(stty size)=\r"],
            ["expect", "SIZE=40 100="],
            ["send", "exit 3\r"],
        ]);
        let out = drive_pty(&alice, &format!("{ALICE}:{target}"), steps).await;
        assert_eq!(
            out.status.code(),
            Some(3),
            "{target}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scp_100_mib_both_ways_keeps_the_sha256() {
    let f = EdgeFixture::start(|_| {}).await;
    let alice = f.alice();
    let dir = tempfile::tempdir().unwrap();
    let original = dir.path().join("random.bin");
    let ok = std::process::Command::new("head")
        .args(["-c", "104857600", "/dev/urandom"])
        .stdout(std::fs::File::create(&original).unwrap())
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let want = sha256(&original);
    for target in [HOST, AGENT_NODE] {
        let remote = format!("/tmp/pp-scp-{}", phirepass_testkit::unique(""));
        let login = format!("{ALICE}:{target}");
        let up = alice
            .scp(
                &login,
                &original.display().to_string(),
                &format!("127.0.0.1:{remote}"),
            )
            .await;
        assert!(up.status.success(), "{target} upload: {}", text(&up.stderr));
        let remote_sum = alice
            .ssh(&format!("{ALICE}:{target}"), &["sha256sum", &remote])
            .await;
        assert!(text(&remote_sum.stdout).starts_with(&want), "{target}");
        let back = dir.path().join(format!("back-{target}.bin"));
        let down = alice
            .scp(
                &login,
                &format!("127.0.0.1:{remote}"),
                &back.display().to_string(),
            )
            .await;
        assert!(
            down.status.success(),
            "{target} download: {}",
            text(&down.stderr)
        );
        assert_eq!(sha256(&back), want, "{target}");
        let _ = alice
            .ssh(&format!("{ALICE}:{target}"), &["rm", "-f", &remote])
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sftp_ls_put_get() {
    let f = EdgeFixture::start(|_| {}).await;
    let alice = f.alice();
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("note.txt");
    std::fs::write(&local, "sftp through phirepass\n").unwrap();
    for target in [HOST, AGENT_NODE] {
        let remote_dir = format!("/tmp/pp-sftp-{}", phirepass_testkit::unique(""));
        let fetched = dir.path().join(format!("fetched-{target}.txt"));
        let batch = format!(
            "mkdir {remote_dir}\ncd {remote_dir}\nput {}\nls -l\nget note.txt {}\nrm note.txt\nrmdir {remote_dir}\n",
            local.display(),
            fetched.display()
        );
        let out = alice.sftp(&format!("{ALICE}:{target}"), &batch).await;
        assert!(out.status.success(), "{target}: {}", text(&out.stderr));
        assert!(
            text(&out.stdout).contains("note.txt"),
            "{}",
            text(&out.stdout)
        );
        assert_eq!(
            std::fs::read_to_string(&fetched).unwrap(),
            "sftp through phirepass\n"
        );
    }
}

//! Where `phirepass dev` keeps its data, and `phirepass admin` finding it from any directory:
//! the real binaries, a fake HOME, and different working directories for each.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use crate::common::workspace_bin;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

const T: Duration = Duration::from_secs(30);

/// `phirepass` as a new user runs it: HOME is `home`, nothing of the test's own environment
/// says where the services or the data are.
fn phirepass(home: &Path, cwd: &Path) -> Command {
    let mut cmd = Command::new(workspace_bin("phirepass"));
    for var in [
        "NATS_URL",
        "REDIS_URL",
        "DATABASE_URL",
        "PHIREPASS_SERVICE_TOKEN",
        "PHIREPASS_TOKEN",
        "PHIREPASS_TOKEN_FILE",
        "PHIREPASS_DATA_DIR",
        "AUTHZ_URL",
        "SECRETS_URL",
        "REGISTRY_URL",
        "XDG_DATA_HOME",
        "XDG_CONFIG_HOME",
        "HOST",
        "PORT",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("HOME", home)
        .env("SSH_EDGE_ADDR", "127.0.0.1:0")
        .current_dir(cwd)
        .kill_on_drop(true);
    cmd
}

struct Dev {
    _child: Child,
    banner: Vec<String>,
    lines: Lines<BufReader<ChildStdout>>,
}

/// Starts `phirepass dev` and reads its banner up to the `ready: gateway=` line.
async fn start_dev(mut cmd: Command) -> Dev {
    let mut child = cmd
        .args(["dev", "--port", "0"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start phirepass dev");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let banner = tokio::time::timeout(T, async {
        let mut banner = Vec::new();
        while let Some(line) = lines.next_line().await.expect("read stdout") {
            let ready = line.starts_with("ready: gateway=");
            banner.push(line);
            if ready {
                return banner;
            }
        }
        panic!("phirepass dev exited before it was ready: {banner:#?}");
    })
    .await
    .expect("phirepass dev ready");
    Dev {
        _child: child,
        banner,
        lines,
    }
}

impl Dev {
    fn data_line(&self) -> &str {
        self.banner
            .iter()
            .find(|l| l.trim_start().starts_with("data:"))
            .expect("the banner names the data dir")
    }

    /// What dev prints in the next `window` (it keeps running).
    async fn output_for(&mut self, window: Duration) -> Vec<String> {
        let mut seen = Vec::new();
        let _ = tokio::time::timeout(window, async {
            while let Ok(Some(line)) = self.lines.next_line().await {
                seen.push(line);
            }
        })
        .await;
        seen
    }
}

async fn admin(home: &Path, cwd: &Path, args: &[&str]) -> Output {
    phirepass(home, cwd)
        .arg("admin")
        .args(args)
        .output()
        .await
        .expect("run phirepass admin")
}

fn dirs() -> (tempfile::TempDir, PathBuf, PathBuf, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let [home, here, elsewhere] = ["home", "project", "elsewhere"].map(|d| root.path().join(d));
    for dir in [&home, &here, &elsewhere] {
        std::fs::create_dir_all(dir).unwrap();
    }
    (root, home, here, elsewhere)
}

fn text(out: &Output) -> String {
    format!(
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_finds_dev_from_another_directory() {
    let (_root, home, here, elsewhere) = dirs();
    let dev = start_dev(phirepass(&home, &here)).await;
    let per_user = home.join(".local/share/phirepass");
    assert!(
        dev.data_line().contains(&per_user.display().to_string()),
        "{:#?}",
        dev.banner
    );
    assert!(per_user.join("dev.json").is_file());
    assert!(
        !here.join(".phirepass").exists(),
        "dev left data in its working directory"
    );

    let add = ["users", "add", "alice", "--password", "alice-password"];
    let out = admin(&home, &elsewhere, &add).await;
    assert!(out.status.success(), "{}", text(&out));
    let out = admin(&home, &home, &["users", "list"]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("alice"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_dir_override_wins_for_dev_and_admin() {
    let (root, home, here, elsewhere) = dirs();
    // Even a .phirepass of earlier versions in the working directory: the override wins.
    std::fs::create_dir(here.join(".phirepass")).unwrap();
    let chosen = root.path().join("chosen");
    let mut cmd = phirepass(&home, &here);
    cmd.env("PHIREPASS_DATA_DIR", &chosen);
    let dev = start_dev(cmd).await;
    assert!(
        dev.data_line().contains(&chosen.display().to_string()),
        "{:#?}",
        dev.banner
    );
    assert!(chosen.join("dev.json").is_file());
    assert!(!home.join(".local/share/phirepass").exists());
    assert!(
        std::fs::read_dir(here.join(".phirepass"))
            .unwrap()
            .next()
            .is_none()
    );

    // --data-dir (a global flag) and the variable both find it from elsewhere.
    let flag = [
        "groups",
        "add",
        "ops",
        "--data-dir",
        chosen.to_str().unwrap(),
    ];
    let out = admin(&home, &elsewhere, &flag).await;
    assert!(out.status.success(), "{}", text(&out));
    let mut cmd = phirepass(&home, &elsewhere);
    cmd.env("PHIREPASS_DATA_DIR", &chosen);
    let out = cmd
        .args(["admin", "groups", "list"])
        .output()
        .await
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("ops"),
        "{}",
        text(&out)
    );

    // Without it, admin looks in the per-user place, and says so and what to do.
    let out = admin(&home, &elsewhere, &["groups", "list"]).await;
    assert_eq!(out.status.code(), Some(6), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(".local/share/phirepass/dev.json"), "{err}");
    assert!(err.contains("--data-dir"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_stats_do_not_bury_the_banner_but_stay_at_debug() {
    let (_root, home, here, _) = dirs();
    let mut cmd = phirepass(&home, &here);
    cmd.env("STATS_REFRESH_INTERVAL", "1");
    let mut dev = start_dev(cmd).await;
    let after = dev.output_for(Duration::from_millis(3500)).await;
    assert!(
        !after.iter().any(|l| l.contains("gateway stats")),
        "an idle dev repeats its stats: {after:#?}"
    );

    // Operators still have every line at DEBUG.
    let mut cmd = phirepass(&home, &here);
    cmd.env("STATS_REFRESH_INTERVAL", "1")
        .env("RUST_LOG", "info,phirepass_gateway_ws=debug");
    let mut dev = start_dev(cmd).await;
    let after = dev.output_for(Duration::from_millis(3500)).await;
    assert!(
        after.iter().any(|l| l.contains("gateway stats")),
        "no stats line at DEBUG: {after:#?}"
    );
}

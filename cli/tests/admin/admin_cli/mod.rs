//! `phirepass admin` driven as an operator would: the real binary in a subprocess, answers to
//! prompts on stdin, against a test deployment served in-process on 127.0.0.1:0 (embedded
//! defaults: SQLite in memory, in-memory presence and audit log).

mod accounts;
mod hosts;
mod node_groups;
mod node_tokens;
mod token_sources;
mod tokens;
mod vault;

use std::path::Path;
use std::process::{Output, Stdio};

use crate::common::{Backend, Cluster};
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

pub struct Deployment {
    pub authz_url: String,
    pub secrets_url: String,
    /// The operator's admin API token ([`Cluster::operator_token`]).
    pub token: String,
    /// The CLI's data dir: it holds `pki/trust.crt`, so the CLI verifies the services.
    pub dir: tempfile::TempDir,
    _cluster: Cluster,
}

impl Deployment {
    pub async fn start() -> Self {
        let cluster = Cluster::start(Backend::Embedded, 0).await;
        let dir = tempfile::tempdir().unwrap();
        cluster.write_trust(dir.path());
        let d = Self {
            authz_url: cluster.authz_url.clone(),
            secrets_url: cluster.secrets_url.clone(),
            token: cluster.operator_token().await,
            dir,
            _cluster: cluster,
        };
        // Wait until both answer.
        for _ in 0..100 {
            let a = d.run(&["users", "list"], "").await;
            let s = d.run(&["credentials", "list"], "").await;
            if a.status.success() && s.status.success() {
                return d;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("services did not start");
    }

    /// `phirepass admin ARGS` with the operator's API token, `stdin` piped in.
    pub async fn run(&self, args: &[&str], stdin: &str) -> Output {
        self.run_with(args, stdin, Some(&self.token)).await
    }

    pub async fn run_with(&self, args: &[&str], stdin: &str, token: Option<&str>) -> Output {
        let env: Vec<(&str, &str)> = token.map(|t| ("PHIREPASS_TOKEN", t)).into_iter().collect();
        self.run_env(args, stdin, &env).await
    }

    /// `phirepass admin ARGS` with no credential but what `env` gives.
    pub async fn run_env(&self, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_phirepass"));
        cmd.arg("admin")
            .args(args)
            .env("AUTHZ_URL", &self.authz_url)
            .env("SECRETS_URL", &self.secrets_url)
            .env("PHIREPASS_DATA_DIR", self.dir.path())
            .env_remove("PHIREPASS_TOKEN")
            .env_remove("PHIREPASS_CA")
            .env_remove("PHIREPASS_TOKEN_FILE")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd.envs(env.iter().copied());
        let mut child = cmd.spawn().expect("spawn phirepass");
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.as_bytes()).await.unwrap();
        drop(input);
        child.wait_with_output().await.unwrap()
    }

    /// Runs and asserts success; returns stdout.
    pub async fn ok(&self, args: &[&str], stdin: &str) -> String {
        let out = self.run(args, stdin).await;
        assert!(
            out.status.success(),
            "{args:?} failed ({:?}): {}",
            out.status.code(),
            stderr(&out)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs with --json and parses stdout as one JSON document.
    pub async fn json(&self, args: &[&str], stdin: &str) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let text = self.ok(&all, stdin).await;
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: {e}: {text}"))
    }

    /// Runs and asserts the exit code; returns stderr.
    pub async fn fails(&self, args: &[&str], stdin: &str, code: i32) -> String {
        let out = self.run(args, stdin).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        // Prompts may come first; the error is the last line, and says only what went wrong.
        let last = err.lines().last().unwrap_or_default();
        assert!(last.starts_with("error: ") || code == 2, "{args:?}: {err}");
        err
    }
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

pub async fn keygen(dir: &Path, name: &str, passphrase: &str) -> (std::path::PathBuf, String) {
    let path = dir.join(name);
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-C", name, "-N", passphrase, "-f"])
        .arg(&path)
        .status()
        .await
        .unwrap();
    assert!(status.success());
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(path.with_extension("pub"))
        .output()
        .await
        .unwrap();
    let fp = String::from_utf8(out.stdout).unwrap();
    let fp = fp.split_whitespace().nth(1).unwrap().to_string();
    (path, fp)
}

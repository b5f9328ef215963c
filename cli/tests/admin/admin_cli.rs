#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `phirepass admin` driven as an operator would: the real binary in a subprocess, answers to
//! prompts on stdin, against authz and secrets served in-process on 127.0.0.1:0 (embedded
//! defaults: SQLite in memory, in-memory presence and audit log).

use std::path::Path;
use std::process::{Output, Stdio};

use phirepass_runtime::grpc::ServiceToken;
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::process::Command;
use tokio::sync::watch;

struct Deployment {
    authz_url: String,
    secrets_url: String,
    token: ServiceToken,
    dir: tempfile::TempDir,
    _stop: watch::Sender<bool>,
}

fn stopper(rx: &watch::Receiver<bool>) -> impl Future<Output = ()> + Send + 'static {
    let mut rx = rx.clone();
    async move {
        let _ = rx.wait_for(|s| *s).await;
    }
}

impl Deployment {
    async fn start() -> Self {
        let token = ServiceToken::generate();
        let (stop, rx) = watch::channel(false);
        let authz_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let secrets_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let authz_url = format!("http://{}", authz_listener.local_addr().unwrap());
        let secrets_url = format!("http://{}", secrets_listener.local_addr().unwrap());
        let presence = phirepass_presence::connect(None, "pp:").await.unwrap();
        let authz_store = phirepass_store::Store::memory_sqlite().await.unwrap();
        tokio::spawn(phirepass_authz::serve(
            phirepass_authz::AuthzConfig::new(token.clone()),
            authz_listener,
            phirepass_authz::AuthzDeps::new(authz_store, presence),
            stopper(&rx),
        ));
        let vault_store = phirepass_store::Store::memory_sqlite().await.unwrap();
        let key = phirepass_secrets::KeySource::Raw(phirepass_secrets::MasterKey::generate());
        tokio::spawn(phirepass_secrets::serve(
            phirepass_secrets::SecretsConfig::new(token.clone(), key),
            secrets_listener,
            phirepass_secrets::SecretsDeps::new(vault_store),
            stopper(&rx),
        ));
        let d = Self {
            authz_url,
            secrets_url,
            token,
            dir: tempfile::tempdir().unwrap(),
            _stop: stop,
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

    /// `phirepass admin ARGS` with the service token, `stdin` piped in.
    async fn run(&self, args: &[&str], stdin: &str) -> Output {
        self.run_with(args, stdin, Some(self.token.expose_secret()))
            .await
    }

    async fn run_with(&self, args: &[&str], stdin: &str, token: Option<&str>) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_phirepass"));
        cmd.arg("admin")
            .args(args)
            .env("AUTHZ_URL", &self.authz_url)
            .env("SECRETS_URL", &self.secrets_url)
            .env("PHIREPASS_DATA_DIR", self.dir.path())
            .env_remove("PHIREPASS_TOKEN")
            .env_remove("PHIREPASS_SERVICE_TOKEN")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(t) = token {
            cmd.env("PHIREPASS_SERVICE_TOKEN", t);
        }
        let mut child = cmd.spawn().expect("spawn phirepass");
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.as_bytes()).await.unwrap();
        drop(input);
        child.wait_with_output().await.unwrap()
    }

    /// Runs and asserts success; returns stdout.
    async fn ok(&self, args: &[&str], stdin: &str) -> String {
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
    async fn json(&self, args: &[&str], stdin: &str) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let text = self.ok(&all, stdin).await;
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: {e}: {text}"))
    }

    /// Runs and asserts the exit code; returns stderr.
    async fn fails(&self, args: &[&str], stdin: &str, code: i32) -> String {
        let out = self.run(args, stdin).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        // Prompts may come first; the error is the last line, and says only what went wrong.
        let last = err.lines().last().unwrap_or_default();
        assert!(last.starts_with("error: ") || code == 2, "{args:?}: {err}");
        err
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

async fn keygen(dir: &Path, name: &str, passphrase: &str) -> (std::path::PathBuf, String) {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_add_list_passwd_remove() {
    let d = Deployment::start().await;
    // No-echo prompt, asked twice (stdin is not a terminal here, so it is read line by line).
    let out = d
        .ok(&["users", "add", "alice"], "alice-pass-1\nalice-pass-1\n")
        .await;
    assert!(out.contains("user alice created"), "{out}");
    let err = d
        .fails(&["users", "add", "bob"], "one-pass-1\nother-pass\n", 2)
        .await;
    assert!(err.contains("do not match"), "{err}");
    // Scripts: --password-stdin; the lead's spelling --user ... --password still works.
    d.ok(
        &["users", "add", "bob", "--password-stdin"],
        "bob-pass-12\n",
    )
    .await;
    d.ok(
        &[
            "user",
            "add",
            "--user",
            "carol",
            "--password",
            "carol-pass-1",
        ],
        "",
    )
    .await;
    let err = d
        .fails(
            &["users", "add", "bob", "--password-stdin"],
            "x-pass-123",
            5,
        )
        .await;
    assert!(!err.contains("x-pass-123"), "{err}");

    let table = d.ok(&["users", "list"], "").await;
    let header = table.lines().next().unwrap();
    assert!(
        header.starts_with("USERNAME") && header.contains("STATUS"),
        "{table}"
    );
    assert!(
        table.contains("alice") && table.contains("carol"),
        "{table}"
    );
    let list = d.json(&["users", "list"], "").await;
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 3, "{list}");

    d.ok(
        &["users", "passwd", "alice"],
        "alice-pass-2\nalice-pass-2\n",
    )
    .await;
    d.ok(
        &["users", "passwd", "alice", "--password-stdin"],
        "alice-pass-3",
    )
    .await;
    d.fails(
        &["users", "passwd", "nobody", "--password-stdin"],
        "whatever-12",
        3,
    )
    .await;

    let v = d.json(&["users", "disable", "bob"], "").await;
    assert_eq!(v["disabled"], true);
    d.ok(&["users", "enable", "bob"], "").await;

    let v = d.json(&["users", "remove", "carol"], "").await;
    assert_eq!(v["removed"], "carol");
    d.fails(&["users", "remove", "carol"], "", 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_keys_add_list_remove() {
    let d = Deployment::start().await;
    d.ok(
        &["users", "add", "alice", "--password-stdin"],
        "alice-pass-1",
    )
    .await;
    let (k1, fp1) = keygen(d.dir.path(), "k1", "").await;
    let (k2, fp2) = keygen(d.dir.path(), "k2", "").await;
    let out = d
        .ok(
            &[
                "users",
                "keys",
                "add",
                "alice",
                k1.with_extension("pub").to_str().unwrap(),
            ],
            "",
        )
        .await;
    assert!(out.contains(&fp1), "{out}");
    let line = std::fs::read_to_string(k2.with_extension("pub")).unwrap();
    let v = d
        .json(&["users", "keys", "add", "alice", "--key", line.trim()], "")
        .await;
    assert_eq!(v[0]["fingerprint"], fp2.as_str());
    d.fails(
        &["users", "keys", "add", "alice", "--key", line.trim()],
        "",
        5,
    )
    .await;
    d.fails(
        &["users", "keys", "add", "nobody", "--key", line.trim()],
        "",
        3,
    )
    .await;
    d.fails(
        &["users", "keys", "add", "alice", "--key", "not a key"],
        "",
        2,
    )
    .await;

    let table = d.ok(&["users", "keys", "list", "alice"], "").await;
    assert!(table.starts_with("FINGERPRINT"), "{table}");
    assert!(table.contains(&fp1) && table.contains(&fp2), "{table}");
    d.ok(&["users", "keys", "remove", "alice", &fp1], "").await;
    let v = d.json(&["users", "keys", "list", "alice"], "").await;
    assert_eq!(v.as_array().unwrap().len(), 1, "{v}");
    d.fails(&["users", "keys", "remove", "alice", &fp1], "", 3)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_and_members() {
    let d = Deployment::start().await;
    d.ok(
        &["users", "add", "alice", "--password-stdin"],
        "alice-pass-1",
    )
    .await;
    d.ok(&["groups", "add", "ops"], "").await;
    d.fails(&["groups", "add", "ops"], "", 5).await;
    d.ok(&["groups", "members", "add", "ops", "alice"], "")
        .await;
    d.fails(&["groups", "members", "add", "ops", "nobody"], "", 3)
        .await;
    let table = d.ok(&["groups", "members", "list", "ops"], "").await;
    assert!(
        table.starts_with("USERNAME") && table.contains("alice"),
        "{table}"
    );
    let v = d.json(&["groups", "list"], "").await;
    assert_eq!(v[0]["name"], "ops");
    assert_eq!(v[0]["member_count"], 1);
    let table = d.ok(&["groups", "list"], "").await;
    assert!(
        table.starts_with("NAME") && table.contains("ops"),
        "{table}"
    );
    d.ok(&["groups", "members", "remove", "ops", "alice"], "")
        .await;
    d.fails(&["groups", "members", "remove", "ops", "alice"], "", 3)
        .await;
    d.ok(&["groups", "remove", "ops"], "").await;
    d.fails(&["groups", "members", "list", "ops"], "", 3).await;
    d.fails(&["groups", "remove", "ops"], "", 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_and_access() {
    let d = Deployment::start().await;
    d.ok(
        &["users", "add", "alice", "--password-stdin"],
        "alice-pass-1",
    )
    .await;
    d.ok(&["groups", "add", "ops"], "").await;
    let v = d
        .json(
            &[
                "hosts",
                "add",
                "10.0.0.5:22",
                "--name",
                "db-1",
                "--no-hostkey",
            ],
            "",
        )
        .await;
    assert_eq!(v["name"], "db-1");
    assert_eq!(v["port"], 22);
    d.fails(
        &[
            "hosts",
            "add",
            "10.0.0.6:22",
            "--name",
            "db-1",
            "--no-hostkey",
        ],
        "",
        5,
    )
    .await;
    d.fails(
        &["hosts", "add", "10.0.0.6", "--name", "db-2", "--no-hostkey"],
        "",
        2,
    )
    .await;
    let table = d.ok(&["hosts", "list"], "").await;
    assert!(
        table.starts_with("NAME") && table.contains("10.0.0.5:22"),
        "{table}"
    );

    d.ok(
        &["access", "grant", "--user", "alice", "--host", "db-1"],
        "",
    )
    .await;
    d.ok(&["access", "grant", "--group", "ops", "--host", "db-1"], "")
        .await;
    d.fails(
        &["access", "grant", "--user", "alice", "--host", "nope"],
        "",
        3,
    )
    .await;
    d.fails(
        &[
            "access", "grant", "--user", "alice", "--group", "ops", "--host", "db-1",
        ],
        "",
        2,
    )
    .await;
    let table = d.ok(&["access", "list", "--host", "db-1"], "").await;
    assert!(
        table.starts_with("TARGET") && table.contains("alice") && table.contains("ops"),
        "{table}"
    );
    let v = d.json(&["access", "list", "--group", "ops"], "").await;
    assert_eq!(v.as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v[0]["principal_kind"], "group");
    d.ok(
        &["access", "revoke", "--user", "alice", "--host", "db-1"],
        "",
    )
    .await;
    d.fails(
        &["access", "revoke", "--user", "alice", "--host", "db-1"],
        "",
        3,
    )
    .await;

    let v = d.json(&["hosts", "remove", "db-1"], "").await;
    assert_eq!(v["removed"], "db-1");
    d.fails(&["hosts", "remove", "db-1"], "", 3).await;
    d.fails(&["hosts", "refresh-hostkey", "db-1"], "", 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostkey_is_fetched_shown_and_pinned_on_yes() {
    let d = Deployment::start().await;
    let sshd = phirepass_testkit::sshd::TestSshd::start().await.unwrap();
    let addr = sshd.addr.to_string();
    // Answer "n": the key is shown but not stored.
    let out = d
        .run(&["hosts", "add", &addr, "--name", "real"], "n\n")
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("ssh-ed25519") && err.contains("SHA256:"),
        "{err}"
    );
    assert!(err.contains("store this host key? [y/N]"), "{err}");
    let options = d.json(&["options", "list", "real"], "").await;
    assert!(
        !options.to_string().contains("hostkey.openssh"),
        "{options}"
    );

    // refresh-hostkey, answering "y": stored as an OpenSSH line.
    let out = d.run(&["hosts", "refresh-hostkey", "real"], "y\n").await;
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(stdout.contains("stored"), "{stdout}");
    let fp = stdout
        .split_whitespace()
        .find(|w| w.starts_with("SHA256:"))
        .unwrap()
        .to_string();
    let options = d.json(&["options", "list", "real"], "").await;
    let pinned = options
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["key"] == "hostkey.openssh")
        .expect("hostkey.openssh stored");
    assert!(
        pinned["value"]
            .as_str()
            .unwrap()
            .starts_with("ssh-ed25519 AAAA"),
        "{pinned}"
    );

    // Again with --yes and --json: same key, reported unchanged.
    let out = d
        .run(&["--json", "hosts", "refresh-hostkey", "real", "--yes"], "")
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("unchanged"), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["hostkey"]["fingerprint"], fp.as_str());
    assert_eq!(v["hostkey"]["stored"], true);

    // An unreachable host: exit 6 (the host itself is added).
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = listener.local_addr().unwrap().to_string();
    drop(listener);
    d.fails(&["hosts", "add", &dead, "--name", "dead", "--yes"], "", 6)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_set_unset_list_never_show_secrets() {
    let d = Deployment::start().await;
    d.ok(&["options", "set", "db-1", "auth.method", "password"], "")
        .await;
    d.ok(&["options", "set", "db-1", "auth.username", "deploy"], "")
        .await;
    d.ok(
        &["options", "set", "db-1", "auth.password"],
        "relay-Secret-9\nrelay-Secret-9\n",
    )
    .await;
    let err = d
        .fails(
            &["options", "set", "db-1", "auth.password", "on-the-cli"],
            "",
            2,
        )
        .await;
    assert!(err.contains("secret"), "{err}");
    let (key, _) = keygen(d.dir.path(), "relay", "").await;
    d.ok(
        &[
            "options",
            "set",
            "db-1",
            "auth.identity",
            "--from-file",
            key.to_str().unwrap(),
        ],
        "",
    )
    .await;
    d.fails(&["options", "set", "db-1", "no.such.key", "x"], "", 2)
        .await;

    let table = d.ok(&["options", "list", "db-1"], "").await;
    assert!(table.starts_with("KEY"), "{table}");
    assert!(
        table.contains("deploy") && table.contains("<set>"),
        "{table}"
    );
    assert!(
        !table.contains("relay-Secret-9") && !table.contains("PRIVATE KEY"),
        "{table}"
    );
    let v = d.json(&["options", "list", "db-1"], "").await;
    let pw = v
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["key"] == "auth.password")
        .unwrap();
    assert_eq!(pw["secret"], true);
    assert!(!v.to_string().contains("relay-Secret-9"));

    let v = d
        .json(&["options", "unset", "db-1", "auth.username"], "")
        .await;
    assert_eq!(v["removed"], true);
    let v = d
        .json(&["options", "unset", "db-1", "auth.username"], "")
        .await;
    assert_eq!(v["removed"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_create_assign_delete() {
    let d = Deployment::start().await;
    let out = d
        .ok(
            &[
                "credentials",
                "create",
                "--name",
                "root-pw",
                "--type",
                "password",
                "--username",
                "root",
            ],
            "cred-Secret-1\ncred-Secret-1\n",
        )
        .await;
    assert!(out.contains("root-pw"), "{out}");
    let (plain, _) = keygen(d.dir.path(), "plain", "").await;
    d.ok(
        &[
            "credentials",
            "create",
            "--name",
            "deploy",
            "--type",
            "ssh-key",
            "--from-file",
            plain.to_str().unwrap(),
        ],
        "",
    )
    .await;
    // An encrypted key: its passphrase is asked for even without --passphrase.
    let (locked, _) = keygen(d.dir.path(), "locked", "key-Pass-77").await;
    let out = d
        .run(
            &[
                "credentials",
                "create",
                "--name",
                "locked",
                "--type",
                "ssh-key",
                "--from-file",
                locked.to_str().unwrap(),
            ],
            "key-Pass-77\n",
        )
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("passphrase"), "{}", stderr(&out));
    d.fails(
        &[
            "credentials",
            "create",
            "--name",
            "deploy",
            "--type",
            "password",
        ],
        "x-Secret-12\nx-Secret-12\n",
        5,
    )
    .await;
    d.fails(
        &["credentials", "create", "--name", "x", "--type", "ssh-key"],
        "",
        2,
    )
    .await;

    let table = d.ok(&["credentials", "list"], "").await;
    assert!(table.starts_with("NAME"), "{table}");
    assert!(
        table.contains("root-pw") && table.contains("root") && table.contains("ssh-key"),
        "{table}"
    );
    assert!(
        !table.contains("cred-Secret-1") && !table.contains("PRIVATE"),
        "{table}"
    );
    let v = d.json(&["credentials", "list"], "").await;
    let locked = v
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "locked")
        .unwrap();
    assert_eq!(locked["has_passphrase"], true);
    assert!(!v.to_string().contains("key-Pass-77"));

    d.ok(
        &[
            "credentials",
            "assign",
            "--host",
            "db-1",
            "--name",
            "deploy",
        ],
        "",
    )
    .await;
    d.fails(
        &["credentials", "assign", "--host", "db-1", "--name", "nope"],
        "",
        3,
    )
    .await;
    let err = d.fails(&["credentials", "delete", "deploy"], "", 5).await;
    assert!(err.contains("assigned") || err.contains("force"), "{err}");
    let v = d
        .json(&["credentials", "delete", "deploy", "--force"], "")
        .await;
    assert_eq!(v["unassigned_hosts"][0], "db-1");
    d.fails(&["credentials", "delete", "deploy"], "", 3).await;

    d.ok(
        &[
            "credentials",
            "assign",
            "--host",
            "db-2",
            "--name",
            "root-pw",
        ],
        "",
    )
    .await;
    let v = d
        .json(&["credentials", "unassign", "--host", "db-2"], "")
        .await;
    assert_eq!(v["was_assigned"], true);
    let out = d
        .ok(&["credentials", "unassign", "--host", "db-2"], "")
        .await;
    assert!(out.contains("no credential"), "{out}");
    d.ok(&["credentials", "delete", "root-pw"], "").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_node_and_api_with_scopes() {
    let d = Deployment::start().await;
    d.ok(
        &["users", "add", "alice", "--password-stdin"],
        "alice-pass-1",
    )
    .await;
    // The lead's spelling, and the new one.
    let node = d
        .ok(
            &[
                "node", "token", "create", "--user", "alice", "--name", "web-1",
            ],
            "",
        )
        .await;
    assert!(node.trim().starts_with("pp_node_"), "{node}");
    let v = d
        .json(
            &[
                "tokens", "node", "create", "--user", "alice", "--name", "web-2",
            ],
            "",
        )
        .await;
    assert!(v["token"].as_str().unwrap().starts_with("pp_node_"));

    let read = d
        .ok(
            &[
                "tokens", "api", "create", "--user", "alice", "--name", "ci", "--scope", "read",
            ],
            "",
        )
        .await;
    let read = read.trim().to_string();
    assert!(read.starts_with("pp_api_"), "{read}");
    let admin = d
        .json(
            &[
                "tokens", "api", "create", "--user", "alice", "--name", "ops", "--scope", "admin",
            ],
            "",
        )
        .await;
    let admin = admin["token"].as_str().unwrap().to_string();

    // A read token lists but may not change anything; an admin token may.
    let out = d
        .run_with(&["--token", &read, "users", "list"], "", None)
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let out = d
        .run_with(&["--token", &read, "groups", "add", "g1"], "", None)
        .await;
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let out = d.run_with(&["groups", "add", "g1"], "", None).await;
    assert_eq!(
        out.status.code(),
        Some(4),
        "no credential at all: {}",
        stderr(&out)
    );
    let mut cmd_token = vec!["--token", admin.as_str()];
    cmd_token.extend(["groups", "add", "g1"]);
    let out = d.run_with(&cmd_token, "", None).await;
    assert!(out.status.success(), "{}", stderr(&out));

    let table = d.ok(&["tokens", "list", "--kind", "api"], "").await;
    assert!(
        table.starts_with("TOKEN ID") && table.contains("ci") && !table.contains("web-1"),
        "{table}"
    );
    assert!(!table.contains(&read), "a token is shown once only");
    let v = d.json(&["tokens", "list", "--user", "alice"], "").await;
    assert_eq!(v.as_array().unwrap().len(), 4, "{v}");
    let ci = v
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "ci")
        .unwrap();
    let id = ci["token_id"].as_str().unwrap().to_string();
    d.ok(&["tokens", "revoke", &id], "").await;
    let out = d
        .run_with(&["--token", &read, "users", "list"], "", None)
        .await;
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    d.fails(&["tokens", "revoke", "no-such-token"], "", 3).await;
    let out = d
        .run_with(&["users", "list"], "", Some("wrong-token"))
        .await;
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_status_and_rotate() {
    let d = Deployment::start().await;
    d.ok(
        &["options", "set", "db-1", "auth.password"],
        "relay-Secret-9\nrelay-Secret-9\n",
    )
    .await;
    let status = d.json(&["secrets", "status"], "").await;
    let current = status["current_key_id"].as_str().unwrap().to_string();
    assert_eq!(status["pending"], 0);
    let table = d.ok(&["secrets", "status"], "").await;
    assert!(
        table.starts_with("KEY ID") && table.contains(&current),
        "{table}"
    );
    // Confirmed at the prompt; nothing pending under a single key.
    let out = d.ok(&["secrets", "rotate"], "y\n").await;
    assert!(out.contains("0 pending"), "{out}");
    d.fails(&["secrets", "rotate"], "n\n", 1).await;
    let v = d
        .json(&["secrets", "rotate", "--new-key-id", &current], "")
        .await;
    assert_eq!(v["pending"], 0);
    d.fails(&["secrets", "rotate", "--new-key-id", "00000000"], "", 5)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_unavailable_and_help() {
    let d = Deployment::start().await;
    // clap usage errors: 2.
    let out = d.run(&["users", "frobnicate"], "").await;
    assert_eq!(out.status.code(), Some(2));
    // Nothing listening: 6, with a readable message.
    let out = Command::new(env!("CARGO_BIN_EXE_phirepass"))
        .args([
            "admin",
            "--authz-url",
            "http://127.0.0.1:1",
            "users",
            "list",
        ])
        .env("PHIREPASS_SERVICE_TOKEN", "t")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert!(
        stderr(&out).starts_with("error: authz is unreachable"),
        "{}",
        stderr(&out)
    );
    // No secrets URL anywhere: a clear error.
    let out = Command::new(env!("CARGO_BIN_EXE_phirepass"))
        .args(["admin", "credentials", "list"])
        .env_remove("SECRETS_URL")
        .env("PHIREPASS_DATA_DIR", d.dir.path())
        .env("PHIREPASS_SERVICE_TOKEN", "t")
        .output()
        .await
        .unwrap();
    assert!(stderr(&out).contains("--secrets-url"), "{}", stderr(&out));
    // --help everywhere, with examples.
    for path in [
        &["users", "add"][..],
        &["users", "keys", "add"],
        &["groups", "members", "add"],
        &["hosts", "add"],
        &["hosts", "refresh-hostkey"],
        &["options", "set"],
        &["access", "grant"],
        &["credentials", "create"],
        &["tokens", "api", "create"],
        &["node", "token", "create"],
        &["secrets", "rotate"],
    ] {
        let out = d.ok(&[path, &["--help"][..]].concat(), "").await;
        assert!(out.contains("Example"), "{path:?}: {out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finds_a_running_dev_through_its_data_dir() {
    let d = Deployment::start().await;
    // What `phirepass dev` leaves in its data dir: dev.json and service.token.
    let data = tempfile::tempdir().unwrap();
    let dev_json = serde_json::json!({
        "authz_url": d.authz_url,
        "secrets_url": d.secrets_url,
        "registry_url": "http://127.0.0.1:1",
        "gateway_url": "http://127.0.0.1:1",
    });
    std::fs::write(data.path().join("dev.json"), dev_json.to_string()).unwrap();
    std::fs::write(data.path().join("service.token"), d.token.expose_secret()).unwrap();
    let run = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_phirepass"));
        cmd.arg("admin").args(args);
        for var in [
            "AUTHZ_URL",
            "SECRETS_URL",
            "PHIREPASS_TOKEN",
            "PHIREPASS_SERVICE_TOKEN",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("PHIREPASS_DATA_DIR", data.path());
        cmd.output()
    };
    let out = run(&["groups", "add", "ops"]).await.unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&["credentials", "list"]).await.unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // --data-dir after the subcommand works too (global flags).
    let out = Command::new(env!("CARGO_BIN_EXE_phirepass"))
        .args(["admin", "groups", "list", "--data-dir"])
        .arg(data.path())
        .env_remove("AUTHZ_URL")
        .env_remove("PHIREPASS_SERVICE_TOKEN")
        .output()
        .await
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("ops"),
        "{}",
        stderr(&out)
    );
    // A data dir without dev.json: exit 6 and what to do.
    let empty = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_phirepass"))
        .args(["admin", "users", "list"])
        .env_remove("AUTHZ_URL")
        .env("PHIREPASS_DATA_DIR", empty.path())
        .env("PHIREPASS_SERVICE_TOKEN", "t")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert!(stderr(&out).contains("phirepass dev"), "{}", stderr(&out));
}

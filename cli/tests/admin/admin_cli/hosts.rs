//! `phirepass admin hosts`, `access`, `hostkey` and `options`.

use super::*;
use tokio::net::TcpListener;

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
async fn access_grant_logins_are_listed_replaced_and_checked() {
    let d = Deployment::start().await;
    d.ok(
        &["users", "add", "alice", "--password-stdin"],
        "alice-pass-1",
    )
    .await;
    d.ok(
        &[
            "hosts",
            "add",
            "10.0.0.5:22",
            "--name",
            "web-1",
            "--no-hostkey",
        ],
        "",
    )
    .await;
    let said = d
        .ok(
            &[
                "access", "grant", "--user", "alice", "--node", "web-1", "--login", "deploy",
                "--login", "root",
            ],
            "",
        )
        .await;
    assert!(said.contains("as deploy, root"), "{said}");
    let table = d.ok(&["access", "list", "--host", "web-1"], "").await;
    assert!(
        table.contains("LOGINS") && table.contains("deploy,root"),
        "{table}"
    );
    // Granting again replaces the list; without --login: the default account only.
    d.ok(
        &["access", "grant", "--user", "alice", "--host", "web-1"],
        "",
    )
    .await;
    let v = d.json(&["access", "list", "--user", "alice"], "").await;
    assert_eq!(v[0]["logins"], serde_json::json!([]), "{v}");
    let table = d.ok(&["access", "list"], "").await;
    assert!(table.contains("(default)"), "{table}");
    // Not an account name: refused with the rule.
    d.fails(
        &[
            "access", "grant", "--user", "alice", "--host", "web-1", "--login", "ro ot",
        ],
        "",
        2,
    )
    .await;
}

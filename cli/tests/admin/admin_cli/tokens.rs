//! `phirepass admin tokens`, usage errors and help, and finding a running `phirepass dev`.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_node_and_api_with_scopes() {
    let d = Deployment::start().await;
    d.ok(
        // An admin: API token scopes are capped by the role.
        &["users", "add", "alice", "--admin", "--password-stdin"],
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
        .env("PHIREPASS_DATA_DIR", d.dir.path())
        .env("PHIREPASS_TOKEN", "t")
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
        .env("PHIREPASS_TOKEN", "t")
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
    // What `phirepass dev` leaves in its data dir: dev.json, operator.token, pki/trust.crt.
    let data = tempfile::tempdir().unwrap();
    let dev_json = serde_json::json!({
        "authz_url": d.authz_url,
        "secrets_url": d.secrets_url,
        "registry_url": "http://127.0.0.1:1",
        "gateway_url": "http://127.0.0.1:1",
    });
    std::fs::write(data.path().join("dev.json"), dev_json.to_string()).unwrap();
    std::fs::write(data.path().join("operator.token"), &d.token).unwrap();
    std::fs::copy(d.dir.path().join("pki").join("trust.crt"), {
        std::fs::create_dir_all(data.path().join("pki")).unwrap();
        data.path().join("pki").join("trust.crt")
    })
    .unwrap();
    let run = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_phirepass"));
        cmd.arg("admin").args(args);
        for var in [
            "AUTHZ_URL",
            "SECRETS_URL",
            "PHIREPASS_TOKEN",
            "PHIREPASS_CA",
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
        .env_remove("PHIREPASS_TOKEN")
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
        .env("PHIREPASS_TOKEN", "t")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert!(stderr(&out).contains("phirepass dev"), "{}", stderr(&out));
}

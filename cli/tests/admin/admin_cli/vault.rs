//! `phirepass admin credentials` and `secrets` (status, rotation).

use super::*;

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

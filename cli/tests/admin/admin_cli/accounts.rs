//! `phirepass admin users`, `users keys` and `groups`.

use super::*;

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
        .filter(|name| *name != crate::common::cluster::OPERATOR)
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

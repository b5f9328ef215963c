//! `access grant --command` / `--node-group` and `node group add|remove|list`: command rights
//! and groups of nodes, through the real CLI against authz.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_grants_and_node_groups() {
    let d = Deployment::start().await;
    d.ok(
        &["users", "add", "alice", "--password-stdin"],
        "alice-pass-1",
    )
    .await;
    d.ok(&["users", "add", "bob", "--password-stdin"], "bob-pass-123")
        .await;
    for node in ["web-1", "web-2", "db-1"] {
        d.ok(
            &["node", "token", "create", "--user", "alice", "--name", node],
            "",
        )
        .await;
    }

    // Commands on one node; granting again replaces the list.
    let said = d
        .ok(
            &[
                "access",
                "grant",
                "--user",
                "bob",
                "--node",
                "web-1",
                "--command",
                "disk_usage",
                "--command",
                "restart_app",
            ],
            "",
        )
        .await;
    assert!(
        said.contains("bob may reach web-1") && said.contains("run disk_usage, restart_app"),
        "{said}"
    );
    let grant = d
        .json(
            &[
                "access",
                "grant",
                "--user",
                "bob",
                "--node",
                "web-1",
                "--command",
                "disk_usage",
            ],
            "",
        )
        .await;
    assert_eq!(grant["commands"], serde_json::json!(["disk_usage"]));
    let err = d
        .fails(
            &[
                "access",
                "grant",
                "--user",
                "bob",
                "--node",
                "web-1",
                "--command",
                "Disk;rm",
            ],
            "",
            2,
        )
        .await;
    assert!(err.contains("not a command name"), "{err}");

    // Node groups: created by their first members, listed with them.
    let said = d
        .ok(&["node", "group", "add", "web", "web-1", "web-2"], "")
        .await;
    assert!(said.contains("node group web: web-1, web-2"), "{said}");
    let err = d
        .fails(&["node", "group", "add", "web", "web-9"], "", 3)
        .await;
    assert!(err.contains("node web-9 not found"), "{err}");
    let out = d.ok(&["node", "group", "list", "--json"], "").await;
    let listed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed[0]["name"], "web");
    assert_eq!(listed[0]["nodes"], serde_json::json!(["web-1", "web-2"]));
    let table = d.ok(&["node", "group", "list"], "").await;
    assert!(table.contains("web-1,web-2"), "{table}");

    // A grant on the group; listed as such, with its commands.
    let said = d
        .ok(
            &[
                "access",
                "grant",
                "--user",
                "bob",
                "--node-group",
                "web",
                "--command",
                "*",
            ],
            "",
        )
        .await;
    assert!(
        said.contains("node group web") && said.contains("every command"),
        "{said}"
    );
    let err = d
        .fails(
            &[
                "access",
                "grant",
                "--user",
                "bob",
                "--node-group",
                "nope",
                "--command",
                "x",
            ],
            "",
            3,
        )
        .await;
    assert!(err.contains("node group nope not found"), "{err}");
    let grants = d.json(&["access", "list", "--user", "bob"], "").await;
    let on_group = grants
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["target_kind"] == "node group")
        .unwrap_or_else(|| panic!("{grants}"));
    assert_eq!(
        (&on_group["target"], &on_group["commands"]),
        (&serde_json::json!("web"), &serde_json::json!(["*"]))
    );
    let only_group = d.json(&["access", "list", "--node-group", "web"], "").await;
    assert_eq!(only_group.as_array().unwrap().len(), 1, "{only_group}");
    let table = d.ok(&["access", "list"], "").await;
    assert!(
        table.contains("COMMANDS") && table.contains("node group"),
        "{table}"
    );

    // Members leave; the group goes with its grants.
    let said = d.ok(&["node", "group", "remove", "web", "web-2"], "").await;
    assert!(said.contains("node group web: web-1"), "{said}");
    let err = d
        .fails(&["node", "group", "remove", "web", "web-2"], "", 3)
        .await;
    assert!(err.contains("web-2"), "{err}");
    d.ok(&["node", "group", "remove", "web"], "").await;
    let err = d.fails(&["node", "group", "remove", "web"], "", 3).await;
    assert!(err.contains("node group web not found"), "{err}");
    let grants = d.json(&["access", "list", "--user", "bob"], "").await;
    assert!(
        grants
            .as_array()
            .unwrap()
            .iter()
            .all(|g| g["target_kind"] != "node group"),
        "{grants}"
    );
    let out = d.ok(&["node", "group", "list", "--json"], "").await;
    assert_eq!(out.trim(), "[]");
}

//! Declared commands on nodes, across the services (issue #10, tests 1, 4 and 5): real agents
//! with an agent.toml connected to two real gateways on NATS + Redis + PostgreSQL, driven by
//! the real `phirepass admin nodes run` binary with users' API tokens: a run returns output,
//! exit code and duration; a user without the command's grant is refused and a group grant
//! works; `--group` with one agent stopped gives two results and one "offline" with a non-zero
//! exit; the caller's request and result audit events share the agent's correlation id and
//! never carry a secret parameter's value.

use std::process::Output;
use std::time::Duration;

use crate::common::commands::start_commands_agent;
use crate::common::{Backend, Cluster};
use phirepass_proto::authz::{
    AddGroupMemberRequest, AddNodeGroupMembersRequest, CreateApiTokenRequest, CreateGroupRequest,
    GrantRequest, PrincipalKind,
};
use serde_json::Value;

struct Cli {
    cluster: Cluster,
    dir: tempfile::TempDir,
}

impl Cli {
    /// An API token of `user` (running a command needs the admin scope; authz still decides
    /// per command).
    async fn token(&self, user: &str) -> String {
        self.cluster
            .authz()
            .create_api_token(CreateApiTokenRequest {
                username: user.into(),
                name: "commands".into(),
                scopes: vec!["admin".into()],
                expires_in_secs: None,
            })
            .await
            .expect("api token")
            .into_inner()
            .token
    }

    /// `phirepass admin ARGS` as the holder of `token`, against gateway `gateway`.
    async fn run(&self, token: &str, gateway: usize, args: &[&str]) -> Output {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_phirepass"));
        cmd.arg("admin")
            .args(args)
            .env("AUTHZ_URL", &self.cluster.authz_url)
            .env("COMMANDS_URL", &self.cluster.gateways[gateway].commands_url)
            .env("PHIREPASS_DATA_DIR", self.dir.path())
            .env("PHIREPASS_TOKEN", token)
            .env_remove("PHIREPASS_CA")
            .env_remove("PHIREPASS_TOKEN_FILE")
            .kill_on_drop(true);
        tokio::time::timeout(Duration::from_secs(60), cmd.output())
            .await
            .expect("phirepass admin timed out")
            .expect("run phirepass")
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn grant(cluster: &Cluster, kind: PrincipalKind, who: &str, target: &str, group: bool) {
    cluster
        .authz()
        .grant(GrantRequest {
            principal_kind: kind as i32,
            principal: who.into(),
            target: target.into(),
            commands: vec!["shout".into()],
            node_group: group,
            ..Default::default()
        })
        .await
        .expect("grant");
}

async fn deploy() -> Cli {
    let cluster = Cluster::start(Backend::Real, 2).await;
    let dir = tempfile::tempdir().expect("tempdir");
    cluster.write_trust(dir.path());
    for user in ["alice", "bob", "carol"] {
        cluster.add_user(user, &format!("{user}-password")).await;
    }
    Cli { cluster, dir }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_declared_command_runs_through_the_cli_and_grants_decide_who_may() {
    let cli = deploy().await;
    let c = &cli.cluster;
    let (node_token, _) = c.node_token("alice", "web-1").await;
    let _agent = start_commands_agent(&c.gateways[0].addr, &node_token, cli.dir.path());
    c.wait_node_online("web-1").await;

    // The owner, through the *other* gateway: streamed output, then exit code and duration.
    let alice = cli.token("alice").await;
    let out = cli
        .run(
            &alice,
            1,
            &[
                "nodes",
                "run",
                "web-1",
                "shout",
                "--param",
                "message=hello there",
                "-p",
                "mode=loud",
            ],
        )
        .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "working\nHELLO THERE\n");
    let last = text(&out.stderr);
    assert!(
        last.contains("web-1: shout exit 0, ") && last.contains(" ms"),
        "{last}"
    );

    // A non-zero exit is the CLI's 1, with the command's code in the line and in --json.
    let out = cli
        .run(
            &alice,
            0,
            &[
                "--json",
                "nodes",
                "run",
                "web-1",
                "shout",
                "-p",
                "message=x",
                "-p",
                "code=3",
            ],
        )
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("json");
    let result = &doc["results"][0];
    assert_eq!(result["status"], "failed", "{doc}");
    assert_eq!(result["exit_code"], 3, "{doc}");
    assert_eq!(result["stdout"], "working\nx\n", "{doc}");
    assert!(result["duration_ms"].as_u64().is_some(), "{doc}");

    // Bob may reach the node but has no grant for the command: refused with the grant to add,
    // exit 4, and nothing ran.
    c.grant("bob", "web-1").await;
    let bob = cli.token("bob").await;
    let out = cli
        .run(
            &bob,
            0,
            &["nodes", "run", "web-1", "shout", "-p", "message=x"],
        )
        .await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("no grant for command:shout"), "{err}");
    assert!(
        err.contains("access grant") && err.contains("--command shout"),
        "{err}"
    );
    assert!(out.stdout.is_empty());

    // Carol, through her group's grant: allowed.
    let mut authz = c.authz();
    authz
        .create_group(CreateGroupRequest { name: "ops".into() })
        .await
        .expect("group");
    authz
        .add_group_member(AddGroupMemberRequest {
            group: "ops".into(),
            username: "carol".into(),
        })
        .await
        .expect("member");
    grant(c, PrincipalKind::Group, "ops", "web-1", false).await;
    let carol = cli.token("carol").await;
    let out = cli
        .run(
            &carol,
            1,
            &["nodes", "run", "web-1", "shout", "-p", "message=from carol"],
        )
        .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "working\nfrom carol\n");

    // A parameter the agent refuses: exit 5 with the agent's reason; an unknown node: 3.
    let out = cli
        .run(
            &alice,
            0,
            &["nodes", "run", "web-1", "shout", "-p", "message=$(id)"],
        )
        .await;
    assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("refused by the agent on web-1"),
        "{}",
        text(&out.stderr)
    );
    let out = cli
        .run(&alice, 0, &["nodes", "run", "nowhere", "shout"])
        .await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));

    // Status: online, and what the agent declares.
    let out = cli
        .run(&alice, 1, &["--json", "nodes", "status", "web-1"])
        .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let status: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(status["online"], true, "{status}");
    assert_eq!(
        status["agent_version"],
        phirepass_agent::VERSION,
        "{status}"
    );
    let shout = status["commands"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "shout"))
        .unwrap_or_else(|| panic!("shout not declared: {status}"));
    assert_eq!(shout["params"][2]["type"], "integer", "{status}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_group_run_reports_each_node_and_the_offline_one() {
    let cli = deploy().await;
    let c = &cli.cluster;
    let mut agents = Vec::new();
    for (i, name) in ["web-1", "web-2", "web-3"].iter().enumerate() {
        let (token, _) = c.node_token("alice", name).await;
        agents.push(start_commands_agent(
            &c.gateways[i % 2].addr,
            &token,
            cli.dir.path(),
        ));
        c.wait_node_online(name).await;
    }
    c.authz()
        .add_node_group_members(AddNodeGroupMembersRequest {
            group: "web".into(),
            nodes: vec!["web-1".into(), "web-2".into(), "web-3".into()],
        })
        .await
        .expect("node group");
    // The operator (an admin: listing a node group's nodes is an admin call) may run it
    // through a grant on the node group; web-2 goes away.
    let operator = c.operator_token().await;
    grant(
        c,
        PrincipalKind::User,
        crate::common::cluster::OPERATOR,
        "web",
        true,
    )
    .await;
    agents.remove(1).stop().await;
    wait_offline(c, "web-2").await;

    let operator_token = operator;
    let out = cli
        .run(
            &operator_token,
            0,
            &[
                "nodes",
                "run",
                "--group",
                "web",
                "shout",
                "-p",
                "message=hi",
                "-p",
                "token=s3cret-value",
            ],
        )
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("==> web-1 (exit 0, "), "{stdout}");
    assert!(stdout.contains("==> web-3 (exit 0, "), "{stdout}");
    assert!(stdout.contains("==> web-2 (offline: "), "{stdout}");
    assert_eq!(stdout.matches("working\nhi\n").count(), 2, "{stdout}");
    assert!(
        text(&out.stderr).contains("3 nodes: 2 ok, 0 failed, 1 offline"),
        "{}",
        text(&out.stderr)
    );

    // The same as JSON: one document, a result per node.
    let out = cli
        .run(
            &operator_token,
            1,
            &[
                "--json",
                "nodes",
                "run",
                "--group",
                "web",
                "shout",
                "-p",
                "message=hi",
            ],
        )
        .await;
    assert_eq!(out.status.code(), Some(1));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("json");
    let statuses: Vec<&str> = doc["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["status"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(statuses, ["ok", "offline", "ok"], "{doc}");
    assert_eq!(doc["summary"]["offline"], 1, "{doc}");

    // Audit: the caller's request and result and the agent's own events of each run share
    // one correlation id; the secret value appears nowhere.
    let events = wait_audit(c, |events| {
        events
            .iter()
            .filter(|e| e["action"] == "command.result")
            .count()
            >= 2
    })
    .await;
    let all = serde_json::to_string(&events).expect("json");
    assert!(
        !all.contains("s3cret-value"),
        "a secret reached the audit log"
    );
    let results: Vec<&Value> = events
        .iter()
        .filter(|e| e["action"] == "command.result" && e["exit_code"] == 0)
        .collect();
    assert!(results.len() >= 2, "{events:?}");
    for result in results {
        let id = result["correlation_id"].as_str().expect("correlation id");
        let related: Vec<&str> = events
            .iter()
            .filter(|e| e["correlation_id"] == id)
            .filter_map(|e| e["action"].as_str())
            .collect();
        for action in [
            "command.request",
            "command.result",
            "command.started",
            "command.finished",
        ] {
            assert!(related.contains(&action), "{id}: {related:?}");
        }
        let request = events
            .iter()
            .find(|e| e["correlation_id"] == id && e["action"] == "command.request")
            .expect("request");
        assert!(
            request
                .to_string()
                .contains(crate::common::cluster::OPERATOR),
            "{request}"
        );
    }
}

async fn wait_offline(cluster: &Cluster, name: &str) {
    for _ in 0..200 {
        let nodes = cluster
            .registry()
            .list_nodes(phirepass_proto::registry::ListNodesRequest::default())
            .await
            .expect("list nodes")
            .into_inner()
            .nodes;
        if !nodes.iter().any(|n| n.name == name) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{name} stayed online");
}

async fn wait_audit(cluster: &Cluster, ready: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    for _ in 0..100 {
        let events = cluster.audit_events().await;
        if ready(&events) {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "audit events never arrived: {:?}",
        cluster.audit_events().await
    );
}

//! A node's page in headless Chromium (issue #10, test 6): a real deployment (authz, registry,
//! gateway-ws on NATS, Redis and PostgreSQL) and a real agent declaring a command in its
//! agent.toml; e2e/commands.mjs opens the node from the list, reads the agent's self-report
//! and runs the command from the Commands panel, seeing its output live, then the exit code
//! and the duration. Screenshots land in target/e2e-artifacts/.

use std::time::Duration;

use crate::common::commands::start_commands_agent;
use crate::common::{Backend, Cluster, wait_node_listed};
use crate::web_ui_e2e::{prerequisites, run_suite};
use phirepass_testkit::browser::login;

const USER: (&str, &str) = ("bob", "bob-Password-22");
const NODE: &str = "web-1";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn node_page_runs_a_command_in_chromium() {
    prerequisites().await;
    let cluster = Cluster::start_with(Backend::Real, 1, &[USER], |_| {}).await;
    let gateway = cluster.gateways[0].addr.clone();
    let (token, _) = cluster.node_token(USER.0, NODE).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let _agent = start_commands_agent(&gateway, &token, dir.path());
    let session = login(&gateway, USER.0, USER.1).await.expect("login");
    assert!(
        wait_node_listed(&gateway, &session, NODE, true, Duration::from_secs(30)).await,
        "node never came online"
    );
    run_suite(
        "commands.mjs",
        &gateway,
        &[
            ("USER_NAME", USER.0),
            ("USER_PASSWORD", USER.1),
            ("NODE", NODE),
            ("COMMAND", "shout"),
            ("AGENT_VERSION", phirepass_agent::VERSION),
        ],
    )
    .await;
}

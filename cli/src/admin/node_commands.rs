//! `phirepass admin nodes run` and `nodes status`: declared commands on agents, through
//! gateway-ws's `Commands` gRPC service (which checks the caller's grant, audits, and asks the
//! node's agent, which checks its own declaration). One node streams its output as it comes;
//! many nodes (`--group`, `--all`) run concurrently, each buffered and printed as one block.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::time::Instant;

use clap::Args;
use phirepass_proto::authz::{ListTargetsRequest, TargetKind};
use phirepass_proto::commands::RunCommandRequest;
use phirepass_proto::commands::run_command_event::Event;

use super::connect::Global;
use super::node_results::{Outcome, Status, outcome_of, refusal, refusal_exit, report};
use super::output::{Exit, Out, fail, status, usage};

/// Shown under `nodes run --help`.
pub const RUN_EXAMPLES: &str = "\
Examples:
  phirepass admin nodes run web-1 disk_usage --param mount=/
  phirepass admin nodes run --group web disk_usage --param mount=/
  phirepass admin nodes run --all health --json

One node: its output streams to stdout/stderr, then one result line on stderr.
Many nodes: one block per node, then a summary line (\"3 nodes: 2 ok, 0 failed, 1 offline\").
Exit: 0 when every command exited 0; 1 when one failed, timed out or a node was offline or
refused (the command's own exit code is in the result line and in --json); with one node,
3 unknown node, 4 no grant, 5 refused by the agent, 6 offline or gateway unreachable.";

/// How many nodes run at once with `--group` / `--all`.
const DEFAULT_PARALLEL: u16 = 8;

#[derive(Args)]
pub struct RunArgs {
    /// NODE COMMAND, or only COMMAND with --group or --all.
    #[arg(value_names = ["NODE", "COMMAND"], num_args = 1..=2, required = true)]
    words: Vec<String>,
    /// A parameter of the command, KEY=VALUE (repeatable). The agent checks it against the
    /// command's declared type; secret values are never recorded.
    #[arg(long = "param", short = 'p', value_name = "KEY=VALUE", value_parser = parse_param)]
    params: Vec<(String, String)>,
    /// Run on every node of this node group (`phirepass admin nodes group ...`).
    #[arg(long, value_name = "NODE_GROUP", conflicts_with = "all")]
    group: Option<String>,
    /// Run on every node you can see.
    #[arg(long)]
    all: bool,
    /// With --group/--all: at most this many nodes at once.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_PARALLEL,
          value_parser = clap::value_parser!(u16).range(1..=64))]
    parallel: u16,
}

fn parse_param(raw: &str) -> Result<(String, String), String> {
    match raw.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("{raw:?} is not KEY=VALUE")),
    }
}

impl RunArgs {
    /// (node, command): the node is None with --group/--all.
    fn split(&self) -> anyhow::Result<(Option<&str>, &str)> {
        let many = self.group.is_some() || self.all;
        match (self.words.as_slice(), many) {
            ([node, command], false) => Ok((Some(node), command)),
            ([command], true) => Ok((None, command)),
            ([_], false) => Err(usage(
                "name the node and the command (`nodes run web-1 disk_usage`), or use --group NAME or --all",
            )),
            (_, true) => Err(usage(
                "with --group or --all, name only the command (`nodes run --group web disk_usage`)",
            )),
            _ => Err(usage("expected NODE COMMAND")),
        }
    }

    fn param_map(&self) -> anyhow::Result<BTreeMap<String, String>> {
        let mut map = BTreeMap::new();
        for (k, v) in &self.params {
            if map.insert(k.clone(), v.clone()).is_some() {
                return Err(usage(format!("--param {k} given twice")));
            }
        }
        Ok(map)
    }
}

pub async fn run(a: RunArgs, g: &Global, out: Out) -> anyhow::Result<()> {
    let (node, command) = a.split()?;
    let params = a.param_map()?;
    match node {
        Some(node) if !out.json => run_streaming(g, node, command, params).await,
        Some(node) => {
            let outcomes = vec![run_buffered(g, node.to_owned(), command, &params).await];
            report(out, command, outcomes)
        }
        None => {
            let nodes = list_nodes(g, a.group.as_deref()).await?;
            if nodes.is_empty() {
                let what = match &a.group {
                    Some(group) => format!("node group {group} has no nodes you can see"),
                    None => "you can see no nodes".to_owned(),
                };
                return Err(fail(Exit::NotFound, what));
            }
            let outcomes = run_many(g, nodes, command, &params, a.parallel).await;
            report(out, command, outcomes)
        }
    }
}

/// Every node's run, at most `parallel` at once; each buffered, so blocks never interleave.
async fn run_many(
    g: &Global,
    nodes: Vec<String>,
    command: &str,
    params: &BTreeMap<String, String>,
    parallel: u16,
) -> Vec<Outcome> {
    let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(usize::from(parallel)));
    let mut runs = tokio::task::JoinSet::new();
    for node in nodes {
        let (g, command, params) = (g.clone(), command.to_owned(), params.clone());
        let permits = permits.clone();
        runs.spawn(async move {
            // The semaphore is never closed, so a permit always comes.
            let _permit = permits.acquire_owned().await;
            run_buffered(&g, node, &command, &params).await
        });
    }
    let mut outcomes = Vec::new();
    while let Some(done) = runs.join_next().await {
        match done {
            Ok(outcome) => outcomes.push(outcome),
            Err(e) => outcomes.push(Outcome {
                node: "?".to_owned(),
                status: Status::Error,
                error: Some(format!("a run's task failed: {e}")),
                ..Outcome::default()
            }),
        }
    }
    outcomes
}

fn request(node: &str, command: &str, params: &BTreeMap<String, String>) -> RunCommandRequest {
    RunCommandRequest {
        node: node.to_owned(),
        command: command.to_owned(),
        params: params.clone().into_iter().collect(),
        correlation_id: String::new(),
    }
}

/// One node, its output copied to stdout/stderr as it arrives; then the result line on
/// stderr. Refusals keep the CLI's exit codes; a command that ran and failed exits 1.
async fn run_streaming(
    g: &Global,
    node: &str,
    command: &str,
    params: BTreeMap<String, String>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut client = g.commands()?;
    let mut stream = match client
        .run_command_stream(request(node, command, &params))
        .await
    {
        Ok(reply) => reply.into_inner(),
        Err(s) => {
            let (status, message) = refusal(node, command, &s);
            return Err(fail(refusal_exit(&s, status), message));
        }
    };
    let mut correlation_id = String::new();
    let mut finished = None;
    loop {
        let event = match stream.message().await {
            Ok(Some(e)) => e,
            Ok(None) => break,
            Err(s) => {
                let (status, message) = refusal(node, command, &s);
                return Err(fail(refusal_exit(&s, status), message));
            }
        };
        match event.event {
            Some(Event::Started(s)) => correlation_id = s.correlation_id,
            Some(Event::Stdout(b)) => {
                let mut o = std::io::stdout().lock();
                o.write_all(&b)?;
                o.flush()?;
            }
            Some(Event::Stderr(b)) => {
                let mut e = std::io::stderr().lock();
                e.write_all(&b)?;
                e.flush()?;
            }
            Some(Event::Finished(r)) => finished = Some(r),
            None => {}
        }
    }
    let Some(result) = finished else {
        return Err(fail(
            Exit::Failure,
            format!(
                "the gateway ended the stream before {command} finished on {node} after {} ms \
                 (correlation id {correlation_id}); its result is in the audit log",
                started.elapsed().as_millis()
            ),
        ));
    };
    let mut o = outcome_of(node, Some(&result));
    o.correlation_id = correlation_id;
    eprintln!(
        "{node}: {command} {} (correlation id {})",
        o.headline(),
        o.correlation_id
    );
    match o.status {
        Status::Ok => Ok(()),
        _ => Err(fail(Exit::Failure, format!("{command} failed on {node}"))),
    }
}

/// One node, its output kept until the end (`RunCommand`): for many nodes and for --json.
async fn run_buffered(
    g: &Global,
    node: String,
    command: &str,
    params: &BTreeMap<String, String>,
) -> Outcome {
    let reply = match g.commands() {
        Ok(mut client) => client.run_command(request(&node, command, params)).await,
        Err(e) => {
            return Outcome {
                node,
                status: Status::Error,
                error: Some(e.to_string()),
                ..Outcome::default()
            };
        }
    };
    match reply {
        Ok(reply) => {
            let r = reply.into_inner();
            let mut o = outcome_of(&node, r.result.as_ref());
            o.correlation_id = r.correlation_id;
            o.stdout = r.stdout;
            o.stderr = r.stderr;
            o
        }
        Err(s) => {
            let (status, message) = refusal(&node, command, &s);
            Outcome {
                node,
                status,
                error: Some(message),
                ..Outcome::default()
            }
        }
    }
}

/// The names of the nodes to run on: a node group's, or every node the token can list.
async fn list_nodes(g: &Global, group: Option<&str>) -> anyhow::Result<Vec<String>> {
    let reply = g
        .authz()?
        .list_targets(ListTargetsRequest {
            kind: Some(TargetKind::Node as i32),
            node_group: group.map(str::to_owned),
        })
        .await
        .map_err(|s| status("authz", s))?
        .into_inner();
    let mut names: Vec<String> = reply.targets.into_iter().map(|t| t.name).collect();
    names.sort();
    names.dedup();
    Ok(names)
}

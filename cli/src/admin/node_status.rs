//! `phirepass admin nodes status NODE`: whether the node is online, where and since when, and
//! its agent's self-report (version, uptime, last heartbeat, the commands its host declares
//! with their parameters), from gateway-ws's `Commands.NodeStatus`.

use clap::Args;
use phirepass_proto::commands::{CommandInfo, NodeStatusRequest, NodeStatusResponse, ParamInfo};
use serde_json::{Value, json};

use super::connect::Global;
use super::output::{Exit, Out, fail, status, table, time};

#[derive(Args)]
pub struct StatusArgs {
    /// Node name or id.
    node: String,
}

pub async fn run(a: StatusArgs, g: &Global, out: Out) -> anyhow::Result<()> {
    let reply = g
        .commands()?
        .node_status(NodeStatusRequest {
            node: a.node.clone(),
        })
        .await
        .map_err(|s| match s.code() {
            tonic::Code::NotFound => fail(
                Exit::NotFound,
                format!("no node {} that you can see ({})", a.node, s.message()),
            ),
            _ => status("gateway", s),
        })?
        .into_inner();
    if out.json {
        out.done("", to_json(&reply));
    } else {
        print!("{}", render(&reply, now_ms()));
    }
    Ok(())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// "3 s", "4 min", "2 h 5 min", "3 d 1 h".
fn span(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86_400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
    }
}

/// `mount: path under /, required`; `mode: one of a|b (default a)`.
fn describe(p: &ParamInfo) -> String {
    let mut kind = match p.r#type.as_str() {
        "enum" => format!("one of {}", p.values.join("|")),
        "integer" => match (p.min, p.max) {
            (Some(lo), Some(hi)) => format!("integer {lo}..{hi}"),
            (Some(lo), None) => format!("integer >= {lo}"),
            (None, Some(hi)) => format!("integer <= {hi}"),
            (None, None) => "integer".to_owned(),
        },
        "path" => format!("path under {}", p.root),
        _ if !p.pattern.is_empty() => format!("string matching {}", p.pattern),
        other => other.to_owned(),
    };
    if p.required {
        kind.push_str(", required");
    }
    if p.secret {
        kind.push_str(", secret");
    }
    if let Some(d) = &p.default {
        kind.push_str(&format!(", default {d}"));
    }
    format!("{}: {kind}", p.name)
}

fn render(r: &NodeStatusResponse, now: i64) -> String {
    let when = |ms: i64| match ms {
        0 => "-".to_owned(),
        ms => format!("{} ({} ago)", time(ms), span(now - ms)),
    };
    let mut rows = vec![
        vec![
            "node".to_owned(),
            format!("{} ({})", r.node_name, r.node_id),
        ],
        vec![
            "status".to_owned(),
            if r.online { "online" } else { "offline" }.to_owned(),
        ],
    ];
    if r.online {
        rows.push(vec!["gateway".to_owned(), r.gateway_id.clone()]);
        rows.push(vec!["connected since".to_owned(), when(r.connected_at)]);
    }
    rows.push(vec!["last heartbeat".to_owned(), when(r.last_heartbeat)]);
    if !r.agent_version.is_empty() {
        rows.push(vec!["agent version".to_owned(), r.agent_version.clone()]);
        rows.push(vec![
            "agent uptime".to_owned(),
            span(now - r.agent_started_at),
        ]);
    }
    let mut text = table(&["", ""], &rows)
        .lines()
        .skip(1)
        .map(|l| format!("{l}\n"))
        .collect::<String>();
    if r.commands.is_empty() {
        text.push_str("commands: none reported\n");
        return text;
    }
    text.push('\n');
    let commands: Vec<Vec<String>> = r
        .commands
        .iter()
        .map(|c| {
            let params: Vec<String> = c.params.iter().map(describe).collect();
            vec![
                c.name.clone(),
                format!("{} s", c.timeout_secs),
                if params.is_empty() {
                    "-".to_owned()
                } else {
                    params.join("; ")
                },
                format!(
                    "{}{}",
                    c.description,
                    if c.builtin { " (built in)" } else { "" }
                ),
            ]
        })
        .collect();
    text.push_str(&table(
        &["COMMAND", "TIMEOUT", "PARAMETERS", "DESCRIPTION"],
        &commands,
    ));
    text
}

fn command_json(c: &CommandInfo) -> Value {
    let params: Vec<Value> = c
        .params
        .iter()
        .map(|p| {
            json!({"name": p.name, "type": p.r#type, "pattern": p.pattern, "max_len": p.max_len,
                   "values": p.values, "min": p.min, "max": p.max, "root": p.root,
                   "required": p.required, "secret": p.secret, "default": p.default,
                   "description": p.description})
        })
        .collect();
    json!({"name": c.name, "description": c.description, "builtin": c.builtin,
           "params": params, "timeout_secs": c.timeout_secs,
           "output_limit_bytes": c.output_limit_bytes})
}

fn to_json(r: &NodeStatusResponse) -> Value {
    let ms = |v: i64| (v != 0).then_some(v);
    json!({
        "node_id": r.node_id, "node_name": r.node_name, "online": r.online,
        "gateway_id": (!r.gateway_id.is_empty()).then_some(&r.gateway_id),
        "connected_at": ms(r.connected_at), "last_heartbeat": ms(r.last_heartbeat),
        "agent_version": (!r.agent_version.is_empty()).then_some(&r.agent_version),
        "agent_started_at": ms(r.agent_started_at),
        "commands": r.commands.iter().map(command_json).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lists_presence_and_declared_commands() {
        let r = NodeStatusResponse {
            node_id: "n1".into(),
            node_name: "web-1".into(),
            online: true,
            gateway_id: "gw-a".into(),
            connected_at: 1_000,
            last_heartbeat: 61_000,
            agent_version: "0.9.0".into(),
            agent_started_at: 1_000,
            commands: vec![CommandInfo {
                name: "disk_usage".into(),
                description: "Disk usage".into(),
                timeout_secs: 10,
                params: vec![ParamInfo {
                    name: "mount".into(),
                    r#type: "path".into(),
                    root: "/".into(),
                    required: true,
                    ..<ParamInfo as Default>::default()
                }],
                ..CommandInfo::default()
            }],
        };
        let text = render(&r, 3_661_000);
        assert!(text.contains("status           online"), "{text}");
        assert!(text.contains("agent uptime     1 h 1 min"), "{text}");
        assert!(text.contains("(1 h 0 min ago)"), "{text}");
        assert!(
            text.contains("disk_usage  10 s     mount: path under /, required  Disk usage"),
            "{text}"
        );
    }
}

//! One pick on the management screen: which account (asked when her grants list several),
//! whether a node is online (checked before she is asked anything), the target's own
//! questions (`menu_prompts`), then the relay up to the started shell. Every failure is a
//! message for the menu, which shows it and lets her pick again.

use std::sync::Arc;

use phirepass_proto::authz::ListAccessibleTargetsRequest;
use phirepass_proto::registry::GetNodeRequest;
use russh::server::Msg;
use russh::{ChannelReadHalf, ChannelWriteHalf};
use tokio::io::AsyncWriteExt;

use crate::edge::Conn;
use crate::menu::Row;
use crate::relay::{ChannelSetup, Start};
use crate::username::valid_account;

/// Connects the menu's channel to `row` up to a started shell; `Err` is the reason, for the
/// menu (nothing is left half open: the next pick starts afresh).
pub(crate) async fn pick(
    conn: &Arc<Conn>,
    username: &str,
    row: &Row,
    rx: &mut ChannelReadHalf,
    tx: &ChannelWriteHalf<Msg>,
    setup: &mut ChannelSetup,
) -> Result<crate::relay::Ready, String> {
    let target = row.name.as_str();
    if conn.link.get().is_some_and(|link| link.name != target) {
        return Err(format!(
            "this connection is already logged in to another target: reconnect to reach {target}"
        ));
    }
    // Before any question: a node whose agent is gone is reported at once.
    if row.kind == "node" && !node_online(conn, username, target).await {
        return Err(format!(
            "{target} is offline (its agent is not connected): start phirepass-agent on it, or pick another target"
        ));
    }
    let account = choose_account(row, rx, tx, setup).await?;
    let shown = account.as_deref().unwrap_or("its default account");
    let _ = tx
        .make_writer()
        .write_all(format!("\x1b[H\x1b[2Jconnecting to {target} as {shown}...\r\n").as_bytes())
        .await;
    crate::menu_prompts::connect(conn, target, account.as_deref(), rx, tx, setup).await?;
    crate::relay::prepare(
        conn,
        username,
        target,
        account.as_deref(),
        setup,
        &Start::Shell,
    )
    .await
}

/// Whether the registry holds the node now (the list may be older than the pick).
async fn node_online(conn: &Conn, username: &str, target: &str) -> bool {
    let edge = &conn.edge;
    let listed = edge
        .authz
        .clone()
        .list_accessible_targets(ListAccessibleTargetsRequest {
            username: username.to_owned(),
        })
        .await;
    let Some(id) = listed.ok().and_then(|reply| {
        reply
            .into_inner()
            .targets
            .into_iter()
            .filter_map(|a| a.target)
            .find(|t| t.name == target)
            .map(|t| t.id)
    }) else {
        // Gone from her list: the relay reports it with the usual refusal.
        return true;
    };
    edge.registry
        .clone()
        .get_node(GetNodeRequest { node_id: id })
        .await
        .is_ok()
}

/// The account to log in as: asked when her grants list several (Enter keeps the default),
/// `None` for the default account.
async fn choose_account(
    row: &Row,
    rx: &mut ChannelReadHalf,
    tx: &ChannelWriteHalf<Msg>,
    setup: &mut ChannelSetup,
) -> Result<Option<String>, String> {
    let target = row.name.as_str();
    if row.logins.len() < 2 {
        return Ok(None);
    }
    let prompt = format!(
        "\x1b[H\x1b[2JLog in to {target} as which account? ({}; Enter: the default, Ctrl-C: back)\n> ",
        row.logins.join(", ")
    );
    let answer = crate::menu_prompts::ask_line(&prompt, rx, tx, setup).await?;
    let Some(answer) = answer else {
        return Err(format!("login to {target} cancelled"));
    };
    let answer = answer.trim();
    if answer.is_empty() {
        return Ok(None);
    }
    if !valid_account(answer) {
        let shown: String = answer
            .chars()
            .take(40)
            .flat_map(char::escape_debug)
            .collect();
        return Err(format!(
            "\"{shown}\" is not an account name (A-Z, a-z, 0-9, '_', '.', '-'); your grants allow {} on {target}",
            row.logins.join(", ")
        ));
    }
    Ok(Some(answer.to_owned()))
}

//! `alice@edge`: the management screen. Lists the targets alice may reach (online/offline from
//! the registry), connects to the one she picks through the same relay path as `alice:t@edge`
//! (`menu_pick`: which account, then the target's own questions on this terminal). A pick that
//! fails (a refused account, an unreachable target, a wrong password) comes back here with
//! the reason shown above the list. Plain ANSI: works in 80x24, redraws on resize, `q` quits.
//! Without a terminal it prints the list and exits.

use std::sync::Arc;

use phirepass_proto::authz::{ListAccessibleTargetsRequest, TargetKind};
use phirepass_proto::registry::GetNodeRequest;
use russh::server::{Handle, Msg};
use russh::{Channel, ChannelMsg, ChannelReadHalf, ChannelWriteHalf};
use tokio::io::AsyncWriteExt;
use tracing::Instrument;

use crate::edge::Conn;
use crate::relay::{ChannelSetup, Start};

#[derive(Clone, Debug)]
pub(crate) struct Row {
    pub name: String,
    pub kind: &'static str,
    pub status: &'static str,
    /// The accounts her grants list on the target (the menu asks when there are several).
    pub logins: Vec<String>,
}

/// Most lines a notice (the reason a pick failed) takes above the list.
const NOTICE_LINES: usize = 4;

async fn load(conn: &Conn, username: &str) -> Result<Vec<Row>, String> {
    let edge = &conn.edge;
    let targets = edge
        .authz
        .clone()
        .list_accessible_targets(ListAccessibleTargetsRequest {
            username: username.to_owned(),
        })
        .await
        .map_err(|s| {
            tracing::warn!(error = %s.message(), "listing targets failed");
            "the access service is unavailable; try again later".to_string()
        })?
        .into_inner()
        .targets;
    let mut rows = Vec::new();
    for (t, logins) in targets
        .into_iter()
        .filter_map(|a| a.target.map(|t| (t, a.logins)))
    {
        let (kind, status) = if t.kind == TargetKind::Node as i32 {
            let online = edge
                .registry
                .clone()
                .get_node(GetNodeRequest {
                    node_id: t.id.clone(),
                })
                .await
                .is_ok();
            ("node", if online { "online" } else { "offline" })
        } else {
            ("host", "direct")
        };
        rows.push(Row {
            name: t.name,
            kind,
            status,
            logins,
        });
    }
    Ok(rows)
}

/// The screen as text for a `cols` x `rows` terminal; `selected` is highlighted, `notice`
/// (why the last pick failed) is wrapped above the list.
fn render(
    user: &str,
    list: &[Row],
    selected: usize,
    cols: usize,
    rows: usize,
    notice: Option<&str>,
) -> String {
    let cols = cols.clamp(20, 500);
    let rows = rows.clamp(6 + NOTICE_LINES, 500);
    let fit = |s: String| -> String { s.chars().take(cols).collect() };
    let mut out = String::from("\x1b[H\x1b[2J");
    out.push_str(&fit(format!("phirepass - {user} - pick a target")));
    out.push_str("\r\n\r\n");
    let mut visible = rows - 4;
    if let Some(notice) = notice {
        let chars: Vec<char> = format!("! {notice}").chars().collect();
        for line in chars.chunks(cols).take(NOTICE_LINES) {
            out.push_str(&line.iter().collect::<String>());
            out.push_str("\r\n");
            visible -= 1;
        }
        out.push_str("\r\n");
        visible -= 1;
    }
    let first = selected.saturating_sub(visible.saturating_sub(1));
    if list.is_empty() {
        out.push_str(&fit(
            "  (no targets: ask an administrator for a grant)".into()
        ));
        out.push_str("\r\n");
    }
    for (i, row) in list.iter().enumerate().skip(first).take(visible) {
        let line = fit(format!(
            "{} {:>2}. {:<40} {:<5} {}",
            if i == selected { ">" } else { " " },
            i + 1,
            row.name,
            row.kind,
            row.status
        ));
        if i == selected {
            out.push_str(&format!("\x1b[7m{line}\x1b[0m\r\n"));
        } else {
            out.push_str(&line);
            out.push_str("\r\n");
        }
    }
    out.push_str(&format!("\x1b[{rows};1H"));
    out.push_str(&fit(
        "up/down or j/k: move  enter: connect  r: refresh  q: quit".into(),
    ));
    out
}

fn plain_list(list: &[Row]) -> String {
    let mut out = String::new();
    for row in list {
        out.push_str(&format!("{}\t{}\t{}\r\n", row.name, row.kind, row.status));
    }
    out
}

pub(crate) async fn serve_channel(
    conn: Arc<Conn>,
    username: String,
    channel: Channel<Msg>,
    handle: Handle,
) {
    let id = channel.id();
    let (mut rx, tx) = channel.split();
    let mut setup = ChannelSetup::default();
    let start = loop {
        match rx.wait().await {
            None | Some(ChannelMsg::Close) => return,
            Some(ChannelMsg::RequestPty {
                term,
                col_width,
                row_height,
                pix_width,
                pix_height,
                terminal_modes,
                ..
            }) => {
                setup.pty = Some(crate::relay::PtyRequest {
                    term,
                    cols: col_width,
                    rows: row_height,
                    pix_width,
                    pix_height,
                    modes: crate::relay::real_modes(terminal_modes),
                });
            }
            Some(ChannelMsg::RequestShell { .. }) => break Start::Shell,
            Some(ChannelMsg::Exec { command, .. }) => break Start::Exec(command),
            Some(ChannelMsg::RequestSubsystem { name, .. }) => break Start::Subsystem(name),
            Some(_) => {}
        }
    };
    let mut list = match load(&conn, &username).await {
        Ok(list) => list,
        Err(message) => return crate::relay::fail(&tx, &message).await,
    };
    match (&start, setup.pty.is_some()) {
        (Start::Shell, true) => {}
        (Start::Shell, false) => {
            let _ = tx
                .make_writer()
                .write_all(plain_list(&list).as_bytes())
                .await;
            let _ = tx.exit_status(0).await;
            let _ = tx.eof().await;
            let _ = tx.close().await;
            return;
        }
        _ => {
            return crate::relay::fail(
                &tx,
                "the menu needs a terminal: use `ssh -t USER@edge`, or `ssh USER:TARGET@edge COMMAND` to run a command on a target",
            )
            .await;
        }
    }
    let mut notice: Option<String> = None;
    while let Some(row) = interact(
        &conn,
        &username,
        &mut rx,
        &tx,
        &mut setup,
        &list,
        notice.take(),
    )
    .await
    {
        let span = tracing::info_span!("relay", session = %conn.id, user = %username, target = %row.name, action = "shell", channel = %id);
        let picked = crate::menu_pick::pick(&conn, &username, &row, &mut rx, &tx, &mut setup)
            .instrument(span.clone())
            .await;
        match picked {
            Ok(ready) => {
                return crate::relay::run(conn, id, rx, tx, handle, ready)
                    .instrument(span)
                    .await;
            }
            Err(message) => {
                tracing::info!(user = %username, target = %row.name, reason = %message, "menu pick failed: back to the menu");
                notice = Some(message);
                if let Ok(fresh) = load(&conn, &username).await {
                    list = fresh;
                }
            }
        }
    }
    let _ = tx.make_writer().write_all(b"\x1b[H\x1b[2J").await;
    let _ = tx.exit_status(0).await;
    let _ = tx.eof().await;
    let _ = tx.close().await;
}

/// Runs the screen until a target is picked (`Some`) or the user quits (`None`).
async fn interact(
    conn: &Conn,
    username: &str,
    rx: &mut ChannelReadHalf,
    tx: &ChannelWriteHalf<Msg>,
    setup: &mut ChannelSetup,
    list: &[Row],
    notice: Option<String>,
) -> Option<Row> {
    let mut list = list.to_vec();
    let mut selected = 0usize;
    let mut out = tx.make_writer();
    let size = |s: &ChannelSetup| {
        s.pty
            .as_ref()
            .map_or((80, 24), |p| (p.cols as usize, p.rows as usize))
    };
    loop {
        let (cols, rows) = size(setup);
        if out
            .write_all(render(username, &list, selected, cols, rows, notice.as_deref()).as_bytes())
            .await
            .is_err()
        {
            return None;
        }
        match rx.wait().await? {
            ChannelMsg::Close | ChannelMsg::Eof => return None,
            ChannelMsg::WindowChange {
                col_width,
                row_height,
                ..
            } => {
                if let Some(p) = setup.pty.as_mut() {
                    p.cols = col_width;
                    p.rows = row_height;
                }
            }
            ChannelMsg::Data { data } => {
                for key in keys(&data) {
                    match key {
                        Key::Quit => return None,
                        Key::Up => selected = selected.saturating_sub(1),
                        Key::Down => selected = (selected + 1).min(list.len().saturating_sub(1)),
                        Key::Refresh => {
                            if let Ok(fresh) = load(conn, username).await {
                                list = fresh;
                                selected = selected.min(list.len().saturating_sub(1));
                            }
                        }
                        Key::Enter => {
                            if let Some(row) = list.get(selected) {
                                return Some(row.clone());
                            }
                        }
                        Key::Digit(d) => {
                            if d >= 1 && d <= list.len() {
                                selected = d - 1;
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Key {
    Up,
    Down,
    Enter,
    Quit,
    Refresh,
    Digit(usize),
}

fn keys(data: &[u8]) -> Vec<Key> {
    let mut keys = Vec::new();
    let mut i = 0;
    while let Some(&b) = data.get(i) {
        match b {
            0x1b if data.get(i + 1) == Some(&b'[') || data.get(i + 1) == Some(&b'O') => {
                match data.get(i + 2) {
                    Some(b'A') => keys.push(Key::Up),
                    Some(b'B') => keys.push(Key::Down),
                    _ => {}
                }
                i += 3;
                continue;
            }
            b'k' => keys.push(Key::Up),
            b'j' => keys.push(Key::Down),
            b'\r' | b'\n' => keys.push(Key::Enter),
            b'q' | 0x03 | 0x04 => keys.push(Key::Quit),
            b'r' => keys.push(Key::Refresh),
            b'1'..=b'9' => keys.push(Key::Digit((b - b'0') as usize)),
            _ => {}
        }
        i += 1;
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(n: usize) -> Vec<Row> {
        (0..n)
            .map(|i| Row {
                name: format!("target-{i}"),
                kind: "node",
                status: if i % 2 == 0 { "online" } else { "offline" },
                logins: Vec::new(),
            })
            .collect()
    }

    #[test]
    fn fits_80x24_and_scrolls_to_the_selection() {
        let screen = render("alice", &rows(50), 40, 80, 24, None);
        let lines: Vec<&str> = screen.split("\r\n").collect();
        assert!(lines.len() <= 24, "{}", lines.len());
        assert!(screen.contains("target-40"));
        assert!(!screen.contains("target-0 "));
        for line in &lines {
            let visible = line.replace("\x1b[7m", "").replace("\x1b[0m", "");
            let visible = visible.trim_start_matches("\x1b[H\x1b[2J");
            let visible = visible.split("\x1b[24;1H").last().unwrap_or_default();
            assert!(visible.chars().count() <= 80, "{visible:?}");
        }
    }

    #[test]
    fn a_notice_is_wrapped_above_the_list_and_the_screen_still_fits() {
        let notice = format!(
            "web-1 refused the password login as \"root\"; {}",
            "x".repeat(200)
        );
        let screen = render("alice", &rows(50), 0, 80, 24, Some(&notice));
        let lines: Vec<&str> = screen.split("\r\n").collect();
        assert!(lines.len() <= 24, "{}", lines.len());
        assert!(lines[2].starts_with("! web-1 refused"), "{lines:?}");
        assert!(lines[3].starts_with("xxx"), "wrapped, not cut: {lines:?}");
        assert!(screen.contains("target-0"), "the list follows");
        for line in &lines[2..6] {
            assert!(line.chars().count() <= 80, "{line:?}");
        }
    }

    #[test]
    fn keys_decode_arrows_and_letters() {
        assert_eq!(
            keys(b"\x1b[A\x1b[Bjk\r3q"),
            vec![
                Key::Up,
                Key::Down,
                Key::Down,
                Key::Up,
                Key::Enter,
                Key::Digit(3),
                Key::Quit
            ]
        );
    }
}

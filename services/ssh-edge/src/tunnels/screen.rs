//! The session channel of a login that asked for forwards (`ssh -R ... alice@edge` without
//! `-N`): prints each tunnel's address, refusals and fallbacks, and later changes; holds the
//! session open (like sish) until the client disconnects or presses Ctrl-C or `q`.

use std::sync::Arc;

use russh::server::Msg;
use russh::{Channel, ChannelMsg};
use tokio::io::AsyncWriteExt;
use tracing::debug;

use crate::edge::Conn;

pub(crate) async fn serve_channel(conn: Arc<Conn>, username: String, channel: Channel<Msg>) {
    let (mut rx, tx) = channel.split();
    // Wait for what the client asked to run; the screen is the same for shell, exec and pty.
    loop {
        match rx.wait().await {
            None | Some(ChannelMsg::Close) => return,
            Some(ChannelMsg::RequestShell { .. })
            | Some(ChannelMsg::Exec { .. })
            | Some(ChannelMsg::RequestSubsystem { .. }) => break,
            Some(_) => {}
        }
    }
    let mut out = tx.make_writer();
    let header = format!(
        "phirepass: tunnels of {username} (this session holds them: Ctrl-C or q closes)\r\n"
    );
    if out.write_all(header.as_bytes()).await.is_err() {
        return;
    }
    let mut shown = 0;
    loop {
        let changed = conn.tunnels.changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        let notes = conn.tunnels.notes_from(shown);
        shown += notes.len();
        for line in notes {
            if out
                .write_all(format!("{line}\r\n").as_bytes())
                .await
                .is_err()
            {
                return;
            }
        }
        tokio::select! {
            _ = &mut changed => {}
            msg = rx.wait() => match msg {
                Some(ChannelMsg::Data { data }) if data.iter().any(|b| matches!(b, 3 | b'q' | b'Q')) => {
                    debug!(session = %conn.id, "tunnel screen closed by the user");
                    break;
                }
                None | Some(ChannelMsg::Close) => return,
                // EOF on stdin (`ssh -R ... < /dev/null`) keeps the session: the tunnels live on.
                Some(_) => {}
            },
        }
    }
    let _ = out.write_all(b"phirepass: closing the tunnels\r\n").await;
    let _ = tx.exit_status(0).await;
    let _ = tx.eof().await;
    let _ = tx.close().await;
}

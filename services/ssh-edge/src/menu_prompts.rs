//! The management screen's answers to a target's questions. When the vault stores no login for
//! the picked target, or its unpinned host key must be confirmed (`prompt` policy), the same
//! passthrough as `alice:target@edge` runs, and its prompts are typed on the menu's terminal:
//! hidden for secrets, echoed otherwise, Ctrl-C or Ctrl-D to give up.

use std::collections::VecDeque;
use std::sync::Arc;

use russh::server::Msg;
use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf};
use tokio::io::AsyncWriteExt;

use crate::edge::Conn;
use crate::relay::{ChannelSetup, Next, Passthrough};

/// Longest answer kept; more typing is ignored.
const MAX_ANSWER: usize = 1024;

/// Asks one line on the menu's terminal (echoed); `Ok(None)` when the user cancels.
pub(crate) async fn ask_line(
    prompt: &str,
    rx: &mut ChannelReadHalf,
    tx: &ChannelWriteHalf<Msg>,
    setup: &mut ChannelSetup,
) -> Result<Option<String>, String> {
    let mut out = tx.make_writer();
    write(&mut out, prompt).await?;
    LineReader::default()
        .read_line(rx, &mut out, true, setup)
        .await
}

/// Connects to `target` as `account` (`None`: the default one) for the menu's channel, asking
/// its questions on the terminal when the vault cannot answer them. `Ok` when the relay may go
/// on (with the link made here, or to make its own with stored credentials); `Err` is a
/// message for the user.
pub(crate) async fn connect(
    conn: &Arc<Conn>,
    target: &str,
    account: Option<&str>,
    rx: &mut ChannelReadHalf,
    tx: &ChannelWriteHalf<Msg>,
    setup: &mut ChannelSetup,
) -> Result<(), String> {
    if conn.link.get().is_some() {
        return Ok(());
    }
    let Some(authed) = conn.authed.get().cloned() else {
        return Ok(());
    };
    // None: nothing to ask (stored login), or a denial the relay reports with its audit event.
    let Some(started) = Passthrough::start(conn, authed, target, account).await else {
        return Ok(());
    };
    let mut passthrough = started?;
    let mut out = tx.make_writer();
    let mut keys = LineReader::default();
    loop {
        match passthrough.next().await {
            Next::Ask {
                instructions,
                prompts,
            } => {
                let mut answers = Vec::with_capacity(prompts.len());
                if !instructions.is_empty() {
                    write(&mut out, &format!("{instructions}\n")).await?;
                }
                for (prompt, echo) in prompts {
                    write(&mut out, &prompt).await?;
                    match keys.read_line(rx, &mut out, echo, setup).await? {
                        Some(answer) => answers.push(answer),
                        None => return Err(format!("login to {target} cancelled")),
                    }
                }
                passthrough.answer(answers);
            }
            Next::Ready(link) => {
                let _ = conn.link.set(link);
                return Ok(());
            }
            Next::Failed(message) => return Err(message),
        }
    }
}

async fn write(out: &mut (impl AsyncWriteExt + Unpin), text: &str) -> Result<(), String> {
    out.write_all(text.replace('\n', "\r\n").as_bytes())
        .await
        .map_err(|_| "the terminal closed".to_string())
}

/// Line editing on a raw terminal: Enter ends a line (CR, LF or CR LF), Backspace removes a
/// character, Ctrl-U the line, escape sequences (arrow keys) are skipped. Bytes typed ahead
/// after Enter are kept for the next prompt.
#[derive(Default)]
struct LineReader {
    pending: VecDeque<u8>,
    after_cr: bool,
    in_escape: EscapeState,
}

#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum EscapeState {
    #[default]
    None,
    /// After ESC: `[` or `O` starts a sequence, anything else ends it.
    Started,
    /// Inside `ESC [` ... until a final byte (0x40..=0x7e).
    Csi,
}

/// What one typed byte does to the line.
#[derive(Debug, PartialEq, Eq)]
enum Edit {
    Push(u8),
    Erase,
    Clear,
    Enter,
    Cancel,
    Ignore,
}

impl LineReader {
    fn edit(&mut self, b: u8) -> Edit {
        let after_cr = std::mem::take(&mut self.after_cr);
        match self.in_escape {
            EscapeState::Started => {
                self.in_escape = if matches!(b, b'[' | b'O') {
                    EscapeState::Csi
                } else {
                    EscapeState::None
                };
                return Edit::Ignore;
            }
            EscapeState::Csi => {
                if (0x40..=0x7e).contains(&b) && b != b'[' {
                    self.in_escape = EscapeState::None;
                }
                return Edit::Ignore;
            }
            EscapeState::None => {}
        }
        match b {
            b'\n' if after_cr => Edit::Ignore,
            b'\r' => {
                self.after_cr = true;
                Edit::Enter
            }
            b'\n' => Edit::Enter,
            0x03 | 0x04 => Edit::Cancel,
            0x7f | 0x08 => Edit::Erase,
            0x15 => Edit::Clear,
            0x1b => {
                self.in_escape = EscapeState::Started;
                Edit::Ignore
            }
            b if b < 0x20 => Edit::Ignore,
            b => Edit::Push(b),
        }
    }

    /// Reads one answer; `Ok(None)` when the user cancels, `Err` when the channel ends.
    async fn read_line(
        &mut self,
        rx: &mut ChannelReadHalf,
        out: &mut (impl AsyncWriteExt + Unpin),
        echo: bool,
        setup: &mut ChannelSetup,
    ) -> Result<Option<String>, String> {
        let mut line: Vec<u8> = Vec::new();
        loop {
            while let Some(b) = self.pending.pop_front() {
                let shown: &[u8] = match self.edit(b) {
                    Edit::Push(b) if line.len() < MAX_ANSWER => {
                        line.push(b);
                        if echo { &[b] } else { &[] }
                    }
                    Edit::Erase => {
                        let erased = pop_char(&mut line);
                        if echo && erased { b"\x08 \x08" } else { &[] }
                    }
                    Edit::Clear => {
                        let width = String::from_utf8_lossy(&line).chars().count();
                        line.clear();
                        if echo {
                            let wipe = "\x08 \x08".repeat(width);
                            write(out, &wipe).await?;
                        }
                        &[]
                    }
                    Edit::Enter => {
                        write(out, "\n").await?;
                        return Ok(Some(String::from_utf8_lossy(&line).into_owned()));
                    }
                    Edit::Cancel => {
                        write(out, "\n").await?;
                        return Ok(None);
                    }
                    Edit::Push(_) | Edit::Ignore => &[],
                };
                if !shown.is_empty() {
                    out.write_all(shown)
                        .await
                        .map_err(|_| "the terminal closed".to_string())?;
                }
            }
            match rx.wait().await {
                Some(ChannelMsg::Data { data }) => self.pending.extend(data.iter()),
                Some(ChannelMsg::WindowChange {
                    col_width,
                    row_height,
                    ..
                }) => {
                    if let Some(p) = setup.pty.as_mut() {
                        p.cols = col_width;
                        p.rows = row_height;
                    }
                }
                Some(ChannelMsg::Eof | ChannelMsg::Close) | None => {
                    return Err("the terminal closed".into());
                }
                Some(_) => {}
            }
        }
    }
}

/// Removes the last UTF-8 character; false when the line was empty.
fn pop_char(line: &mut Vec<u8>) -> bool {
    while let Some(b) = line.pop() {
        if b & 0xc0 != 0x80 {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edits(bytes: &[u8]) -> Vec<Edit> {
        let mut r = LineReader::default();
        bytes.iter().map(|&b| r.edit(b)).collect()
    }

    #[test]
    fn enter_is_cr_lf_or_crlf_once() {
        assert_eq!(
            edits(b"a\r\nb\n"),
            vec![
                Edit::Push(b'a'),
                Edit::Enter,
                Edit::Ignore,
                Edit::Push(b'b'),
                Edit::Enter
            ]
        );
        assert_eq!(edits(b"\r\r"), vec![Edit::Enter, Edit::Enter]);
    }

    #[test]
    fn arrow_keys_and_controls_are_not_typed() {
        assert_eq!(
            edits(b"\x1b[A\x1bOBx\x07\x03"),
            vec![
                Edit::Ignore,
                Edit::Ignore,
                Edit::Ignore,
                Edit::Ignore,
                Edit::Ignore,
                Edit::Ignore,
                Edit::Push(b'x'),
                Edit::Ignore,
                Edit::Cancel
            ]
        );
        assert_eq!(
            edits(b"\x7f\x08\x15"),
            vec![Edit::Erase, Edit::Erase, Edit::Clear]
        );
    }

    #[test]
    fn backspace_removes_a_whole_character() {
        let mut line = "pé".as_bytes().to_vec();
        assert!(pop_char(&mut line));
        assert_eq!(line, b"p");
        assert!(pop_char(&mut line));
        assert!(!pop_char(&mut line));
    }
}

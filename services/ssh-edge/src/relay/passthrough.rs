//! Login-time passthrough for `user:target@edge`. The target is reached while the client is
//! still authenticating: once the user is verified (public key, password), the edge answers
//! "partial success, continue with keyboard-interactive" and relays, as keyboard-interactive
//! rounds, what only she can answer: the target's own password / keyboard-interactive prompts
//! when the vault stores no login, and the host-key question of the `prompt` policy. Her SSH
//! client shows them like any prompt (no echo for secrets), for shells, exec, scp and sftp alike.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use phirepass_proto::authz::ListAccessibleTargetsRequest;
use phirepass_ssh_target::{
    Credentials, HostKeyInfo, HostKeyPolicy, HostKeyPrompt, KbiResponder, KbiRound,
};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{Instrument, info, info_span, warn};

use crate::config::UnknownHostKey;
use crate::edge::{Authed, Conn};
use crate::relay::access::{LoginAsk, authorize};
use crate::relay::link::{self, TargetLink};

/// What the connecting task needs from the user, or how it ended.
enum Step {
    Ask {
        instructions: String,
        prompts: Vec<(String, bool)>,
        reply: oneshot::Sender<Vec<String>>,
    },
    Done(Result<Arc<TargetLink>, String>),
}

/// Asks the user through the login's keyboard-interactive exchange.
struct Asker {
    target: String,
    steps: mpsc::Sender<Step>,
}

impl Asker {
    async fn ask(&self, instructions: String, prompts: Vec<(String, bool)>) -> Option<Vec<String>> {
        let (reply, answer) = oneshot::channel();
        self.steps
            .send(Step::Ask {
                instructions,
                prompts,
                reply,
            })
            .await
            .ok()?;
        answer.await.ok()
    }
}

impl KbiResponder for Asker {
    fn respond<'a>(
        &'a self,
        round: &'a KbiRound,
    ) -> Pin<Box<dyn Future<Output = Option<Vec<String>>> + Send + 'a>> {
        Box::pin(async move {
            // Name the target so the user knows whose prompt this is.
            let prompts = round
                .prompts
                .iter()
                .map(|(prompt, echo)| {
                    if prompt.contains(&self.target) {
                        (prompt.clone(), *echo)
                    } else {
                        (format!("[{}] {prompt}", self.target), *echo)
                    }
                })
                .collect();
            let instructions = [round.name.as_str(), round.instructions.as_str()]
                .iter()
                .filter(|s| !s.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join("\n");
            self.ask(instructions, prompts).await
        })
    }
}

/// How often an answer other than yes/no is asked again.
const HOST_KEY_ASKS: usize = 3;

impl HostKeyPrompt for Asker {
    fn confirm<'a>(
        &'a self,
        target: &'a str,
        key: &'a HostKeyInfo,
    ) -> Pin<Box<dyn Future<Output = bool> + Send + 'a>> {
        Box::pin(async move {
            // The question goes in the prompt: OpenSSH hides instructions below LogLevel INFO.
            let prompt = format!(
                "The host key of {target} is not pinned: {} {}\nTrust it and pin it for {target}? (yes/no): ",
                key.algorithm, key.fingerprint
            );
            for _ in 0..HOST_KEY_ASKS {
                let answer = self.ask(String::new(), vec![(prompt.clone(), true)]).await;
                let Some(answer) = answer.and_then(|a| a.into_iter().next()) else {
                    return false;
                };
                match answer.trim().to_ascii_lowercase().as_str() {
                    "yes" => {
                        info!(target, fingerprint = %key.fingerprint, "user accepted the target host key");
                        return true;
                    }
                    "no" => break,
                    _ => {}
                }
            }
            info!(target, fingerprint = %key.fingerprint, "user did not accept the target host key");
            false
        })
    }
}

/// Whether `target` is among the targets `username` may reach (no audit event).
async fn may_reach(conn: &Conn, username: &str, target: &str) -> bool {
    let listed = conn
        .edge
        .authz
        .clone()
        .list_accessible_targets(ListAccessibleTargetsRequest {
            username: username.to_owned(),
        })
        .await;
    match listed {
        Ok(reply) => reply
            .into_inner()
            .targets
            .iter()
            .filter_map(|a| a.target.as_ref())
            .any(|t| t.name == target),
        Err(status) => {
            warn!(error = %status.message(), "listing targets failed");
            false
        }
    }
}

/// What the login should do next.
pub(crate) enum Next {
    /// Send these prompts to the user (a keyboard-interactive round).
    Ask {
        instructions: String,
        prompts: Vec<(String, bool)>,
    },
    /// The target accepted: the login succeeds with this link.
    Ready(Arc<TargetLink>),
    /// The user's answers or the target failed; the message is for the user.
    Failed(String),
}

/// A target connection waiting for the user's answers.
pub(crate) struct Passthrough {
    /// Who to let in once the target accepts.
    pub authed: Authed,
    steps: mpsc::Receiver<Step>,
    /// The first question, asked only once the target was reached and its handshake done.
    first: Option<Step>,
    pending: Option<oneshot::Sender<Vec<String>>>,
    task: JoinHandle<()>,
}

impl Drop for Passthrough {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Passthrough {
    /// Decides, for a verified relay login as `account` (`None`: the default one), whether
    /// the user must answer something before the target can be used; if so, connects and
    /// returns once the target asks its first question. `None`: log in as usual (a denial or
    /// a vault failure is then reported on the channel, with the usual message and audit).
    /// `Some(Err)`: the target cannot be used (unknown to the agent, offline, nothing
    /// listening, a refused handshake), found before anything was asked.
    pub(crate) async fn start(
        conn: &Arc<Conn>,
        authed: Authed,
        target: &str,
        account: Option<&str>,
    ) -> Option<Result<Self, String>> {
        // The common case costs one vault read: a stored login needs nobody's answers. The
        // vault's answer is never shown, so reading it before authorising reveals nothing.
        let policy = conn.edge.config.unknown_host_key;
        let plan = link::plan(conn, target, &authed.username).await.ok()?;
        let configured = plan.configured_login();
        let plan = plan.for_account(account.unwrap_or_default());
        if !plan.needs_user(policy) {
            return None;
        }
        // Only a target she may reach is authorised (and audited) now: unknown and forbidden
        // ones keep their single refusal, audited per channel action.
        if !may_reach(conn, &authed.username, target).await {
            return None;
        }
        let ask = LoginAsk {
            requested: account.unwrap_or_default().to_owned(),
            configured,
        };
        let decision = authorize(conn, &authed.username, target, "login", &ask)
            .await
            .ok()?;
        let plan = if decision.target_name == plan.name {
            plan
        } else {
            link::plan(conn, &decision.target_name, &authed.username)
                .await
                .ok()?
        }
        .for_account(&decision.login);
        if !plan.needs_user(policy) {
            return None;
        }
        let (tx, steps) = mpsc::channel(1);
        let asker = Arc::new(Asker {
            target: plan.name.clone(),
            steps: tx.clone(),
        });
        let credentials = plan
            .credentials
            .clone()
            .unwrap_or_else(|| Credentials::KeyboardInteractive(asker.clone()));
        let policy = match policy {
            UnknownHostKey::AcceptOnce => HostKeyPolicy::AcceptOnce,
            UnknownHostKey::Reject => HostKeyPolicy::Reject,
            UnknownHostKey::Prompt => HostKeyPolicy::Prompt(asker),
        };
        let spec = plan.spec(conn, credentials, policy);
        info!(session = %conn.id, user = %authed.username, target = %plan.name, method = spec.credentials.method(), "login needs the user's answers for the target");
        let span = info_span!("passthrough", session = %conn.id, user = %authed.username, target = %plan.name);
        conn.interactive
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let conn = conn.clone();
        let (user, configured) = (authed.username.clone(), ask.configured);
        let task = tokio::spawn(
            async move {
                let result = link::connect_link(&conn, &decision, &spec, &configured)
                    .await
                    .map_err(|e| link::describe(e, &user, &decision));
                let _ = tx.send(Step::Done(result)).await;
            }
            .instrument(span),
        );
        // Reach the target and finish its handshake before the user is asked anything (the
        // flag above gives her login the time the target allows meanwhile).
        let mut steps = steps;
        let first = match steps.recv().await {
            Some(Step::Done(Err(message))) => return Some(Err(message)),
            Some(step) => step,
            None => return Some(Err("the connection to the target ended".into())),
        };
        Some(Ok(Self {
            authed,
            steps,
            first: Some(first),
            pending: None,
            task,
        }))
    }

    /// Hands the user's answers to the waiting prompt.
    pub(crate) fn answer(&mut self, answers: Vec<String>) {
        if let Some(reply) = self.pending.take() {
            let _ = reply.send(answers);
        }
    }

    /// Waits for the next question or the end (bounded by the target timeouts).
    pub(crate) async fn next(&mut self) -> Next {
        let step = match self.first.take() {
            Some(step) => Some(step),
            None => self.steps.recv().await,
        };
        match step {
            Some(Step::Ask {
                instructions,
                prompts,
                reply,
            }) => {
                self.pending = Some(reply);
                Next::Ask {
                    instructions,
                    prompts,
                }
            }
            Some(Step::Done(Ok(link))) => Next::Ready(link),
            Some(Step::Done(Err(message))) => Next::Failed(message),
            None => Next::Failed("the connection to the target ended".into()),
        }
    }
}

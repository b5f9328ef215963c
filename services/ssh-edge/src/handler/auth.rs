//! Authentication for [`EdgeHandler`]: authz verifies passwords and keys, a malformed
//! username is refused once with its reason, and a relay login whose target needs the user's
//! answers continues with keyboard-interactive rounds (`relay::passthrough`).

use std::sync::atomic::Ordering;

use phirepass_proto::authz::VerifyPasswordRequest;
use russh::server::{Auth, Response};
use russh::{Disconnect, MethodKind, MethodSet};
use tracing::{debug, info, warn};

use super::EdgeHandler;
use crate::edge::{Authed, Conn};
use crate::relay::{Next, Passthrough};
use crate::username::{self, Login};

fn methods() -> MethodSet {
    MethodSet::from(
        &[
            MethodKind::PublicKey,
            MethodKind::Password,
            MethodKind::KeyboardInteractive,
        ][..],
    )
}

/// Keeps every method on offer after a failure (russh would drop the failed one).
pub(super) fn reject() -> Auth {
    Auth::Reject {
        proceed_with_methods: Some(methods()),
        partial_success: false,
    }
}

impl EdgeHandler {
    /// Starts (or continues) attempts for `raw`; `None` when the username is malformed.
    pub(super) async fn begin(&mut self, raw: &str) -> Option<Login> {
        if self.auth_user.as_deref() != Some(raw) {
            if self.auth_user.is_some() {
                debug!(peer = %self.conn.peer, "username changed during authentication: state reset");
            }
            self.auth_user = Some(raw.to_owned());
            self.kbi_prompted = false;
            self.passthrough = None;
        }
        match username::parse(raw) {
            Ok(login) => Some(login),
            Err(invalid) => {
                self.refuse(&invalid).await;
                None
            }
        }
    }

    /// Tells the client why (as a disconnect message) and records an audit event, once.
    async fn refuse(&mut self, invalid: &username::InvalidLogin) {
        if std::mem::replace(&mut self.refused, true) {
            return;
        }
        self.conn.auth_failures.fetch_add(1, Ordering::Relaxed);
        warn!(peer = %self.conn.peer, login = %invalid.shown, reason = %invalid.problem, "ssh login refused: invalid username");
        self.disconnect(Disconnect::IllegalUserName, invalid.to_string())
            .await;
        let conn = self.conn.clone();
        let reason = invalid.problem.to_string();
        let shown = invalid.shown.clone();
        tokio::spawn(async move {
            crate::audit::refused_login(&conn.edge, &shown, &reason, &conn.client_ip()).await;
        });
    }

    /// Queues a disconnect with `message`, so russh sends it right after this attempt's
    /// failure: the client reads the reason before it can give up with a bare "Permission
    /// denied". Bounded: the session loop drains this queue only after the callback returns.
    async fn disconnect(&self, reason: Disconnect, message: String) {
        match self.conn.handle.get() {
            Some(handle) => {
                let send = handle.disconnect(reason, message, "en".into());
                if tokio::time::timeout(std::time::Duration::from_millis(100), send)
                    .await
                    .is_err()
                {
                    warn!("disconnect message not queued");
                }
            }
            None => warn!("no session handle yet: login refused without a reason"),
        }
    }

    /// The user is verified. A relay login whose target needs her answers continues with
    /// keyboard-interactive (partial success); any other login is complete.
    pub(super) async fn accept(
        &mut self,
        login: Login,
        user: Option<phirepass_proto::authz::User>,
        method: &str,
    ) -> Auth {
        let Some(user) = user else {
            return reject();
        };
        let authed = Authed {
            login,
            user_id: user.id,
            username: user.username,
        };
        if let Login::Relay { target, .. } = &authed.login {
            let target = target.clone();
            let account = authed.login.account().map(str::to_owned);
            let started =
                Passthrough::start(&self.conn, authed.clone(), &target, account.as_deref()).await;
            if let Some(Err(message)) = started {
                // Found before any question: the login completes and every channel reports it
                // (stderr, exit status 1), which a disconnect message racing the client's
                // "Permission denied" cannot promise.
                info!(peer = %self.conn.peer, user = %authed.username, target, error = %message, "target unusable: reported on the channel");
                let _ = self.conn.link_error.set(message);
            } else if let Some(Ok(passthrough)) = started {
                info!(peer = %self.conn.peer, user = %authed.username, target, method, "user verified: continuing with the target's prompts");
                self.passthrough = Some(passthrough);
                self.conn
                    .interactive
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                return Auth::Reject {
                    proceed_with_methods: Some(MethodSet::from(
                        &[MethodKind::KeyboardInteractive][..],
                    )),
                    partial_success: true,
                };
            }
        }
        self.complete(authed, method)
    }

    fn complete(&mut self, authed: Authed, method: &str) -> Auth {
        info!(peer = %self.conn.peer, user = %authed.username, target = ?authed.login.target(), method, session = %self.conn.id, "ssh login");
        let _ = self.conn.authed.set(authed);
        // Held for access re-checks: a disabled user loses every connection.
        crate::relay::revocation::hold(&self.conn);
        self.preauth = None;
        Auth::Accept
    }

    pub(super) async fn verify_password(
        &mut self,
        login: Login,
        password: &str,
        method: &str,
    ) -> Auth {
        let request = VerifyPasswordRequest {
            username: login.user().to_owned(),
            password: password.to_owned(),
            client_ip: Some(self.conn.client_ip()),
        };
        match self.conn.edge.authz.clone().verify_password(request).await {
            Ok(user) => self.accept(login, Some(user.into_inner()), method).await,
            Err(status) => {
                log_failure(&self.conn, login.user(), method, &status);
                reject()
            }
        }
    }

    /// One keyboard-interactive step of the passthrough: hand over the user's answers, then
    /// relay the target's next question, or finish the login.
    pub(super) async fn passthrough_round(&mut self, response: Option<Response<'_>>) -> Auth {
        let Some(passthrough) = self.passthrough.as_mut() else {
            return reject();
        };
        // A fresh request (no response) while a question waits leaves it unanswered: the
        // target then refuses, and the user learns why below.
        let answers = response
            .map(|r| {
                r.map(|b| String::from_utf8_lossy(&b).into_owned())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        passthrough.answer(answers);
        match passthrough.next().await {
            Next::Ask {
                instructions,
                prompts,
            } => Auth::Partial {
                name: "".into(),
                instructions: instructions.into(),
                prompts: prompts
                    .into_iter()
                    .map(|(p, echo)| (p.into(), echo))
                    .collect::<Vec<_>>()
                    .into(),
            },
            Next::Ready(link) => {
                let authed = passthrough.authed.clone();
                self.passthrough = None;
                let _ = self.conn.link.set(link);
                self.complete(authed, "keyboard-interactive passthrough")
            }
            Next::Failed(message) => {
                self.passthrough = None;
                info!(peer = %self.conn.peer, error = %message, "login refused: the target did not accept");
                self.disconnect(Disconnect::ByApplication, format!("phirepass: {message}"))
                    .await;
                Auth::Reject {
                    proceed_with_methods: Some(MethodSet::from(
                        &[MethodKind::KeyboardInteractive][..],
                    )),
                    partial_success: false,
                }
            }
        }
    }
}

pub(super) fn log_failure(conn: &Conn, user: &str, method: &str, status: &tonic::Status) {
    if status.code() == tonic::Code::Unauthenticated {
        conn.auth_failures.fetch_add(1, Ordering::Relaxed);
        info!(peer = %conn.peer, user, method, "ssh authentication failed");
    } else {
        warn!(peer = %conn.peer, user, method, error = %status.message(), "ssh authentication could not be checked");
    }
}

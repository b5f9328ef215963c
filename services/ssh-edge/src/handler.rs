//! The russh server handler: turns authentication callbacks into authz calls and hands each
//! session channel to a task (relay or management screen). Auth state is tied to the username
//! being tried: when it changes mid-connection, everything learnt so far is forgotten.

use std::sync::Arc;

use phirepass_proto::authz::{VerifyPasswordRequest, VerifyUserKeyRequest};
use russh::server::{
    Auth, ChannelOpenHandle, Handler, Msg, PublicKeyOffer, Response, Session, VerifiedPublicKey,
};
use russh::{Channel, ChannelId, Disconnect, MethodKind, MethodSet, Pty};
use tokio::sync::OwnedSemaphorePermit;
use tracing::{debug, info, warn};

use crate::edge::{Authed, Conn};
use crate::relay::{Next, Passthrough};
use crate::username::{self, Login};

pub(crate) struct EdgeHandler {
    conn: Arc<Conn>,
    /// The SSH username the current attempts are for.
    auth_user: Option<String>,
    /// A keyboard-interactive prompt was sent for `auth_user`.
    kbi_prompted: bool,
    /// Held while unauthenticated; released on login.
    preauth: Option<OwnedSemaphorePermit>,
    refused: bool,
    /// The user is verified; the target waits for her answers (see `relay::passthrough`).
    passthrough: Option<Passthrough>,
}

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
fn reject() -> Auth {
    Auth::Reject {
        proceed_with_methods: Some(methods()),
        partial_success: false,
    }
}

impl EdgeHandler {
    pub fn new(conn: Arc<Conn>, preauth: OwnedSemaphorePermit) -> Self {
        Self {
            conn,
            auth_user: None,
            kbi_prompted: false,
            preauth: Some(preauth),
            refused: false,
            passthrough: None,
        }
    }

    /// Starts (or continues) attempts for `raw`; `None` when the username is malformed.
    async fn begin(&mut self, raw: &str) -> Option<Login> {
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
    async fn accept(
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
            if let Some(passthrough) = Passthrough::start(&self.conn, authed.clone(), &target).await
            {
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
        self.preauth = None;
        Auth::Accept
    }

    async fn verify_password(&mut self, login: Login, password: &str, method: &str) -> Auth {
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
}

impl EdgeHandler {
    /// One keyboard-interactive step of the passthrough: hand over the user's answers, then
    /// relay the target's next question, or finish the login.
    async fn passthrough_round(&mut self, response: Option<Response<'_>>) -> Auth {
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

fn log_failure(conn: &Conn, user: &str, method: &str, status: &tonic::Status) {
    if status.code() == tonic::Code::Unauthenticated {
        info!(peer = %conn.peer, user, method, "ssh authentication failed");
    } else {
        warn!(peer = %conn.peer, user, method, error = %status.message(), "ssh authentication could not be checked");
    }
}

impl Handler for EdgeHandler {
    type Error = russh::Error;

    async fn auth_none(&mut self, user: &str) -> Result<Auth, Self::Error> {
        self.begin(user).await;
        Ok(reject())
    }

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        let Some(login) = self.begin(user).await else {
            return Ok(reject());
        };
        Ok(self.verify_password(login, password, "password").await)
    }

    /// Any well-formed offer gets PK_OK: which keys a user has is not revealed, and nothing
    /// is decided before russh has verified the signature (`auth_publickey`).
    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        _offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        // A malformed username also gets PK_OK (never success: `auth_publickey` refuses it):
        // the extra round trip lets russh send the queued disconnect, with its reason, before
        // the client runs out of methods and prints a bare "Permission denied".
        self.begin(user).await;
        Ok(Auth::Accept)
    }

    /// Called only after russh verified the signature over this session.
    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        let Some(login) = self.begin(user).await else {
            return Ok(reject());
        };
        let mut plain = key.public_key.clone();
        plain.set_comment("");
        let Ok(public_key) = plain.to_openssh() else {
            return Ok(reject());
        };
        let request = VerifyUserKeyRequest {
            username: login.user().to_owned(),
            public_key,
            client_ip: Some(self.conn.client_ip()),
        };
        Ok(
            match self.conn.edge.authz.clone().verify_user_key(request).await {
                Ok(reply) => {
                    let user = reply.into_inner().user;
                    self.accept(login, user, "publickey").await
                }
                Err(status) => {
                    log_failure(&self.conn, login.user(), "publickey", &status);
                    reject()
                }
            },
        )
    }

    async fn auth_keyboard_interactive<'a>(
        &'a mut self,
        user: &str,
        _submethods: &str,
        response: Option<Response<'a>>,
    ) -> Result<Auth, Self::Error> {
        let Some(login) = self.begin(user).await else {
            return Ok(reject());
        };
        if self.passthrough.is_some() {
            return Ok(self.passthrough_round(response).await);
        }
        match response {
            Some(mut answers) if self.kbi_prompted => {
                self.kbi_prompted = false;
                let Some(password) = answers.next() else {
                    return Ok(reject());
                };
                let password = String::from_utf8_lossy(&password).into_owned();
                Ok(self
                    .verify_password(login, &password, "keyboard-interactive")
                    .await)
            }
            _ => {
                self.kbi_prompted = true;
                Ok(Auth::Partial {
                    name: "".into(),
                    instructions: "".into(),
                    prompts: vec![("Password: ".into(), false)].into(),
                })
            }
        }
    }

    // Requests are answered at once: the channel task relays them in order and reports any
    // target-side failure in-band (stderr and exit status). Replying later would race russh's
    // per-channel want-reply flag when clients pipeline pty-req, env and shell.
    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _cols: u32,
        _rows: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        _name: &str,
        _value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        _command: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        _name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(authed) = self.conn.authed.get().cloned() else {
            // Dropping `reply` refuses the channel.
            return Ok(());
        };
        reply.accept().await;
        let conn = self.conn.clone();
        let handle = session.handle();
        match authed.login {
            Login::Relay { target, .. } => {
                tokio::spawn(crate::relay::serve_channel(
                    conn,
                    authed.username,
                    target,
                    channel,
                    handle,
                ));
            }
            Login::Menu { .. } if conn.tunnels.requested() => {
                tokio::spawn(crate::tunnels::serve_channel(
                    conn,
                    authed.username,
                    channel,
                ));
            }
            Login::Menu { .. } => {
                tokio::spawn(crate::menu::serve_channel(
                    conn,
                    authed.username,
                    channel,
                    handle,
                ));
            }
        }
        Ok(())
    }

    /// `ssh -R`: a virtual bind (nothing listens here), management logins only. Answered after
    /// the name is claimed and registered, so the client learns the outcome at once.
    async fn tcpip_forward(
        &mut self,
        address: &str,
        port: &mut u32,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        Ok(crate::tunnels::forward(&self.conn, address, *port).await)
    }

    async fn cancel_tcpip_forward(
        &mut self,
        address: &str,
        port: u32,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        Ok(crate::tunnels::cancel(&self.conn, address, port).await)
    }

    /// `-W alias:port` / `-L`: private `ssh -R` aliases only (relay logins are refused).
    async fn channel_open_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        host_to_connect: &str,
        port_to_connect: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        crate::tunnels::open_alias(&self.conn, channel, host_to_connect, port_to_connect, reply)
            .await;
        Ok(())
    }
}

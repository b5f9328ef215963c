//! The russh server handler: turns authentication callbacks into authz calls (see [`auth`])
//! and hands each session channel to a task (relay or management screen). Auth state is tied
//! to the username being tried: when it changes mid-connection, everything learnt so far is
//! forgotten.

mod auth;

use std::sync::Arc;

use phirepass_proto::authz::VerifyUserKeyRequest;
use russh::server::{
    Auth, ChannelOpenHandle, Handler, Msg, PublicKeyOffer, Response, Session, VerifiedPublicKey,
};
use russh::{Channel, ChannelId, Pty};
use tokio::sync::OwnedSemaphorePermit;

use crate::edge::Conn;
use crate::per_source::SourceSlot;
use crate::relay::Passthrough;
use crate::username::Login;
use auth::{log_failure, reject};

pub(crate) struct EdgeHandler {
    conn: Arc<Conn>,
    /// The SSH username the current attempts are for.
    auth_user: Option<String>,
    /// A keyboard-interactive prompt was sent for `auth_user`.
    kbi_prompted: bool,
    /// The global and per-source slots, held while unauthenticated; released on login.
    preauth: Option<(OwnedSemaphorePermit, SourceSlot)>,
    refused: bool,
    /// The user is verified; the target waits for her answers (see `relay::passthrough`).
    passthrough: Option<Passthrough>,
}

impl EdgeHandler {
    pub fn new(conn: Arc<Conn>, permit: OwnedSemaphorePermit, source: SourceSlot) -> Self {
        Self {
            conn,
            auth_user: None,
            kbi_prompted: false,
            preauth: Some((permit, source)),
            refused: false,
            passthrough: None,
        }
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
            Login::Relay {
                target, account, ..
            } => {
                tokio::spawn(crate::relay::serve_channel(
                    conn,
                    authed.username,
                    target,
                    account,
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

//! How the edge logs in to a target: a password, a private key (optionally passphrase
//! protected), or keyboard-interactive answers supplied by a callback (passthrough to a user).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use russh::client::{self, AuthResult, KeyboardInteractiveAuthResponse};
use russh::keys::{PrivateKeyWithHashAlg, decode_secret_key};

use crate::error::TargetError;

/// One keyboard-interactive round as the target sent it.
#[derive(Clone, Debug)]
pub struct KbiRound {
    pub name: String,
    pub instructions: String,
    /// (prompt, echo)
    pub prompts: Vec<(String, bool)>,
}

/// Answers keyboard-interactive rounds (e.g. by asking the user); `None` gives up.
pub trait KbiResponder: Send + Sync {
    fn respond<'a>(
        &'a self,
        round: &'a KbiRound,
    ) -> Pin<Box<dyn Future<Output = Option<Vec<String>>> + Send + 'a>>;
}

/// The secret material for one target. Debug never prints a secret.
#[derive(Clone)]
pub enum Credentials {
    Password(String),
    /// OpenSSH private key text and its passphrase, if it has one.
    Key {
        openssh: String,
        passphrase: Option<String>,
    },
    KeyboardInteractive(Arc<dyn KbiResponder>),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Credentials::Password(_) => "Password(<redacted>)",
            Credentials::Key {
                passphrase: Some(_),
                ..
            } => "Key(<redacted>, passphrase)",
            Credentials::Key { .. } => "Key(<redacted>)",
            Credentials::KeyboardInteractive(_) => "KeyboardInteractive",
        })
    }
}

impl Credentials {
    pub fn method(&self) -> &'static str {
        match self {
            Credentials::Password(_) => "password",
            Credentials::Key { .. } => "publickey",
            Credentials::KeyboardInteractive(_) => "keyboard-interactive",
        }
    }
}

/// Most keyboard-interactive rounds: a password server answers PAM-style prompts.
const MAX_KBI_ROUNDS: usize = 8;

/// Logs in; `Ok(false)` means the target refused the credentials.
pub(crate) async fn authenticate<H: client::Handler>(
    handle: &mut client::Handle<H>,
    target: &str,
    username: &str,
    credentials: &Credentials,
) -> Result<bool, TargetError> {
    let protocol = |e: russh::Error| TargetError::Protocol(format!("authentication: {e}"));
    match credentials {
        Credentials::Password(password) => {
            let r = handle
                .authenticate_password(username, password)
                .await
                .map_err(protocol)?;
            if matches!(r, AuthResult::Success) {
                return Ok(true);
            }
            // Servers behind PAM often accept the password only through keyboard-interactive.
            let answer = PasswordAnswer(password.clone());
            Ok(keyboard_interactive(handle, username, &answer)
                .await?
                .unwrap_or(false))
        }
        Credentials::Key {
            openssh,
            passphrase,
        } => {
            let key = decode_secret_key(openssh, passphrase.as_deref()).map_err(|e| {
                TargetError::Credentials(format!(
                    "the stored private key cannot be used (wrong passphrase or not an OpenSSH key): {e}"
                ))
            })?;
            let hash = if key.algorithm().is_rsa() {
                handle
                    .best_supported_rsa_hash()
                    .await
                    .map_err(protocol)?
                    .flatten()
            } else {
                None
            };
            let r = handle
                .authenticate_publickey(username, PrivateKeyWithHashAlg::new(Arc::new(key), hash))
                .await
                .map_err(protocol)?;
            Ok(matches!(r, AuthResult::Success))
        }
        Credentials::KeyboardInteractive(responder) => {
            if let Some(done) = keyboard_interactive(handle, username, responder.as_ref()).await? {
                return Ok(done);
            }
            // The target does not offer keyboard-interactive (e.g. sshd without PAM): ask the
            // responder for a password the way OpenSSH would, and log in with it.
            let round = KbiRound {
                name: String::new(),
                instructions: String::new(),
                prompts: vec![(format!("{username}@{target}'s password: "), false)],
            };
            let Some(password) = responder
                .respond(&round)
                .await
                .and_then(|answers| answers.into_iter().next())
            else {
                return Ok(false);
            };
            let r = handle
                .authenticate_password(username, password)
                .await
                .map_err(protocol)?;
            Ok(matches!(r, AuthResult::Success))
        }
    }
}

struct PasswordAnswer(String);

impl KbiResponder for PasswordAnswer {
    fn respond<'a>(
        &'a self,
        round: &'a KbiRound,
    ) -> Pin<Box<dyn Future<Output = Option<Vec<String>>> + Send + 'a>> {
        // Only a single hidden prompt is taken to be the password prompt.
        let answer = match round.prompts.as_slice() {
            [] => Some(Vec::new()),
            [(_, false)] => Some(vec![self.0.clone()]),
            _ => None,
        };
        Box::pin(async move { answer })
    }
}

/// `Ok(None)`: the target refused the method before asking anything (it does not offer it).
async fn keyboard_interactive<H: client::Handler>(
    handle: &mut client::Handle<H>,
    username: &str,
    responder: &dyn KbiResponder,
) -> Result<Option<bool>, TargetError> {
    let protocol = |e: russh::Error| TargetError::Protocol(format!("keyboard-interactive: {e}"));
    let mut reply = handle
        .authenticate_keyboard_interactive_start(username, None::<String>)
        .await
        .map_err(protocol)?;
    for round in 0..MAX_KBI_ROUNDS {
        match reply {
            KeyboardInteractiveAuthResponse::Success => return Ok(Some(true)),
            KeyboardInteractiveAuthResponse::Failure { .. } if round == 0 => return Ok(None),
            KeyboardInteractiveAuthResponse::Failure { .. } => return Ok(Some(false)),
            KeyboardInteractiveAuthResponse::InfoRequest {
                name,
                instructions,
                prompts,
            } => {
                let round = KbiRound {
                    name,
                    instructions,
                    prompts: prompts.into_iter().map(|p| (p.prompt, p.echo)).collect(),
                };
                let Some(answers) = responder.respond(&round).await else {
                    return Ok(Some(false));
                };
                reply = handle
                    .authenticate_keyboard_interactive_respond(answers)
                    .await
                    .map_err(protocol)?;
            }
        }
    }
    Ok(Some(false))
}

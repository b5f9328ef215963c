//! ResolveHostAuth: the decrypted material an edge logs in with. An
//! assigned credential overrides the inline auth options.

use std::collections::BTreeMap;

use zeroize::Zeroizing;

use crate::credentials::CredentialKind;
use crate::error::{Result, SecretsError};
use crate::options::{AUTH_ID, is_secret};
use crate::vault::Vault;

/// Where the auth material came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthSource {
    Inline,
    Credential,
}

/// Decrypted auth material. Debug shows no secret.
pub struct HostAuth {
    pub source: AuthSource,
    pub method: String,
    pub username: Option<String>,
    pub password: Option<Zeroizing<String>>,
    pub identity: Option<Zeroizing<String>>,
    pub passphrase: Option<Zeroizing<String>>,
    pub credential_name: Option<String>,
    /// Non-secret, non-auth options (compression, insecure, hostkey.openssh).
    pub options: BTreeMap<String, String>,
}

impl std::fmt::Debug for HostAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostAuth")
            .field("source", &self.source)
            .field("method", &self.method)
            .field("username", &self.username)
            .field("credential_name", &self.credential_name)
            .finish_non_exhaustive()
    }
}

impl Vault {
    #[tracing::instrument(skip(self))]
    pub async fn resolve_host_auth(&self, host: &str) -> Result<HostAuth> {
        let mut opts = self.host_options(host).await?;
        if opts.is_empty() {
            return Err(SecretsError::NotFound("host options"));
        }
        let options = opts
            .iter()
            .filter(|(k, _)| !k.starts_with("auth.") && !is_secret(k))
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect();
        let inline_username = opts.remove("auth.username").map(|u| u.to_string());

        if let Some(id) = opts.get(AUTH_ID) {
            let cred = self.open_credential(id).await?.ok_or_else(|| {
                SecretsError::FailedPrecondition("the assigned credential no longer exists".into())
            })?;
            let meta_username = serde_json::from_str::<serde_json::Value>(&cred.meta_json)
                .ok()
                .and_then(|m| m.get("username")?.as_str().map(str::to_owned));
            let (method, password, identity) = match cred.kind {
                CredentialKind::Password => ("password", Some(cred.secret), None),
                CredentialKind::SshKey => ("publickey", None, Some(cred.secret)),
            };
            tracing::debug!(credential = %cred.name, "host auth from credential");
            return Ok(HostAuth {
                source: AuthSource::Credential,
                method: method.to_owned(),
                username: meta_username.or(inline_username),
                password,
                identity,
                passphrase: cred.passphrase,
                credential_name: Some(cred.name),
                options,
            });
        }

        let password = opts.remove("auth.password");
        let identity = opts.remove("auth.identity");
        let method = match opts.get("auth.method") {
            Some(method) => method.to_string(),
            None if identity.is_some() => "publickey".to_owned(),
            None if password.is_some() => "password".to_owned(),
            None => String::new(),
        };
        Ok(HostAuth {
            source: AuthSource::Inline,
            method,
            username: inline_username,
            password,
            identity,
            passphrase: opts.remove("auth.passphrase"),
            credential_name: None,
            options,
        })
    }
}

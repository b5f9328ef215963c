//! Relay host options: every value sealed, secret ones never listed.

use std::collections::BTreeMap;

use phirepass_store::{RelayOptionRow, now_millis};
use zeroize::Zeroizing;

use crate::envelope::Aad;
use crate::error::{Result, SecretsError};
use crate::vault::{OPTIONS_TABLE, Vault, check_name};

pub const AUTH_SOURCE: &str = "auth.source";
pub const AUTH_ID: &str = "auth.id";
/// Options whose values are never shown to admins.
pub const SECRET_KEYS: &[&str] = &["auth.password", "auth.identity", "auth.passphrase"];
/// Keys admins may set with SetOption (auth.source/auth.id are written by
/// AssignCredential only).
const SETTABLE: &[&str] = &[
    "auth.method",
    "auth.username",
    "auth.password",
    "auth.identity",
    "auth.passphrase",
    "compression",
    "insecure",
    "hostkey.openssh",
];
/// What ListOptions shows instead of a secret value.
pub const REDACTED: &str = "<set>";

/// One option as an admin may see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedOption {
    pub key: String,
    pub value: String,
    pub secret: bool,
    pub updated_at: i64,
}

pub fn is_secret(key: &str) -> bool {
    SECRET_KEYS.contains(&key)
}

pub(crate) fn aad<'a>(host: &'a str, key: &'a str) -> Aad<'a> {
    Aad {
        table: OPTIONS_TABLE,
        row: host,
        field: key,
    }
}

fn check_value(key: &str, value: &str) -> Result<()> {
    let allowed: &[&str] = match key {
        "auth.method" => &["password", "publickey"],
        "compression" | "insecure" => &["true", "false"],
        _ => return Ok(()),
    };
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(SecretsError::InvalidArgument(format!(
            "{key} must be one of: {}",
            allowed.join(", ")
        )))
    }
}

impl Vault {
    /// SetOption: validates and upserts one option.
    #[tracing::instrument(skip(self, value))]
    pub async fn set_option(&self, host: &str, key: &str, value: &str) -> Result<()> {
        check_name("host", host)?;
        if !SETTABLE.contains(&key) {
            return Err(SecretsError::InvalidArgument(format!(
                "unknown option {key:?}; known: {} (use AssignCredential for auth.source/auth.id)",
                SETTABLE.join(", ")
            )));
        }
        check_value(key, value)?;
        self.put_option(host, key, value).await
    }

    /// Seals and upserts without validation.
    async fn put_option(&self, host: &str, key: &str, value: &str) -> Result<()> {
        let row = self.sealed_option(host, key, value)?;
        Ok(self.store.put_relay_options(&[row]).await?)
    }

    /// Seals `value` as option `key` of `host` (also for auth.source/id).
    pub(crate) fn sealed_option(
        &self,
        host: &str,
        key: &str,
        value: &str,
    ) -> Result<RelayOptionRow> {
        Ok(RelayOptionRow {
            host: host.to_owned(),
            key: key.to_owned(),
            value_envelope: self.seal(aad(host, key), value.as_bytes())?,
            key_id: self.current_key_id().to_owned(),
            updated_at: now_millis(),
        })
    }

    #[tracing::instrument(skip(self))]
    pub async fn unset_option(&self, host: &str, key: &str) -> Result<bool> {
        Ok(self.store.delete_relay_option(host, key).await?)
    }

    #[tracing::instrument(skip(self))]
    pub async fn delete_host_options(&self, host: &str) -> Result<u64> {
        Ok(self.store.delete_relay_options(host).await?)
    }

    /// ListOptions: non-secret values in clear, secret ones as `<set>` (and
    /// never decrypted).
    #[tracing::instrument(skip(self))]
    pub async fn list_options(&self, host: &str) -> Result<Vec<ListedOption>> {
        let rows = self.store.relay_options(host).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let secret = is_secret(&row.key);
            let value = if secret {
                REDACTED.to_owned()
            } else {
                self.open_text(aad(host, &row.key), &row.value_envelope)?
                    .to_string()
            };
            out.push(ListedOption {
                key: row.key,
                value,
                secret,
                updated_at: row.updated_at,
            });
        }
        Ok(out)
    }

    /// Every option of a host, decrypted (for ResolveHostAuth only).
    pub(crate) async fn host_options(
        &self,
        host: &str,
    ) -> Result<BTreeMap<String, Zeroizing<String>>> {
        let mut out = BTreeMap::new();
        for row in self.store.relay_options(host).await? {
            let value = self.open_text(aad(host, &row.key), &row.value_envelope)?;
            out.insert(row.key, value);
        }
        Ok(out)
    }

    /// Host name -> assigned credential id, for every assigned host.
    pub(crate) async fn assignments(&self) -> Result<Vec<(String, Zeroizing<String>)>> {
        let rows = self.store.relay_options_with_key(AUTH_ID).await?;
        rows.into_iter()
            .map(|row| {
                let id = self.open_text(aad(&row.host, AUTH_ID), &row.value_envelope)?;
                Ok((row.host, id))
            })
            .collect()
    }
}

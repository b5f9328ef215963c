//! Relay host options: every value sealed, secret ones never listed.

use std::collections::BTreeMap;

use phirepass_store::now_millis;
use sqlx::Row as _;
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

fn aad<'a>(host: &'a str, key: &'a str) -> Aad<'a> {
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
        self.put_option(self.store.pool(), host, key, value).await
    }

    /// Seals and upserts without validation (also used for auth.source/id).
    pub(crate) async fn put_option<'e, E>(
        &self,
        executor: E,
        host: &str,
        key: &str,
        value: &str,
    ) -> Result<()>
    where
        E: sqlx::Executor<'e, Database = sqlx::Any>,
    {
        let sealed = self.seal(aad(host, key), value.as_bytes())?;
        sqlx::query(
            "INSERT INTO relay_host_options (host, key, value_envelope, key_id, updated_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (host, key) DO UPDATE SET value_envelope = excluded.value_envelope, \
             key_id = excluded.key_id, updated_at = excluded.updated_at",
        )
        .bind(host)
        .bind(key)
        .bind(sealed)
        .bind(self.current_key_id())
        .bind(now_millis())
        .execute(executor)
        .await?;
        Ok(())
    }

    #[tracing::instrument(skip(self))]
    pub async fn unset_option(&self, host: &str, key: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM relay_host_options WHERE host = $1 AND key = $2")
            .bind(host)
            .bind(key)
            .execute(self.store.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    #[tracing::instrument(skip(self))]
    pub async fn delete_host_options(&self, host: &str) -> Result<u64> {
        let done = sqlx::query("DELETE FROM relay_host_options WHERE host = $1")
            .bind(host)
            .execute(self.store.pool())
            .await?;
        Ok(done.rows_affected())
    }

    /// ListOptions: non-secret values in clear, secret ones as `<set>` (and
    /// never decrypted).
    #[tracing::instrument(skip(self))]
    pub async fn list_options(&self, host: &str) -> Result<Vec<ListedOption>> {
        let rows = sqlx::query(
            "SELECT key, value_envelope, updated_at FROM relay_host_options \
             WHERE host = $1 ORDER BY key",
        )
        .bind(host)
        .fetch_all(self.store.pool())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let key: String = row.try_get("key")?;
            let secret = is_secret(&key);
            let value = if secret {
                REDACTED.to_owned()
            } else {
                let sealed: String = row.try_get("value_envelope")?;
                self.open_text(aad(host, &key), &sealed)?.to_string()
            };
            out.push(ListedOption {
                key,
                value,
                secret,
                updated_at: row.try_get("updated_at")?,
            });
        }
        Ok(out)
    }

    /// Every option of a host, decrypted (for ResolveHostAuth only).
    pub(crate) async fn host_options(
        &self,
        host: &str,
    ) -> Result<BTreeMap<String, Zeroizing<String>>> {
        let rows =
            sqlx::query("SELECT key, value_envelope FROM relay_host_options WHERE host = $1")
                .bind(host)
                .fetch_all(self.store.pool())
                .await?;
        let mut out = BTreeMap::new();
        for row in rows {
            let key: String = row.try_get("key")?;
            let sealed: String = row.try_get("value_envelope")?;
            let value = self.open_text(aad(host, &key), &sealed)?;
            out.insert(key, value);
        }
        Ok(out)
    }

    /// Host name -> assigned credential id, for every assigned host.
    pub(crate) async fn assignments(&self) -> Result<Vec<(String, Zeroizing<String>)>> {
        let rows = sqlx::query(
            "SELECT host, value_envelope FROM relay_host_options WHERE key = $1 ORDER BY host",
        )
        .bind(AUTH_ID)
        .fetch_all(self.store.pool())
        .await?;
        rows.iter()
            .map(|row| {
                let host: String = row.try_get("host")?;
                let sealed: String = row.try_get("value_envelope")?;
                let id = self.open_text(aad(&host, AUTH_ID), &sealed)?;
                Ok((host, id))
            })
            .collect()
    }
}

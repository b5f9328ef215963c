//! Shared relay credentials: created sealed, listed as metadata only,
//! assigned to hosts through their `auth.source` / `auth.id` options.

use phirepass_store::{new_id, now_millis};
use sqlx::Row as _;
use sqlx::any::AnyRow;
use zeroize::Zeroizing;

use crate::envelope::Aad;
use crate::error::{Result, SecretsError};
use crate::options::{AUTH_ID, AUTH_SOURCE};
use crate::vault::{CREDENTIALS_TABLE, Vault, check_name};

/// What a credential holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    Password,
    SshKey,
}

impl CredentialKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::SshKey => "ssh_key",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        match s {
            "password" => Ok(Self::Password),
            "ssh_key" => Ok(Self::SshKey),
            _ => Err(SecretsError::FailedPrecondition(
                "stored credential has an unknown kind".into(),
            )),
        }
    }
}

/// A new credential. Debug never shows the secret or passphrase.
pub struct NewCredential {
    pub name: String,
    pub kind: CredentialKind,
    pub secret: Zeroizing<String>,
    pub passphrase: Option<Zeroizing<String>>,
    pub meta_json: String,
}

/// Credential metadata: everything but the secret material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialInfo {
    pub id: String,
    pub name: String,
    pub kind: CredentialKind,
    pub meta_json: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub assigned_hosts: Vec<String>,
    pub has_passphrase: bool,
}

/// A decrypted credential (ResolveHostAuth only).
pub(crate) struct OpenCredential {
    pub name: String,
    pub kind: CredentialKind,
    pub secret: Zeroizing<String>,
    pub passphrase: Option<Zeroizing<String>>,
    pub meta_json: String,
}

pub(crate) fn aad<'a>(id: &'a str, field: &'a str) -> Aad<'a> {
    Aad {
        table: CREDENTIALS_TABLE,
        row: id,
        field,
    }
}

fn info(row: &AnyRow, assigned_hosts: Vec<String>) -> Result<CredentialInfo> {
    let passphrase: Option<String> = row.try_get("passphrase_envelope")?;
    Ok(CredentialInfo {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        kind: CredentialKind::parse(&row.try_get::<String, _>("kind")?)?,
        meta_json: row.try_get("meta")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        assigned_hosts,
        has_passphrase: passphrase.is_some(),
    })
}

const COLUMNS: &str =
    "id, name, kind, secret_envelope, passphrase_envelope, meta, created_at, updated_at";

impl Vault {
    #[tracing::instrument(skip(self, new), fields(name = %new.name, kind = new.kind.as_str()))]
    pub async fn create_credential(&self, new: NewCredential) -> Result<CredentialInfo> {
        check_name("credential name", &new.name)?;
        if new.secret.is_empty() {
            return Err(SecretsError::InvalidArgument(
                "secret must not be empty".into(),
            ));
        }
        if new.kind == CredentialKind::Password && new.passphrase.is_some() {
            return Err(SecretsError::InvalidArgument(
                "only ssh_key credentials take a passphrase".into(),
            ));
        }
        let meta_json = if new.meta_json.trim().is_empty() {
            "{}"
        } else {
            &new.meta_json
        };
        if !serde_json::from_str::<serde_json::Value>(meta_json).is_ok_and(|v| v.is_object()) {
            return Err(SecretsError::InvalidArgument(
                "meta_json must be a JSON object".into(),
            ));
        }
        let id = new_id();
        let secret = self.seal(aad(&id, "secret"), new.secret.as_bytes())?;
        let passphrase = match &new.passphrase {
            Some(p) if !p.is_empty() => Some(self.seal(aad(&id, "passphrase"), p.as_bytes())?),
            _ => None,
        };
        let now = now_millis();
        sqlx::query(
            "INSERT INTO relay_credentials (id, name, kind, secret_envelope, passphrase_envelope, \
             key_id, meta, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
        )
        .bind(&id)
        .bind(&new.name)
        .bind(new.kind.as_str())
        .bind(secret)
        .bind(passphrase.clone())
        .bind(self.current_key_id())
        .bind(meta_json)
        .bind(now)
        .execute(self.store.pool())
        .await
        .map_err(|e| match SecretsError::from(e) {
            SecretsError::Store(phirepass_store::StoreError::Conflict) => {
                SecretsError::AlreadyExists("credential")
            }
            other => other,
        })?;
        tracing::info!(credential_id = %id, "credential created");
        Ok(CredentialInfo {
            id,
            name: new.name,
            kind: new.kind,
            meta_json: meta_json.to_owned(),
            created_at: now,
            updated_at: now,
            assigned_hosts: Vec::new(),
            has_passphrase: passphrase.is_some(),
        })
    }

    /// Metadata of every credential, with the hosts each is assigned to.
    #[tracing::instrument(skip(self))]
    pub async fn list_credentials(&self) -> Result<Vec<CredentialInfo>> {
        let assignments = self.assignments().await?;
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM relay_credentials ORDER BY name"
        ))
        .fetch_all(self.store.pool())
        .await?;
        rows.iter()
            .map(|row| {
                let id: String = row.try_get("id")?;
                let hosts = hosts_of(&assignments, &id);
                info(row, hosts)
            })
            .collect()
    }

    async fn credential_row(&self, name: &str) -> Result<AnyRow> {
        sqlx::query(&format!(
            "SELECT {COLUMNS} FROM relay_credentials WHERE name = $1"
        ))
        .bind(name)
        .fetch_optional(self.store.pool())
        .await?
        .ok_or(SecretsError::NotFound("credential"))
    }

    /// Deletes a credential; refuses while assigned unless `force`, which
    /// unassigns those hosts first. Returns the hosts unassigned.
    #[tracing::instrument(skip(self))]
    pub async fn delete_credential(&self, name: &str, force: bool) -> Result<Vec<String>> {
        let id: String = self.credential_row(name).await?.try_get("id")?;
        let hosts = hosts_of(&self.assignments().await?, &id);
        if !hosts.is_empty() && !force {
            return Err(SecretsError::FailedPrecondition(format!(
                "credential is assigned to {} host(s): {}; unassign them or use force",
                hosts.len(),
                hosts.join(", ")
            )));
        }
        let mut tx = self.store.pool().begin().await?;
        for host in &hosts {
            clear_assignment(&mut tx, host).await?;
        }
        sqlx::query("DELETE FROM relay_credentials WHERE id = $1")
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(credential_id = %id, unassigned = hosts.len(), "credential deleted");
        Ok(hosts)
    }

    #[tracing::instrument(skip(self))]
    pub async fn assign_credential(&self, host: &str, name: &str) -> Result<()> {
        check_name("host", host)?;
        let id: String = self.credential_row(name).await?.try_get("id")?;
        let mut tx = self.store.pool().begin().await?;
        self.put_option(&mut *tx, host, AUTH_SOURCE, "credential")
            .await?;
        self.put_option(&mut *tx, host, AUTH_ID, &id).await?;
        tx.commit().await?;
        Ok(())
    }

    #[tracing::instrument(skip(self))]
    pub async fn unassign_credential(&self, host: &str) -> Result<bool> {
        let mut tx = self.store.pool().begin().await?;
        let removed = clear_assignment(&mut tx, host).await?;
        tx.commit().await?;
        Ok(removed)
    }

    /// Loads and decrypts a credential by id.
    pub(crate) async fn open_credential(&self, id: &str) -> Result<Option<OpenCredential>> {
        let Some(row) = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM relay_credentials WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.store.pool())
        .await?
        else {
            return Ok(None);
        };
        let secret: String = row.try_get("secret_envelope")?;
        let passphrase: Option<String> = row.try_get("passphrase_envelope")?;
        Ok(Some(OpenCredential {
            name: row.try_get("name")?,
            kind: CredentialKind::parse(&row.try_get::<String, _>("kind")?)?,
            secret: self.open_text(aad(id, "secret"), &secret)?,
            passphrase: passphrase
                .map(|p| self.open_text(aad(id, "passphrase"), &p))
                .transpose()?,
            meta_json: row.try_get("meta")?,
        }))
    }
}

fn hosts_of(assignments: &[(String, Zeroizing<String>)], id: &str) -> Vec<String> {
    assignments
        .iter()
        .filter(|(_, assigned)| assigned.as_str() == id)
        .map(|(host, _)| host.clone())
        .collect()
}

async fn clear_assignment(tx: &mut sqlx::Transaction<'_, sqlx::Any>, host: &str) -> Result<bool> {
    let done = sqlx::query("DELETE FROM relay_host_options WHERE host = $1 AND key IN ($2, $3)")
        .bind(host)
        .bind(AUTH_SOURCE)
        .bind(AUTH_ID)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() > 0)
}

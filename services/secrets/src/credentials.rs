//! Shared relay credentials: created sealed, listed as metadata only,
//! assigned to hosts through their `auth.source` / `auth.id` options.

use phirepass_store::{RelayCredentialRow, StoreError, new_id, now_millis};
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

fn info(row: RelayCredentialRow, assigned_hosts: Vec<String>) -> Result<CredentialInfo> {
    Ok(CredentialInfo {
        kind: CredentialKind::parse(&row.kind)?,
        has_passphrase: row.passphrase_envelope.is_some(),
        id: row.id,
        name: row.name,
        meta_json: row.meta,
        created_at: row.created_at,
        updated_at: row.updated_at,
        assigned_hosts,
    })
}

/// The options that assign a credential to a host.
const ASSIGNMENT_KEYS: &[&str] = &[AUTH_SOURCE, AUTH_ID];

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
        let row = RelayCredentialRow {
            id: id.clone(),
            name: new.name.clone(),
            kind: new.kind.as_str().to_owned(),
            secret_envelope: secret,
            passphrase_envelope: passphrase.clone(),
            key_id: self.current_key_id().to_owned(),
            meta: meta_json.to_owned(),
            created_at: now,
            updated_at: now,
        };
        self.store
            .insert_relay_credential(&row)
            .await
            .map_err(|e| match e {
                StoreError::Conflict => SecretsError::AlreadyExists("credential"),
                other => SecretsError::Store(other),
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
        let rows = self.store.relay_credentials().await?;
        rows.into_iter()
            .map(|row| {
                let hosts = hosts_of(&assignments, &row.id);
                info(row, hosts)
            })
            .collect()
    }

    async fn credential_row(&self, name: &str) -> Result<RelayCredentialRow> {
        self.store
            .relay_credential_by_name(name)
            .await?
            .ok_or(SecretsError::NotFound("credential"))
    }

    /// Deletes a credential; refuses while assigned unless `force`, which
    /// unassigns those hosts first. Returns the hosts unassigned.
    #[tracing::instrument(skip(self))]
    pub async fn delete_credential(&self, name: &str, force: bool) -> Result<Vec<String>> {
        let id = self.credential_row(name).await?.id;
        let hosts = hosts_of(&self.assignments().await?, &id);
        if !hosts.is_empty() && !force {
            return Err(SecretsError::FailedPrecondition(format!(
                "credential is assigned to {} host(s): {}; unassign them or use force",
                hosts.len(),
                hosts.join(", ")
            )));
        }
        self.store
            .delete_relay_credential(&id, &hosts, ASSIGNMENT_KEYS)
            .await?;
        tracing::info!(credential_id = %id, unassigned = hosts.len(), "credential deleted");
        Ok(hosts)
    }

    #[tracing::instrument(skip(self))]
    pub async fn assign_credential(&self, host: &str, name: &str) -> Result<()> {
        check_name("host", host)?;
        let id = self.credential_row(name).await?.id;
        let source = self.sealed_option(host, AUTH_SOURCE, "credential")?;
        let assigned = self.sealed_option(host, AUTH_ID, &id)?;
        // Both options or neither: one transaction.
        self.store.put_relay_options(&[source, assigned]).await?;
        Ok(())
    }

    #[tracing::instrument(skip(self))]
    pub async fn unassign_credential(&self, host: &str) -> Result<bool> {
        Ok(self
            .store
            .clear_relay_options(host, ASSIGNMENT_KEYS)
            .await?)
    }

    /// Loads and decrypts a credential by id.
    pub(crate) async fn open_credential(&self, id: &str) -> Result<Option<OpenCredential>> {
        let Some(row) = self.store.relay_credential_by_id(id).await? else {
            return Ok(None);
        };
        Ok(Some(OpenCredential {
            kind: CredentialKind::parse(&row.kind)?,
            secret: self.open_text(aad(id, "secret"), &row.secret_envelope)?,
            passphrase: row
                .passphrase_envelope
                .map(|p| self.open_text(aad(id, "passphrase"), &p))
                .transpose()?,
            name: row.name,
            meta_json: row.meta,
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

//! Fetching a host's SSH key: a russh client that records the key the server presents during
//! key exchange, then disconnects without authenticating.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::keys::{HashAlg, PublicKey};

use super::output::{Exit, fail};
use super::prompt;

/// The key a host presented.
pub struct HostKey {
    pub algorithm: String,
    pub fingerprint: String,
    /// The OpenSSH public key line, stored as `hostkey.openssh`.
    pub openssh: String,
}

/// Only records the server key; it never authenticates.
struct Recorder(Arc<Mutex<Option<PublicKey>>>);

impl russh::client::Handler for Recorder {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } = key else {
            return Ok(false);
        };
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(key.clone());
        }
        // Accept so the handshake completes and we can say goodbye cleanly.
        Ok(true)
    }
}

/// Connects to `addr` (`host:port`), returns the key it presents.
pub async fn fetch(addr: &str) -> anyhow::Result<HostKey> {
    let slot = Arc::new(Mutex::new(None));
    let config = Arc::new(russh::client::Config::default());
    let connect = russh::client::connect(config, addr, Recorder(slot.clone()));
    let result = tokio::time::timeout(Duration::from_secs(15), connect).await;
    match result {
        Ok(Ok(handle)) => {
            let _ = handle
                .disconnect(russh::Disconnect::ByApplication, "", "en")
                .await;
        }
        Ok(Err(e)) => {
            // The key may have been recorded before a later failure; use it if so.
            if recorded(&slot).is_none() {
                return Err(fail(
                    Exit::Unavailable,
                    format!("cannot fetch the SSH host key of {addr}: {e}"),
                ));
            }
        }
        Err(_) => {
            return Err(fail(
                Exit::Unavailable,
                format!("timed out fetching the SSH host key of {addr}"),
            ));
        }
    }
    let key = recorded(&slot).ok_or_else(|| {
        fail(
            Exit::Unavailable,
            format!("{addr} presented no SSH host key"),
        )
    })?;
    let openssh = key
        .to_openssh()
        .map_err(|e| fail(Exit::Failure, format!("encoding the host key: {e}")))?;
    Ok(HostKey {
        algorithm: key.algorithm().as_str().to_string(),
        fingerprint: key.fingerprint(HashAlg::Sha256).to_string(),
        openssh,
    })
}

fn recorded(slot: &Mutex<Option<PublicKey>>) -> Option<PublicKey> {
    slot.lock().ok().and_then(|k| k.clone())
}

/// Shows the key (stderr: it is a question to the operator) and asks whether to pin it.
pub fn ask(name: &str, addr: &str, key: &HostKey, yes: bool) -> anyhow::Result<bool> {
    eprintln!("host {name} ({addr}) presents:");
    eprintln!("  {} {}", key.algorithm, key.fingerprint);
    prompt::confirm("store this host key?", yes)
}

/// Pins `key` as the host's `hostkey.openssh` option in the vault.
pub async fn store(g: &super::connect::Global, host: &str, key: &HostKey) -> anyhow::Result<()> {
    use phirepass_proto::secrets::SetOptionRequest;
    use phirepass_proto::secrets::secrets_client::SecretsClient;
    SecretsClient::new(g.secrets_channel()?)
        .set_option(SetOptionRequest {
            host: host.to_string(),
            key: "hostkey.openssh".into(),
            value: key.openssh.clone(),
        })
        .await
        .map_err(|s| super::output::status("secrets", s))?;
    Ok(())
}

/// The JSON form of a fetched key and whether it was stored.
pub fn json(key: &HostKey, stored: bool) -> serde_json::Value {
    serde_json::json!({
        "algorithm": key.algorithm,
        "fingerprint": key.fingerprint,
        "openssh": key.openssh,
        "stored": stored,
    })
}

//! The edge's own ed25519 host key: loaded, or generated once and persisted (0600), so
//! clients' known_hosts stay valid across restarts. `SSH_EDGE_HOST_KEY` gives every instance
//! of a deployment the same key.

use std::io::Write as _;
use std::path::Path;

use russh::keys::ssh_key::LineEnding;
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::{HashAlg, PrivateKey, decode_secret_key};
use tracing::info;

use crate::config::HostKeySource;

#[derive(Debug, thiserror::Error)]
pub enum HostKeyError {
    #[error("cannot read the ssh host key {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("cannot write the new ssh host key {path}: {reason}")]
    Write { path: String, reason: String },
    #[error("the ssh host key ({origin}) is not an unencrypted OpenSSH private key: {reason}")]
    Parse { origin: String, reason: String },
}

pub fn load_or_generate(source: &HostKeySource) -> Result<PrivateKey, HostKeyError> {
    let key = match source {
        HostKeySource::Openssh(text) => parse(text, "SSH_EDGE_HOST_KEY")?,
        HostKeySource::File(path) => match std::fs::read_to_string(path) {
            Ok(text) => parse(&text, &path.display().to_string())?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => generate(path)?,
            Err(e) => {
                return Err(HostKeyError::Read {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                });
            }
        },
    };
    info!(
        algorithm = key.algorithm().as_str(),
        fingerprint = %key.public_key().fingerprint(HashAlg::Sha256),
        "ssh host key ready"
    );
    Ok(key)
}

fn parse(text: &str, origin: &str) -> Result<PrivateKey, HostKeyError> {
    decode_secret_key(text.trim(), None).map_err(|e| HostKeyError::Parse {
        origin: origin.to_owned(),
        reason: e.to_string(),
    })
}

fn generate(path: &Path) -> Result<PrivateKey, HostKeyError> {
    let write_err = |reason: String| HostKeyError::Write {
        path: path.display().to_string(),
        reason,
    };
    let seed: [u8; 32] = rand::random();
    let mut key = PrivateKey::from(Ed25519Keypair::from_seed(&seed));
    key.set_comment("phirepass-ssh-edge");
    let text = key
        .to_openssh(LineEnding::LF)
        .map_err(|e| write_err(e.to_string()))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| write_err(e.to_string()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    // create_new: two instances starting together never overwrite each other's key.
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(mut file) => {
            file.write_all(text.as_bytes())
                .map_err(|e| write_err(e.to_string()))?;
            info!(path = %path.display(), "generated a new ssh host key");
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let text = std::fs::read_to_string(path).map_err(|e| write_err(e.to_string()))?;
            parse(&text, &path.display().to_string())
        }
        Err(e) => Err(write_err(e.to_string())),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_then_loaded_with_private_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("host_key");
        let first = load_or_generate(&HostKeySource::File(path.clone())).unwrap();
        let second = load_or_generate(&HostKeySource::File(path.clone())).unwrap();
        assert_eq!(
            first.public_key().key_data(),
            second.public_key().key_data()
        );
        assert_eq!(first.algorithm().as_str(), "ssh-ed25519");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let shared = load_or_generate(&HostKeySource::Openssh(text)).unwrap();
        assert_eq!(
            shared.public_key().key_data(),
            first.public_key().key_data()
        );
    }

    #[test]
    fn garbage_is_refused_without_echoing_it() {
        let err = load_or_generate(&HostKeySource::Openssh("not a key SECRET".into())).unwrap_err();
        assert!(err.to_string().contains("SSH_EDGE_HOST_KEY"));
        assert!(!err.to_string().contains("SECRET"));
    }
}

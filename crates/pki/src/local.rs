//! A whole deployment's PKI in one directory (what `phirepass pki init` writes and
//! `phirepass dev` keeps under its data directory), or in memory for tests.
//!
//! Layout: `ca.crt` + `ca.key` (the current issuing CA; keep `ca.key` off service hosts),
//! `trust.crt` (every trusted CA: the current one, plus the previous one while rotating), and
//! `<kind>.crt` + `<kind>.key` for every [`ServiceKind`].

use std::path::{Path, PathBuf};

use crate::files::{self, TlsFiles};
use crate::{Ca, Identity, IssueOptions, PkiError, ServiceKind};

/// The CA of a deployment and where its files live, if anywhere.
pub struct LocalPki {
    ca: Ca,
    trust_pem: String,
    dir: Option<PathBuf>,
}

/// Names of the current CA's files in a PKI directory.
pub fn ca_files(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join("ca.crt"), dir.join("ca.key"))
}

/// The trust bundle's path in a PKI directory.
pub fn trust_file(dir: &Path) -> PathBuf {
    dir.join("trust.crt")
}

fn read_text(path: &Path) -> Result<String, PkiError> {
    String::from_utf8(files::read(path)?).map_err(|_| PkiError::Invalid {
        path: path.display().to_string(),
        reason: "not UTF-8 PEM".into(),
    })
}

impl LocalPki {
    /// A fresh CA held in memory; identities are issued on demand (tests).
    pub fn generate() -> Result<Self, PkiError> {
        let ca = Ca::generate("phirepass test ca")?;
        let trust_pem = ca.cert_pem().to_owned();
        Ok(Self {
            ca,
            trust_pem,
            dir: None,
        })
    }

    /// The PKI in `dir`, created (CA and one certificate per kind) when `dir` has no CA yet.
    /// Certificates missing from an existing directory are issued.
    pub fn load_or_init(dir: &Path, options: &IssueOptions) -> Result<Self, PkiError> {
        let io = |source| PkiError::Io {
            path: dir.display().to_string(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let (cert, key) = ca_files(dir);
        let ca = match cert.exists() {
            true => Ca::from_pem(&read_text(&cert)?, &read_text(&key)?)?,
            false => {
                let ca = Ca::generate("phirepass ca")?;
                files::write(&key, &ca.key_pem(), true)?;
                files::write(&cert, ca.cert_pem(), false)?;
                files::write(&trust_file(dir), ca.cert_pem(), false)?;
                ca
            }
        };
        let trust_pem = read_text(&trust_file(dir))?;
        let pki = Self {
            ca,
            trust_pem,
            dir: Some(dir.to_owned()),
        };
        for kind in ServiceKind::ALL {
            if !TlsFiles::in_dir(dir, kind).cert.exists() {
                pki.issue_to_dir(kind, options)?;
            }
        }
        Ok(pki)
    }

    pub fn ca(&self) -> &Ca {
        &self.ca
    }

    /// Every trusted CA certificate, PEM.
    pub fn trust_pem(&self) -> &str {
        &self.trust_pem
    }

    /// The directory, when the PKI lives in one.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Issues (or renews) `kind`'s certificate into the directory. In memory, an error.
    pub fn issue_to_dir(
        &self,
        kind: ServiceKind,
        options: &IssueOptions,
    ) -> Result<TlsFiles, PkiError> {
        let dir = self.require_dir()?;
        let issued = self.ca.issue(kind, options)?;
        let target = TlsFiles::in_dir(dir, kind);
        // Key first: a reload between the two writes fails (mismatch) and keeps the old pair.
        files::write(&target.key, &issued.key_pem, true)?;
        files::write(&target.cert, &issued.cert_pem, false)?;
        Ok(target)
    }

    /// `kind`'s identity: loaded from the directory (and reloadable), or freshly issued in
    /// memory.
    pub fn identity(&self, kind: ServiceKind) -> Result<Identity, PkiError> {
        match &self.dir {
            Some(dir) => Identity::load(kind, TlsFiles::in_dir(dir, kind)),
            None => {
                let issued = self.ca.issue(kind, &IssueOptions::default())?;
                Identity::from_pem(kind, &issued.cert_pem, &issued.key_pem, &self.trust_pem)
            }
        }
    }

    /// Rotation, step 1 of 3: a new CA becomes the issuer and joins the trust bundle beside
    /// every CA trusted so far. Leaf certificates are untouched, so nothing changes for a peer
    /// until every service has reloaded the bundle (its reload period). Returns the new CA's
    /// fingerprint.
    pub fn rotate_ca(&mut self) -> Result<String, PkiError> {
        let dir = self.require_dir()?.to_owned();
        let fresh = Ca::generate("phirepass ca")?;
        let bundle = format!("{}{}", fresh.cert_pem(), self.trust_pem);
        files::write(&trust_file(&dir), &bundle, false)?;
        let (cert, key) = ca_files(&dir);
        files::write(&key, &fresh.key_pem(), true)?;
        files::write(&cert, fresh.cert_pem(), false)?;
        self.trust_pem = bundle;
        self.ca = fresh;
        self.ca.fingerprint()
    }

    /// Rotation, step 2: every kind's certificate reissued by the current CA.
    pub fn reissue_all(&self, options: &IssueOptions) -> Result<(), PkiError> {
        for kind in ServiceKind::ALL {
            self.issue_to_dir(kind, options)?;
        }
        Ok(())
    }

    /// Rotation, step 3: every CA but the current one leaves the trust bundle; certificates
    /// they issued are refused from each service's next reload on.
    pub fn retire_old_cas(&mut self) -> Result<usize, PkiError> {
        let dir = self.require_dir()?.to_owned();
        let before = self.trust_pem.matches("BEGIN CERTIFICATE").count();
        files::write(&trust_file(&dir), self.ca.cert_pem(), false)?;
        self.trust_pem = self.ca.cert_pem().to_owned();
        Ok(before.saturating_sub(1))
    }

    fn require_dir(&self) -> Result<&Path, PkiError> {
        self.dir.as_deref().ok_or_else(|| PkiError::Invalid {
            path: "pki".into(),
            reason: "an in-memory PKI has no directory".into(),
        })
    }
}

//! authz's ticket key in the tests (issue #8): one per test process, so every cluster's authz
//! signs with it and every in-process agent pins it, whichever cluster it joins. A test that
//! rotates the key rotates its own cluster's ring only.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use phirepass_authz::TicketKeyring;
use phirepass_ticket::{KeySet, TicketSigner};

fn pem() -> &'static str {
    static PEM: OnceLock<String> = OnceLock::new();
    PEM.get_or_init(|| phirepass_ticket::generate_pem().expect("ticket key"))
}

/// The process's key.
pub fn signer() -> TicketSigner {
    TicketSigner::from_pem(pem()).expect("ticket key")
}

/// A ring for one cluster's authz, signing with the process's key.
pub fn keyring() -> Arc<TicketKeyring> {
    Arc::new(TicketKeyring::new(signer()))
}

/// A fresh pins file holding the process's key, for one agent (which may write endorsed keys
/// back to it). The directory is kept for the life of the process.
pub fn pins_file() -> PathBuf {
    let dir = tempfile::tempdir().expect("pins dir").keep();
    let path = dir.join("agent.ticket-keys.json");
    let keys = KeySet::new(vec![signer().public_key().clone()]).expect("key set");
    phirepass_agent::pins::store(&path, &keys).expect("pins file");
    path
}

//! The credential vault's tables (services/secrets): relay host options and
//! shared relay credentials, each value a sealed envelope the store never
//! opens, plus the master keys ever used and vault settings. Secrets seals
//! and opens; the store only keeps rows, so both backends run the same SQL.
//!
//! Every row names the key that sealed it (`key_id`) so rotation can find
//! and count entries without decrypting them.

mod credentials;
mod keys;
mod options;

pub use credentials::RelayCredentialRow;
pub use keys::VaultKeyRow;
pub use options::RelayOptionRow;

//! Harnesses for end-to-end tests against real components.

pub mod browser;
pub mod sshd;

/// A random lowercase-hex suffix for isolating subjects, keys and databases between tests.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff)
}

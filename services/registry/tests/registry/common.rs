//! What the test modules share: presence on Redis (`REDIS_URL`, default
//! redis://127.0.0.1:6379, under a random key prefix) or in memory, and
//! `on_both!`, which runs each test on both.

use std::sync::Arc;

use phirepass_presence::{MemoryPresence, Presence, RedisPresence};

/// 64 random bits, hex: key prefixes and subjects no other test shares.
pub fn random_hex() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// Presence on Redis under `prefix`.
pub async fn redis_presence(prefix: &str) -> Arc<dyn Presence> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    Arc::new(RedisPresence::connect(&url, prefix).await.unwrap())
}

/// Presence on Redis (under `prefix`) if `redis`, else in memory.
pub async fn presence(redis: bool, prefix: &str) -> Arc<dyn Presence> {
    if redis {
        redis_presence(prefix).await
    } else {
        Arc::new(MemoryPresence::new())
    }
}

/// Runs each named `async fn(redis: bool)` as two tests: `redis::<name>`
/// (real Redis, and NATS where the test uses a bus) and `memory::<name>`.
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod redis {
            $(#[tokio::test] async fn $name() { super::$name(true).await; })*
        }
        mod memory {
            $(#[tokio::test] async fn $name() { super::$name(false).await; })*
        }
    };
}
pub(crate) use on_both;

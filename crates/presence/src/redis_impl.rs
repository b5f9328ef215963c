//! Redis implementation: `SET PX`, Lua for the atomic operations, `SCAN`
//! (never `KEYS`) for listing.

use std::collections::BTreeSet;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::{Presence, PresenceError, RedisAuth, ttl_millis};

// Compare-and-delete: only the holder that wrote `expected` may remove it.
const DELETE_IF: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0";

// Compare-and-set: refresh a value only while it is still the one we wrote.
const REPLACE_IF: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0";

// INCR plus a TTL on creation; also repairs a counter left without a TTL.
const INCR: &str = r"
local n = redis.call('INCR', KEYS[1])
if n == 1 or redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return n";

const SCAN_COUNT: usize = 500;
const CONNECT_DEADLINE: Duration = Duration::from_secs(10);
const MGET_BATCH: usize = 200;

/// Presence on Redis; every key is stored as `<key_prefix><key>`.
#[derive(Clone)]
pub struct RedisPresence {
    conn: ConnectionManager,
    key_prefix: String,
}

impl std::fmt::Debug for RedisPresence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisPresence")
            .field("key_prefix", &self.key_prefix)
            .finish_non_exhaustive()
    }
}

impl RedisPresence {
    /// Connects (with automatic reconnection) to `redis://...`.
    pub async fn connect(url: &str, key_prefix: &str) -> Result<Self, PresenceError> {
        Self::connect_with(url, key_prefix, &RedisAuth::default()).await
    }

    /// Connects to `redis://` or, with the service's TLS files in `auth`, `rediss://`. The
    /// files are read once: a renewed certificate takes effect at the next restart.
    pub async fn connect_with(
        url: &str,
        key_prefix: &str,
        auth: &RedisAuth,
    ) -> Result<Self, PresenceError> {
        let client = crate::tls::client(url, auth)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_secs(5))
            .set_response_timeout(Duration::from_secs(5))
            .set_number_of_retries(3);
        // redis-rs bounds the TCP connect but not the setup: a plaintext client at a TLS port,
        // or a refused login (retried), would wait minutes. Bound the first connection.
        let conn = tokio::time::timeout(
            CONNECT_DEADLINE,
            ConnectionManager::new_with_config(client, config),
        )
        .await
        .map_err(|_| PresenceError::ConnectTimeout)?
        .map_err(PresenceError::Backend)?;
        Ok(Self {
            conn,
            key_prefix: key_prefix.to_owned(),
        })
    }

    fn full(&self, key: &str) -> String {
        format!("{}{key}", self.key_prefix)
    }

    async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, PresenceError> {
        // ConnectionManager is a cheap handle onto one multiplexed connection.
        let mut conn = self.conn.clone();
        cmd.query_async(&mut conn)
            .await
            .map_err(PresenceError::Backend)
    }
}

/// Escapes glob metacharacters so a prefix matches literally in `SCAN MATCH`.
pub(crate) fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[async_trait::async_trait]
impl Presence for RedisPresence {
    async fn put(&self, key: &str, value: &str, ttl: Duration) -> Result<(), PresenceError> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.full(key))
            .arg(value)
            .arg("PX")
            .arg(ttl_millis(ttl));
        self.query::<()>(&cmd).await
    }

    async fn get(&self, key: &str) -> Result<Option<String>, PresenceError> {
        self.query(redis::cmd("GET").arg(self.full(key))).await
    }

    async fn delete(&self, key: &str) -> Result<bool, PresenceError> {
        let n: u64 = self.query(redis::cmd("DEL").arg(self.full(key))).await?;
        Ok(n > 0)
    }

    async fn put_if_absent(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<bool, PresenceError> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.full(key))
            .arg(value)
            .arg("NX")
            .arg("PX")
            .arg(ttl_millis(ttl));
        // SET NX answers OK when it set the key and nil when it did not.
        let set: Option<String> = self.query(&cmd).await?;
        Ok(set.is_some())
    }

    async fn replace_if(
        &self,
        key: &str,
        expected: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<bool, PresenceError> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(REPLACE_IF)
            .arg(1)
            .arg(self.full(key))
            .arg(expected)
            .arg(value)
            .arg(ttl_millis(ttl));
        let n: u64 = self.query(&cmd).await?;
        Ok(n > 0)
    }

    async fn delete_if(&self, key: &str, expected: &str) -> Result<bool, PresenceError> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(DELETE_IF).arg(1).arg(self.full(key)).arg(expected);
        let n: u64 = self.query(&cmd).await?;
        Ok(n > 0)
    }

    async fn list(&self, prefix: &str) -> Result<Vec<(String, String)>, PresenceError> {
        let pattern = format!("{}*", glob_escape(&self.full(prefix)));
        // SCAN may return a key more than once; a set deduplicates and sorts.
        let mut keys = BTreeSet::new();
        let mut cursor: u64 = 0;
        loop {
            let mut cmd = redis::cmd("SCAN");
            cmd.arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(SCAN_COUNT);
            let (next, batch): (u64, Vec<String>) = self.query(&cmd).await?;
            keys.extend(batch);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        let keys: Vec<String> = keys.into_iter().collect();
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(MGET_BATCH) {
            let values: Vec<Option<String>> = self.query(redis::cmd("MGET").arg(chunk)).await?;
            for (key, value) in chunk.iter().zip(values) {
                // A key may expire between SCAN and MGET: skip it.
                if let (Some(value), Some(short)) = (value, key.strip_prefix(&self.key_prefix)) {
                    out.push((short.to_owned(), value));
                }
            }
        }
        Ok(out)
    }

    async fn incr(&self, key: &str, ttl: Duration) -> Result<u64, PresenceError> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(INCR)
            .arg(1)
            .arg(self.full(key))
            .arg(ttl_millis(ttl));
        self.query(&cmd).await
    }
}

#[cfg(test)]
mod tests {
    use super::glob_escape;

    #[test]
    fn glob_metacharacters_are_escaped() {
        assert_eq!(glob_escape("node:"), "node:");
        assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }
}

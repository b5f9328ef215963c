//! One conformance suite, run against Redis (REDIS_URL, default
//! redis://127.0.0.1:6379), a TLS-only redis-server of the test's own with ACL users
//! (`tls`), and the in-memory implementation. Real time, short TTLs: Redis cannot be paused.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use phirepass_presence::{MemoryPresence, Presence, RedisPresence};

#[path = "conformance/tls.rs"]
mod tls;

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A random key prefix per test, so runs never see each other's keys.
fn random_prefix() -> String {
    format!("pp-test-{:016x}:", rand::random::<u64>())
}

async fn redis() -> Arc<dyn Presence> {
    Arc::new(
        RedisPresence::connect(&redis_url(), &random_prefix())
            .await
            .unwrap(),
    )
}

async fn memory() -> Arc<dyn Presence> {
    Arc::new(MemoryPresence::new())
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod redis {
            $(#[tokio::test] async fn $name() { super::$name(super::redis().await).await; })*
        }
        mod memory {
            $(#[tokio::test] async fn $name() { super::$name(super::memory().await).await; })*
        }
        mod redis_tls {
            $(#[tokio::test] async fn $name() {
                let server = super::tls::TlsRedis::start();
                super::$name(server.conformance().await).await;
                drop(server);
            })*
        }
    };
}

conformance!(
    put_get_delete,
    ttl_expires,
    put_overwrites_and_refreshes_ttl,
    list_matches_prefix_literally,
    list_many_keys,
    delete_if_compares,
    incr_counts_in_a_fixed_window,
    incr_is_atomic,
    put_if_absent_claims_once,
    put_if_absent_races_have_one_winner,
    replace_if_compares_and_refreshes,
);

// Long enough that a loaded CI machine still sees keys before they expire.
const SHORT: Duration = Duration::from_secs(1);
const LONG: Duration = Duration::from_secs(60);

async fn put_get_delete(p: Arc<dyn Presence>) {
    assert_eq!(p.get("k").await.unwrap(), None);
    p.put("k", "v1", LONG).await.unwrap();
    assert_eq!(p.get("k").await.unwrap().as_deref(), Some("v1"));
    assert!(p.delete("k").await.unwrap());
    assert!(!p.delete("k").await.unwrap());
    assert_eq!(p.get("k").await.unwrap(), None);
}

async fn ttl_expires(p: Arc<dyn Presence>) {
    p.put("short", "v", SHORT).await.unwrap();
    p.put("long", "v", LONG).await.unwrap();
    assert!(p.get("short").await.unwrap().is_some());
    tokio::time::sleep(SHORT * 2).await;
    assert_eq!(p.get("short").await.unwrap(), None);
    assert!(
        !p.delete("short").await.unwrap(),
        "an expired key does not count as deleted"
    );
    let keys: Vec<_> = p
        .list("")
        .await
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(keys, ["long"]);
    // A zero TTL is clamped to 1 ms rather than rejected.
    p.put("zero", "v", Duration::ZERO).await.unwrap();
}

async fn put_overwrites_and_refreshes_ttl(p: Arc<dyn Presence>) {
    p.put("k", "a", SHORT).await.unwrap();
    tokio::time::sleep(SHORT / 2).await;
    p.put("k", "b", SHORT * 3).await.unwrap();
    tokio::time::sleep(SHORT).await;
    assert_eq!(p.get("k").await.unwrap().as_deref(), Some("b"));
}

async fn list_matches_prefix_literally(p: Arc<dyn Presence>) {
    p.put("node:2", "two", LONG).await.unwrap();
    p.put("node:1", "one", LONG).await.unwrap();
    p.put("nodes", "x", LONG).await.unwrap();
    p.put("session:1", "s", LONG).await.unwrap();
    p.put("a*b:1", "glob", LONG).await.unwrap();
    p.put("axb:1", "not-glob", LONG).await.unwrap();
    assert_eq!(
        p.list("node:").await.unwrap(),
        [
            ("node:1".to_owned(), "one".to_owned()),
            ("node:2".to_owned(), "two".to_owned())
        ]
    );
    assert_eq!(
        p.list("a*b").await.unwrap(),
        [("a*b:1".to_owned(), "glob".to_owned())]
    );
    assert!(p.list("missing:").await.unwrap().is_empty());
    assert_eq!(p.list("").await.unwrap().len(), 6);
}

async fn list_many_keys(p: Arc<dyn Presence>) {
    // More than one SCAN page and one MGET batch.
    for i in 0..1200 {
        p.put(&format!("bulk:{i:04}"), &i.to_string(), LONG)
            .await
            .unwrap();
    }
    let all = p.list("bulk:").await.unwrap();
    assert_eq!(all.len(), 1200);
    assert_eq!(all[0], ("bulk:0000".to_owned(), "0".to_owned()));
    assert_eq!(all[1199], ("bulk:1199".to_owned(), "1199".to_owned()));
}

async fn delete_if_compares(p: Arc<dyn Presence>) {
    p.put("node:1", "gw-a", LONG).await.unwrap();
    assert!(!p.delete_if("node:1", "gw-b").await.unwrap());
    assert_eq!(p.get("node:1").await.unwrap().as_deref(), Some("gw-a"));
    assert!(p.delete_if("node:1", "gw-a").await.unwrap());
    assert_eq!(p.get("node:1").await.unwrap(), None);
    assert!(!p.delete_if("node:1", "gw-a").await.unwrap());

    p.put("gone", "v", SHORT).await.unwrap();
    tokio::time::sleep(SHORT * 2).await;
    assert!(!p.delete_if("gone", "v").await.unwrap());
}

async fn incr_counts_in_a_fixed_window(p: Arc<dyn Presence>) {
    assert_eq!(p.incr("fail:alice", SHORT).await.unwrap(), 1);
    assert_eq!(
        p.incr("fail:alice", LONG).await.unwrap(),
        2,
        "ttl only set on first incr"
    );
    assert_eq!(p.incr("fail:bob", SHORT).await.unwrap(), 1);
    assert_eq!(p.get("fail:alice").await.unwrap().as_deref(), Some("2"));
    tokio::time::sleep(SHORT * 2).await;
    // The window did not slide with the second incr: it expired on time.
    assert_eq!(p.get("fail:alice").await.unwrap(), None);
    assert_eq!(p.incr("fail:alice", SHORT).await.unwrap(), 1);
}

async fn incr_is_atomic(p: Arc<dyn Presence>) {
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let p = Arc::clone(&p);
            tokio::spawn(async move { p.incr("counter", LONG).await.unwrap() })
        })
        .collect();
    let mut seen = Vec::new();
    for t in tasks {
        seen.push(t.await.unwrap());
    }
    seen.sort_unstable();
    assert_eq!(seen, (1..=50).collect::<Vec<u64>>());
}

async fn put_if_absent_claims_once(p: Arc<dyn Presence>) {
    assert!(p.put_if_absent("tunnel:a:80", "s1", SHORT).await.unwrap());
    assert!(!p.put_if_absent("tunnel:a:80", "s2", LONG).await.unwrap());
    assert_eq!(p.get("tunnel:a:80").await.unwrap().as_deref(), Some("s1"));
    // Once the holder's entry expires, the key is free again.
    tokio::time::sleep(SHORT * 2).await;
    assert!(p.put_if_absent("tunnel:a:80", "s2", LONG).await.unwrap());
    assert_eq!(p.get("tunnel:a:80").await.unwrap().as_deref(), Some("s2"));
}

async fn put_if_absent_races_have_one_winner(p: Arc<dyn Presence>) {
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let p = Arc::clone(&p);
            tokio::spawn(async move {
                p.put_if_absent("race", &format!("v{i}"), LONG)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut winners = 0;
    for t in tasks {
        winners += usize::from(t.await.unwrap());
    }
    assert_eq!(winners, 1);
}

async fn replace_if_compares_and_refreshes(p: Arc<dyn Presence>) {
    assert!(!p.replace_if("k", "a", "b", LONG).await.unwrap(), "absent");
    p.put("k", "a", SHORT).await.unwrap();
    assert!(!p.replace_if("k", "x", "b", LONG).await.unwrap());
    assert_eq!(p.get("k").await.unwrap().as_deref(), Some("a"));
    assert!(p.replace_if("k", "a", "b", SHORT * 3).await.unwrap());
    // The TTL was refreshed with the value.
    tokio::time::sleep(SHORT + SHORT / 2).await;
    assert_eq!(p.get("k").await.unwrap().as_deref(), Some("b"));
    p.put("gone", "v", SHORT).await.unwrap();
    tokio::time::sleep(SHORT * 2).await;
    assert!(!p.replace_if("gone", "v", "w", LONG).await.unwrap());
}

#[tokio::test]
async fn redis_key_prefixes_isolate() {
    let prefix = random_prefix();
    let a = RedisPresence::connect(&redis_url(), &prefix).await.unwrap();
    let same = RedisPresence::connect(&redis_url(), &prefix).await.unwrap();
    let other = RedisPresence::connect(&redis_url(), &random_prefix())
        .await
        .unwrap();
    a.put("node:1", "v", LONG).await.unwrap();
    assert_eq!(same.get("node:1").await.unwrap().as_deref(), Some("v"));
    assert_eq!(other.get("node:1").await.unwrap(), None);
    assert!(other.list("").await.unwrap().is_empty());
    assert!(!other.delete("node:1").await.unwrap());
    assert_eq!(
        same.list("").await.unwrap(),
        [("node:1".to_owned(), "v".to_owned())]
    );
    a.delete("node:1").await.unwrap();
}

#[tokio::test]
async fn memory_sweeps_expired_entries() {
    let p = MemoryPresence::new();
    for i in 0..100 {
        p.put(&format!("k{i}"), "v", Duration::from_millis(50))
            .await
            .unwrap();
    }
    assert_eq!(p.raw_len(), 100);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // The next write sweeps what expired: memory stays bounded.
    p.put("fresh", "v", LONG).await.unwrap();
    assert_eq!(p.raw_len(), 1);
}

#[tokio::test]
async fn connect_picks_backend() {
    let mem = phirepass_presence::connect(None, "x:").await.unwrap();
    mem.put("a", "b", LONG).await.unwrap();
    assert_eq!(mem.get("a").await.unwrap().as_deref(), Some("b"));
    let red = phirepass_presence::connect(Some(&redis_url()), &random_prefix())
        .await
        .unwrap();
    red.put("a", "b", LONG).await.unwrap();
    assert_eq!(red.get("a").await.unwrap().as_deref(), Some("b"));
    assert!(
        phirepass_presence::connect(Some("not a url"), "x:")
            .await
            .is_err()
    );
}

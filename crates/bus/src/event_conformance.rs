//! The behaviour every [`EventLog`] implementation must share.
//!
//! Each case gets a fresh log for its own random prefix (on JetStream: its
//! own stream on `<prefix>.events.>`) and only appends under that prefix.
//! [`event_log_conformance_tests!`](crate::event_log_conformance_tests)
//! turns the cases into `#[tokio::test]`s for one implementation.

// Test-support code: a failed expectation must panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use bytes::Bytes;

use crate::EventLog;

fn payloads(events: &[(u64, Bytes)]) -> Vec<&[u8]> {
    events.iter().map(|(_, p)| &p[..]).collect()
}

pub async fn append_then_read_in_order(log: Arc<dyn EventLog>, p: String) {
    let subject = format!("{p}.events.audit");
    for body in ["one", "two", "three"] {
        log.append(&subject, Bytes::from(body)).await.unwrap();
    }
    let events = log.read(&subject, 0, 100).await.unwrap();
    assert_eq!(payloads(&events), vec![&b"one"[..], b"two", b"three"]);
    assert!(events[0].0 >= 1);
    assert!(events.windows(2).all(|w| w[0].0 < w[1].0), "{events:?}");
}

pub async fn read_filters_by_subject(log: Arc<dyn EventLog>, p: String) {
    log.append(&format!("{p}.events.audit"), Bytes::from("a"))
        .await
        .unwrap();
    log.append(&format!("{p}.events.presence"), Bytes::from("p"))
        .await
        .unwrap();
    log.append(&format!("{p}.events.audit"), Bytes::from("b"))
        .await
        .unwrap();
    let audit = log
        .read(&format!("{p}.events.audit"), 0, 100)
        .await
        .unwrap();
    assert_eq!(payloads(&audit), vec![&b"a"[..], b"b"]);
    let all = log.read(&format!("{p}.events.>"), 0, 100).await.unwrap();
    assert_eq!(payloads(&all), vec![&b"a"[..], b"p", b"b"]);
    let one = log.read(&format!("{p}.events.*"), 0, 100).await.unwrap();
    assert_eq!(one.len(), 3);
}

pub async fn read_from_seq_and_max(log: Arc<dyn EventLog>, p: String) {
    let subject = format!("{p}.events.audit");
    for i in 0..5 {
        log.append(&subject, Bytes::from(format!("e{i}")))
            .await
            .unwrap();
    }
    let all = log.read(&subject, 0, 100).await.unwrap();
    assert_eq!(all.len(), 5);
    let from_third = log.read(&subject, all[2].0, 100).await.unwrap();
    assert_eq!(payloads(&from_third), vec![&b"e2"[..], b"e3", b"e4"]);
    let two = log.read(&subject, all[1].0, 2).await.unwrap();
    assert_eq!(payloads(&two), vec![&b"e1"[..], b"e2"]);
    let past_end = log.read(&subject, all[4].0 + 1, 100).await.unwrap();
    assert!(past_end.is_empty());
    assert!(log.read(&subject, 0, 0).await.unwrap().is_empty());
}

pub async fn empty_log_reads_nothing(log: Arc<dyn EventLog>, p: String) {
    let events = log.read(&format!("{p}.events.>"), 0, 10).await.unwrap();
    assert!(events.is_empty());
}

pub async fn invalid_subjects_rejected(log: Arc<dyn EventLog>, p: String) {
    for bad in ["", "a..b", "a.*", "a.>", "a b"] {
        assert!(
            log.append(bad, Bytes::from("x")).await.is_err(),
            "append {bad:?}"
        );
    }
    for bad in ["", "a..b", "a.>.b"] {
        assert!(log.read(bad, 0, 1).await.is_err(), "read {bad:?}");
    }
    // Nothing was stored by the refused appends.
    assert!(
        log.read(&format!("{p}.events.>"), 0, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Runs every case as a `#[tokio::test]`. `$make` is a closure from a
/// fresh prefix (`String`) to a future of `Arc<dyn EventLog>`.
#[macro_export]
macro_rules! event_log_conformance_tests {
    ($make:expr) => {
        $crate::event_log_conformance_tests!(@cases $make;
            append_then_read_in_order, read_filters_by_subject,
            read_from_seq_and_max, empty_log_reads_nothing,
            invalid_subjects_rejected);
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let prefix = $crate::conformance::random_prefix();
                let log: ::std::sync::Arc<dyn $crate::EventLog> = ($make)(prefix.clone()).await;
                $crate::event_conformance::$case(log, prefix).await;
            }
        )*
    };
}

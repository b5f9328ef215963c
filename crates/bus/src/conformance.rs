//! The behaviour every [`Bus`] implementation must share.
//!
//! Each case takes a bus and isolates itself under a random subject prefix,
//! so cases run in parallel against one NATS server and can be re-run.
//! [`bus_conformance_tests!`](crate::bus_conformance_tests) turns the cases
//! into `#[tokio::test]`s for one implementation.

// Test-support code: a failed expectation must panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;

use crate::{Bus, BusError, Message, Subscription};

const WAIT: Duration = Duration::from_secs(5);

/// A fresh subject prefix such as `t3f9a...`.
pub fn random_prefix() -> String {
    format!("t{:016x}", rand::random::<u64>())
}

async fn next(sub: &mut Subscription) -> Message {
    tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("timed out waiting for a message")
        .expect("subscription ended")
}

async fn assert_quiet(sub: &mut Subscription, wait: Duration) {
    if let Ok(Some(m)) = tokio::time::timeout(wait, sub.next()).await {
        panic!("unexpected message on {}", m.subject);
    }
}

fn sorted(mut h: Vec<(String, String)>) -> Vec<(String, String)> {
    h.sort();
    h
}

pub async fn publish_subscribe(bus: Arc<dyn Bus>) {
    let p = random_prefix();
    let mut sub = bus.subscribe(&format!("{p}.a")).await.unwrap();
    bus.publish(&format!("{p}.a"), Vec::new(), Bytes::from_static(b"hello"))
        .await
        .unwrap();
    let m = next(&mut sub).await;
    assert_eq!(m.subject, format!("{p}.a"));
    assert_eq!(&m.payload[..], b"hello");
    assert!(m.reply.is_none());
    assert!(m.headers.is_empty());
    bus.publish(&format!("{p}.b"), Vec::new(), Bytes::new())
        .await
        .unwrap();
    assert_quiet(&mut sub, Duration::from_millis(100)).await;
}

pub async fn wildcard_single_token(bus: Arc<dyn Bus>) {
    let p = random_prefix();
    let mut sub = bus.subscribe(&format!("{p}.*.x")).await.unwrap();
    for s in ["a.x", "a.b.x", "a.y", "x", "b.x"] {
        bus.publish(&format!("{p}.{s}"), Vec::new(), Bytes::new())
            .await
            .unwrap();
    }
    assert_eq!(next(&mut sub).await.subject, format!("{p}.a.x"));
    assert_eq!(next(&mut sub).await.subject, format!("{p}.b.x"));
    assert_quiet(&mut sub, Duration::from_millis(100)).await;
}

pub async fn wildcard_tail(bus: Arc<dyn Bus>) {
    let p = random_prefix();
    let mut sub = bus.subscribe(&format!("{p}.a.>")).await.unwrap();
    for s in ["a", "a.b", "b.c", "a.b.c.d"] {
        bus.publish(&format!("{p}.{s}"), Vec::new(), Bytes::new())
            .await
            .unwrap();
    }
    assert_eq!(next(&mut sub).await.subject, format!("{p}.a.b"));
    assert_eq!(next(&mut sub).await.subject, format!("{p}.a.b.c.d"));
    assert_quiet(&mut sub, Duration::from_millis(100)).await;
}

pub async fn fan_out(bus: Arc<dyn Bus>) {
    let p = random_prefix();
    let mut one = bus.subscribe(&format!("{p}.f")).await.unwrap();
    let mut two = bus.subscribe(&format!("{p}.>")).await.unwrap();
    bus.publish(&format!("{p}.f"), Vec::new(), Bytes::from_static(b"x"))
        .await
        .unwrap();
    assert_eq!(&next(&mut one).await.payload[..], b"x");
    assert_eq!(&next(&mut two).await.payload[..], b"x");
}

pub async fn headers_round_trip(bus: Arc<dyn Bus>) {
    let p = random_prefix();
    let mut sub = bus.subscribe(&format!("{p}.h")).await.unwrap();
    let headers = vec![
        (
            "traceparent".to_owned(),
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_owned(),
        ),
        ("X-Multi".to_owned(), "one".to_owned()),
        ("X-Multi".to_owned(), "two words".to_owned()),
    ];
    bus.publish(
        &format!("{p}.h"),
        headers.clone(),
        Bytes::from_static(b"body"),
    )
    .await
    .unwrap();
    let m = next(&mut sub).await;
    assert_eq!(sorted(m.headers.clone()), sorted(headers));
    let multi: Vec<_> = m
        .headers
        .iter()
        .filter(|(k, _)| k == "X-Multi")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(
        multi,
        ["one", "two words"],
        "values of one name keep their order"
    );
    assert_eq!(&m.payload[..], b"body");
}

pub async fn invalid_input_rejected(bus: Arc<dyn Bus>) {
    let p = random_prefix();
    for s in [
        String::new(),
        format!("{p}..a"),
        format!("{p}.*"),
        format!("{p}.>"),
        format!("{p}.a b"),
    ] {
        assert!(
            bus.publish(&s, Vec::new(), Bytes::new()).await.is_err(),
            "publish to {s:?}"
        );
    }
    for s in [format!("{p}..a"), format!("{p}.>.a"), String::new()] {
        assert!(bus.subscribe(&s).await.is_err(), "subscribe to {s:?}");
    }
    let bad = vec![("bad:name".to_owned(), "v".to_owned())];
    assert!(
        bus.publish(&format!("{p}.a"), bad, Bytes::new())
            .await
            .is_err()
    );
    let bad = vec![("n".to_owned(), "a\r\nb".to_owned())];
    assert!(
        bus.publish(&format!("{p}.a"), bad, Bytes::new())
            .await
            .is_err()
    );
}

pub async fn request_reply(bus: Arc<dyn Bus>) {
    let p = random_prefix();
    let mut sub = bus.subscribe(&format!("{p}.svc")).await.unwrap();
    let responder = bus.clone();
    let task = tokio::spawn(async move {
        let m = next(&mut sub).await;
        let reply = m.reply.clone().expect("request carries a reply subject");
        let mut body = m.payload.to_vec();
        body.reverse();
        responder
            .publish(&reply, m.headers.clone(), Bytes::from(body))
            .await
            .unwrap();
    });
    let headers = vec![("traceparent".to_owned(), "t-1".to_owned())];
    let answer = bus
        .request(
            &format!("{p}.svc"),
            headers.clone(),
            Bytes::from_static(b"abc"),
            WAIT,
        )
        .await
        .unwrap();
    assert_eq!(&answer.payload[..], b"cba");
    assert_eq!(answer.headers, headers);
    task.await.unwrap();
}

pub async fn no_responders_is_fast(bus: Arc<dyn Bus>) {
    let p = random_prefix();
    let started = Instant::now();
    let res = bus
        .request(
            &format!("{p}.nobody"),
            Vec::new(),
            Bytes::new(),
            Duration::from_secs(10),
        )
        .await;
    assert!(matches!(res, Err(BusError::NoResponders)), "got {res:?}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );
}

pub async fn request_times_out(bus: Arc<dyn Bus>) {
    let p = random_prefix();
    let _silent = bus.subscribe(&format!("{p}.silent")).await.unwrap();
    let started = Instant::now();
    let res = bus
        .request(
            &format!("{p}.silent"),
            Vec::new(),
            Bytes::new(),
            Duration::from_millis(300),
        )
        .await;
    assert!(matches!(res, Err(BusError::Timeout)), "got {res:?}");
    assert!(started.elapsed() >= Duration::from_millis(250));
}

pub async fn unsubscribe_on_drop(bus: Arc<dyn Bus>) {
    let p = random_prefix();
    let subject = format!("{p}.gone");
    let sub = bus.subscribe(&subject).await.unwrap();
    drop(sub);
    // NATS unsubscribes asynchronously: poll until the server forgot us.
    let deadline = Instant::now() + WAIT;
    loop {
        let res = bus
            .request(
                &subject,
                Vec::new(),
                Bytes::new(),
                Duration::from_millis(200),
            )
            .await;
        match res {
            Err(BusError::NoResponders) => break,
            other if Instant::now() > deadline => panic!("still subscribed: {other:?}"),
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

pub async fn ordering_from_one_publisher(bus: Arc<dyn Bus>) {
    let p = random_prefix();
    let mut sub = bus.subscribe(&format!("{p}.o.*")).await.unwrap();
    const N: u32 = 2_000;
    for i in 0..N {
        // Two subjects under one pattern: order holds across them too.
        let subject = format!("{p}.o.{}", i % 2);
        bus.publish(
            &subject,
            Vec::new(),
            Bytes::copy_from_slice(&i.to_be_bytes()),
        )
        .await
        .unwrap();
    }
    bus.flush().await.unwrap();
    for i in 0..N {
        let m = next(&mut sub).await;
        assert_eq!(&m.payload[..], &i.to_be_bytes(), "message {i} out of order");
    }
}

pub async fn flush_succeeds(bus: Arc<dyn Bus>) {
    bus.flush().await.unwrap();
}

/// Expands to one `#[tokio::test]` per conformance case. `$make` is an
/// expression evaluating to a future of `Arc<dyn Bus>`.
#[macro_export]
macro_rules! bus_conformance_tests {
    ($make:expr) => {
        $crate::bus_conformance_tests!(@cases $make;
            publish_subscribe, wildcard_single_token, wildcard_tail, fan_out,
            headers_round_trip, invalid_input_rejected, request_reply,
            no_responders_is_fast, request_times_out, unsubscribe_on_drop,
            ordering_from_one_publisher, flush_succeeds);
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let bus: ::std::sync::Arc<dyn $crate::Bus> = $make.await;
                $crate::conformance::$case(bus).await;
            }
        )*
    };
}

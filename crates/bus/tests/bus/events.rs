//! The shared EventLog suite on both implementations, plus JetStream
//! durability and the memory ring's bound.

use std::sync::Arc;

use crate::nats_url;
use bytes::Bytes;
use phirepass_bus::{EventLog, JetStreamEventLog, MemoryEventLog, NatsBus};

async fn jetstream(prefix: &str) -> JetStreamEventLog {
    let bus = NatsBus::connect(&nats_url()).await.unwrap();
    JetStreamEventLog::with_stream(&bus, prefix, &format!("PP_TEST_{prefix}"))
        .await
        .unwrap()
}

mod memory {
    use super::*;

    phirepass_bus::event_log_conformance_tests!(|_prefix: String| async {
        Arc::new(MemoryEventLog::new()) as Arc<dyn EventLog>
    });
}

mod nats {
    use super::*;

    phirepass_bus::event_log_conformance_tests!(|prefix: String| async move {
        Arc::new(jetstream(&prefix).await) as Arc<dyn EventLog>
    });
}

/// Events outlive the connection that wrote them.
#[tokio::test]
async fn jetstream_events_survive_a_new_connection() {
    let prefix = phirepass_bus::conformance::random_prefix();
    let subject = format!("{prefix}.events.audit");
    {
        let log = jetstream(&prefix).await;
        log.append(&subject, Bytes::from("kept")).await.unwrap();
    }
    let again = jetstream(&prefix).await;
    let events = again.read(&subject, 0, 10).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(&events[0].1[..], b"kept");
}

#[tokio::test]
async fn memory_log_is_a_bounded_ring() {
    let log = MemoryEventLog::with_capacity(3);
    for i in 0..5 {
        log.append("pp.events.audit", Bytes::from(format!("e{i}")))
            .await
            .unwrap();
    }
    let events = log.read("pp.events.>", 0, 10).await.unwrap();
    let seqs: Vec<u64> = events.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, vec![3, 4, 5]);
    assert_eq!(&events[0].1[..], b"e2");
}

#[tokio::test]
async fn connect_events_picks_implementation() {
    let mem = phirepass_bus::connect_events(None).await.unwrap();
    mem.append("pp.events.audit", Bytes::from("x"))
        .await
        .unwrap();
    assert_eq!(mem.read("pp.events.>", 0, 10).await.unwrap().len(), 1);
    let js = phirepass_bus::connect_events(Some(&nats_url())).await;
    assert!(
        js.is_ok(),
        "production stream PP_EVENTS is created or reused"
    );
}

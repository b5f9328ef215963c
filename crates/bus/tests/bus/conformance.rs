//! The shared Bus suite, run against both implementations.

use std::sync::Arc;

use crate::nats_url;
use phirepass_bus::{Bus, MemoryBus, NatsBus};

mod memory {
    use super::*;

    phirepass_bus::bus_conformance_tests!(async { Arc::new(MemoryBus::new()) as Arc<dyn Bus> });
}

mod nats {
    use super::*;

    phirepass_bus::bus_conformance_tests!(async {
        let bus = NatsBus::connect(&nats_url())
            .await
            .expect("nats at NATS_URL or 127.0.0.1:4222");
        Arc::new(bus) as Arc<dyn Bus>
    });
}

#[tokio::test]
async fn connect_picks_implementation() {
    let mem = phirepass_bus::connect(None).await.unwrap();
    mem.flush().await.unwrap();
    let nats = phirepass_bus::connect(Some(&nats_url())).await.unwrap();
    nats.flush().await.unwrap();
    assert!(
        phirepass_bus::connect(Some("nats://127.0.0.1:1"))
            .await
            .is_err()
    );
}

/// After `flush`, a subscription is visible to other connections (NATS only:
/// the memory bus has a single subject space).
#[tokio::test]
async fn nats_flush_is_a_server_round_trip() {
    use bytes::Bytes;
    use std::time::Duration;
    for i in 0..5 {
        let a = NatsBus::connect(&nats_url()).await.unwrap();
        let b = NatsBus::connect(&nats_url()).await.unwrap();
        let subject = format!("{}.rt{i}", phirepass_bus::conformance::random_prefix());
        let _sub = a.subscribe(&subject).await.unwrap();
        a.flush().await.unwrap();
        let res = b
            .request(
                &subject,
                Vec::new(),
                Bytes::new(),
                Duration::from_millis(100),
            )
            .await;
        assert!(
            matches!(res, Err(phirepass_bus::BusError::Timeout)),
            "attempt {i}: {res:?}"
        );
    }
}

//! Agent link messages (the agent's WebSocket to a gateway; the first one arrives before the
//! agent has authenticated): any bytes are decoded or refused without a panic, and what decodes
//! encodes back to the same message.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use phirepass_tunnel::{HostStats, LinkMessage, NodeControl};

fuzz_target!(|data: &[u8]| {
    check(Bytes::copy_from_slice(data));
    // The same bytes as a control message's JSON.
    let mut control = vec![0x00];
    control.extend_from_slice(data);
    check(control.into());
});

fn check(raw: Bytes) {
    let Ok(msg) = LinkMessage::decode(raw.clone()) else {
        return;
    };
    let encoded = msg.encode();
    let again = match LinkMessage::decode(encoded.clone()) {
        Ok(again) => again,
        Err(e) => panic!("{msg:?} encodes to {encoded:?}, which does not decode: {e}"),
    };
    match (&msg, &again) {
        (LinkMessage::Frame { .. }, _) => {
            assert_eq!(encoded, raw, "frames are relayed verbatim");
            assert_eq!(again, msg);
        }
        (
            LinkMessage::Control(NodeControl::Heartbeat { stats: a }),
            LinkMessage::Control(NodeControl::Heartbeat { stats: b }),
        ) => same_stats(a, b),
        _ => assert_eq!(again, msg),
    }
}

/// serde_json parses decimals to the nearest float or the one next to it, so a float that is
/// printed and parsed again may move by one unit in the last place.
fn same_stats(a: &HostStats, b: &HostStats) {
    let close32 = |x: f32, y: f32| x == y || (x - y).abs() <= x.abs().max(y.abs()) * 1e-6;
    let close64 = |x: f64, y: f64| x == y || (x - y).abs() <= x.abs().max(y.abs()) * 1e-12;
    assert!(close32(a.cpu_percent, b.cpu_percent), "{a:?} vs {b:?}");
    for (x, y) in [(a.load1, b.load1), (a.load5, b.load5), (a.load15, b.load15)] {
        assert!(close64(x, y), "{a:?} vs {b:?}");
    }
    let ints = |s: &HostStats| {
        (
            s.hostname.clone(),
            s.cpu_measured,
            s.mem_total_bytes,
            s.mem_used_bytes,
            s.uptime_secs,
            s.allowed_ports.clone(),
            s.ssh_reachable,
        )
    };
    assert_eq!(ints(a), ints(b));
}

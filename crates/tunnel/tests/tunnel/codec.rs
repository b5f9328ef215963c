//! Frame and link codecs: round trips, malformed input, and a fuzz loop.

use bytes::Bytes;
use phirepass_tunnel::frame::{self, Frame};
use phirepass_tunnel::{
    DecodeError, HostStats, LinkMessage, NodeControl, OpenRequest, StreamId, Target,
};

fn all_frames() -> Vec<Frame> {
    vec![
        Frame::Data {
            seq: 0,
            payload: Bytes::from_static(b"x"),
        },
        Frame::Data {
            seq: u64::MAX,
            payload: Bytes::from(vec![7u8; 40_000]),
        },
        Frame::Fin { seq: 42 },
        Frame::Ack {
            next: 1,
            limit: 262_144,
        },
        Frame::Nack {
            next: u64::MAX,
            limit: 0,
        },
        Frame::Reset {
            reason: String::new(),
        },
        Frame::Reset {
            reason: "peer said no ✓".into(),
        },
        Frame::Ping { nonce: 9 },
        Frame::Pong { nonce: u64::MAX },
    ]
}

#[test]
fn frame_round_trips() {
    for f in all_frames() {
        let wire = f.encode();
        assert_eq!(Frame::decode(wire.clone()).unwrap(), f, "{wire:02x?}");
    }
    assert!(frame::is_reset(&frame::reset_frame("x")));
    assert!(!frame::is_reset(&Frame::Ping { nonce: 1 }.encode()));
    assert!(!frame::is_reset(&[]));
}

#[test]
fn frame_rejects_malformed() {
    let bad: Vec<(Vec<u8>, &str)> = vec![
        (vec![], "empty"),
        (vec![0x00], "unknown frame type 0x00"),
        (vec![0x08, 0, 0], "unknown frame type 0x08"),
        (vec![0xff; 20], "unknown frame type 0xff"),
        (vec![0x01, 0, 0, 0], "truncated data frame"),
        (
            vec![0x01, 0, 0, 0, 0, 0, 0, 0, 1],
            "data frame without payload",
        ),
        (vec![0x02, 0, 0], "truncated fin frame"),
        (vec![0x02; 10], "trailing bytes after fin frame"),
        (vec![0x03; 16], "truncated ack frame"),
        (vec![0x04; 18], "trailing bytes after ack frame"),
        (vec![0x06; 8], "truncated ping frame"),
        (vec![0x07; 10], "trailing bytes after ping frame"),
        (vec![0x05, 0xff, 0xfe], "reset reason is not utf-8"),
    ];
    for (input, want) in bad {
        let err = Frame::decode(Bytes::from(input.clone())).unwrap_err();
        assert!(
            err.to_string().contains(want),
            "{input:02x?}: {err} (wanted {want})"
        );
    }
    let mut long = vec![0x05];
    long.extend(std::iter::repeat_n(b'a', 513));
    assert!(matches!(
        Frame::decode(Bytes::from(long)),
        Err(DecodeError::ReasonTooLong(513))
    ));
    // Encoding clips over-long reasons (on a char boundary) instead.
    let clipped = frame::reset_frame(&"é".repeat(400));
    assert!(clipped.len() <= 513);
    assert!(Frame::decode(clipped).is_ok());
}

fn all_link_messages() -> Vec<LinkMessage> {
    let request = OpenRequest {
        stream_id: StreamId(5),
        edge_id: "gw-1".into(),
        target: Target::Ssh,
        window: 1024,
        ticket: None,
    };
    let controls = vec![
        NodeControl::Auth {
            token: "pat_x".into(),
            version: "0.1.0".into(),
            instance: String::new(),
        },
        NodeControl::Auth {
            token: "pat_x".into(),
            version: "0.1.0".into(),
            instance: "0123456789abcdef".into(),
        },
        NodeControl::AuthOk {
            node_id: "n1".into(),
            node_name: "web".into(),
        },
        NodeControl::AuthFailed {
            reason: "bad token".into(),
        },
        NodeControl::Heartbeat {
            stats: HostStats {
                hostname: "h".into(),
                cpu_percent: 1.5,
                load1: 0.25,
                ..Default::default()
            },
        },
        NodeControl::Heartbeat {
            stats: HostStats {
                hostname: "h".into(),
                cpu_measured: true,
                allowed_ports: Some(vec![8080, 9090]),
                ssh_reachable: Some(false),
                ..Default::default()
            },
        },
        NodeControl::Refused {
            reason: "already connected".into(),
            retry_after_secs: 60,
        },
        NodeControl::Ping { nonce: 1 },
        NodeControl::Pong { nonce: 2 },
        NodeControl::Open { request },
        NodeControl::OpenResult {
            stream_id: StreamId(5),
            error: Some("port not allowed".into()),
        },
        NodeControl::OpenResult {
            stream_id: StreamId(6),
            error: None,
        },
        NodeControl::Disconnect {
            reason: "token revoked".into(),
            fatal: true,
        },
    ];
    let mut all: Vec<_> = controls.into_iter().map(LinkMessage::Control).collect();
    all.push(LinkMessage::Frame {
        stream_id: StreamId(u64::MAX),
        frame: Frame::Ping { nonce: 3 }.encode(),
    });
    all.push(LinkMessage::Frame {
        stream_id: StreamId(0),
        frame: Bytes::from(vec![1u8; 33_000]),
    });
    all
}

#[test]
fn heartbeats_of_older_agents_decode_with_unknown_new_fields() {
    let old = br#"{"type":"heartbeat","stats":{"hostname":"h","cpu_percent":12.5,"mem_total_bytes":1,"mem_used_bytes":0,"load1":0.0,"load5":0.0,"load15":0.0,"uptime_secs":3}}"#;
    let mut raw = vec![0u8];
    raw.extend_from_slice(old);
    let LinkMessage::Control(NodeControl::Heartbeat { stats }) =
        LinkMessage::decode(Bytes::from(raw)).unwrap()
    else {
        panic!("not a heartbeat");
    };
    assert_eq!(stats.cpu(), Some(12.5));
    assert_eq!(stats.allowed_ports, None);
    assert_eq!(stats.ssh_reachable, None);
    // A first sample: no CPU figure, but still a number on the wire for older gateways.
    let first = HostStats::default();
    assert_eq!(first.cpu(), None);
    let json = String::from_utf8(
        LinkMessage::Control(NodeControl::Heartbeat { stats: first })
            .encode()
            .slice(1..)
            .to_vec(),
    )
    .unwrap();
    assert!(json.contains(r#""cpu_percent":0.0"#), "{json}");
}

/// Found by fuzz/fuzz_targets/node_link.rs: `1e39` decoded to an infinite `f32`, which encodes
/// as `null` and so did not decode again.
#[test]
fn heartbeats_with_an_infinite_cpu_figure_are_refused() {
    let beat = |cpu: &str| {
        let json = format!(
            r#"{{"type":"heartbeat","stats":{{"hostname":"h","cpu_percent":{cpu},"mem_total_bytes":1,"mem_used_bytes":0,"load1":0.0,"load5":0.0,"load15":0.0,"uptime_secs":3}}}}"#
        );
        let mut raw = vec![0u8];
        raw.extend_from_slice(json.as_bytes());
        LinkMessage::decode(Bytes::from(raw))
    };
    for cpu in ["1e39", "-1e39", "3.5e38"] {
        let err = beat(cpu).unwrap_err();
        assert!(err.to_string().contains("out of range"), "{cpu}: {err}");
    }
    let max = beat("3.4028235e38").unwrap();
    assert_eq!(LinkMessage::decode(max.encode()).unwrap(), max);
}

#[test]
fn link_round_trips() {
    for m in all_link_messages() {
        assert_eq!(LinkMessage::decode(m.encode()).unwrap(), m);
    }
    // The documented wire shape.
    let ping = LinkMessage::Control(NodeControl::Ping { nonce: 7 }).encode();
    assert_eq!(&ping[..], b"\x00{\"type\":\"ping\",\"nonce\":7}");
    let frame = LinkMessage::Frame {
        stream_id: StreamId(0x0102),
        frame: Bytes::from_static(b"\x06abcdefgh"),
    }
    .encode();
    assert_eq!(&frame[..9], &[1, 0, 0, 0, 0, 0, 0, 1, 2]);
    // `fatal` defaults to false for older gateways.
    let old = LinkMessage::decode(Bytes::from_static(
        b"\x00{\"type\":\"disconnect\",\"reason\":\"bye\"}",
    ))
    .unwrap();
    assert_eq!(
        old,
        LinkMessage::Control(NodeControl::Disconnect {
            reason: "bye".into(),
            fatal: false
        })
    );
}

#[test]
fn link_rejects_malformed() {
    let bad: Vec<(&[u8], &str)> = vec![
        (b"", "empty"),
        (b"\x02abc", "unknown link message kind 0x02"),
        (b"\x01\x00\x00", "truncated link frame"),
        (
            b"\x01\x00\x00\x00\x00\x00\x00\x00\x01",
            "truncated link frame",
        ),
        (b"\x00", "invalid control message"),
        (b"\x00{\"type\":\"nope\"}", "invalid control message"),
        (b"\x00{\"type\":\"ping\"}", "invalid control message"),
        (
            b"\x00{\"type\":\"ping\",\"nonce\":-1}",
            "invalid control message",
        ),
        (b"\x00\xff\xfe", "invalid control message"),
        (
            b"\x00{\"type\":\"ping\",\"nonce\":99999999999999999999999}",
            "invalid control message",
        ),
    ];
    for (input, want) in bad {
        let err = LinkMessage::decode(Bytes::copy_from_slice(input)).unwrap_err();
        assert!(
            err.to_string().contains(want),
            "{input:02x?}: {err} (wanted {want})"
        );
    }
}

#[test]
fn fuzz_random_bytes_never_panic() {
    // xorshift: deterministic, so a failure is reproducible.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let valid: Vec<Bytes> = all_frames()
        .iter()
        .map(Frame::encode)
        .chain(all_link_messages().iter().map(LinkMessage::encode))
        .collect();
    for i in 0..50_000u64 {
        let input: Vec<u8> = if i % 2 == 0 {
            let len = (next() % 64) as usize;
            (0..len).map(|_| next() as u8).collect()
        } else {
            // Mutate a valid message: flip, truncate or extend it.
            let mut v = valid[(next() % valid.len() as u64) as usize].to_vec();
            match next() % 3 {
                0 if !v.is_empty() => {
                    let at = (next() % v.len() as u64) as usize;
                    v[at] ^= next() as u8 | 1;
                }
                1 => v.truncate((next() % (v.len() as u64 + 1)) as usize),
                _ => v.extend((0..next() % 16).map(|_| next() as u8)),
            }
            v
        };
        let _ = Frame::decode(Bytes::from(input.clone()));
        let _ = LinkMessage::decode(Bytes::from(input));
    }
}

//! Tunnel frames (from the bus and, relayed verbatim, from agents and `ssh -R` sessions): any
//! bytes are decoded or refused without a panic, and a decoded frame encodes to exactly the
//! bytes it came from.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use phirepass_tunnel::Frame;
use phirepass_tunnel::frame::{MAX_REASON, is_reset, reset_frame};

fuzz_target!(|data: &[u8]| {
    let raw = Bytes::copy_from_slice(data);
    if let Ok(frame) = Frame::decode(raw.clone()) {
        assert_eq!(frame.encode(), raw);
        assert_eq!(is_reset(data), matches!(frame, Frame::Reset { .. }));
    }
    // Any reason a relay writes is cut to the limit on a character boundary and decodes.
    let reason = String::from_utf8_lossy(data);
    match Frame::decode(reset_frame(&reason)) {
        Ok(Frame::Reset { reason: got }) => {
            assert!(got.len() <= MAX_REASON && reason.starts_with(got.as_str()));
            if reason.len() <= MAX_REASON {
                assert_eq!(got, reason);
            }
        }
        other => panic!("reset_frame({reason:?}) decodes to {other:?}"),
    }
});

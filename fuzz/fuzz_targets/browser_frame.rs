//! Browser WebSocket messages (`/api/web/ws`, before and after authentication): any bytes are
//! decoded or refused without a panic, and what decodes encodes back to the same frame.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use phirepass_tunnel::browser_protocol::{MAX_PAYLOAD, PROTOCOL_CONTROL, WebFrame};

fuzz_target!(|data: &[u8]| {
    check(Bytes::copy_from_slice(data));
    // The same bytes as a control payload behind a valid header: reaches the JSON parser
    // without the fuzzer having to guess the length.
    if data.len() <= MAX_PAYLOAD {
        let mut framed = vec![PROTOCOL_CONTROL];
        framed.extend_from_slice(&(data.len() as u32).to_be_bytes());
        framed.extend_from_slice(data);
        check(framed.into());
    }
});

fn check(msg: Bytes) {
    let Ok(frame) = WebFrame::decode(msg.clone()) else {
        return;
    };
    let encoded = frame.encode();
    assert_eq!(WebFrame::decode(encoded.clone()), Ok(frame.clone()));
    if let WebFrame::Ssh(_) = frame {
        assert_eq!(encoded, msg, "terminal bytes are framed verbatim");
    }
    // One byte more or less than declared is refused.
    let mut longer = msg.to_vec();
    longer.push(0);
    assert!(WebFrame::decode(longer.into()).is_err());
    assert!(WebFrame::decode(msg.slice(..msg.len() - 1)).is_err());
}

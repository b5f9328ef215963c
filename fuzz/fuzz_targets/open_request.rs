//! Open requests and replies (JSON on the bus and inside the agent link) and the stream ids
//! in subjects: any bytes are parsed or refused without a panic, and what parses prints back to
//! an equal value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use phirepass_tunnel::{NodeSubject, OpenReply, OpenRequest, StreamId, Subjects};

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = serde_json::from_slice::<OpenRequest>(data) {
        let json = serde_json::to_vec(&request).unwrap_or_default();
        assert_eq!(
            serde_json::from_slice::<OpenRequest>(&json).ok(),
            Some(request)
        );
    }
    if let Ok(reply) = serde_json::from_slice::<OpenReply>(data) {
        let json = serde_json::to_vec(&reply).unwrap_or_default();
        assert_eq!(serde_json::from_slice::<OpenReply>(&json).ok(), Some(reply));
    }
    let text = String::from_utf8_lossy(data);
    if let Ok(id) = text.parse::<StreamId>() {
        assert_eq!(id.to_string(), text, "only the canonical spelling parses");
    }
    let subjects = Subjects::default();
    match subjects.parse_node_subject("n1", &text) {
        Some(NodeSubject::Open) => assert_eq!(text, subjects.node_open("n1")),
        Some(NodeSubject::Stream(id)) => assert_eq!(text, subjects.node_stream("n1", id)),
        None => {}
    }
    if let Some(word) = data.first_chunk::<8>() {
        let id = StreamId(u64::from_be_bytes(*word));
        assert_eq!(id.to_string().parse::<StreamId>().ok(), Some(id));
    }
});

//! What an agent sends back for a command (issue #10), read by the edge that asked: output
//! records in reads of any size, and the agent's self-report. Any bytes are decoded or refused
//! without a panic, records that decode re-encode to the bytes they came from, and the
//! decoder's answer does not depend on how the bytes were split.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use phirepass_tunnel::command::{AgentStatus, CommandRequest, Record, RecordDecoder};

/// Every record in `data` fed in pieces of `step` bytes, or the first error.
fn decode(data: &[u8], step: usize) -> Result<Vec<Record>, String> {
    let mut d = RecordDecoder::new();
    let mut out = Vec::new();
    for chunk in data.chunks(step.max(1)) {
        d.push(chunk);
        while let Some(r) = d.next_record().map_err(|e| e.to_string())? {
            out.push(r);
        }
    }
    Ok(out)
}

fuzz_target!(|data: &[u8]| {
    let whole = decode(data, data.len());
    let split = decode(data, 1 + usize::from(data.first().copied().unwrap_or(0)) % 7);
    assert_eq!(whole, split, "the split changed the answer");
    if let Ok(records) = whole {
        let mut wire = BytesMut::new();
        for r in &records {
            r.encode(&mut wire);
        }
        let again = decode(&wire, wire.len().max(1));
        assert_eq!(again.as_ref().ok(), Some(&records));
    }
    if let Ok(status) = serde_json::from_slice::<AgentStatus>(data) {
        let json = serde_json::to_vec(&status).unwrap_or_default();
        assert_eq!(serde_json::from_slice::<AgentStatus>(&json).ok(), Some(status));
    }
    if let Ok(request) = serde_json::from_slice::<CommandRequest>(data) {
        let _ = request.validate();
        assert_eq!(request.digest().len(), 64);
    }
});

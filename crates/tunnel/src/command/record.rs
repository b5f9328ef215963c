//! What the agent streams back while a command runs: length-prefixed records.
//!
//! ```text
//! [tag: u8][length: u32 big-endian][payload]
//!   1 stdout bytes   2 stderr bytes   3 Done (JSON RunResult), always last
//! ```
//!
//! Output is sent as it comes (a record per read), so a streaming caller shows it live. The
//! decoder refuses an unknown tag, a length over [`MAX_RECORD_PAYLOAD`], a `Done` that does
//! not parse, and anything after `Done`.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};

/// Largest payload of one record.
pub const MAX_RECORD_PAYLOAD: usize = 64 * 1024;
const HEADER: usize = 5;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const DONE: u8 = 3;

/// How a run ended. `error` is set when the command did not run to an exit status (refused
/// parameter, spawn failure, cancelled): then `exit_code` is `None`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct RunResult {
    /// The program's exit status; `None` when it was killed by a signal or never ran.
    pub exit_code: Option<i32>,
    /// The signal that ended it (a timeout's SIGKILL included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    pub duration_ms: u64,
    /// Bytes the program wrote, including what was cut.
    #[serde(default)]
    pub stdout_bytes: u64,
    #[serde(default)]
    pub stderr_bytes: u64,
    /// Output past the command's limit was dropped.
    #[serde(default)]
    pub stdout_truncated: bool,
    #[serde(default)]
    pub stderr_truncated: bool,
    /// Killed (its whole process group) at the command's timeout.
    #[serde(default)]
    pub timed_out: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl RunResult {
    /// Exit status 0, no error, no timeout.
    pub fn success(&self) -> bool {
        self.exit_code == Some(0) && self.error.is_none() && !self.timed_out
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    Stdout(Bytes),
    Stderr(Bytes),
    Done(RunResult),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("unknown command record tag {0}")]
    UnknownTag(u8),
    #[error("command record of {0} bytes exceeds {MAX_RECORD_PAYLOAD}")]
    TooLong(usize),
    #[error("command result does not parse: {0}")]
    BadResult(String),
    #[error("command output continued after its result")]
    AfterDone,
    #[error("command output ended without a result")]
    NoResult,
}

impl Record {
    /// Appends the encoded record. Output payloads longer than [`MAX_RECORD_PAYLOAD`] are
    /// split into several records by the caller ([`Record::output_chunks`]).
    pub fn encode(&self, out: &mut BytesMut) {
        let (tag, payload): (u8, Bytes) = match self {
            Record::Stdout(b) => (STDOUT, b.clone()),
            Record::Stderr(b) => (STDERR, b.clone()),
            // A plain struct of numbers, bools and strings: serializing cannot fail.
            Record::Done(r) => (DONE, Bytes::from(serde_json::to_vec(r).unwrap_or_default())),
        };
        out.reserve(HEADER + payload.len());
        out.put_u8(tag);
        out.put_u32(payload.len() as u32);
        out.extend_from_slice(&payload);
    }

    /// `Stdout`/`Stderr` records for `bytes`, each at most [`MAX_RECORD_PAYLOAD`].
    pub fn output_chunks(stderr: bool, bytes: Bytes) -> impl Iterator<Item = Record> {
        let n = bytes.len().div_ceil(MAX_RECORD_PAYLOAD);
        (0..n).map(move |i| {
            let end = ((i + 1) * MAX_RECORD_PAYLOAD).min(bytes.len());
            let chunk = bytes.slice(i * MAX_RECORD_PAYLOAD..end);
            if stderr {
                Record::Stderr(chunk)
            } else {
                Record::Stdout(chunk)
            }
        })
    }
}

/// Reassembles records from stream reads of any size.
#[derive(Default)]
pub struct RecordDecoder {
    buf: BytesMut,
    done: bool,
}

impl RecordDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete record, `Ok(None)` when more bytes are needed.
    pub fn next_record(&mut self) -> Result<Option<Record>, RecordError> {
        if self.done {
            return if self.buf.is_empty() {
                Ok(None)
            } else {
                Err(RecordError::AfterDone)
            };
        }
        if self.buf.len() < HEADER {
            return Ok(None);
        }
        let tag = self.buf[0];
        if !matches!(tag, STDOUT | STDERR | DONE) {
            return Err(RecordError::UnknownTag(tag));
        }
        let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]) as usize;
        if len > MAX_RECORD_PAYLOAD {
            return Err(RecordError::TooLong(len));
        }
        if self.buf.len() < HEADER + len {
            return Ok(None);
        }
        self.buf.advance(HEADER);
        let payload = self.buf.split_to(len).freeze();
        Ok(Some(match tag {
            STDOUT => Record::Stdout(payload),
            STDERR => Record::Stderr(payload),
            _ => {
                self.done = true;
                let r = serde_json::from_slice(&payload)
                    .map_err(|e| RecordError::BadResult(e.to_string()))?;
                Record::Done(r)
            }
        }))
    }

    /// At the end of the stream: an error unless `Done` arrived and nothing followed it.
    pub fn finish(&self) -> Result<(), RecordError> {
        match (self.done, self.buf.is_empty()) {
            (true, true) => Ok(()),
            (true, false) => Err(RecordError::AfterDone),
            (false, _) => Err(RecordError::NoResult),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_through_reads_of_any_size() {
        let result = RunResult {
            exit_code: Some(3),
            duration_ms: 12,
            ..Default::default()
        };
        let big = Bytes::from(vec![b'x'; MAX_RECORD_PAYLOAD + 10]);
        let mut records: Vec<Record> = Record::output_chunks(false, big).collect();
        records.push(Record::Stderr(Bytes::from_static(b"warn\n")));
        records.push(Record::Done(result.clone()));
        let mut wire = BytesMut::new();
        for r in &records {
            r.encode(&mut wire);
        }
        for step in [1, 7, 4096, wire.len()] {
            let mut d = RecordDecoder::new();
            let mut got = Vec::new();
            for chunk in wire.chunks(step) {
                d.push(chunk);
                while let Some(r) = d.next_record().unwrap() {
                    got.push(r);
                }
            }
            d.finish().unwrap();
            assert_eq!(got, records, "read size {step}");
        }
        assert_eq!(
            records.len(),
            4,
            "64 KiB + 10 splits into two stdout records"
        );
    }

    #[test]
    fn malformed_records_are_errors() {
        let mut d = RecordDecoder::new();
        d.push(&[9, 0, 0, 0, 0]);
        assert_eq!(d.next_record(), Err(RecordError::UnknownTag(9)));
        let mut d = RecordDecoder::new();
        d.push(&[1, 0xff, 0xff, 0xff, 0xff]);
        assert!(matches!(d.next_record(), Err(RecordError::TooLong(_))));
        let mut d = RecordDecoder::new();
        d.push(&[3, 0, 0, 0, 1, b'{']);
        assert!(matches!(d.next_record(), Err(RecordError::BadResult(_))));
        let mut d = RecordDecoder::new();
        d.push(&[1, 0, 0, 0, 1, b'a']);
        assert!(matches!(d.next_record(), Ok(Some(Record::Stdout(_)))));
        assert_eq!(d.finish(), Err(RecordError::NoResult));
        let mut wire = BytesMut::new();
        Record::Done(RunResult::default()).encode(&mut wire);
        Record::Stdout(Bytes::from_static(b"late")).encode(&mut wire);
        let mut d = RecordDecoder::new();
        d.push(&wire);
        assert!(matches!(d.next_record(), Ok(Some(Record::Done(_)))));
        assert_eq!(d.next_record(), Err(RecordError::AfterDone));
    }
}

//! Allowlisted commands on a node (issue #10): what an edge asks an agent to run, what the
//! agent declares it can run, and the records the agent streams back.
//!
//! A command runs over an ordinary TunnelStream opened with [`crate::Target::Command`]: the
//! open request carries the [`CommandRequest`] (so the agent validates it before anything
//! runs and refuses through `open_result`), authz's ticket binds its [`CommandRequest::digest`],
//! and the agent sends [`Record`]s (stdout, stderr, then exactly one `Done`) toward the edge.
//! The edge sends nothing but its `Fin`; a `Reset` from the edge cancels the run (the agent
//! kills the command's process group).

mod manifest;
mod record;
mod request;

pub use manifest::{AgentAudit, AgentStatus, CommandInfo, ParamInfo, ParamKind};
pub use record::{MAX_RECORD_PAYLOAD, Record, RecordDecoder, RecordError, RunResult};
pub use request::{
    CommandRequest, MAX_NAME_LEN, MAX_PARAM_VALUE_LEN, MAX_PARAMS, RequestError, valid_name,
};

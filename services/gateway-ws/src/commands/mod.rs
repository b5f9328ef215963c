//! Allowlisted commands on nodes (issue #10), as the caller's edge runs them: [`runner`]
//! resolves the node the user may see, asks authz (`command:<name>`), audits the request,
//! opens a ticketed TunnelStream with `Target::Command` to whichever gateway holds the node,
//! streams the agent's records back and audits the result. [`grpc`] serves it as the `Commands`
//! service (API tokens) on the internal listener, [`http`] as the web UI's JSON/NDJSON API
//! (session cookie). [`audit`] also relays the agents' own audit events from their links.

pub mod audit;
pub mod grpc;
pub mod http;
pub mod nodes;
pub mod runner;

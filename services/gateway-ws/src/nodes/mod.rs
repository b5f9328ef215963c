//! Agents held by this instance: the WebSocket on `/api/nodes/ws` that relays their tunnel
//! frames, their registry presence, and dropping those whose token is revoked.

pub mod claim;
pub mod presence;
pub mod revocation;
mod routes;
pub mod socket;

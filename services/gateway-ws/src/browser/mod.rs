//! The browser terminal: the WebSocket on `/api/web/ws`, the SSH client it drives over a
//! TunnelStream, the session's registry presence, and kicks from the dashboard.

mod authorize;
mod hostkeys;
pub mod kick;
pub mod presence;
pub mod revocation;
pub mod socket;
pub mod terminal;

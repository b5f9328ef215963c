//! The JSON the dashboard reads: status and counts, reachable targets, tunnels, and the admin
//! views (live nodes and sessions, directory, kicks).

pub mod admin;
pub mod status;
pub mod targets;
pub mod tunnels;

//! Who may use the gateway: login and the session cookie, first-run setup, invitations and
//! device activation. Users, passwords and tokens live in authz; these are its browser doors.

pub mod auth;
pub mod cookie;
pub mod device;
pub mod invitations;
pub mod setup;

//! `user:target[:account]@edge`: authorise, connect to the target, bridge each session channel.

mod access;
mod bridge;
mod link;
mod passthrough;
pub(crate) mod revocation;

pub(crate) use bridge::{
    ChannelSetup, PtyRequest, Ready, Start, fail, prepare, real_modes, run, serve_channel,
};
pub(crate) use link::TargetLink;
pub(crate) use passthrough::{Next, Passthrough};

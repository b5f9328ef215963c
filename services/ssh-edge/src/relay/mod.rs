//! `user:target@edge`: authorise, connect to the target, bridge each session channel.

mod bridge;
mod link;
mod passthrough;

pub(crate) use bridge::{ChannelSetup, PtyRequest, Start, fail, real_modes, relay, serve_channel};
pub(crate) use link::TargetLink;
pub(crate) use passthrough::{Next, Passthrough};

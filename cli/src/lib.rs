//! The `phirepass` package's library: the deployment builder that `phirepass dev`
//! and the cross-service tests share.
#![forbid(unsafe_code)]

pub mod stack;

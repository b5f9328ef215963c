//! Process plumbing shared by every Phirepass binary: environment config,
//! tracing + OpenTelemetry, shutdown signals, and authenticated gRPC channels.
#![forbid(unsafe_code)]

pub mod clock;
pub mod config;
pub mod data_tls;
pub mod grpc;
pub mod health;
pub mod services;
pub mod shutdown;
pub mod telemetry;

pub use config::ConfigError;
pub use grpc::GrpcError;

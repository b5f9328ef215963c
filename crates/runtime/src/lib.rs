//! Process plumbing shared by every Phirepass binary: environment config,
//! tracing + OpenTelemetry, shutdown signals, and authenticated gRPC channels.
//!
//! Features (both default): `grpc` (mod grpc, health, data_tls) and `otlp`
//! (OpenTelemetry context and export); the agent builds without them.
#![forbid(unsafe_code)]

pub mod clock;
pub mod config;
#[cfg(feature = "grpc")]
pub mod data_tls;
#[cfg(feature = "grpc")]
pub mod grpc;
#[cfg(feature = "grpc")]
pub mod health;
pub mod services;
pub mod shutdown;
pub mod telemetry;

pub use config::ConfigError;
#[cfg(feature = "grpc")]
pub use grpc::GrpcError;

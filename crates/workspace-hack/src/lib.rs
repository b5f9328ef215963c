//! No code: this crate only exists for its dependency lines (see its Cargo.toml).

//! Compiles the .proto files with protox (pure Rust, no system `protoc`) and
//! tonic-prost-build, and writes a file descriptor set for gRPC reflection.

use std::{env, fs, path::PathBuf};

const PROTOS: &[&str] = &[
    "authz.proto",
    "registry.proto",
    "secrets.proto",
    "commands.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);

    let mut compiler = protox::Compiler::new(["."])?;
    compiler.include_source_info(true).include_imports(true);
    compiler.open_files(PROTOS)?;

    fs::write(
        out_dir.join("phirepass_descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(compiler.file_descriptor_set())?;
    Ok(())
}

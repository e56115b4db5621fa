//! Compiles `hello.proto` with protox (pure Rust, so no `protoc` is needed) and generates the prost
//! messages plus the tonic client, and the server when the `server` feature is on.
//!
//! The client is generated without tonic's transport: its only constructor takes any `GrpcService`,
//! which is what lets the same stub run over `tonic_web_wasm_client::Client` in the browser.

use std::{env, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let proto = manifest_dir.join("hello.proto");
    println!("cargo:rerun-if-changed={}", proto.display());

    let descriptors = protox::compile([&proto], [&manifest_dir])?;
    // Kept for server reflection: the schema as the server will describe it to tools like grpcurl.
    std::fs::write(
        out_dir.join("hello_descriptor.bin"),
        prost::Message::encode_to_vec(&descriptors),
    )?;
    let build_server = env::var_os("CARGO_FEATURE_SERVER").is_some();

    tonic_prost_build::configure()
        .build_client(true)
        .build_transport(false)
        .build_server(build_server)
        .compile_fds(descriptors)?;
    Ok(())
}

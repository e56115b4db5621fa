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

    generate(descriptors, build_server)?;

    if env::var_os("CARGO_FEATURE_GRPC_TESTING").is_some() {
        let descriptors = grpc_testing_descriptors()?;
        std::fs::write(
            out_dir.join("grpc_testing_descriptor.bin"),
            prost::Message::encode_to_vec(&descriptors),
        )?;
        generate(descriptors, build_server)?;
    }
    Ok(())
}

fn generate(
    descriptors: prost_types::FileDescriptorSet,
    build_server: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    tonic_prost_build::configure()
        .build_client(true)
        .build_transport(false)
        .build_server(build_server)
        // prost's codec with small buffers (see src/codec.rs).
        .codec_path("crate::codec::HelloCodec")
        .compile_fds(descriptors)?;
    Ok(())
}

/// The official gRPC interop contract (`grpc.testing.TestService`), read from where Debian's
/// `grpc-proto` package installs it (or `GRPC_PROTO_DIR`), so no copy of it lives here.
fn grpc_testing_descriptors() -> Result<prost_types::FileDescriptorSet, Box<dyn std::error::Error>>
{
    println!("cargo:rerun-if-env-changed=GRPC_PROTO_DIR");
    let dir = env::var_os("GRPC_PROTO_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/share/grpc-proto"));
    let test_proto = dir.join("grpc/testing/test.proto");
    if !test_proto.is_file() {
        return Err(format!(
            "the grpc-testing feature compiles grpc/testing/test.proto, which is not in {}: \
             install Debian's grpc-proto package (apt-get install grpc-proto) or set GRPC_PROTO_DIR",
            dir.display()
        )
        .into());
    }
    println!("cargo:rerun-if-changed={}", test_proto.display());
    Ok(protox::compile([&test_proto], [&dir])?)
}

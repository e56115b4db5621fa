//! Generates connect-rust's code for `proto/hello.proto`: protox (pure Rust, no `protoc`) compiles
//! the contract to a descriptor set, which connectrpc-build turns into messages and service traits.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    println!(
        "cargo:rerun-if-changed={}",
        proto_dir.join("hello.proto").display()
    );
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);

    let mut compiler = protox::Compiler::new([&proto_dir])?;
    compiler.include_imports(true).include_source_info(true);
    compiler.open_files(["hello.proto"])?;
    let descriptor_set = out_dir.join("hello.fds.bin");
    std::fs::write(&descriptor_set, compiler.encode_file_descriptor_set())?;

    connectrpc_build::Config::new()
        .files(&["hello.proto"])
        .descriptor_set(&descriptor_set)
        .include_file("_connectrpc.rs")
        .compile()?;
    Ok(())
}

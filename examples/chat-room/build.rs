//! Compiles `proto/chat.proto` with protox (no `protoc` needed) into the messages, the tonic
//! server and client, and the descriptor set reflection describes the service from.

use std::{env, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?).join("proto");
    let proto = proto_dir.join("chat.proto");
    println!("cargo:rerun-if-changed={}", proto.display());
    let descriptors = protox::compile([&proto], [&proto_dir])?;
    std::fs::write(
        PathBuf::from(env::var("OUT_DIR")?).join("chat_descriptor.bin"),
        prost::Message::encode_to_vec(&descriptors),
    )?;
    tonic_prost_build::configure().compile_fds(descriptors)?;
    Ok(())
}

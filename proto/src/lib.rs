//! The Greeter contract, compiled once for every crate that speaks it.
//!
//! `proto/hello.proto` is the single source of truth. This crate turns it into prost messages
//! (`HelloRequest`, `HelloReply`), the tonic client (`greeter_client::GreeterClient`), and, with the
//! `server` feature, the server trait and router glue (`greeter_server`). The browser app and the
//! native server both depend on it, so they can never disagree about the wire format.

#![allow(clippy::derive_partial_eq_without_eq)]

pub mod codec;

tonic::include_proto!("hello");

/// The official gRPC interop contract (`grpc.testing.TestService` and its messages), compiled from
/// Debian's `grpc-proto` package with the `grpc-testing` feature, for the interop suite.
#[cfg(feature = "grpc-testing")]
pub mod grpc_testing {
    tonic::include_proto!("grpc.testing");

    /// The encoded `FileDescriptorSet` of the interop contract, for reflection and metrics.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("grpc_testing_descriptor");
}

/// The encoded `FileDescriptorSet` of `hello.proto`, for server reflection and for tools that need
/// the schema at run time.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("hello_descriptor");

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

/// The canonical name of a gRPC status code, as the gRPC specification spells it
/// (`INVALID_ARGUMENT`), for messages people read and labels machines read alike.
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_code_has_its_canonical_name() {
        // In the order of their numbers, as the gRPC specification lists them.
        let names = [
            "OK",
            "CANCELLED",
            "UNKNOWN",
            "INVALID_ARGUMENT",
            "DEADLINE_EXCEEDED",
            "NOT_FOUND",
            "ALREADY_EXISTS",
            "PERMISSION_DENIED",
            "RESOURCE_EXHAUSTED",
            "FAILED_PRECONDITION",
            "ABORTED",
            "OUT_OF_RANGE",
            "UNIMPLEMENTED",
            "INTERNAL",
            "UNAVAILABLE",
            "DATA_LOSS",
            "UNAUTHENTICATED",
        ];
        for (number, name) in names.into_iter().enumerate() {
            assert_eq!(
                super::code_name(tonic::Code::from_i32(number as i32)),
                name,
                "code {number}"
            );
        }
    }
}

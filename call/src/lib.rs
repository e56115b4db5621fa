//! What every caller here shares (the server's logs and metrics, the WebSocket transport, the
//! browser client, the CLI), written once: the canonical names of gRPC status codes
//! (`INVALID_ARGUMENT`), as the gRPC specification spells them, the status code a response's
//! headers or trailers carry, requests that carry their deadline, and the retry loop of clients
//! that ride through a server restart ([`retry`]). It builds for wasm32 too.

use std::time::Duration;

pub mod retry;

/// A request for `message` that tells the server its deadline (`grpc-timeout`), so the server
/// can stop work the caller no longer waits for.
pub fn with_deadline<T>(message: T, deadline: Option<Duration>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(deadline) = deadline {
        request.set_timeout(deadline);
    }
    request
}

/// The status code in `grpc-status` among `headers` (a response's trailers, or the headers of a
/// trailers-only response), if there is one.
pub fn status_code(headers: &http::HeaderMap) -> Option<tonic::Code> {
    // A constant name, not a `&str` that each lookup would parse again: every call's trailers
    // pass here.
    const GRPC_STATUS: http::HeaderName = http::HeaderName::from_static("grpc-status");
    let value = headers.get(&GRPC_STATUS)?.to_str().ok()?;
    value.parse::<i32>().ok().map(tonic::Code::from_i32)
}

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
    fn reads_the_status_code_from_grpc_status() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(super::status_code(&headers), None);
        headers.insert("grpc-status", "14".parse().unwrap());
        assert_eq!(super::status_code(&headers), Some(tonic::Code::Unavailable));
        headers.insert("grpc-status", "fourteen".parse().unwrap());
        assert_eq!(super::status_code(&headers), None);
    }

    #[test]
    fn a_deadline_becomes_the_grpc_timeout_header() {
        let request = super::with_deadline((), Some(std::time::Duration::from_millis(1500)));
        assert_eq!(request.metadata().get("grpc-timeout").unwrap(), "1500000u");
        let request = super::with_deadline((), None);
        assert!(request.metadata().get("grpc-timeout").is_none());
    }

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

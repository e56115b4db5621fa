//! The page's gRPC client: the generated `GreeterClient` over a gRPC-Web fetch channel.
//!
//! Failures come back as [`CallError`]: a gRPC status from the server, shown by its canonical code
//! name (`INVALID_ARGUMENT: name must not be empty`), or a transport failure, shown as "cannot
//! reach the server" rather than the browser's bare `TypeError: Failed to fetch`.

use std::fmt;

use hello_proto::{greeter_client::GreeterClient, HelloRequest};
use tonic::{Code, Status};
use tonic_web_wasm_client::Client;

/// The server the page talks to: `GREETER_SERVER_URL` when set at build time, else the page's
/// own origin (the server that served it, or `trunk serve`, which proxies to the server).
pub fn default_server_url() -> String {
    if let Some(url) = option_env!("GREETER_SERVER_URL") {
        return url.to_owned();
    }
    web_sys::window()
        .and_then(|window| window.location().origin().ok())
        .unwrap_or_default()
}

/// A handle on the Greeter service; cheap to clone.
#[derive(Debug, Clone)]
pub struct GreeterApi {
    server_url: String,
    client: GreeterClient<Client>,
}

impl GreeterApi {
    pub fn new(server_url: impl Into<String>) -> Self {
        let server_url = server_url.into();
        let client = GreeterClient::new(Client::new(server_url.clone()));
        Self { server_url, client }
    }

    pub fn server_url(&self) -> &str {
        &self.server_url
    }

    /// Calls `SayHello` and returns the greeting.
    pub async fn say_hello(&self, name: String) -> Result<String, CallError> {
        self.client
            .clone()
            .say_hello(HelloRequest { name })
            .await
            .map(|reply| reply.into_inner().message)
            .map_err(|status| CallError::from_status(status, &self.server_url))
    }
}

/// Why a call failed, in terms a person can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The server answered with a gRPC error status.
    Status { code: Code, message: String },
    /// No answer: the server is down, unreachable, or refused the request before gRPC began
    /// (CORS, for example).
    Unreachable { server_url: String, detail: String },
}

impl CallError {
    /// Classifies a status from the generated client. Transport failures reach it as `UNKNOWN`
    /// with the channel's own error as the source; everything else came from the server.
    pub fn from_status(status: Status, server_url: &str) -> Self {
        let transport = std::error::Error::source(&status)
            .and_then(|source| source.downcast_ref::<tonic_web_wasm_client::Error>());
        match transport {
            Some(tonic_web_wasm_client::Error::JsError(detail)) => Self::Unreachable {
                server_url: server_url.to_owned(),
                detail: detail.clone(),
            },
            _ => Self::Status {
                code: status.code(),
                message: status.message().to_owned(),
            },
        }
    }

    /// The gRPC code of the failure; `UNAVAILABLE` when the server could not be reached.
    pub fn code(&self) -> Code {
        match self {
            Self::Status { code, .. } => *code,
            Self::Unreachable { .. } => Code::Unavailable,
        }
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Status { code, message } if message.is_empty() => f.write_str(code_name(*code)),
            Self::Status { code, message } => write!(f, "{}: {message}", code_name(*code)),
            Self::Unreachable { server_url, detail } => {
                write!(f, "cannot reach the server at {server_url} ({detail})")
            }
        }
    }
}

impl std::error::Error for CallError {}

/// The canonical name of a gRPC status code, as the gRPC specification spells it.
pub fn code_name(code: Code) -> &'static str {
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
    use super::*;

    #[test]
    fn a_status_reads_as_code_name_and_message() {
        let error = CallError::from_status(
            Status::invalid_argument("name must not be empty"),
            "http://127.0.0.1:50051",
        );
        assert_eq!(error.code(), Code::InvalidArgument);
        assert_eq!(
            error.to_string(),
            "INVALID_ARGUMENT: name must not be empty"
        );
        let error = CallError::from_status(Status::unimplemented(""), "");
        assert_eq!(error.to_string(), "UNIMPLEMENTED");
    }

    #[test]
    fn a_fetch_failure_reads_as_unreachable() {
        let status = Status::from_error(Box::new(tonic_web_wasm_client::Error::JsError(
            "TypeError: Failed to fetch".into(),
        )));
        let error = CallError::from_status(status, "http://127.0.0.1:1");
        assert_eq!(error.code(), Code::Unavailable);
        assert_eq!(
            error.to_string(),
            "cannot reach the server at http://127.0.0.1:1 (TypeError: Failed to fetch)"
        );
    }

    #[test]
    fn every_code_has_its_canonical_name() {
        for number in 0..=16 {
            let code = Code::from_i32(number);
            let name = code_name(code);
            assert!(
                name.chars().all(|c| c.is_ascii_uppercase() || c == '_'),
                "{name}"
            );
        }
        assert_eq!(code_name(Code::from_i32(4)), "DEADLINE_EXCEEDED");
    }
}

//! The Greeter service: `SayHello` answers `Hello, <name>`, as in the seed's Python server.

use hello_proto::{greeter_server::Greeter, HelloReply, HelloRequest};
use tonic::{Request, Response, Status};

/// The longest name accepted, in bytes of UTF-8.
pub const MAX_NAME_BYTES: usize = 1024;

/// The Greeter implementation bound to the server.
#[derive(Debug, Default, Clone)]
pub struct GreeterService;

#[tonic::async_trait]
impl Greeter for GreeterService {
    async fn say_hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status> {
        let peer = request.remote_addr();
        let name = request.into_inner().name;
        if let Err(status) = validate_name(&name) {
            tracing::info!(?peer, code = ?status.code(), "SayHello rejected: {}", status.message());
            return Err(status);
        }
        tracing::info!(?peer, %name, "SayHello");
        Ok(Response::new(HelloReply {
            message: greeting(&name),
        }))
    }
}

/// The greeting for a name that passed [`validate_name`].
pub fn greeting(name: &str) -> String {
    format!("Hello, {name}")
}

/// Checks a name against the rules every Greeter method applies: not empty or blank, and at most
/// [`MAX_NAME_BYTES`] bytes. A failure is `INVALID_ARGUMENT` with a message that says why.
pub fn validate_name(name: &str) -> Result<(), Status> {
    if name.trim().is_empty() {
        return Err(Status::invalid_argument("name must not be empty"));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(Status::invalid_argument(format!(
            "name must be at most {MAX_NAME_BYTES} bytes, got {}",
            name.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    async fn say_hello(name: &str) -> Result<String, Status> {
        GreeterService
            .say_hello(Request::new(HelloRequest { name: name.into() }))
            .await
            .map(|reply| reply.into_inner().message)
    }

    #[tokio::test]
    async fn greets_by_name() {
        assert_eq!(say_hello("Alice").await.unwrap(), "Hello, Alice");
        assert_eq!(say_hello("Zoë 🦀").await.unwrap(), "Hello, Zoë 🦀");
    }

    #[tokio::test]
    async fn keeps_the_name_as_given() {
        assert_eq!(say_hello("  Bob ").await.unwrap(), "Hello,   Bob ");
    }

    #[tokio::test]
    async fn rejects_empty_and_blank_names() {
        for name in ["", " ", "\t\n "] {
            let status = say_hello(name).await.unwrap_err();
            assert_eq!(status.code(), Code::InvalidArgument, "{name:?}");
            assert_eq!(status.message(), "name must not be empty");
        }
    }

    #[tokio::test]
    async fn limits_the_name_in_bytes() {
        let longest = "a".repeat(MAX_NAME_BYTES);
        assert_eq!(
            say_hello(&longest).await.unwrap(),
            format!("Hello, {longest}")
        );

        // 513 two-byte characters: within 1,024 characters, over 1,024 bytes.
        let status = say_hello(&"é".repeat(513)).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(
            status.message(),
            "name must be at most 1024 bytes, got 1026"
        );
    }
}

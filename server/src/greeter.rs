//! The Greeter service: `SayHello` answers `Hello, <name>`, as in the seed's Python server, and
//! the streaming methods do the same for each of the other three RPC kinds.
//!
//! Every stream is a lazily polled `Stream`, not a spawned task: when the client goes away, the
//! transport drops the stream and its work stops at once. The handlers check only their
//! arguments: the serving stack holds every call to its deadline and `--max-call-duration`, ends
//! open streams with UNAVAILABLE when the server drains, and bounds message sizes, dropping the
//! handler's future or stream when it ends a call. Each stream reports how it ended to
//! [`StreamCounters`]: one the stack ended counts as cancelled, like one whose client left.

use std::{pin::Pin, sync::Arc, time::Duration};

use futures_util::Stream;
use hello_proto::{
    greeter_server::Greeter, HelloReply, HelloRequest, HelloStreamRequest, HelloSummary,
};
use tokio::time::Instant;
use tonic::{Request, Response, Status, Streaming};

use crate::stats::{Outcome, StreamCounters};

/// The longest name accepted, in bytes of UTF-8.
pub const MAX_NAME_BYTES: usize = 1024;
/// Greetings one `SayHelloStream` call may ask for.
pub const STREAM_COUNT: std::ops::RangeInclusive<u32> = 1..=1000;
/// The pause between streamed greetings, in milliseconds.
pub const STREAM_INTERVAL_MS: std::ops::RangeInclusive<u32> = 0..=10_000;
/// Names one `SayHelloToAll` call may send. The summary holds them all; its size is bounded by
/// the largest reply too, whichever is reached first.
pub const MAX_NAMES_PER_CALL: usize = 10_000;
/// The largest encoding of `HelloSummary.count`: a tag byte and a five-byte varint.
const SUMMARY_COUNT_FIELD: usize = 6;

type ReplyStream = Pin<Box<dyn Stream<Item = Result<HelloReply, Status>> + Send>>;

/// The Greeter implementation bound to the server.
#[derive(Debug, Clone)]
pub struct GreeterService {
    streams: Arc<StreamCounters>,
    /// The largest reply the server sends, in bytes: `SayHelloToAll` refuses, as soon as its
    /// summary would outgrow it, rather than build a reply that cannot be sent.
    max_reply_size: usize,
}

impl Default for GreeterService {
    fn default() -> Self {
        Self::new(
            Arc::default(),
            grpc_serve::options::DEFAULT_MAX_MESSAGE_SIZE as usize,
        )
    }
}

impl GreeterService {
    /// A Greeter that reports its streams to `streams` and builds no reply over
    /// `max_reply_size`.
    pub fn new(streams: Arc<StreamCounters>, max_reply_size: usize) -> Self {
        Self {
            streams,
            max_reply_size,
        }
    }
}

#[tonic::async_trait]
impl Greeter for GreeterService {
    type SayHelloStreamStream = ReplyStream;
    type ChatStream = ReplyStream;

    async fn say_hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status> {
        // The call's span (see `gate`) carries the peer, the request id and the outcome, and its
        // one info line per call is the access log. The name is the caller's data: debug only.
        let name = request.into_inner().name;
        if let Err(status) = validate_name(&name) {
            tracing::debug!("SayHello rejected: {}", status.message());
            return Err(status);
        }
        tracing::debug!(%name, "SayHello");
        Ok(Response::new(HelloReply {
            message: greeting(&name),
        }))
    }

    async fn say_hello_stream(
        &self,
        request: Request<HelloStreamRequest>,
    ) -> Result<Response<ReplyStream>, Status> {
        let HelloStreamRequest {
            name,
            count,
            interval_ms,
        } = request.into_inner();
        validate_name(&name)?;
        check_range("count", count, STREAM_COUNT)?;
        check_range("interval_ms", interval_ms, STREAM_INTERVAL_MS)?;
        let interval = Duration::from_millis(interval_ms.into());

        let mut guard = self.streams.start("SayHelloStream");
        let stream = async_stream::stream! {
            let mut next_at = Instant::now();
            for i in 1..=count {
                if i > 1 {
                    // Paced from the first greeting, so a slow reader does not stretch the
                    // intervals.
                    next_at += interval;
                    tokio::time::sleep_until(next_at).await;
                }
                yield Ok(HelloReply { message: format!("Hello #{i}, {name}") });
            }
            guard.finish(Outcome::Completed);
        };
        Ok(Response::new(Box::pin(stream)))
    }

    async fn say_hello_to_all(
        &self,
        request: Request<Streaming<HelloRequest>>,
    ) -> Result<Response<HelloSummary>, Status> {
        let mut names = request.into_inner();
        let mut guard = self.streams.start("SayHelloToAll");
        let max_reply_size = self.max_reply_size;
        let collect = async {
            let mut messages = Vec::new();
            // The summary's encoded size so far, its count field at its largest included.
            let mut reply_size = SUMMARY_COUNT_FIELD;
            while let Some(HelloRequest { name }) = names.message().await? {
                let number = messages.len() + 1;
                validate_numbered_name(&name, number)?;
                if messages.len() == MAX_NAMES_PER_CALL {
                    return Err(Status::invalid_argument(format!(
                        "at most {MAX_NAMES_PER_CALL} names per call"
                    )));
                }
                let message = greeting(&name);
                reply_size += prost::encoding::string::encoded_len(1, &message);
                if reply_size > max_reply_size {
                    return Err(Status::out_of_range(format!(
                        "name #{number}: the summary would exceed the largest reply, \
                         {max_reply_size} bytes; send fewer or shorter names per call"
                    )));
                }
                messages.push(message);
            }
            Ok(messages)
        };
        let messages = guard.finish_with(collect.await)?;
        Ok(Response::new(HelloSummary {
            count: messages.len() as u32,
            messages,
        }))
    }

    async fn chat(
        &self,
        request: Request<Streaming<HelloRequest>>,
    ) -> Result<Response<ReplyStream>, Status> {
        let mut names = request.into_inner();
        let mut guard = self.streams.start("Chat");
        let stream = async_stream::stream! {
            let mut received = 0;
            loop {
                let name = match names.message().await {
                    Ok(Some(HelloRequest { name })) => name,
                    Ok(None) => {
                        guard.finish(Outcome::Completed);
                        return;
                    }
                    Err(status) => {
                        guard.finish(Outcome::of_error(&status));
                        yield Err(status);
                        return;
                    }
                };
                received += 1;
                if let Err(status) = validate_numbered_name(&name, received) {
                    guard.finish(Outcome::Failed);
                    yield Err(status);
                    return;
                }
                yield Ok(HelloReply { message: greeting(&name) });
            }
        };
        Ok(Response::new(Box::pin(stream)))
    }
}

/// [`validate_name`] for the `number`th name of a stream, saying which one failed.
fn validate_numbered_name(name: &str, number: usize) -> Result<(), Status> {
    validate_name(name)
        .map_err(|status| Status::invalid_argument(format!("name #{number}: {}", status.message())))
}

fn check_range(
    field: &str,
    value: u32,
    range: std::ops::RangeInclusive<u32>,
) -> Result<(), Status> {
    if range.contains(&value) {
        Ok(())
    } else {
        Err(Status::invalid_argument(format!(
            "{field} must be between {} and {}, got {value}",
            range.start(),
            range.end()
        )))
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
        GreeterService::default()
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

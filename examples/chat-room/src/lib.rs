//! A chat room where everyone connected sees everyone's messages: the `chat.v1.ChatRoom` service
//! of `proto/chat.proto`, one method per RPC kind, served by `grpc-serve` in `main.rs`.
//!
//! What one client can make the room hold is bounded: a message's author and text have a size
//! limit, the history keeps the last [`HISTORY`] messages, and a member who reads slower than the
//! room talks is dropped (RESOURCE_EXHAUSTED) once [`BACKLOG`] messages wait for them, instead of
//! being buffered without end. How many may join at once is the server's call limit.

use std::{collections::VecDeque, pin::Pin, sync::Mutex};

use tokio::sync::broadcast::{self, error::RecvError};
use tokio_stream::Stream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

tonic::include_proto!("chat.v1");

/// The encoded `FileDescriptorSet` of `chat.proto`: reflection describes the service from it.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("chat_descriptor");

pub use chat_room_client::ChatRoomClient;
pub use chat_room_server::ChatRoomServer;

/// How many messages the room keeps for [`History`](chat_room_server::ChatRoom::history).
pub const HISTORY: usize = 100;
/// How many messages may wait for a member who has not read them; one more and they are dropped.
pub const BACKLOG: usize = 256;
/// The longest author name, in bytes.
pub const MAX_AUTHOR: usize = 64;
/// The longest text, in bytes.
pub const MAX_TEXT: usize = 1024;

/// The room: its recent history and the feed every member listens to.
pub struct Room {
    history: Mutex<History>,
    feed: broadcast::Sender<Message>,
    /// Fires when the server begins to drain: members are let go with UNAVAILABLE.
    draining: CancellationToken,
}

#[derive(Default)]
struct History {
    last_id: u64,
    messages: VecDeque<Message>,
}

impl Room {
    pub fn new(draining: CancellationToken) -> Self {
        Self {
            history: Mutex::default(),
            feed: broadcast::channel(BACKLOG).0,
            draining,
        }
    }

    /// Checks `message`, numbers it, keeps it, and sends it to every member.
    fn post(&self, mut message: Message) -> Result<u64, Status> {
        check(&message)?;
        let mut history = self
            .history
            .lock()
            .expect("never poisoned: no panics under it");
        history.last_id += 1;
        message.id = history.last_id;
        if history.messages.len() == HISTORY {
            history.messages.pop_front();
        }
        history.messages.push_back(message.clone());
        // Sent under the lock, so members see messages in the order of their ids. No members is
        // not an error.
        let _ = self.feed.send(message);
        Ok(history.last_id)
    }
}

/// A message the room accepts: an author and a text, each within its limit.
fn check(message: &Message) -> Result<(), Status> {
    if message.text.trim().is_empty() {
        return Err(Status::invalid_argument("text must not be empty"));
    }
    for (field, value, limit) in [
        ("author", &message.author, MAX_AUTHOR),
        ("text", &message.text, MAX_TEXT),
    ] {
        if value.len() > limit {
            return Err(Status::invalid_argument(format!(
                "{field} is {} bytes, over the limit of {limit}",
                value.len()
            )));
        }
    }
    Ok(())
}

type MessageStream = Pin<Box<dyn Stream<Item = Result<Message, Status>> + Send>>;

/// What happened next for a member: the server began to drain, they sent something, or the room
/// has a message for them.
enum Event {
    Draining,
    Sent(Result<Option<Message>, Status>),
    Posted(Result<Message, RecvError>),
}

#[tonic::async_trait]
impl chat_room_server::ChatRoom for std::sync::Arc<Room> {
    async fn post(&self, request: Request<Message>) -> Result<Response<Posted>, Status> {
        let id = Room::post(self, request.into_inner())?;
        Ok(Response::new(Posted { id }))
    }

    type HistoryStream = MessageStream;

    async fn history(
        &self,
        _request: Request<HistoryRequest>,
    ) -> Result<Response<Self::HistoryStream>, Status> {
        let messages: Vec<_> = self
            .history
            .lock()
            .expect("never poisoned")
            .messages
            .iter()
            .cloned()
            .collect();
        Ok(Response::new(Box::pin(tokio_stream::iter(
            messages.into_iter().map(Ok),
        ))))
    }

    async fn post_all(
        &self,
        request: Request<Streaming<Message>>,
    ) -> Result<Response<PostedAll>, Status> {
        let mut messages = request.into_inner();
        let mut count = 0u32;
        while let Some(message) = messages.message().await? {
            Room::post(self, message).map_err(|status| {
                Status::new(
                    status.code(),
                    format!("message #{}: {}", count + 1, status.message()),
                )
            })?;
            count += 1;
        }
        Ok(Response::new(PostedAll { count }))
    }

    type JoinStream = MessageStream;

    async fn join(
        &self,
        request: Request<Streaming<Message>>,
    ) -> Result<Response<Self::JoinStream>, Status> {
        let mut sent = request.into_inner();
        // Listening before anything is posted, so a member sees their own messages too.
        let mut feed = self.feed.subscribe();
        let room = std::sync::Arc::clone(self);
        let members = async_stream::try_stream! {
            // A member who stops sending still listens, until they leave.
            let mut sending = true;
            loop {
                let event = tokio::select! {
                    () = room.draining.cancelled() => Event::Draining,
                    next = sent.message(), if sending => Event::Sent(next),
                    received = feed.recv() => Event::Posted(received),
                };
                match event {
                    Event::Draining => {
                        Err(Status::unavailable("the server is shutting down; join again"))?;
                    }
                    Event::Sent(next) => match next? {
                        Some(message) => {
                            Room::post(&room, message)?;
                        }
                        None => sending = false,
                    },
                    Event::Posted(Ok(message)) => yield message,
                    Event::Posted(Err(RecvError::Lagged(missed))) => {
                        Err(Status::resource_exhausted(format!(
                            "{missed} messages went unread; join again"
                        )))?;
                    }
                    Event::Posted(Err(RecvError::Closed)) => break,
                }
            }
        };
        Ok(Response::new(Box::pin(members)))
    }
}

//! The page's components: [`App`] provides the client and the deadline to everything below it;
//! one panel per RPC kind ([`SayHello`], [`ServerStream`], [`ClientStream`], [`Chat`]); and the
//! small pieces they share ([`Outcome`], [`StatusLine`], [`DeadlineField`], [`Reconnects`]).

mod app;
mod chat;
mod client_stream;
mod deadline;
mod name_stream;
mod outcome;
mod reconnect;
mod say_hello;
mod server_stream;
mod status_line;

pub use app::App;
pub use chat::Chat;
pub use client_stream::ClientStream;
pub use deadline::{Deadline, DeadlineField};
pub use name_stream::NameStream;
pub use outcome::Outcome;
pub use reconnect::Reconnects;
pub use say_hello::SayHello;
pub use server_stream::ServerStream;
pub use status_line::{CallState, StatusLine};

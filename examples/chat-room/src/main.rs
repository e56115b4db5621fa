//! `chat-room`: the chat room on one port for browsers and gRPC clients, until Ctrl-C or SIGTERM.
//! Every flag of `grpc_serve::Options` works (`--help` lists them), each also read from
//! `CHAT_*` in the environment.

use std::sync::Arc;

use chat_room::{ChatRoomServer, Room, FILE_DESCRIPTOR_SET};
use grpc_serve::{options, Options, Server};

#[derive(clap::Parser)]
#[command(
    name = "chat-room",
    about = "A chat room for browsers and gRPC clients"
)]
struct Cli {
    #[command(flatten)]
    serve: Options,
}

#[tokio::main]
async fn main() -> Result<(), grpc_serve::ServeError> {
    let cli: Cli = options::parse("CHAT");
    grpc_serve::logging::init(cli.serve.log_format);
    let server = Server::new(cli.serve);
    let room = Arc::new(Room::new(server.draining()));
    let server = server.add_service(ChatRoomServer::new(room), FILE_DESCRIPTOR_SET);
    let listener = server.bind().await?;
    server.serve(listener, grpc_serve::shutdown_signal()).await
}

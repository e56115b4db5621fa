//! The Greeter's services on the serving stack: the Greeter, its stream statistics, gRPC's interop
//! service when asked for, and the page this binary carries.

use std::sync::Arc;

use grpc_serve::Server;
use hello_proto::{greeter_server::GreeterServer, greeter_stats_server::GreeterStatsServer};

use crate::{
    page,
    stats::{StatsService, StreamCounters},
    Config, GreeterService,
};

/// The server for `config`, every service added.
pub fn server(config: &Config) -> Server {
    let server = Server::new(config.serve.clone());
    let streams = Arc::new(StreamCounters::default());
    let max_message_size = config.serve.max_message_size as usize;
    // The stack bounds messages both ways; tonic's own decoder stops at 4 MiB unless told
    // otherwise, so a larger `--max-message-size` needs it raised too.
    let greeter = GreeterServer::new(GreeterService::new(Arc::clone(&streams), max_message_size))
        .max_decoding_message_size(max_message_size);
    let stats = GreeterStatsServer::new(StatsService::new(streams));
    #[allow(unused_mut)] // with the grpc-testing feature, one more service may join
    let mut server = server
        .add_service(greeter, hello_proto::FILE_DESCRIPTOR_SET)
        .add_service(stats, hello_proto::FILE_DESCRIPTOR_SET);
    #[cfg(feature = "grpc-testing")]
    if config.grpc_testing {
        server = server.add_service(
            crate::grpc_testing::service(max_message_size),
            hello_proto::grpc_testing::FILE_DESCRIPTOR_SET,
        );
    }
    match (&config.serve.static_dir, page::embedded()) {
        (None, Some(page)) => {
            tracing::info!(files = page.len(), "serving the page from the binary");
            server.page(page)
        }
        _ => server,
    }
}

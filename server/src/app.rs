//! Assembles the HTTP application: the gRPC services (each behind the gRPC-Web translation), the
//! page as the fallback, and the CORS policy around both.

use std::sync::Arc;

use axum::Router;
use grpc_websocket::server::GrpcWebSocketLayer;
use hello_proto::{greeter_server::GreeterServer, greeter_stats_server::GreeterStatsServer};
use tonic::service::Routes;
use tonic_web::GrpcWebLayer;
use tower::Layer;

use crate::{
    cors::{enforce_origin_policy, OriginPolicy},
    stats::{StatsService, StreamCounters},
    web_assets, Config, GreeterService,
};

/// The whole application as one router: native gRPC, gRPC-Web, gRPC over WebSockets and the page.
///
/// The gRPC-Web layer wraps each gRPC service rather than the server: applied server-wide it would
/// answer every plain HTTP/1.1 request, the page's GET included, with 400.
pub fn app(config: &Config) -> Router {
    let policy = Arc::new(OriginPolicy::from_config(config));
    let streams = Arc::new(StreamCounters::default());
    let greeter = GreeterServer::new(GreeterService::new(Arc::clone(&streams)));
    let stats = GreeterStatsServer::new(StatsService::new(streams));
    Routes::new(GrpcWebLayer::new().layer(greeter))
        .add_service(GrpcWebLayer::new().layer(stats))
        .prepare()
        .into_axum_router()
        .fallback_service(web_assets::fallback(&config.static_dir))
        // Client and bidirectional streaming from browsers: the same routes, over a WebSocket.
        .layer(GrpcWebSocketLayer::default())
        .layer(policy.layer())
        .layer(axum::middleware::from_fn_with_state(
            policy,
            enforce_origin_policy,
        ))
}

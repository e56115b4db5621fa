//! Assembles the HTTP application: the gRPC services (each behind the gRPC-Web translation), the
//! operational ones (health, reflection), the page as the fallback, and the CORS policy around all.

use std::{path::Path, sync::Arc};

use axum::Router;
use grpc_websocket::server::{GrpcWebSocket, GrpcWebSocketLayer, Limits as WebSocketLimits};
use hello_proto::{greeter_server::GreeterServer, greeter_stats_server::GreeterStatsServer};
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;
use tonic_health::server::HealthReporter;
use tonic_web::GrpcWebLayer;
use tower::Layer;

use crate::{
    catalog,
    cors::{OriginGuard, OriginGuardLayer, OriginPolicy},
    gate::CallGate,
    limits::CallLimit,
    metrics::Metrics,
    stats::{StatsService, StreamCounters},
    web_assets::{self, AssetStore},
    Config, GreeterService,
};

/// The page to serve: from `--static-dir`, else embedded in the binary, else from `./dist`.
fn page(config: &Config) -> AssetStore {
    let (source, store) = match (&config.static_dir, AssetStore::embedded()) {
        (Some(dir), _) => (dir.display().to_string(), AssetStore::from_dir(dir)),
        (None, Some(embedded)) => ("the binary".to_owned(), Ok(embedded)),
        (None, None) => ("dist".to_owned(), AssetStore::from_dir(Path::new("dist"))),
    };
    match store {
        Ok(store) if !store.is_empty() => {
            tracing::info!(files = store.len(), "serving the page from {source}");
            store
        }
        Ok(store) => store,
        Err(error) => {
            tracing::warn!(%error, "no page from {source}: build it with `cargo xtask run` (or `trunk build --release`)");
            AssetStore::default()
        }
    }
}

/// The gRPC services this server hosts, by their full names, as health checks name them.
pub const SERVICE_NAMES: [&str; 2] = ["hello.Greeter", "hello.GreeterStats"];

/// The application, the handle that reports its health, the signal that ends its streams, and its
/// metrics (which the accept loop adds connections to).
pub struct App {
    pub service: AppService,
    pub health: HealthReporter,
    pub shutdown: CancellationToken,
    pub metrics: Arc<Metrics>,
}

/// The whole application as one HTTP service: the origin policy in front of the WebSocket
/// transport in front of the router. Both wrap the router whole rather than each of its routes,
/// so a call pays for each of them once.
pub type AppService = OriginGuard<GrpcWebSocket<Router>>;

/// The whole application: native gRPC, gRPC-Web, gRPC over WebSockets and the page.
///
/// The gRPC-Web layer wraps each gRPC service rather than the server: applied server-wide it would
/// answer every plain HTTP/1.1 request, the page's GET included, with 400.
pub fn app(config: &Config) -> App {
    let streams = Arc::new(StreamCounters::default());
    let shutdown = CancellationToken::new();
    let max_message_size = config.max_message_size as usize;
    let greeter = GreeterServer::new(GreeterService::new(
        Arc::clone(&streams),
        shutdown.clone(),
        config.max_call_duration,
        max_message_size,
    ))
    .max_decoding_message_size(max_message_size)
    .max_encoding_message_size(max_message_size);
    // The contracts of the services hosted here, which reflection describes. Metrics label calls
    // by their methods, reflection's own, and those of the interop service when it is hosted (its
    // contract's file holds services this server does not host, so reflection leaves it out).
    let contracts = [
        hello_proto::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
    ];
    #[allow(unused_mut)] // with the grpc-testing feature, more methods may join
    let mut method_paths: Vec<String> = contracts
        .iter()
        .chain(&[
            tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
        ])
        .flat_map(|contract| catalog::method_paths(contract))
        .collect();
    #[cfg(feature = "grpc-testing")]
    if config.grpc_testing {
        let prefix = format!("/{}/", crate::grpc_testing::SERVICE_NAME);
        method_paths.extend(
            catalog::method_paths(hello_proto::grpc_testing::FILE_DESCRIPTOR_SET)
                .into_iter()
                .filter(|path| path.starts_with(&prefix)),
        );
    }
    let metrics = Arc::new(Metrics::new(method_paths));
    // Every gRPC call, on any transport, is observed and counts against the limit (refusals
    // observed too); the page is not. The gate sits inside the gRPC-Web translation, where every
    // call is native gRPC and its status is in its trailers.
    let gate = CallGate {
        metrics: Arc::clone(&metrics),
        limit: CallLimit::new(config.max_concurrent_calls),
    };
    let stats = GreeterStatsServer::new(StatsService::new(streams));
    let (health, health_service) = tonic_health::server::health_reporter();
    // Reflection describes every service here, so tools such as grpcurl need no .proto files.
    // v1 and the older v1alpha, which many tools still ask for first.
    let reflection = || {
        contracts.iter().fold(
            tonic_reflection::server::Builder::configure(),
            |builder, contract| builder.register_encoded_file_descriptor_set(contract),
        )
    };
    let reflection_v1 = reflection()
        .build_v1()
        .expect("the embedded descriptor sets are valid");
    let reflection_v1alpha = reflection()
        .build_v1alpha()
        .expect("the embedded descriptor sets are valid");

    #[allow(unused_mut)] // with the grpc-testing feature, one more service may join
    let mut routes = Routes::new(GrpcWebLayer::new().layer(gate.layer(greeter)))
        .add_service(GrpcWebLayer::new().layer(gate.layer(stats)))
        .add_service(GrpcWebLayer::new().layer(gate.layer(health_service)))
        .add_service(gate.layer(reflection_v1))
        .add_service(gate.layer(reflection_v1alpha));
    #[cfg(feature = "grpc-testing")]
    if config.grpc_testing {
        routes = routes.add_service(
            GrpcWebLayer::new().layer(gate.layer(crate::grpc_testing::service(max_message_size))),
        );
    }
    let router = routes
        .prepare()
        .into_axum_router()
        .route(
            "/metrics",
            axum::routing::get({
                let metrics = Arc::clone(&metrics);
                move || async move {
                    (
                        [(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                        metrics.render(),
                    )
                }
            }),
        )
        .fallback_service(web_assets::fallback(Arc::new(page(config))));
    // Client and bidirectional streaming from browsers: the same routes, over a WebSocket.
    let router = GrpcWebSocketLayer::new(WebSocketLimits {
        max_message_size,
        header_timeout: config.header_read_timeout,
    })
    .layer(router);
    let policy = OriginPolicy::from_config(config);
    tracing::info!("answering requests for {}", policy.hosts().describe());
    App {
        service: OriginGuardLayer::new(policy).layer(router),
        health,
        shutdown,
        metrics,
    }
}

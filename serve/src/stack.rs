//! Assembles the HTTP application around the caller's gRPC services: each behind the gRPC-Web
//! translation and the call gate, the operational services (health, reflection, `/metrics`), the
//! page as the fallback, the WebSocket transport and the origin policy around all.

use std::{convert::Infallible, sync::Arc};

use axum::Router;
use grpc_websocket::server::{GrpcWebSocket, GrpcWebSocketLayer, Limits as WebSocketLimits};
use http::{Request, Response};
use tokio_util::sync::CancellationToken;
use tonic::body::Body;
use tonic_health::server::HealthReporter;
use tonic_web::GrpcWebLayer;
use tower::{util::BoxCloneSyncService, Layer, ServiceExt};

use crate::{
    catalog,
    cors::{OriginGuard, OriginGuardLayer, OriginPolicy},
    gate::{CallBounds, CallGate},
    hosted::{self, Hosted, LayerScope, ServiceLayer},
    limits::CallLimit,
    metrics::Metrics,
    readiness::{Readiness, ReadinessLayer, ReadinessService},
    web_assets::{self, AssetStore},
    Options, ServeError,
};

/// The largest reflection request, in bytes.
const MAX_REFLECTION_REQUEST: usize = 16 * 1024;

/// The services the stack hosts itself: no user's service may take their names.
pub(crate) const OPERATIONAL: [&str; 3] = [
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

/// What the application is made of.
pub(crate) struct Parts<'a> {
    pub options: &'a Options,
    pub hosted: Vec<Hosted>,
    /// The user's layer, and what it covers.
    pub layer: Option<(ServiceLayer, LayerScope)>,
    /// The user's own routes.
    pub routes: Option<Router>,
    pub page: AssetStore,
    pub readiness: &'a Readiness,
    pub draining: CancellationToken,
}

/// The application, the handle that reports its health, and its metrics (which the accept loop
/// adds connections to).
pub(crate) struct App {
    pub service: AppService,
    pub health: HealthReporter,
    pub metrics: Arc<Metrics>,
}

/// The whole application as one HTTP service: readiness (its probes, and `Connection: close` once
/// stopping), then the origin policy, then the WebSocket transport, in front of the router. Each
/// wraps the router whole rather than each of its routes, so a call pays for each of them once.
pub(crate) type AppService = ReadinessService<OriginGuard<GrpcWebSocket<Router>>>;

/// The whole application: native gRPC, gRPC-Web, gRPC over WebSockets and the page.
///
/// The gRPC-Web layer wraps each gRPC service rather than the server: applied server-wide it would
/// answer every plain HTTP/1.1 request, the page's GET included, with 400.
pub(crate) fn app(parts: Parts<'_>) -> Result<App, ServeError> {
    let Parts {
        options,
        hosted,
        layer,
        routes,
        page,
        readiness,
        draining,
    } = parts;
    let operational = [
        tonic_health::pb::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
    ];
    // Metrics label calls by the methods of the services hosted here, each read from its
    // service's contract (which may hold other services too), and by those of health and
    // reflection. Every other path shares one label.
    let methods = hosted
        .iter()
        .flat_map(|service| {
            let prefix = format!("/{}/", service.name);
            catalog::methods(service.descriptor_set)
                .into_iter()
                .filter(move |method| method.path.starts_with(&prefix))
        })
        .chain(operational.iter().flat_map(|set| catalog::methods(set)))
        .collect::<Vec<_>>();
    let metrics = Arc::new(Metrics::new(methods));
    // Every gRPC call, on any transport, is observed and counts against the limit (refusals
    // observed too); the page is not. The gate sits inside the gRPC-Web translation, where every
    // call is native gRPC and its status is in its trailers.
    let gate = CallGate {
        metrics: Arc::clone(&metrics),
        limit: CallLimit::new(options.max_concurrent_calls),
        bounds: CallBounds {
            max_message_size: options.max_message_size.into(),
            message_timeout: options.request_message_timeout,
            max_call_duration: options.max_call_duration,
        },
        draining,
    };
    let (health, health_service) = tonic_health::server::health_reporter();
    // Reflection describes the services hosted here, so tools such as grpcurl need no .proto
    // files: v1 and the older v1alpha, which many tools still ask for first. It lists those
    // services by name, not every service their contracts hold.
    let reflection = || {
        let mut builder = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .with_service_name("grpc.health.v1.Health");
        for service in &hosted {
            builder = builder
                .register_encoded_file_descriptor_set(service.descriptor_set)
                .with_service_name(service.name);
        }
        builder
    };
    // A reflection request names a symbol or a host, which reflection echoes back: the requests
    // it needs are small, so it takes none larger.
    // Each hosted service has been checked on its own; together they could still clash.
    let reflection_error = |error: tonic_reflection::server::Error| ServeError::Service {
        service: "grpc.reflection.v1.ServerReflection",
        reason: format!("the services' descriptor sets do not fit together: {error}"),
    };
    let reflection_v1 = reflection()
        .with_service_name("grpc.reflection.v1.ServerReflection")
        .build_v1()
        .map_err(reflection_error)?
        .max_decoding_message_size(MAX_REFLECTION_REQUEST);
    let reflection_v1alpha = reflection()
        .with_service_name("grpc.reflection.v1alpha.ServerReflection")
        .build_v1alpha()
        .map_err(reflection_error)?
        .max_decoding_message_size(MAX_REFLECTION_REQUEST);

    let user_layer = layer.as_ref().map(|(layer, _)| layer);
    // The layer over the stack's own services, if the user asked for it.
    let operational_layer = layer
        .as_ref()
        .filter(|(_, scope)| *scope == LayerScope::Everything)
        .map(|(layer, _)| layer);
    let mut router = Router::new();
    router = hosted::add_gated(router, &gate, operational_layer, health_service);
    router = hosted::add_gated(router, &gate, operational_layer, reflection_v1);
    router = hosted::add_gated(router, &gate, operational_layer, reflection_v1alpha);
    for service in hosted {
        router = service.add_to(router, &gate, user_layer);
    }
    let metrics_page = {
        let metrics = Arc::clone(&metrics);
        tower::service_fn(move |_request: Request<Body>| {
            let page = metrics.render();
            async move {
                Ok::<_, Infallible>(
                    Response::builder()
                        .header(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")
                        .body(Body::new(page))
                        .expect("a valid response"),
                )
            }
        })
    };
    let metrics_page = BoxCloneSyncService::new(metrics_page);
    let metrics_page = match operational_layer {
        Some(layer) => layer(metrics_page),
        None => metrics_page,
    };
    // Unknown services and methods are answered through the gate too: counted under `unknown`,
    // logged, and bounded like any call.
    let unknown = GrpcWebLayer::new().layer(gate.layer(tower::service_fn(|_request| async {
        Ok::<_, Infallible>(
            tonic::Status::unimplemented("unknown service or method").into_http::<Body>(),
        )
    })));
    let fallback = web_assets::fallback(Arc::new(page), unknown);
    let router = router
        .route_service(
            "/metrics",
            axum::routing::get_service(
                metrics_page
                    .map_request(|request: Request<axum::body::Body>| request.map(Body::new)),
            ),
        )
        // The user's routes answer what the stack's own leave, and the page what theirs leave.
        .fallback_service(match routes {
            Some(routes) => routes.fallback_service(fallback).with_state(()),
            None => Router::new().fallback_service(fallback).with_state(()),
        })
        .with_state(());
    // Client and bidirectional streaming from browsers: the same routes, over a WebSocket.
    // The origin guard in front checks every upgrade's origin against the whole policy (allowed
    // origins, `--dev`, and the scheme of "same origin"), so the layer admits what reaches it.
    let router = GrpcWebSocketLayer::new(WebSocketLimits {
        max_message_size: options.max_message_size as usize,
        header_timeout: options.header_read_timeout,
    })
    .allow_origins(|_| true)
    .layer(router);
    let policy = OriginPolicy::from_options(options);
    tracing::info!("answering requests for {}", policy.hosts().describe());
    Ok(App {
        service: ReadinessLayer::new(readiness.clone())
            .layer(OriginGuardLayer::new(policy).layer(router)),
        health,
        metrics,
    })
}

//! What the builder takes from its user and hosts: gRPC services (any tonic-generated server,
//! with an interceptor or a tower layer of its own), a layer over all of them, and HTTP routes of
//! the user's own.
//!
//! Each service is checked when it is added against what the stack needs of it: a descriptor set
//! that decodes, describes the service and builds reflection, and a name no other service has. A
//! problem is kept and reported by [`crate::Server::bind`] as a [`crate::ServeError`], so nothing
//! a user hands the builder can panic later, inside `serve`.

use std::{
    convert::Infallible,
    sync::Arc,
    task::{Context, Poll},
};

use futures_util::{future::MapOk, TryFutureExt};
use http::{Request, Response};
use tonic::{body::Body, server::NamedService};
use tonic_web::GrpcWebLayer;
use tower::{util::BoxCloneSyncService, Layer, Service, ServiceExt};

use crate::{catalog, gate::CallGate};

/// A gRPC service with its type erased: what a layer over every service wraps (see
/// [`crate::Server::layer`]).
pub type BoxedService = BoxCloneSyncService<Request<Body>, Response<Body>, Infallible>;

/// A user's layer over the hosted services, erased so that one layer applies to services of
/// different types.
pub(crate) type ServiceLayer = Arc<dyn Fn(BoxedService) -> BoxedService + Send + Sync>;

/// Which services a [`crate::Server::layer`] wraps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LayerScope {
    /// The services given to [`crate::Server::add_service`] only: health and reflection stay
    /// open, as load balancers' checks and tools expect.
    #[default]
    Services,
    /// Health and reflection too.
    Everything,
}

/// Adds a service to the router, behind the gRPC-Web translation and the call gate, under the
/// user's layer if there is one.
type AddRoute =
    Box<dyn FnOnce(axum::Router, &CallGate, Option<&ServiceLayer>) -> axum::Router + Send>;

/// A gRPC service to host: its name, the descriptor set of its contract, and how it joins the
/// router (which exists only once every service is known: the gate's metrics label each one's
/// methods).
pub(crate) struct Hosted {
    pub(crate) name: &'static str,
    pub(crate) descriptor_set: &'static [u8],
    add: AddRoute,
}

impl Hosted {
    pub(crate) fn new<S, B>(service: S, descriptor_set: &'static [u8]) -> Self
    where
        S: Service<Request<Body>, Response = Response<B>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
        B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<tonic::codegen::StdError>,
    {
        let service = IntoTonicBody(service);
        Self {
            name: S::NAME,
            descriptor_set,
            add: Box::new(move |router, gate, layer| add_gated(router, gate, layer, service)),
        }
    }

    /// Adds the service to `router`.
    pub(crate) fn add_to(
        self,
        router: axum::Router,
        gate: &CallGate,
        layer: Option<&ServiceLayer>,
    ) -> axum::Router {
        (self.add)(router, gate, layer)
    }

    /// Why the stack cannot host this service, if it cannot; `others` are the names hosted
    /// before it.
    pub(crate) fn problem(&self, others: &[&str]) -> Option<String> {
        if others.contains(&self.name) || crate::stack::OPERATIONAL.contains(&self.name) {
            return Some("a service of this name is already hosted".into());
        }
        let methods = match catalog::try_methods(self.descriptor_set) {
            Ok(methods) => methods,
            Err(error) => return Some(format!("its descriptor set does not decode: {error}")),
        };
        let prefix = format!("/{}/", self.name);
        if !methods
            .iter()
            .any(|method| method.path.starts_with(&prefix))
        {
            return Some(
                "its descriptor set does not describe it (give the set compiled from its own \
                 .proto)"
                    .into(),
            );
        }
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(self.descriptor_set)
            .build_v1()
            .err()
            .map(|error| format!("reflection cannot describe it from its descriptor set: {error}"))
    }
}

/// Adds the gRPC service `service` to `router` under `/S::NAME/`, behind the call gate and the
/// gRPC-Web translation, and under `layer` if there is one. Without a layer the service keeps its
/// type: no box per call.
pub(crate) fn add_gated<S>(
    router: axum::Router,
    gate: &CallGate,
    layer: Option<&ServiceLayer>,
    service: S,
) -> axum::Router
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + NamedService
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    match layer {
        None => route(router, S::NAME, gate.layer(service)),
        Some(layer) => route(
            router,
            S::NAME,
            gate.layer(layer(BoxCloneSyncService::new(service))),
        ),
    }
}

/// Adds the gated gRPC service `service` to `router` under `/name/`, as tonic's own router does,
/// behind the gRPC-Web translation.
fn route<S, B>(router: axum::Router, name: &str, service: S) -> axum::Router
where
    S: Service<Request<Body>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + std::fmt::Display,
{
    router.route_service(
        &format!("/{name}/{{*rest}}"),
        GrpcWebLayer::new()
            .layer(service)
            .map_request(|request: Request<axum::body::Body>| request.map(Body::new)),
    )
}

/// Erases a user's layer so that it applies to every hosted service; the responses of what it
/// makes are made tonic's body, as [`Hosted::new`] does for services.
pub(crate) fn erase_layer<L, B>(layer: L) -> ServiceLayer
where
    L: Layer<BoxedService> + Send + Sync + 'static,
    L::Service: Service<Request<Body>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    <L::Service as Service<Request<Body>>>::Future: Send + 'static,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<tonic::codegen::StdError>,
{
    Arc::new(move |service| BoxCloneSyncService::new(IntoTonicBody(layer.layer(service))))
}

/// A service whose responses are made tonic's body: tonic's `InterceptedService` and tower
/// layers answer with bodies of their own.
#[derive(Clone)]
struct IntoTonicBody<S>(S);

impl<S: NamedService> NamedService for IntoTonicBody<S> {
    const NAME: &'static str = S::NAME;
}

type IntoBody<B> = fn(Response<B>) -> Response<Body>;

impl<S, B> Service<Request<Body>> for IntoTonicBody<S>
where
    S: Service<Request<Body>, Response = Response<B>>,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<tonic::codegen::StdError>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = MapOk<S::Future, IntoBody<B>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        // Free for tonic's own body, which `Body::new` passes through.
        self.0
            .call(request)
            .map_ok((|response: Response<B>| response.map(Body::new)) as IntoBody<B>)
    }
}

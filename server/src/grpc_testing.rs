//! The official gRPC interop service, `grpc.testing.TestService`, so that gRPC's own interop clients
//! can test this server's transport: large messages, streams in both directions, custom metadata,
//! status codes and messages, cancellation and deadlines.
//!
//! Built with the `grpc-testing` feature (the contract comes from Debian's grpc-proto package) and
//! hosted with `--grpc-testing`, next to the Greeter and behind the same layers. The behaviour
//! follows gRPC's interop test description: payloads of zeros of the requested size, the requested
//! status echoed, and `x-grpc-test-echo-initial` / `x-grpc-test-echo-trailing-bin` echoed back in
//! the response headers and trailers.

use std::{
    convert::Infallible,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use futures_util::{future::BoxFuture, Stream, StreamExt};
use hello_proto::grpc_testing::{
    test_service_server::{TestService, TestServiceServer},
    EchoStatus, Empty, Payload, PayloadType, ResponseParameters, SimpleRequest, SimpleResponse,
    StreamingInputCallRequest, StreamingInputCallResponse, StreamingOutputCallRequest,
    StreamingOutputCallResponse,
};
use http::{HeaderName, HeaderValue};
use http_body::Frame;
use tonic::{body::Body, server::NamedService, Code, Request, Response, Status, Streaming};

const ECHO_INITIAL: HeaderName = HeaderName::from_static("x-grpc-test-echo-initial");
const ECHO_TRAILING: HeaderName = HeaderName::from_static("x-grpc-test-echo-trailing-bin");

/// The largest payload a request may ask for: the messages must stay under the server's limit.
const MAX_PAYLOAD: i32 = 4 * 1024 * 1024 - 64;

/// The service's full name, as routes and metrics know it.
pub const SERVICE_NAME: &str = <TestServiceServer<InteropTestService> as NamedService>::NAME;

/// The service, wrapped so that it echoes the test metadata; ready for the router.
pub fn service(max_message_size: usize) -> EchoMetadata<TestServiceServer<InteropTestService>> {
    EchoMetadata(
        TestServiceServer::new(InteropTestService)
            .max_decoding_message_size(max_message_size)
            .max_encoding_message_size(max_message_size),
    )
}

/// `grpc.testing.TestService`, as the interop test description specifies it.
#[derive(Debug, Default)]
pub struct InteropTestService;

type ResponseStream =
    Pin<Box<dyn Stream<Item = Result<StreamingOutputCallResponse, Status>> + Send>>;

#[tonic::async_trait]
impl TestService for InteropTestService {
    async fn empty_call(&self, _: Request<Empty>) -> Result<Response<Empty>, Status> {
        Ok(Response::new(Empty {}))
    }

    async fn unary_call(
        &self,
        request: Request<SimpleRequest>,
    ) -> Result<Response<SimpleResponse>, Status> {
        let request = request.into_inner();
        echo_status(request.response_status.as_ref())?;
        Ok(Response::new(SimpleResponse {
            payload: Some(payload(request.response_size)?),
            ..SimpleResponse::default()
        }))
    }

    async fn cacheable_unary_call(
        &self,
        request: Request<SimpleRequest>,
    ) -> Result<Response<SimpleResponse>, Status> {
        self.unary_call(request).await
    }

    type StreamingOutputCallStream = ResponseStream;

    async fn streaming_output_call(
        &self,
        request: Request<StreamingOutputCallRequest>,
    ) -> Result<Response<Self::StreamingOutputCallStream>, Status> {
        let request = request.into_inner();
        Ok(Response::new(Box::pin(async_stream::try_stream! {
            for parameters in &request.response_parameters {
                yield respond(parameters).await?;
            }
            echo_status(request.response_status.as_ref())?;
        })))
    }

    async fn streaming_input_call(
        &self,
        request: Request<Streaming<StreamingInputCallRequest>>,
    ) -> Result<Response<StreamingInputCallResponse>, Status> {
        let mut requests = request.into_inner();
        let mut aggregated_payload_size: i32 = 0;
        while let Some(request) = requests.message().await? {
            let size = request.payload.map_or(0, |payload| payload.body.len());
            aggregated_payload_size = i32::try_from(size)
                .ok()
                .and_then(|size| aggregated_payload_size.checked_add(size))
                .ok_or_else(|| Status::out_of_range("the aggregated payload size overflows"))?;
        }
        Ok(Response::new(StreamingInputCallResponse {
            aggregated_payload_size,
        }))
    }

    type FullDuplexCallStream = ResponseStream;

    /// Answers each request as it arrives.
    async fn full_duplex_call(
        &self,
        request: Request<Streaming<StreamingOutputCallRequest>>,
    ) -> Result<Response<Self::FullDuplexCallStream>, Status> {
        let mut requests = request.into_inner();
        Ok(Response::new(Box::pin(async_stream::try_stream! {
            while let Some(request) = requests.message().await? {
                echo_status(request.response_status.as_ref())?;
                for parameters in &request.response_parameters {
                    yield respond(parameters).await?;
                }
            }
        })))
    }

    type HalfDuplexCallStream = ResponseStream;

    /// Reads every request first, then answers them in order.
    async fn half_duplex_call(
        &self,
        request: Request<Streaming<StreamingOutputCallRequest>>,
    ) -> Result<Response<Self::HalfDuplexCallStream>, Status> {
        let requests: Vec<StreamingOutputCallRequest> = request
            .into_inner()
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_, _>>()?;
        Ok(Response::new(Box::pin(async_stream::try_stream! {
            for request in &requests {
                echo_status(request.response_status.as_ref())?;
                for parameters in &request.response_parameters {
                    yield respond(parameters).await?;
                }
            }
        })))
    }

    async fn unimplemented_call(&self, _: Request<Empty>) -> Result<Response<Empty>, Status> {
        Err(Status::unimplemented(
            "grpc.testing.TestService/UnimplementedCall is never implemented",
        ))
    }
}

/// A payload of `size` zero bytes.
fn payload(size: i32) -> Result<Payload, Status> {
    if !(0..=MAX_PAYLOAD).contains(&size) {
        return Err(Status::invalid_argument(format!(
            "a payload size must be between 0 and {MAX_PAYLOAD}, got {size}"
        )));
    }
    Ok(Payload {
        r#type: PayloadType::Compressable.into(),
        body: vec![0; size as usize],
    })
}

/// One streamed response, after the pause the parameters ask for.
async fn respond(parameters: &ResponseParameters) -> Result<StreamingOutputCallResponse, Status> {
    if parameters.interval_us > 0 {
        tokio::time::sleep(Duration::from_micros(parameters.interval_us as u64)).await;
    }
    Ok(StreamingOutputCallResponse {
        payload: Some(payload(parameters.size)?),
    })
}

/// The status the request asks the server to end with, if it asks for one.
fn echo_status(status: Option<&EchoStatus>) -> Result<(), Status> {
    match status {
        Some(EchoStatus { code, message }) if *code != 0 => {
            Err(Status::new(Code::from_i32(*code), message.clone()))
        }
        _ => Ok(()),
    }
}

/// Echoes `x-grpc-test-echo-initial` into the response headers and `x-grpc-test-echo-trailing-bin`
/// into its trailers, around any gRPC service (tonic offers no trailers of one's own on success).
#[derive(Debug, Clone)]
pub struct EchoMetadata<S>(S);

impl<S: NamedService> NamedService for EchoMetadata<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> tower::Service<http::Request<Body>> for EchoMetadata<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Send,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<http::Response<Body>, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let initial = request.headers().get(ECHO_INITIAL).cloned();
        let trailing = request.headers().get(ECHO_TRAILING).cloned();
        let response = self.0.call(request);
        Box::pin(async move {
            let mut response = response.await?;
            if let Some(value) = initial {
                response.headers_mut().insert(ECHO_INITIAL, value);
            }
            Ok(match trailing {
                Some(value) => response.map(|body| {
                    Body::new(WithTrailer {
                        inner: body,
                        trailer: Some(value),
                    })
                }),
                None => response,
            })
        })
    }
}

/// A response body that adds one header to its trailers.
struct WithTrailer {
    inner: Body,
    trailer: Option<HeaderValue>,
}

impl http_body::Body for WithTrailer {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(
                match (frame.into_trailers(), this.trailer.take()) {
                    (Ok(mut trailers), Some(value)) => {
                        trailers.insert(ECHO_TRAILING, value);
                        Frame::trailers(trailers)
                    }
                    (Ok(trailers), None) => Frame::trailers(trailers),
                    (Err(frame), trailer) => {
                        this.trailer = trailer;
                        frame
                    }
                },
            ))),
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

//! A client of gRPC server reflection (v1), for tests that check what a server says it hosts.

use tonic::transport::Channel;
use tonic_reflection::pb::v1::{
    server_reflection_client::ServerReflectionClient, server_reflection_request::MessageRequest,
    server_reflection_response::MessageResponse, ServerReflectionRequest,
};

/// Sends `requests` on one reflection stream and returns the answers, in order.
pub async fn ask(channel: Channel, requests: Vec<MessageRequest>) -> Vec<MessageResponse> {
    let count = requests.len();
    let requests = requests.into_iter().map(|request| ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    });
    let mut responses = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter(requests))
        .await
        .unwrap()
        .into_inner();
    let mut answers = Vec::with_capacity(count);
    while answers.len() < count {
        let response = responses
            .message()
            .await
            .unwrap()
            .expect("an answer for every request");
        answers.push(response.message_response.expect("an answer"));
    }
    answers
}

/// The services reflection lists, sorted by name.
pub async fn service_names(channel: Channel) -> Vec<String> {
    let [MessageResponse::ListServicesResponse(list)] =
        &ask(channel, vec![MessageRequest::ListServices(String::new())]).await[..]
    else {
        panic!("expected the list of services");
    };
    let mut names: Vec<String> = list.service.iter().map(|s| s.name.clone()).collect();
    names.sort();
    names
}

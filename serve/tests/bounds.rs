//! The stack's bounds on `test.Store` (see `support`), a service of the tests' own that checks
//! nothing: no deadline, no message size, no drain.

mod support;

use std::time::{Duration, Instant};

use http::uri::PathAndQuery;
use support::{client, drain, serve, ticks, unary, until_dropped, Store, Text};
use test_support::{
    h2::{grpc_request, headers, settings, PREFACE},
    raw,
};
use tokio::{io::AsyncWriteExt, net::TcpStream};
use tonic::Code;
use tonic_prost::ProstCodec;

#[tokio::test]
async fn the_client_deadline_ends_a_handler_that_checks_none() {
    let store = Store::default();
    let server = serve(&store, |_| {}).await;
    // The header alone, from a client with no timer of its own (tonic's client would end the
    // call itself): the server must end it.
    let started = Instant::now();
    let response = raw::raw_exchange(
        server.addr,
        &format!(
            "POST /test.Store/Slow HTTP/1.1\r\nHost: {}\r\n\
             content-type: application/grpc-web+proto\r\nx-grpc-web: 1\r\ngrpc-timeout: 300m\r\n\
             content-length: 5\r\nConnection: close\r\n\r\n\0\0\0\0\0",
            server.addr
        ),
    )
    .await;
    assert_eq!(
        raw::field(&response, "grpc-status"),
        Some("4"),
        "{response}"
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_millis(1500),
        "{took:?}"
    );
    // The handler's future is dropped, not left to finish its three seconds.
    until_dropped(&store.dropped, 1).await;
}

#[tokio::test]
async fn the_longest_call_duration_ends_a_stream_that_never_ends() {
    let store = Store::default();
    let server = serve(&store, |options| {
        options.max_call_duration = Some(Duration::from_millis(500));
    })
    .await;
    let started = Instant::now();
    let (count, status) = drain(ticks(&mut client(&server).await).await).await;
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(count >= 2, "{count} ticks");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(450), "{took:?}");
    until_dropped(&store.dropped, 1).await;
    // A unary handler too, with no deadline from its client.
    let status = unary(
        &mut client(&server).await,
        tonic::Request::new(Text::new()),
        "/test.Store/Slow",
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    until_dropped(&store.dropped, 2).await;
}

#[tokio::test]
async fn the_message_size_limit_holds_both_ways_on_every_transport() {
    let server = serve(&Store::default(), |options| {
        options.max_message_size = 1024;
    })
    .await;
    let mut client = client(&server).await;
    let request = |text: String| tonic::Request::new(text);
    // Within the limit.
    assert_eq!(
        unary(&mut client, request("100".into()), "/test.Store/Reply")
            .await
            .unwrap()
            .len(),
        100
    );
    // A request over it.
    let status = unary(&mut client, request("9".repeat(2000)), "/test.Store/Reply")
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert!(status.message().contains("request message too large"));
    // A reply over it.
    let status = unary(&mut client, request("2000".into()), "/test.Store/Reply")
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert!(status.message().contains("response message too large"));
    // gRPC-Web: a reply over the limit, asked for in a 9-byte message.
    let response = raw::raw_exchange(
        server.addr,
        &format!(
            "POST /test.Store/Reply HTTP/1.1\r\nHost: {}\r\n\
             content-type: application/grpc-web+proto\r\nx-grpc-web: 1\r\n\
             content-length: 11\r\nConnection: close\r\n\r\n\0\0\0\0\x06\x0a\x042000",
            server.addr
        ),
    )
    .await;
    assert!(
        response.contains("grpc-status:11") || response.contains("grpc-status: 11"),
        "{response}"
    );
}

#[tokio::test]
async fn a_unary_call_with_two_request_messages_fails() {
    let server = serve(&Store::default(), |_| {}).await;
    let request = |messages: usize| {
        let body = "\0\0\0\0\x05\x0a\x03100".repeat(messages);
        format!(
            "POST /test.Store/Reply HTTP/1.1\r\nHost: {}\r\n\
             content-type: application/grpc-web+proto\r\nx-grpc-web: 1\r\n\
             content-length: {}\r\nConnection: close\r\n\r\n{body}",
            server.addr,
            body.len()
        )
    };
    // In the trailers frame of the body, or in the headers of a trailers-only answer.
    let status = |response: &str| {
        let at = response.find("grpc-status:")? + "grpc-status:".len();
        response[at..]
            .split("\r\n")
            .next()
            .map(|value| value.trim().to_owned())
    };
    let one = raw::raw_exchange(server.addr, &request(1)).await;
    assert_eq!(status(&one).as_deref(), Some("0"), "{one}");
    // The service would read the first and never see the second: the call must not answer OK.
    let two = raw::raw_exchange(server.addr, &request(2)).await;
    assert_eq!(status(&two).as_deref(), Some("13"), "{two}");
    assert!(two.contains("takes%20one%20request%20message"), "{two}");
}

#[tokio::test]
async fn a_request_that_never_arrives_frees_its_permit() {
    let server = serve(&Store::default(), |options| {
        options.max_concurrent_calls = 1;
        options.request_message_timeout = Duration::from_millis(500);
    })
    .await;
    let mut bytes = PREFACE.to_vec();
    bytes.extend(settings(&[]));
    let authority = server.addr.to_string();
    bytes.extend(headers(
        1,
        &grpc_request("/test.Store/Reply", &authority),
        false,
    ));
    let mut stalled = TcpStream::connect(server.addr).await.unwrap();
    stalled.write_all(&bytes).await.unwrap();
    let mut client = client(&server).await;
    // Held: the one permit is the stalled call's.
    let started = Instant::now();
    loop {
        let outcome = unary(
            &mut client,
            tonic::Request::new("1".into()),
            "/test.Store/Reply",
        )
        .await;
        match outcome {
            Err(status) if status.code() == Code::ResourceExhausted => break,
            _ => assert!(
                started.elapsed() < Duration::from_millis(400),
                "the stalled call never took the permit"
            ),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Freed after the request message timeout.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let reply = unary(
        &mut client,
        tonic::Request::new("1".into()),
        "/test.Store/Reply",
    )
    .await
    .unwrap();
    assert_eq!(reply, "x");
}

#[tokio::test]
async fn the_drain_ends_a_stream_the_service_never_ends() {
    let store = Store::default();
    let server = serve(&store, |_| {}).await;
    let mut stream = ticks(&mut client(&server).await).await;
    stream.message().await.unwrap().expect("a first tick");
    let stopping = tokio::spawn(server.stop());
    let (_, status) = drain(stream).await;
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(status.message().contains("shutting down"), "{status:?}");
    tokio::time::timeout(Duration::from_secs(5), stopping)
        .await
        .expect("the drain ends at once")
        .unwrap();
    until_dropped(&store.dropped, 1).await;
}

#[tokio::test]
async fn unknown_methods_are_answered_counted_and_logged_by_the_gate() {
    let server = serve(&Store::default(), |_| {}).await;
    let mut client = client(&server).await;
    for method in ["/test.Store/Nope", "/test.Elsewhere/Reply"] {
        client.ready().await.unwrap();
        let status = client
            .unary(
                tonic::Request::new(Text::new()),
                PathAndQuery::from_static(method),
                ProstCodec::<Text, Text>::default(),
            )
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unimplemented, "{method}: {status:?}");
    }
    let page = raw::get(server.addr, "/metrics", &server.addr.to_string()).await;
    assert!(
        page.contains(
            "grpc_server_handled_total{grpc_method=\"unknown\",grpc_code=\"UNIMPLEMENTED\"} 2"
        ),
        "{page}"
    );
}

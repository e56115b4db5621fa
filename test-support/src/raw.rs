//! Hand-made HTTP/1.1 and WebSocket traffic, written byte by byte as an attacker (or a proxy)
//! sends it, and readers for what comes back.

use std::{net::SocketAddr, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// A client-to-server WebSocket frame (masked, as clients must send them) with a short payload.
pub fn masked_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut frame = vec![0x80 | opcode];
    match payload.len() {
        len @ 0..=125 => frame.push(0x80 | len as u8),
        len => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&u16::try_from(len).unwrap().to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

/// Sends a WebSocket upgrade for `path` and reads the response head; returns the socket and the
/// HTTP status.
pub async fn upgrade(
    addr: SocketAddr,
    path: &str,
    host: &str,
    origin: Option<&str>,
) -> (TcpStream, u16) {
    let mut socket = TcpStream::connect(addr).await.unwrap();
    let origin = origin
        .map(|origin| format!("Origin: {origin}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: grpc-websockets\r\n{origin}\r\n"
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    let head = read_head(&mut socket).await;
    (socket, status_of(&head))
}

/// Reads up to the end of a response head, byte by byte so nothing after it is consumed.
pub async fn read_head(socket: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let read = async {
        while !head.ends_with(b"\r\n\r\n") {
            let byte = socket.read_u8().await.expect("a response head");
            head.push(byte);
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("a response head within 10 s");
    String::from_utf8(head).unwrap()
}

pub fn status_of(head: &str) -> u16 {
    head.split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("{head}"))
}

/// Sends a raw HTTP/1.1 request that asks the server to close after it, and reads everything.
pub async fn raw_exchange(addr: SocketAddr, request: &str) -> String {
    let mut socket = TcpStream::connect(addr).await.unwrap();
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut response))
        .await
        .expect("the server answers and closes within 10 s")
        .unwrap();
    String::from_utf8_lossy(&response).into_owned()
}

/// `GET path` with this `Host`, on a connection closed after it.
pub async fn get(addr: SocketAddr, path: &str, host: &str) -> String {
    raw_exchange(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
    )
    .await
}

/// A gRPC-Web call with an empty message to `path`, with this `Host`.
pub async fn grpc_web_post(addr: SocketAddr, path: &str, host: &str) -> String {
    raw_exchange(
        addr,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/grpc-web+proto\r\n\
             X-Grpc-Web: 1\r\nContent-Length: 5\r\nConnection: close\r\n\r\n\0\0\0\0\0"
        ),
    )
    .await
}

/// The value of `name: value` in a raw response (headers or a gRPC-Web trailer frame).
pub fn field<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    response.split("\r\n").find_map(|line| {
        let (key, value) = line.split_once(':')?;
        // A trailer frame's first line starts with the frame's binary prefix.
        key.trim_start_matches(|c: char| !c.is_ascii_alphabetic())
            .eq_ignore_ascii_case(name)
            .then(|| value.trim())
    })
}

pub fn gauge(metrics_page: &str, name: &str) -> u64 {
    metrics_page
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {metrics_page}"))
}

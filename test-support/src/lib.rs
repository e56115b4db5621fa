//! What the tests of every crate here share: a `grpc-serve` server in the test's process
//! ([`in_process`]), clients that speak the wire protocols byte by byte (hand-made HTTP/1.1 in
//! [`raw`], `grpc-websockets` in [`websocket`]), as an attacker, a proxy or another
//! implementation would, a reflection client ([`reflection`]), and the small decoders their
//! assertions need; and child processes under guard ([`process`]), which is all that tasks
//! such as `xtask` take (without the default `server` feature, it builds no server).

pub mod h2;
#[cfg(feature = "server")]
pub mod in_process;
pub mod process;
#[cfg(feature = "server")]
pub mod raw;
#[cfg(feature = "server")]
pub mod reflection;
#[cfg(feature = "server")]
pub mod websocket;

#[cfg(feature = "server")]
pub use in_process::InProcess;

/// A native gRPC channel (HTTP/2 over plain TCP) to the server at `url`, connected now; panics if
/// it cannot connect.
#[cfg(feature = "server")]
pub async fn channel(url: impl Into<String>) -> tonic::transport::Channel {
    let url = url.into();
    tonic::transport::Endpoint::from_shared(url.clone())
        .unwrap_or_else(|e| panic!("{url} is not a URL: {e}"))
        .connect()
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"))
}

/// An environment variable that `cargo xtask test` sets for the tests it runs (a tool's path, a
/// directory); panics with how to run them when it is missing.
pub fn required_env(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: run these tests with `cargo xtask test`"))
}

/// Decodes `%XX` escapes, as grpc-message values use them.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 3 <= bytes.len() {
            if let Ok(byte) = u8::from_str_radix(&text[i + 1..i + 3], 16) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

//! The Greeter web app: Leptos components over the tonic-generated `GreeterClient`.
//!
//! [`api`] wraps the generated stub on a gRPC-Web channel (`tonic_web_wasm_client::Client`) and
//! turns its failures into errors a person can read; [`components`] are the page. `main.rs` only
//! mounts [`App`]; the wasm-bindgen tests mount it too, against a real server.

pub mod api;
pub mod components;

pub use components::App;

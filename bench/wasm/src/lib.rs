//! The page's gRPC client, exported to JavaScript for `cargo xtask bench`: the benchmark page times
//! these calls and connect-web's in the same page, so both pay the same browser, the same fetch and
//! the same server. Each call crosses the JS–wasm boundary once, as a click in the page does.

use futures_util::StreamExt;
use greeter_web::api::GreeterApi;
use hello_proto::HelloStreamRequest;
use wasm_bindgen::prelude::*;

/// `GreeterApi`, the page's client, as a JavaScript class.
#[wasm_bindgen]
pub struct WasmGreeter(GreeterApi);

#[wasm_bindgen]
impl WasmGreeter {
    #[wasm_bindgen(constructor)]
    pub fn new(server_url: String) -> WasmGreeter {
        WasmGreeter(GreeterApi::new(server_url))
    }

    /// `SayHello`: resolves to the greeting.
    #[wasm_bindgen(js_name = sayHello)]
    pub async fn say_hello(&self, name: String) -> Result<String, JsError> {
        self.0
            .say_hello(name, None)
            .await
            .map_err(|error| JsError::new(&error.to_string()))
    }

    /// `SayHelloStream` with `count` greetings and no pause: resolves to how many arrived.
    #[wasm_bindgen(js_name = countStream)]
    pub async fn count_stream(&self, name: String, count: u32) -> Result<u32, JsError> {
        let request = HelloStreamRequest {
            name,
            count,
            interval_ms: 0,
        };
        let mut greetings = self
            .0
            .say_hello_stream(request, None)
            .await
            .map_err(|error| JsError::new(&error.to_string()))?;
        let mut received = 0;
        while let Some(greeting) = greetings.next().await {
            greeting.map_err(|error| JsError::new(&error.to_string()))?;
            received += 1;
        }
        Ok(received)
    }
}

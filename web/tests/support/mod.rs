//! Helpers the wasm-bindgen test files share.

#![allow(dead_code)] // each test file uses its own subset

/// Waits `ms` milliseconds without blocking the page.
pub async fn sleep_ms(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        web_sys::window()
            .unwrap()
            .set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms)
            .unwrap();
    });
    wasm_bindgen_futures::JsFuture::from(promise).await.unwrap();
}

/// How many calls of `method` (`/pkg.Service/Method`) the server at `server` has answered OK, from
/// its `/metrics` page.
pub async fn calls_answered(server: &str, method: &str) -> u64 {
    use wasm_bindgen::JsCast;
    let window = web_sys::window().unwrap();
    let response: web_sys::Response =
        wasm_bindgen_futures::JsFuture::from(window.fetch_with_str(&format!("{server}/metrics")))
            .await
            .unwrap()
            .unchecked_into();
    let page = wasm_bindgen_futures::JsFuture::from(response.text().unwrap())
        .await
        .unwrap()
        .as_string()
        .unwrap();
    let series = format!("grpc_server_handled_total{{grpc_method=\"{method}\",grpc_code=\"OK\"}} ");
    page.lines()
        .find_map(|line| line.strip_prefix(&series))
        .map_or(0, |count| count.parse().unwrap())
}

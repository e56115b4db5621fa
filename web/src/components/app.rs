//! The root component: owns the connection to the server and lays out the page.

use leptos::prelude::*;

use super::SayHello;
use crate::api::GreeterApi;

/// The whole page, talking to the Greeter at `server_url`.
#[component]
pub fn App(#[prop(into)] server_url: String) -> impl IntoView {
    provide_context(GreeterApi::new(server_url));
    view! {
        <main class="greeter">
            <h1>"Greeter"</h1>
            <SayHello />
        </main>
    }
}

//! The root component: owns the connection to the server and the deadline, and lays out one panel
//! per RPC kind.

use leptos::prelude::*;

use super::{Chat, ClientStream, Deadline, DeadlineField, SayHello, ServerStream};
use crate::api::GreeterApi;

/// The whole page, talking to the Greeter at `server_url`.
#[component]
pub fn App(#[prop(into)] server_url: String) -> impl IntoView {
    provide_context(GreeterApi::new(server_url));
    provide_context(Deadline::new());
    view! {
        <main class="greeter">
            <h1>"Greeter"</h1>
            <DeadlineField />
            <SayHello />
            <ServerStream />
            <ClientStream />
            <Chat />
        </main>
    }
}

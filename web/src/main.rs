//! Mounts the Greeter app into the page's body.

use greeter_web::{api, App};
use leptos::prelude::*;

fn main() {
    // A panic's message and place go to the console: all a report needs, without the
    // JavaScript stack (and its glue) that a panic-hook crate would add to the page.
    std::panic::set_hook(Box::new(|info| {
        web_sys::console::error_1(&info.to_string().into());
    }));
    let server_url = api::default_server_url();
    leptos::mount::mount_to_body(move || view! { <App server_url /> });
}

//! Mounts the Greeter app into the page's body.

use greeter_web::{api, App};
use leptos::prelude::*;

fn main() {
    console_error_panic_hook::set_once();
    let server_url = api::default_server_url();
    leptos::mount::mount_to_body(move || view! { <App server_url /> });
}

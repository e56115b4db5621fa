//! The Leptos app mounted into the test page's DOM, used as a person would: type, click, read.
//!
//! `GREETER_TEST_SERVER` is a running server that allows this page's origin (`cargo xtask test`
//! sets it).

#![cfg(target_arch = "wasm32")]

mod support;

use greeter_web::App;
use leptos::{mount::mount_to, prelude::*};
use support::{calls_answered, sleep_ms};
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;
use web_sys::{Event, HtmlButtonElement, HtmlElement, HtmlInputElement};

wasm_bindgen_test_configure!(run_in_browser);

const SERVER: &str = env!("GREETER_TEST_SERVER");
const SAY_HELLO: &str = "/hello.Greeter/SayHello";

/// The app mounted in a fresh element; unmounted and removed on drop.
struct Mounted {
    root: HtmlElement,
    _handle: leptos::mount::UnmountHandle<leptos::tachys::view::any_view::AnyViewState>,
}

impl Mounted {
    fn new() -> Self {
        let document = web_sys::window().unwrap().document().unwrap();
        let root: HtmlElement = document.create_element("div").unwrap().unchecked_into();
        document.body().unwrap().append_child(&root).unwrap();
        let handle = mount_to(root.clone(), || {
            view! { <App server_url=SERVER /> }.into_any()
        });
        Self {
            root,
            _handle: handle,
        }
    }

    fn find<T: JsCast>(&self, selector: &str) -> T {
        self.root
            .query_selector(selector)
            .unwrap()
            .unwrap_or_else(|| panic!("no element matches {selector}"))
            .unchecked_into()
    }

    fn type_name(&self, name: &str) {
        let input: HtmlInputElement = self.find("#name");
        input.set_value(name);
        input.dispatch_event(&Event::new("input").unwrap()).unwrap();
    }

    fn button(&self) -> HtmlButtonElement {
        self.find("#say-hello")
    }

    fn reply(&self) -> String {
        self.find::<HtmlElement>("#reply")
            .text_content()
            .unwrap_or_default()
    }

    /// Waits (up to 10 s) for the reply element to show something, and returns it.
    async fn wait_for_reply(&self) -> String {
        for _ in 0..200 {
            let reply = self.reply();
            if !reply.is_empty() && !self.button().disabled() {
                return reply;
            }
            sleep_ms(50).await;
        }
        panic!("no reply within 10 s; the page shows {:?}", self.reply());
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        self.root.remove();
    }
}

#[wasm_bindgen_test]
async fn typing_a_name_and_clicking_shows_the_greeting() {
    let app = Mounted::new();
    assert_eq!(app.reply(), "");
    assert_eq!(app.button().text_content().unwrap(), "Say hello");

    app.type_name("Wasm");
    app.button().click();
    assert_eq!(app.wait_for_reply().await, "Hello, Wasm");
    assert_eq!(app.button().text_content().unwrap(), "Say hello");
}

/// A second click while the call is in flight sends nothing: the server answers one call.
#[wasm_bindgen_test]
async fn the_button_is_busy_while_the_call_is_in_flight() {
    let answered_before = calls_answered(SERVER, SAY_HELLO).await;
    let app = Mounted::new();
    app.type_name("Busy");
    app.button().click();
    // The action is pending from the moment it is dispatched.
    sleep_ms(0).await;
    assert!(app.button().disabled());
    assert_eq!(app.button().text_content().unwrap(), "Saying hello…");
    app.button().click(); // ignored: a disabled button cannot submit again
    assert_eq!(app.wait_for_reply().await, "Hello, Busy");
    // Time for a second call, had one been sent, to be answered and counted.
    sleep_ms(300).await;
    assert_eq!(calls_answered(SERVER, SAY_HELLO).await, answered_before + 1);
}

#[wasm_bindgen_test]
async fn an_empty_name_shows_the_status_code_and_message() {
    let app = Mounted::new();
    app.type_name("   ");
    app.button().click();
    assert_eq!(
        app.wait_for_reply().await,
        "INVALID_ARGUMENT: name must not be empty"
    );
    let outcome: HtmlElement = app.find("#reply");
    assert!(outcome.class_name().contains("error"));

    // The page recovers: a good name afterwards gets its greeting.
    app.type_name("Again");
    app.button().click();
    for _ in 0..200 {
        if app.reply() == "Hello, Again" {
            return;
        }
        sleep_ms(50).await;
    }
    panic!(
        "no greeting after an error; the page shows {:?}",
        app.reply()
    );
}

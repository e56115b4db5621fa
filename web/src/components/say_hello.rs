//! The unary call: a name field and a button that send `SayHello`, and the reply below them.

use leptos::{ev::SubmitEvent, prelude::*};

use super::{Deadline, Outcome};
use crate::api::GreeterApi;

#[component]
pub fn SayHello() -> impl IntoView {
    let api = expect_context::<GreeterApi>();
    let deadline = expect_context::<Deadline>();
    let (name, set_name) = signal(String::new());
    let say_hello = Action::new_local(move |name: &String| {
        let api = api.clone();
        let name = name.clone();
        let deadline = deadline.get();
        async move { api.say_hello(name, deadline).await }
    });
    let pending = say_hello.pending();

    // A form, so that Enter in the field submits as the button does.
    let submit = move |event: SubmitEvent| {
        event.prevent_default();
        if !pending.get_untracked() {
            say_hello.dispatch_local(name.get_untracked());
        }
    };
    let button_label = move || {
        if pending.get() {
            "Saying hello…"
        } else {
            "Say hello"
        }
    };

    view! {
        <section class="panel">
            <h2>"Unary"</h2>
            <form on:submit=submit>
                <label for="name">"Name"</label>
                <input
                    id="name"
                    type="text"
                    placeholder="Alice"
                    autocomplete="off"
                    bind:value=(name, set_name)
                />
                <button id="say-hello" type="submit" disabled=pending aria-busy=pending>
                    {button_label}
                </button>
            </form>
            <Outcome id="reply" result=Signal::derive(move || say_hello.value().get()) />
        </section>
    }
}

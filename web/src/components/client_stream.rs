//! Client streaming: names sent one by one as they are added, and the server's summary once the
//! user presses Finish. A call the server ended with `UNAVAILABLE` (a replica going away) is
//! opened again with every name sent so far, so the summary still covers them all.

use hello_proto::HelloSummary;
use leptos::{ev::SubmitEvent, prelude::*, task::spawn_local};

use super::{CallState, Deadline, NameStream, Reconnects, StatusLine};
use crate::api::GreeterApi;

#[component]
pub fn ClientStream() -> impl IntoView {
    let api = expect_context::<GreeterApi>();
    let deadline = expect_context::<Deadline>();
    let name = RwSignal::new(String::new());
    let sent = RwSignal::new(Vec::<String>::new());
    let summary = RwSignal::new(None::<HelloSummary>);
    let state = RwSignal::new(CallState::Idle);
    let names = NameStream::new();

    let open_call = move || {
        let mut receiver = names.open();
        sent.set(Vec::new());
        summary.set(None);
        state.set(CallState::Running);
        let api = api.clone();
        let deadline = deadline.get();
        spawn_local(async move {
            let mut reconnects = Reconnects::default();
            let result = loop {
                let error = match api.say_hello_to_all(receiver, deadline).await {
                    Ok(summary) => break Ok(summary),
                    Err(error) => error,
                };
                if !reconnects.reopen_after(&error, state).await {
                    break Err(error);
                }
                receiver = names.reopen(sent.get_untracked());
            };
            names.close();
            state.set(CallState::Ended(
                result.as_ref().map(|_| ()).map_err(Clone::clone),
            ));
            summary.set(result.ok());
        });
    };
    let add = move |event: SubmitEvent| {
        event.prevent_default();
        if !names.is_open() {
            open_call();
        }
        let next = name.get_untracked();
        if names.send(next.clone()) {
            sent.update(|all| all.push(next));
            name.set(String::new());
        }
    };
    let finish = move |_| names.close();
    let running = move || state.get().is_running();

    view! {
        <section class="panel">
            <h2>"Client streaming"</h2>
            <form on:submit=add>
                <input id="all-name" type="text" placeholder="Name" bind:value=name />
                <button id="all-add" type="submit">"Add"</button>
                <button id="all-finish" type="button" disabled=move || !running() on:click=finish>
                    "Finish"
                </button>
            </form>
            <p class="hint">"Sent: " <span id="all-sent">{move || sent.get().join(", ")}</span></p>
            <ol id="all-summary">
                {move || {
                    summary
                        .get()
                        .map(|summary| {
                            summary.messages.into_iter().map(|m| view! { <li>{m}</li> }).collect_view()
                        })
                }}
            </ol>
            <p id="all-count">
                {move || summary.get().map(|s| format!("{} greeted", s.count)).unwrap_or_default()}
            </p>
            <StatusLine id="all-status" state />
        </section>
    }
}

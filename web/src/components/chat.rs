//! Bidirectional streaming as a conversation: each name is sent as soon as it is entered, and its
//! greeting appears as soon as the server answers, both directions open until End. A call the
//! server ended with `UNAVAILABLE` (a replica going away) is opened again, and the names it had
//! not answered are sent again on it.

use futures_util::StreamExt;
use leptos::{ev::SubmitEvent, prelude::*, task::spawn_local};

use super::{CallState, Deadline, NameStream, Reconnects, StatusLine};
use crate::api::GreeterApi;

/// One line of the conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Line {
    Sent(String),
    Received(String),
}

/// The names sent that have no greeting yet: the server answers them in order.
fn unanswered(lines: &[Line]) -> Vec<String> {
    let answered = lines
        .iter()
        .filter(|line| matches!(line, Line::Received(_)))
        .count();
    lines
        .iter()
        .filter_map(|line| match line {
            Line::Sent(name) => Some(name.clone()),
            Line::Received(_) => None,
        })
        .skip(answered)
        .collect()
}

#[component]
pub fn Chat() -> impl IntoView {
    let api = expect_context::<GreeterApi>();
    let deadline = expect_context::<Deadline>();
    let name = RwSignal::new(String::new());
    let lines = RwSignal::new(Vec::<Line>::new());
    let state = RwSignal::new(CallState::Idle);
    let names = NameStream::new();

    let open_call = move || {
        let mut receiver = names.open();
        lines.set(Vec::new());
        state.set(CallState::Running);
        let api = api.clone();
        let deadline = deadline.get();
        spawn_local(async move {
            let mut reconnects = Reconnects::default();
            let result = loop {
                let call = async {
                    let mut greetings = api.chat(receiver, deadline).await?;
                    while let Some(greeting) = greetings.next().await {
                        let greeting = greeting?;
                        lines.update(|all| all.push(Line::Received(greeting)));
                        reconnects.progressed();
                    }
                    Ok(())
                };
                let error = match call.await {
                    Ok(()) => break Ok(()),
                    Err(error) => error,
                };
                if !reconnects.reopen_after(&error, state).await {
                    break Err(error);
                }
                receiver = names.reopen(lines.with_untracked(|lines| unanswered(lines)));
            };
            names.close();
            state.set(CallState::Ended(result));
        });
    };
    let send = move |event: SubmitEvent| {
        event.prevent_default();
        if !names.is_open() {
            open_call();
        }
        let next = name.get_untracked();
        if names.send(next.clone()) {
            lines.update(|all| all.push(Line::Sent(next)));
            name.set(String::new());
        }
    };
    let end = move |_| names.close();
    let running = move || state.get().is_running();

    view! {
        <section class="panel">
            <h2>"Bidirectional streaming"</h2>
            <form on:submit=send>
                <input id="chat-name" type="text" placeholder="Name" bind:value=name />
                <button id="chat-send" type="submit">"Send"</button>
                <button id="chat-end" type="button" disabled=move || !running() on:click=end>
                    "End"
                </button>
            </form>
            <ol id="chat-log" class="conversation">
                // Lines are only ever appended (or all cleared), so rendering the list by position
                // touches only the new ones; a keyed list would add a keyed diff and its hash maps
                // to the page for nothing.
                {move || {
                    lines
                        .get()
                        .into_iter()
                        .map(|line| {
                            let (class, text) = match line {
                                Line::Sent(text) => ("sent", text),
                                Line::Received(text) => ("received", text),
                            };
                            view! { <li class=class>{text}</li> }
                        })
                        .collect_view()
                }}
            </ol>
            <StatusLine id="chat-status" state />
        </section>
    }
}

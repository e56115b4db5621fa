//! Bidirectional streaming as a conversation: each name is sent as soon as it is entered, and its
//! greeting appears as soon as the server answers, both directions open until End.

use futures_channel::mpsc;
use futures_util::StreamExt;
use leptos::{ev::SubmitEvent, prelude::*, task::spawn_local};

use super::{CallState, Deadline, StatusLine};
use crate::api::GreeterApi;

/// One line of the conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Line {
    Sent(String),
    Received(String),
}

#[component]
pub fn Chat() -> impl IntoView {
    let api = expect_context::<GreeterApi>();
    let deadline = expect_context::<Deadline>();
    let name = RwSignal::new(String::new());
    let lines = RwSignal::new(Vec::<Line>::new());
    let state = RwSignal::new(CallState::Idle);
    let names = StoredValue::new_local(None::<mpsc::UnboundedSender<String>>);

    let open_call = move || {
        let (sender, receiver) = mpsc::unbounded();
        names.set_value(Some(sender));
        lines.set(Vec::new());
        state.set(CallState::Running);
        let api = api.clone();
        let deadline = deadline.get();
        spawn_local(async move {
            let call = async {
                let mut greetings = api.chat(receiver, deadline).await?;
                while let Some(greeting) = greetings.next().await {
                    let greeting = greeting?;
                    lines.update(|all| all.push(Line::Received(greeting)));
                }
                Ok(())
            };
            let result = call.await;
            names.set_value(None);
            state.set(CallState::Ended(result));
        });
    };
    let send = move |event: SubmitEvent| {
        event.prevent_default();
        if names.with_value(Option::is_none) {
            open_call();
        }
        let next = name.get_untracked();
        let delivered = names.with_value(|sender| {
            sender
                .as_ref()
                .is_some_and(|sender| sender.unbounded_send(next.clone()).is_ok())
        });
        if delivered {
            lines.update(|all| all.push(Line::Sent(next)));
            name.set(String::new());
        }
    };
    let end = move |_| names.set_value(None);
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
                <For each=move || lines.get().into_iter().enumerate() key=|(i, _)| *i let((_, line))>
                    {match line {
                        Line::Sent(text) => view! { <li class="sent">{text}</li> },
                        Line::Received(text) => view! { <li class="received">{text}</li> },
                    }}
                </For>
            </ol>
            <StatusLine id="chat-status" state />
        </section>
    }
}

//! Bidirectional streaming as a conversation: each name is sent as soon as it is entered, and its
//! greeting appears as soon as the server answers, both directions open until End.

use futures_util::StreamExt;
use leptos::{prelude::*, task::spawn_local};

use super::{CallState, Deadline, NameStream, NameStreamForm, StatusLine};
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
    let lines = RwSignal::new(Vec::<Line>::new());
    let state = RwSignal::new(CallState::Idle);
    let names = NameStream::new();

    let open_call = move || {
        let receiver = names.open();
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
            names.close();
            state.set(CallState::Ended(result));
        });
    };

    view! {
        <section class="panel">
            <h2>"Bidirectional streaming"</h2>
            <NameStreamForm
                id="chat"
                send="Send"
                end="End"
                names
                state
                open_call
                on_sent=move |next| lines.update(|all| all.push(Line::Sent(next)))
            />
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

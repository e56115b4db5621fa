//! Client streaming: names sent one by one as they are added, and the server's summary once the
//! user presses Finish.

use hello_proto::HelloSummary;
use leptos::{prelude::*, task::spawn_local};

use super::{CallState, Deadline, NameStream, NameStreamForm, StatusLine};
use crate::api::GreeterApi;

#[component]
pub fn ClientStream() -> impl IntoView {
    let api = expect_context::<GreeterApi>();
    let deadline = expect_context::<Deadline>();
    let sent = RwSignal::new(Vec::<String>::new());
    let summary = RwSignal::new(None::<HelloSummary>);
    let state = RwSignal::new(CallState::Idle);
    let names = NameStream::new();

    let open_call = move || {
        let receiver = names.open();
        sent.set(Vec::new());
        summary.set(None);
        state.set(CallState::Running);
        let api = api.clone();
        let deadline = deadline.get();
        spawn_local(async move {
            let result = api.say_hello_to_all(receiver, deadline).await;
            names.close();
            state.set(CallState::Ended(
                result.as_ref().map(|_| ()).map_err(Clone::clone),
            ));
            summary.set(result.ok());
        });
    };

    view! {
        <section class="panel">
            <h2>"Client streaming"</h2>
            <NameStreamForm
                id="all"
                send="Add"
                end="Finish"
                names
                state
                open_call
                on_sent=move |next| sent.update(|all| all.push(next))
            />
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

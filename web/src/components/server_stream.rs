//! Server streaming: one request, then greetings appearing as they arrive, with Cancel stopping
//! the stream on the server too (dropping the call aborts its fetch). A stream the server ended
//! with `UNAVAILABLE` (a replica going away) is reopened for the greetings still to come.

use futures_util::{
    future::{AbortHandle, Abortable},
    StreamExt,
};
use hello_proto::HelloStreamRequest;
use leptos::{ev::SubmitEvent, prelude::*, task::spawn_local};

use super::{CallState, Deadline, Reconnects, StatusLine};
use crate::api::{CallError, GreeterApi};

#[component]
pub fn ServerStream() -> impl IntoView {
    let api = expect_context::<GreeterApi>();
    let deadline = expect_context::<Deadline>();
    let name = RwSignal::new(String::new());
    let count = RwSignal::new("5".to_owned());
    let interval_ms = RwSignal::new("500".to_owned());
    let greetings = RwSignal::new(Vec::<String>::new());
    let state = RwSignal::new(CallState::Idle);
    let cancel = StoredValue::new_local(None::<AbortHandle>);

    let start = move |event: SubmitEvent| {
        event.prevent_default();
        if state.get_untracked().is_running() {
            return;
        }
        let request = HelloStreamRequest {
            name: name.get_untracked(),
            // Out-of-range or unparsable numbers go to the server as they are, or as 0, and
            // come back as INVALID_ARGUMENT with the rule they broke.
            count: count.get_untracked().trim().parse().unwrap_or(0),
            interval_ms: interval_ms.get_untracked().trim().parse().unwrap_or(0),
        };
        greetings.set(Vec::new());
        state.set(CallState::Running);
        let (handle, registration) = AbortHandle::new_pair();
        cancel.set_value(Some(handle));
        let api = api.clone();
        let deadline = deadline.get();
        let call = async move {
            let mut reconnects = Reconnects::default();
            let mut still_to_come = request.count;
            loop {
                let request = HelloStreamRequest {
                    count: still_to_come,
                    ..request.clone()
                };
                let stream = async {
                    let mut stream = api.say_hello_stream(request, deadline).await?;
                    while let Some(greeting) = stream.next().await {
                        let greeting = greeting?;
                        greetings.update(|all| all.push(greeting));
                        still_to_come = still_to_come.saturating_sub(1);
                        reconnects.progressed();
                    }
                    Ok(())
                };
                let error = match stream.await {
                    Ok(()) => return Ok(()),
                    Err(error) => error,
                };
                if still_to_come == 0 || !reconnects.reopen_after(&error, state).await {
                    return Err(error);
                }
            }
        };
        spawn_local(async move {
            let result = Abortable::new(call, registration)
                .await
                .unwrap_or_else(|_aborted| Err(CallError::cancelled()));
            state.set(CallState::Ended(result));
        });
    };
    let stop = move |_| {
        if let Some(handle) = cancel.get_value() {
            handle.abort();
        }
    };
    let running = move || state.get().is_running();

    view! {
        <section class="panel">
            <h2>"Server streaming"</h2>
            <form on:submit=start>
                <input id="stream-name" type="text" placeholder="Name" bind:value=name />
                <label>"count " <input id="stream-count" type="number" min="1" max="1000" bind:value=count /></label>
                <label>"every " <input id="stream-interval" type="number" min="0" max="10000" bind:value=interval_ms /> " ms"</label>
                <button id="stream-start" type="submit" disabled=running>"Start"</button>
                <button id="stream-cancel" type="button" disabled=move || !running() on:click=stop>
                    "Cancel"
                </button>
            </form>
            <ol id="stream-messages">
                // Greetings are only ever appended (or all cleared), so rendering the list by
                // position touches only the new ones, with no keyed diff.
                {move || {
                    greetings
                        .get()
                        .into_iter()
                        .map(|greeting| view! { <li>{greeting}</li> })
                        .collect_view()
                }}
            </ol>
            <StatusLine id="stream-status" state />
        </section>
    }
}

//! The request side of a streaming call the page holds open: names go out as they are entered,
//! and the call's request stream ends when the user says so. [`NameStreamForm`] is the form
//! both streaming-request panels use for it.

use futures_channel::mpsc;
use leptos::{ev::SubmitEvent, prelude::*};

use super::CallState;

/// An open request stream of names, or none. Copy, so every handler of a panel can hold it.
#[derive(Debug, Clone, Copy)]
pub struct NameStream(StoredValue<Option<mpsc::UnboundedSender<String>>, LocalStorage>);

impl NameStream {
    pub fn new() -> Self {
        Self(StoredValue::new_local(None))
    }

    pub fn is_open(&self) -> bool {
        self.0.with_value(Option::is_some)
    }

    /// Opens a new request stream; the call reads names from the returned end.
    pub fn open(&self) -> mpsc::UnboundedReceiver<String> {
        let (sender, receiver) = mpsc::unbounded();
        self.0.set_value(Some(sender));
        receiver
    }

    /// Sends `name` on the open stream; false when none is open or the call has ended.
    pub fn send(&self, name: String) -> bool {
        self.0.with_value(|sender| {
            sender
                .as_ref()
                .is_some_and(|sender| sender.unbounded_send(name).is_ok())
        })
    }

    /// Ends the request stream, which lets the call finish.
    pub fn close(&self) {
        self.0.set_value(None);
    }
}

impl Default for NameStream {
    fn default() -> Self {
        Self::new()
    }
}

/// A name field, a submit button that sends the name (opening the call with `open_call` first
/// when none is open) and a button, enabled while the call runs, that ends the request stream.
/// Element ids are `{id}-name`, `{id}-{send}` and `{id}-{end}`, lowercased.
#[component]
pub fn NameStreamForm<O, S>(
    id: &'static str,
    send: &'static str,
    end: &'static str,
    names: NameStream,
    state: RwSignal<CallState>,
    open_call: O,
    on_sent: S,
) -> impl IntoView
where
    O: Fn() + 'static,
    S: Fn(String) + 'static,
{
    let name = RwSignal::new(String::new());
    let submit = move |event: SubmitEvent| {
        event.prevent_default();
        if !names.is_open() {
            open_call();
        }
        let next = name.get_untracked();
        if names.send(next.clone()) {
            on_sent(next);
            name.set(String::new());
        }
    };
    let running = move || state.get().is_running();
    let element_id = move |part: &str| format!("{id}-{}", part.to_lowercase());

    view! {
        <form on:submit=submit>
            <input id=element_id("name") type="text" placeholder="Name" bind:value=name />
            <button id=element_id(send) type="submit">{send}</button>
            <button id=element_id(end) type="button" disabled=move || !running() on:click=move |_| names.close()>
                {end}
            </button>
        </form>
    }
}

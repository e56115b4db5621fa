//! The request side of a streaming call the page holds open: names go out as they are entered,
//! and the call's request stream ends when the user says so.

use futures_channel::mpsc;
use leptos::prelude::*;

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

    /// A new request stream for a call opened again after the server went away, starting with
    /// `queued` (what the old call may not have delivered). It stays open for more names if the
    /// old one was open, and ends after `queued` if the user had already ended it.
    pub fn reopen(&self, queued: Vec<String>) -> mpsc::UnboundedReceiver<String> {
        let (sender, receiver) = mpsc::unbounded();
        for name in queued {
            // The receiver is alive: it is returned below.
            let _ = sender.unbounded_send(name);
        }
        if self.is_open() {
            self.0.set_value(Some(sender));
        }
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

//! The state of a streaming call, and the line that shows it: running, reconnecting after the
//! server went away, `OK`, or the gRPC code and message it ended with.

use leptos::prelude::*;

use crate::api::CallError;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CallState {
    #[default]
    Idle,
    Running,
    /// The stream ended with this error and is about to be opened again.
    Reconnecting(CallError),
    Ended(Result<(), CallError>),
}

impl CallState {
    /// Running or reconnecting: the panel's call is not over.
    pub fn is_running(&self) -> bool {
        matches!(self, Self::Running | Self::Reconnecting(_))
    }
}

#[component]
pub fn StatusLine(#[prop(into)] id: String, state: RwSignal<CallState>) -> impl IntoView {
    let text = move || match state.get() {
        CallState::Idle => String::new(),
        CallState::Running => "running…".to_owned(),
        CallState::Reconnecting(error) => format!("reconnecting… ({error})"),
        CallState::Ended(Ok(())) => "OK".to_owned(),
        CallState::Ended(Err(error)) => error.to_string(),
    };
    let class = move || match state.get() {
        CallState::Ended(Err(_)) => "status error",
        _ => "status",
    };
    view! { <p id=id class=class role="status" aria-live="polite">{text}</p> }
}

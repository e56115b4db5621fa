//! The state of a streaming call, and the line that shows it: running, `OK`, or the gRPC code and
//! message it ended with.

use leptos::prelude::*;

use crate::api::CallError;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CallState {
    #[default]
    Idle,
    Running,
    Ended(Result<(), CallError>),
}

impl CallState {
    pub fn is_running(&self) -> bool {
        matches!(self, Self::Running)
    }
}

#[component]
pub fn StatusLine(#[prop(into)] id: String, state: RwSignal<CallState>) -> impl IntoView {
    let text = move || match state.get() {
        CallState::Idle => String::new(),
        CallState::Running => "running…".to_owned(),
        CallState::Ended(Ok(())) => "OK".to_owned(),
        CallState::Ended(Err(error)) => error.to_string(),
    };
    let class = move || match state.get() {
        CallState::Ended(Err(_)) => "status error",
        _ => "status",
    };
    view! { <p id=id class=class role="status" aria-live="polite">{text}</p> }
}

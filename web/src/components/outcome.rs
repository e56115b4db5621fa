//! The result of a call: the reply, or the error in words, or nothing before the first call.

use leptos::prelude::*;

use crate::api::CallError;

/// Shows `result`; the element with `id` holds the reply or the error text, so tests and screen
/// readers find it in one place.
#[component]
pub fn Outcome(
    #[prop(into)] id: String,
    #[prop(into)] result: Signal<Option<Result<String, CallError>>>,
) -> impl IntoView {
    let class = move || match result.get() {
        None => "outcome",
        Some(Ok(_)) => "outcome ok",
        Some(Err(_)) => "outcome error",
    };
    let text = move || match result.get() {
        None => String::new(),
        Some(Ok(reply)) => reply,
        Some(Err(error)) => error.to_string(),
    };
    view! { <output id=id class=class role="status" aria-live="polite">{text}</output> }
}

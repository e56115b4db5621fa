//! The deadline field: one timeout, in milliseconds, applied to every call the page makes.

use std::time::Duration;

use leptos::prelude::*;

/// The deadline the user set, shared through context.
#[derive(Debug, Clone, Copy)]
pub struct Deadline(RwSignal<String>);

impl Deadline {
    pub fn new() -> Self {
        Self(RwSignal::new(String::new()))
    }

    /// The deadline for a call starting now: `None` when the field is empty or not a positive
    /// number of milliseconds.
    pub fn get(&self) -> Option<Duration> {
        self.0
            .get_untracked()
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|&ms| ms > 0)
            .map(Duration::from_millis)
    }
}

impl Default for Deadline {
    fn default() -> Self {
        Self::new()
    }
}

#[component]
pub fn DeadlineField() -> impl IntoView {
    let Deadline(text) = expect_context::<Deadline>();
    view! {
        <label class="deadline">
            "Deadline for every call (ms, empty for none) "
            <input id="deadline" type="number" min="1" placeholder="none" bind:value=text />
        </label>
    }
}

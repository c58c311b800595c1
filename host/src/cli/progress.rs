//! The progress bar `sluice run` draws in a terminal, fed by the runner's
//! status callback (the runner itself draws nothing).

use std::sync::Arc;

use crate::pipeline::{RunStatus, StatusCallback};

/// A bar for bounded sources, with live counts.
pub struct RunBar {
    bar: indicatif::ProgressBar,
}

impl RunBar {
    /// A bar with no known length yet.
    pub fn new() -> Self {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {percent}% {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Self { bar }
    }

    /// What the runner calls with each status.
    pub fn callback(&self) -> StatusCallback {
        let bar = self.bar.clone();
        Arc::new(move |s: &RunStatus| {
            if s.progress_total > 0 {
                bar.set_length(s.progress_total);
                bar.set_position(s.progress_done);
            }
            bar.set_message(format!(
                "{} in, {} out, {} dead-lettered",
                s.events_in, s.events_out, s.dead_letters
            ));
        })
    }

    /// Clears the bar before the summary is printed.
    pub fn finish(self) {
        self.bar.finish_and_clear();
    }
}

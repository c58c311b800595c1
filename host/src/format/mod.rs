//! Formats at the edges of a pipeline; for now, event-time templates.

pub mod time;

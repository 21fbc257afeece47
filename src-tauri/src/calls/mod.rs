//! Live calls: the per-call bridge task, playout math, registry and event bus.
pub mod events;

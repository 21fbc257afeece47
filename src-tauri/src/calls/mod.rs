//! Live calls: the per-call bridge task, playout math, registry and event bus.
pub mod bridge;
pub mod events;
pub mod playout;
pub mod registry;

//! Live calls: the per-call bridge task, playout math, call plans, registry and event bus.
pub mod admission;
pub mod approvals;
pub mod bridge;
pub mod control_channel;
pub mod plan;
pub mod playout;
pub mod registry;
pub mod session_settings;
pub mod timeline;
pub mod tool_runner;

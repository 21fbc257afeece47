//! Small value types every room shares: the leaf of the core's layering (it imports no other room).

pub mod percentiles;
mod secret;
mod sid;
mod speaker;
mod time;
mod usage;

pub use secret::Secret;
pub use sid::{CallSid, SidError};
pub use speaker::Speaker;
pub use time::{now_ms, StreamUs};
pub use usage::TokenUsage;

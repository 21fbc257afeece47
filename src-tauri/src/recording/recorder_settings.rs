//! How recordings are queued and written.

use std::time::Duration;

/// Knobs; tests shrink the queue to provoke overflow.
#[derive(Debug, Clone)]
pub struct RecorderSettings {
    /// Audio pieces queued per call before new ones are dropped (≈ 3 s of audio; the writer drains
    /// every 100 ms). Slots are allocated as the queue fills, so an idle queue stays small.
    pub queue_len: usize,
    /// Frames this far behind the newest audio go to disk (late agent audio lands in memory).
    pub commit_lag: Duration,
    /// The header is rewritten at least this often (bounds what a crash can lose).
    pub header_every: Duration,
}

impl Default for RecorderSettings {
    fn default() -> Self {
        RecorderSettings {
            queue_len: 256,
            commit_lag: Duration::from_millis(300),
            header_every: Duration::from_millis(500),
        }
    }
}

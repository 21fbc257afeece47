//! How recordings are handed over and written.

use std::time::Duration;

/// Knobs; tests shrink the feed to provoke overflow. See `writer` for what a crash can lose.
#[derive(Debug, Clone)]
pub struct RecorderSettings {
    /// Pieces of audio a call's feed holds between two writer ticks (100 ms) before new ones are
    /// dropped: 256 is about 2.5 s of caller frames and agent chunks, far more than a tick.
    pub queue_len: usize,
    /// Frames this far behind the newest caller audio are settled (late agent audio lands in memory).
    pub commit_lag: Duration,
    /// Settled frames are written once this much of them is waiting: one write per file per period.
    pub commit_every: Duration,
    /// The header is rewritten at least this often (a crashed file's header may lag this much;
    /// the start-up repair rebuilds it from the file length).
    pub header_every: Duration,
}

impl Default for RecorderSettings {
    fn default() -> Self {
        RecorderSettings {
            queue_len: 256,
            commit_lag: Duration::from_millis(300),
            commit_every: Duration::from_millis(400),
            header_every: Duration::from_secs(5),
        }
    }
}

//! Wall-clock time as the store and the UI keep it.

/// Milliseconds since the Unix epoch, for event timestamps.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Stream time in microseconds: a position on a call's timeline, from its media stream's start (see
/// `calls::timeline`). The recording, the transcript and listen-in all place audio by it.
pub type StreamUs = u64;

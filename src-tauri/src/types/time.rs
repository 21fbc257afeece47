//! Wall-clock time as the store and the UI keep it.

/// Milliseconds since the Unix epoch, for event timestamps.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

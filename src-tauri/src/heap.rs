//! Gives the heap that ended calls freed back to the operating system.
//!
//! glibc's allocator keeps freed memory in its arenas for reuse and returns it only from the top of the
//! heap, so a bridge that serves calls for hours grows by fragmentation even when nothing is kept: a
//! heap profile of a 387-call soak (`heaptrack`, the bridge stopped at idle) found 2.4 MiB still
//! allocated while RSS stayed ~17 MiB above where it started. `malloc_trim(0)` also releases the free
//! pages inside the heap (`madvise`), so the core calls it once every [`TRIM_EVERY`], on a blocking
//! thread. Other allocators and platforms return memory themselves; there this does nothing.

use std::time::Duration;

/// How often the heap is trimmed: rare enough to cost nothing measurable (a trim walks the arenas in
/// about a millisecond), often enough that RSS tracks the calls that are live.
pub const TRIM_EVERY: Duration = Duration::from_secs(30);

/// Returns free heap pages to the OS now. True when some memory was released.
pub fn trim() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim only takes the allocator's own locks; it has no preconditions.
        unsafe { libc::malloc_trim(0) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

/// The trimming task; dropping it stops the trims.
pub struct Trimmer(tokio::task::JoinHandle<()>);

impl Drop for Trimmer {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Trims every `every` (on the current runtime) until the returned [`Trimmer`] is dropped.
pub fn spawn_trimmer(every: Duration) -> Trimmer {
    Trimmer(tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            // A trim holds the arena's lock: off the async workers, so no call waits on it.
            if tokio::task::spawn_blocking(trim).await.is_err() {
                return;
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn freed_memory_goes_back_to_the_os() {
        fn rss_anon_kib() -> u64 {
            std::fs::read_to_string("/proc/self/status")
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find(|l| l.starts_with("RssAnon:"))
                        .and_then(|l| l.split_whitespace().nth(1))
                        .and_then(|v| v.parse().ok())
                })
                .unwrap_or(0)
        }
        // 64 MiB in 4 KiB blocks (below the mmap threshold, so they live in the heap), every 16th kept
        // so the heap's top stays pinned and only a trim can return the runs freed between them.
        let mut blocks: Vec<Vec<u8>> = (0..16_384).map(|i| vec![i as u8; 4096]).collect();
        let keep: Vec<Vec<u8>> = blocks
            .iter_mut()
            .enumerate()
            .filter(|(i, _)| i % 16 == 0)
            .map(|(_, b)| std::mem::take(b))
            .collect();
        drop(blocks);
        let before = rss_anon_kib();
        assert!(trim(), "nothing was released");
        let after = rss_anon_kib();
        assert!(
            after + 32 * 1024 < before,
            "RssAnon {before} KiB → {after} KiB after the trim"
        );
        drop(keep);
    }
}

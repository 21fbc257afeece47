//! The tokio runtime `verbio serve` runs on, sized by measurement rather than by tokio's default (one
//! worker per core).
//!
//! A relayed frame is a few microseconds of work, so at hundreds of calls each worker keeps running out
//! of work and parking: with two workers on two cores, three quarters of the bridge's `futex` calls were
//! workers parking and waking each other (`perf record -e syscalls:sys_enter_futex` under `verbio
//! bench`), and one worker used 12 % less CPU per call-minute at 300 recorded calls with the same
//! latency up to 1,000 calls (BENCHMARKS.md, "Issue 16, third stretch"). The calls' blocking work already runs on its
//! own threads (the recording writer, the library's store thread), so the async side needs few
//! workers: one for every two cores by default, `--workers` / `VERBIO_WORKERS` to choose.
//!
//! ```
//! let runtime = verbio::server::runtime::build(Some(1)).unwrap();
//! assert_eq!(runtime.block_on(async { 1 + 1 }), 2);
//! ```

use std::num::NonZeroUsize;

/// Workers when none are asked for: one for every two cores, at least one.
pub fn default_workers() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    (cores / 2).max(1)
}

/// A multi-thread runtime (I/O and timers on) with `workers` workers, or [`default_workers`].
pub fn build(workers: Option<usize>) -> std::io::Result<tokio::runtime::Runtime> {
    let workers = workers.unwrap_or_else(default_workers).max(1);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("verbio-worker")
        // Once per worker, as it first goes idle: tokio calls this hook on its workers only, where
        // `on_thread_start` would give the blocking pool's threads (the heap trim, file work) the
        // short slice too.
        .on_thread_park(|| {
            thread_local!(static ASKED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) });
            if !ASKED.with(|asked| asked.replace(true)) {
                crate::thread_sched::latency_sensitive();
            }
        })
        .enable_all()
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_leaves_half_the_cores_to_the_kernel_and_the_writer_threads() {
        let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        let workers = default_workers();
        assert!(workers >= 1);
        assert!(workers <= cores.div_ceil(2));
    }

    #[test]
    fn zero_workers_means_one() {
        let runtime = build(Some(0)).expect("a runtime");
        let name = runtime.block_on(async {
            tokio::spawn(async { std::thread::current().name().map(str::to_owned) })
                .await
                .expect("the task ran")
        });
        assert_eq!(name.as_deref(), Some("verbio-worker"));
    }
}

//! How the scheduler treats the bridge's threads (Linux): the async workers, which relay every frame,
//! ask for short time slices; the background threads (the recording writer and closer, the library's
//! store) are `SCHED_BATCH`, so their wake-ups never preempt a worker mid-frame.
//!
//! Why (BENCHMARKS.md, issue 16, ninth stretch): the kernel's scheduler (EEVDF, Linux 6.6+) lets a
//! running thread finish its slice (1.4 ms here) before a woken one runs, so a frame arriving while the
//! writer or the store held the worker's core waited for the rest of that slice. A thread that asks for
//! a short slice (`sched_setattr`'s `sched_runtime` on a normal thread, Linux 6.12+) gets an earlier
//! deadline and runs as soon as it wakes; a `SCHED_BATCH` thread does not preempt on waking. Neither
//! changes how much CPU a thread may use. Older kernels ignore the slice; other systems are untouched.
//!
//! Measured (BENCHMARKS.md, issue 16, eleventh stretch; one binary, `VERBIO_THREAD_SCHED=off` for the
//! other arm, alternated): at 500 recorded calls p50 was lower in 7 of 7 rounds (by 0.05–0.46 ms) and p99
//! lower in 4, even in 2, higher in 1; at 300 calls no difference beyond noise, nor in CPU.
//!
//! ```
//! // Both are best effort: a refusal is logged, never an error.
//! verbio::thread_sched::background();
//! ```

/// `VERBIO_THREAD_SCHED=off` leaves every thread as the system made it (for comparing the two).
fn enabled() -> bool {
    std::env::var("VERBIO_THREAD_SCHED").as_deref() != Ok("off")
}

/// The slice a worker asks for: the kernel's shortest (0.1 ms).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const WORKER_SLICE_NS: u64 = 100_000;

/// Linux's `struct sched_attr` (`sched_setattr(2)`), version 1.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[repr(C)]
struct SchedAttr {
    size: u32,
    sched_policy: u32,
    sched_flags: u64,
    sched_nice: i32,
    sched_priority: u32,
    sched_runtime: u64,
    sched_deadline: u64,
    sched_period: u64,
    sched_util_min: u32,
    sched_util_max: u32,
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn set_this_thread(policy: u32, slice_ns: u64) -> std::io::Result<()> {
    let attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        sched_policy: policy,
        sched_flags: 0,
        sched_nice: 0,
        sched_priority: 0,
        sched_runtime: slice_ns,
        sched_deadline: 0,
        sched_period: 0,
        sched_util_min: 0,
        sched_util_max: 0,
    };
    // SAFETY: `attr` is a valid `sched_attr` of the size it states, alive for the call; pid 0 is the
    // calling thread.
    let r = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The calling thread relays frames: a short slice, so it runs as soon as it is woken.
pub fn latency_sensitive() {
    if !enabled() {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if let Err(e) = set_this_thread(libc::SCHED_OTHER as u32, WORKER_SLICE_NS) {
        tracing::debug!("could not shorten this worker's time slice: {e}");
    }
}

/// The calling thread does background work in bursts: `SCHED_BATCH`, so its wake-ups wait for the
/// running thread's slice instead of preempting it.
pub fn background() {
    if !enabled() {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if let Err(e) = set_this_thread(libc::SCHED_BATCH as u32, 0) {
        tracing::debug!("could not make this thread a batch thread: {e}");
    }
}

/// Whether the running kernel takes the slice a thread asks for (Linux 6.12+); older ones accept the
/// call and keep their own. For diagnostics and tests.
#[cfg(target_os = "linux")]
pub fn kernel_takes_slices() -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut parts = release.trim().split(|c: char| !c.is_ascii_digit());
    let mut next = || {
        parts
            .next()
            .and_then(|p| p.parse::<u32>().ok())
            .unwrap_or(0)
    };
    (next(), next()) >= (6, 12)
}

/// The time slice in nanoseconds the scheduler gives the thread whose `/proc` directory is `task`
/// (`/proc/<pid>/task/<tid>`, or `/proc/thread-self`), where the kernel shows it (`se.slice` in its
/// `sched` file, on kernels built with scheduler debugging). For diagnostics and tests.
#[cfg(target_os = "linux")]
pub fn slice_ns(task: &std::path::Path) -> Option<u64> {
    let text = std::fs::read_to_string(task.join("sched")).ok()?;
    text.lines()
        .find(|l| l.split_whitespace().next() == Some("se.slice"))
        .and_then(|l| l.split(':').nth(1))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use super::*;

    #[test]
    fn a_background_thread_is_a_batch_thread() {
        std::thread::spawn(|| {
            set_this_thread(libc::SCHED_BATCH as u32, 0).expect("SCHED_BATCH needs no privilege");
            // SAFETY: 0 is the calling thread.
            assert_eq!(unsafe { libc::sched_getscheduler(0) }, libc::SCHED_BATCH);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_worker_asks_for_the_shortest_slice_and_stays_a_normal_thread() {
        std::thread::spawn(|| {
            set_this_thread(libc::SCHED_OTHER as u32, WORKER_SLICE_NS)
                .expect("a normal thread may ask for a slice");
            // SAFETY: 0 is the calling thread.
            assert_eq!(unsafe { libc::sched_getscheduler(0) }, libc::SCHED_OTHER);
            // Kernels from 6.12 take the slice asked for (and show it when built with scheduler
            // debugging); older ones accept the call and keep their own.
            if kernel_takes_slices() {
                if let Some(slice) = slice_ns(std::path::Path::new("/proc/thread-self")) {
                    assert_eq!(slice, WORKER_SLICE_NS);
                }
            }
        })
        .join()
        .unwrap();
    }
}

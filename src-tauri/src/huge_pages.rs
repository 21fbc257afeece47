//! Puts `verbio serve`'s heap on transparent huge pages, where the kernel allows them.
//!
//! At hundreds of calls the bridge is bound by memory latency, not by instructions: each 20 ms frame
//! touches a few dozen cache lines spread over many pages of one call's state (its task, sockets,
//! buffers, recording feed), and by the time that call's next frame comes the lines and their TLB
//! entries belong to the other calls. With the heap on 2 MiB pages a TLB entry covers 512 times as much
//! of it. Measured at 300 recorded calls (BENCHMARKS.md, issue 16, sixth stretch; four runs each,
//! alternated): the bridge's user CPU fell by about 9 % (mean 0.0226 → 0.0205 CPU-s per call-minute),
//! its total by about 5 %. (The bench's load generator gained nothing measurable from the same, so it
//! stays on ordinary pages; a bridge inherits `GLIBC_TUNABLES`, so A/B runs must not set it for both.)
//!
//! glibc does this when its `glibc.malloc.hugetlb=1` tunable is set (glibc 2.35 and later): it
//! `madvise`s the main heap with `MADV_HUGEPAGE` as it grows it. Only the main heap, though: with the
//! tunable alone the async worker allocated from a thread arena and got no huge page at all
//! (`AnonHugePages: 0 kB`), so `glibc.malloc.arena_max=1` puts every thread on the main heap (the
//! blocking threads, store and recorder, allocate little; with them the heap had 18 MiB of huge pages
//! at 300 calls). glibc reads tunables only at start-up, so `serve` restarts itself once, at its first
//! line, with both added to `GLIBC_TUNABLES`: same process id, same arguments, same environment
//! otherwise (the restarted process puts `GLIBC_TUNABLES` back as it was, so what it starts inherits
//! the user's). `VERBIO_HUGE_PAGES=0` turns this off, and a `glibc.malloc.hugetlb` already there is left
//! as it is; a kernel whose transparent huge pages are `never`, an older glibc or another C library
//! simply ignore it. The cost: RSS moves by whole 2 MiB pages (`khugepaged` collapses the heap, the
//! periodic trim splits it), so at 300 calls its median per call is 60–64 KiB against ~60 KiB.

/// `VERBIO_HUGE_PAGES=0` keeps the heap on ordinary pages.
pub const SWITCH: &str = "VERBIO_HUGE_PAGES";

/// glibc's tunable (and the value that asks for `madvise`d transparent huge pages).
const TUNABLE: &str = "glibc.malloc.hugetlb";

/// What is added: huge pages, and one arena (the main heap, the one glibc madvises).
const ADDED: &str = "glibc.malloc.hugetlb=1:glibc.malloc.arena_max=1";

/// The arena limit (kept as the user set it, when they did).
const ARENA_MAX: &str = "glibc.malloc.arena_max";

/// Set on the restarted process: the `GLIBC_TUNABLES` from before the restart (empty: none), put back
/// once glibc has read its own, so the processes `serve` starts (MCP servers) inherit the user's.
const RESTARTED: &str = "VERBIO_HUGE_PAGES_RESTARTED";

/// `GLIBC_TUNABLES` with huge pages asked for, or `None` when they already are, or when the switch
/// is off.
fn tunables(current: Option<&std::ffi::OsStr>, switch: Option<&std::ffi::OsStr>) -> Option<String> {
    if switch.is_some_and(|v| v == "0") {
        return None;
    }
    match current.map(|c| c.to_str()) {
        None | Some(Some("")) => Some(ADDED.to_string()),
        Some(Some(c)) if c.contains(TUNABLE) => None,
        Some(Some(c)) if c.contains(ARENA_MAX) => Some(format!("{c}:{TUNABLE}=1")),
        Some(Some(c)) => Some(format!("{c}:{ADDED}")),
        // Not UTF-8: not ours to rewrite.
        Some(None) => None,
    }
}

/// Replaces this process with itself, huge pages asked for; returns only when it did not (already
/// asked, switched off, not glibc on Linux, or the exec failed, which is printed), or when this is the
/// restarted process (which then puts the environment back as it was). Call it first thing in `main`,
/// while the process has one thread.
pub fn restart_with_huge_pages() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::process::CommandExt;
        if let Some(before) = std::env::var_os(RESTARTED) {
            std::env::remove_var(RESTARTED);
            match before.is_empty() {
                true => std::env::remove_var("GLIBC_TUNABLES"),
                false => std::env::set_var("GLIBC_TUNABLES", before),
            }
            return;
        }
        let current = std::env::var_os("GLIBC_TUNABLES");
        let switch = std::env::var_os(SWITCH);
        let Some(tunables) = tunables(current.as_deref(), switch.as_deref()) else {
            return;
        };
        let Ok(exe) = std::env::current_exe() else {
            return;
        };
        let mut args = std::env::args_os();
        let mut command = std::process::Command::new(exe);
        if let Some(arg0) = args.next() {
            command.arg0(arg0);
        }
        let error = command
            .args(args)
            .env("GLIBC_TUNABLES", tunables)
            .env(RESTARTED, current.unwrap_or_default())
            .exec();
        // Before logging is set up.
        eprintln!(
            "verbio: could not restart with the heap on huge pages ({error}); going on without"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn the_tunable_is_added_once_and_kept_with_others() {
        let added = "glibc.malloc.hugetlb=1:glibc.malloc.arena_max=1";
        assert_eq!(tunables(None, None).as_deref(), Some(added));
        assert_eq!(tunables(Some(OsStr::new("")), None).as_deref(), Some(added));
        assert_eq!(
            tunables(Some(OsStr::new("glibc.malloc.tcache_count=0")), None).as_deref(),
            Some(format!("glibc.malloc.tcache_count=0:{added}").as_str())
        );
        // The user's own arena limit stays.
        assert_eq!(
            tunables(Some(OsStr::new("glibc.malloc.arena_max=2")), None).as_deref(),
            Some("glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1")
        );
        // Already there (ours after the restart, or the user's own choice, even 0): left alone.
        assert_eq!(
            tunables(Some(OsStr::new("glibc.malloc.hugetlb=1")), None),
            None
        );
        assert_eq!(
            tunables(Some(OsStr::new("glibc.malloc.hugetlb=0")), None),
            None
        );
    }

    #[test]
    fn the_switch_turns_it_off() {
        assert_eq!(tunables(None, Some(OsStr::new("0"))), None);
        assert!(tunables(None, Some(OsStr::new("1"))).is_some());
    }
}

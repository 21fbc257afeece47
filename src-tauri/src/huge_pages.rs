//! Puts `verbio serve`'s heap on transparent huge pages, where the kernel allows them.
//!
//! At hundreds of calls the bridge is bound by memory latency, not by instructions: each 20 ms frame
//! touches a few dozen cache lines spread over many pages of one call's state (its task, sockets,
//! buffers, recording feed), and by the time that call's next frame comes the lines and their TLB
//! entries belong to the other calls. With the heap on 2 MiB pages a TLB entry covers 512 times as much
//! of it. Measured at 300 recorded calls (BENCHMARKS.md, issue 16, sixth stretch): the bridge's user CPU
//! fell by about a fifth and p99 added latency by a quarter, with RSS per call unchanged.
//!
//! glibc does this when its `glibc.malloc.hugetlb=1` tunable is set (glibc 2.35 and later; it
//! `madvise`s each heap it grows with `MADV_HUGEPAGE`), but reads tunables only at start-up. So `serve`
//! restarts itself once, at its first line, with the tunable added to `GLIBC_TUNABLES`: same process
//! id, same arguments, same environment otherwise. `VERBIO_HUGE_PAGES=0` turns this off; a kernel whose
//! transparent huge pages are `never`, an older glibc or another C library simply ignore it.

/// `VERBIO_HUGE_PAGES=0` keeps the heap on ordinary pages.
pub const SWITCH: &str = "VERBIO_HUGE_PAGES";

/// glibc's tunable (and the value that asks for `madvise`d transparent huge pages).
const TUNABLE: &str = "glibc.malloc.hugetlb";

/// `GLIBC_TUNABLES` with huge pages asked for, or `None` when they already are, or when the switch
/// is off.
fn tunables(current: Option<&std::ffi::OsStr>, switch: Option<&std::ffi::OsStr>) -> Option<String> {
    if switch.is_some_and(|v| v == "0") {
        return None;
    }
    match current.map(|c| c.to_str()) {
        None => Some(format!("{TUNABLE}=1")),
        Some(Some(c)) if c.contains(TUNABLE) => None,
        Some(Some("")) => Some(format!("{TUNABLE}=1")),
        Some(Some(c)) => Some(format!("{c}:{TUNABLE}=1")),
        // Not UTF-8: not ours to rewrite.
        Some(None) => None,
    }
}

/// Replaces this process with itself, huge pages asked for; returns only when it did not (already
/// asked, switched off, not glibc on Linux, or the exec failed, which is logged).
pub fn restart_with_huge_pages() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::process::CommandExt;
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
        let error = command.args(args).env("GLIBC_TUNABLES", tunables).exec();
        tracing::warn!("could not restart with the heap on huge pages ({error}); going on without");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn the_tunable_is_added_once_and_kept_with_others() {
        assert_eq!(
            tunables(None, None).as_deref(),
            Some("glibc.malloc.hugetlb=1")
        );
        assert_eq!(
            tunables(Some(OsStr::new("")), None).as_deref(),
            Some("glibc.malloc.hugetlb=1")
        );
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

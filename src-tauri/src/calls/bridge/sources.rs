//! Which of a call's event sources woke its task, so a wake-up polls only those.
//!
//! A call's loop waits on its Twilio socket, its model socket, a standby session, a connection on its
//! way, the operator's microphone, its tools, the app's commands and a timer. Polling all of them on
//! each of the ~60 audio wake-ups a second touched a cold cache line or two per source (a socket's
//! readiness, the command channel's doorbell) at 300 calls per core, where nothing stays cached
//! between one call's frames (BENCHMARKS.md, issue 16, seventh stretch). So each source is polled with
//! its own waker, which marks its bit and then wakes the task; the loop polls the sources whose bits
//! are set, plus the ones that last gave something (they may have more).
//!
//! The rules that keep it from missing anything:
//! - A source put in place (a new model link, a connection started, the operator's microphone, a tool)
//!   has registered no waker yet: whoever installs it calls [`Sources::poll_all`].
//! - A wake-up with no bit set came from the task's own waker (a handler awaited something with it):
//!   everything is polled, so nothing that registered that waker is left unread.
//! - The net under the first rule: a source that woke the task but whose slot the loop finds empty
//!   (the `vacant` it passes to [`Sources::settle`]) was registered by something that has since moved
//!   (a standby session that became the current one), so the loop looks at everything again at once
//!   rather than waiting for the next timer or command to do it.
//!
//! ```
//! use std::task::{Context, Waker};
//! use verbio::calls::bridge::sources::{Due, Source, Sources};
//!
//! let mut sources = Sources::new();
//! let task = Waker::noop();
//! // The first look polls everything.
//! assert!(sources.due(task).contains(Source::Model));
//! assert!(!sources.settle(None, Due::NONE, Due::NONE));
//! // Only the socket that woke is due next.
//! sources.waker(Source::Twilio).wake_by_ref();
//! let due = sources.due(task);
//! assert!(due.contains(Source::Twilio) && !due.contains(Source::Model));
//! ```

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Waker;

/// A call loop's event sources, in the order a wake-up polls them (rotated for fairness).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Twilio,
    Model,
    Standby,
    Connecting,
    Operator,
    Tools,
    Control,
    Timer,
}

impl Source {
    /// Every source, in polling order.
    pub const ALL: [Source; 8] = [
        Source::Twilio,
        Source::Model,
        Source::Standby,
        Source::Connecting,
        Source::Operator,
        Source::Tools,
        Source::Control,
        Source::Timer,
    ];

    fn bit(self) -> u32 {
        1 << self as u32
    }
}

const ALL_BITS: u32 = (1 << Source::ALL.len()) - 1;

/// A set of sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due(u32);

impl Due {
    /// None.
    pub const NONE: Due = Due(0);

    pub fn contains(self, source: Source) -> bool {
        self.0 & source.bit() != 0
    }

    /// `self` and `source`.
    pub fn with(self, source: Source) -> Due {
        Due(self.0 | source.bit())
    }

    /// `self` without `source`.
    pub fn without(self, source: Source) -> Due {
        Due(self.0 & !source.bit())
    }
}

/// What the sources' wakers share with the loop: the bits set since it last looked, and the task.
/// One cache line, the `Arc`'s counts included: a wake-up touches nothing else of the call's until the
/// loop runs.
#[derive(Default)]
#[repr(align(64))]
struct Shared {
    woken: AtomicU32,
    task: Mutex<Option<Waker>>,
}

impl Shared {
    fn wake(&self, bit: u32) {
        // Only the first bit since the loop last looked wakes the task; later ones ride along.
        // AcqRel: what the source did before waking is visible to the loop that sees the bit.
        if self.woken.fetch_or(bit, Ordering::AcqRel) != 0 {
            return;
        }
        let task = self.task.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(task) = task.as_ref() {
            task.wake_by_ref();
        }
    }
}

/// A source's waker is the shared `Arc`'s pointer with the source's index in its low bits (the
/// allocation is 64-byte aligned): no allocation of its own, so waking it and counting its clones
/// touch only the shared line.
mod tagged {
    use super::Shared;
    use std::sync::Arc;
    use std::task::{RawWaker, RawWakerVTable, Waker};

    const INDEX_MASK: usize = 0b111;
    const _: () = assert!(std::mem::align_of::<Shared>() > INDEX_MASK);
    const _: () = assert!(super::Source::ALL.len() <= INDEX_MASK + 1);

    static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake_by_ref, drop_waker);

    fn split(data: *const ()) -> (*const Shared, u32) {
        let data = data as usize;
        (
            (data & !INDEX_MASK) as *const Shared,
            1 << (data & INDEX_MASK),
        )
    }

    /// A waker for source `index`, holding one count of `shared`.
    pub(super) fn waker(shared: &Arc<Shared>, index: usize) -> Waker {
        let ptr = Arc::into_raw(shared.clone()) as usize;
        debug_assert_eq!(ptr & INDEX_MASK, 0);
        // SAFETY: the data is an `Arc<Shared>` pointer (one count, taken above) tagged with an index
        // below its alignment, which every function of VTABLE untags before use.
        unsafe { Waker::from_raw(RawWaker::new((ptr | index) as *const (), &VTABLE)) }
    }

    unsafe fn clone(data: *const ()) -> RawWaker {
        // SAFETY: `data` holds a count of a live `Arc<Shared>` (see `waker`), so adding one is sound.
        unsafe { Arc::increment_strong_count(split(data).0) };
        RawWaker::new(data, &VTABLE)
    }

    unsafe fn wake(data: *const ()) {
        // SAFETY: as `wake_by_ref`, then this waker's count is given back.
        unsafe {
            wake_by_ref(data);
            drop_waker(data);
        }
    }

    unsafe fn wake_by_ref(data: *const ()) {
        let (shared, bit) = split(data);
        // SAFETY: the waker holds a count, so the `Shared` is alive.
        unsafe { (*shared).wake(bit) };
    }

    unsafe fn drop_waker(data: *const ()) {
        // SAFETY: gives back the count this waker held.
        unsafe { Arc::decrement_strong_count(split(data).0) };
    }
}

/// A call loop's per-source wakers and what is due.
pub struct Sources {
    shared: Arc<Shared>,
    wakers: [Waker; Source::ALL.len()],
    /// The task waker last stored in `shared` (compared, not re-stored, on each poll).
    registered: Option<Waker>,
    /// Sources to poll on the next look whether or not they woke: the one that last gave something,
    /// the ones not reached then, or all of them.
    carry: u32,
    /// Where the next look starts polling, so a busy source cannot starve the others.
    first: usize,
    /// The bits the sources' wakers set for this look (not the carried ones).
    woken: u32,
}

impl Default for Sources {
    fn default() -> Self {
        Self::new()
    }
}

impl Sources {
    /// Wakers for every source; the first look polls them all.
    pub fn new() -> Self {
        let shared = Arc::new(Shared::default());
        let wakers = Source::ALL.map(|source| tagged::waker(&shared, source as usize));
        Self {
            shared,
            wakers,
            registered: None,
            carry: ALL_BITS,
            first: 0,
            woken: 0,
        }
    }

    /// The waker to poll `source` with.
    pub fn waker(&self, source: Source) -> &Waker {
        &self.wakers[source as usize]
    }

    /// Poll every source on the next look (one was put in place and has registered nothing yet).
    pub fn poll_all(&mut self) {
        self.carry = ALL_BITS;
    }

    /// The sources to poll now, the task being polled with `task`. End the look with [`Sources::settle`].
    pub fn due(&mut self, task: &Waker) -> Due {
        if !self.registered.as_ref().is_some_and(|w| w.will_wake(task)) {
            *self.shared.task.lock().unwrap_or_else(|p| p.into_inner()) = Some(task.clone());
            self.registered = Some(task.clone());
            // A wake before the task's waker was stored woke no one.
            self.carry = ALL_BITS;
        }
        let woken = self.shared.woken.swap(0, Ordering::AcqRel);
        self.woken = woken;
        match woken | self.carry {
            // Woken by the task's own waker: look everywhere.
            0 => Due(ALL_BITS),
            due => Due(due),
        }
    }

    /// The sources in the order to poll them this time.
    pub fn order(&self) -> [Source; Source::ALL.len()] {
        let mut order = Source::ALL;
        order.rotate_left(self.first);
        order
    }

    /// Ends a look: `gave` is the source that gave an event (polled again next time, and the next
    /// look starts after it), `unpolled` the due sources not reached, `vacant` the polled sources
    /// whose slots were empty.
    ///
    /// Returns whether to look again at once, at every source: true when a vacant source's own waker
    /// woke this look, because whatever registered that waker has moved (a standby link that became
    /// the current one, its socket still registered under the standby's waker). When no source gave,
    /// the caller wakes its task; when one did, the loop looks again after handling it anyway.
    #[must_use = "a look that found a moved source must wake the task"]
    pub fn settle(&mut self, gave: Option<Source>, unpolled: Due, vacant: Due) -> bool {
        self.carry = unpolled.0;
        if let Some(source) = gave {
            self.carry |= source.bit();
            self.first = (source as usize + 1) % Source::ALL.len();
        }
        let moved = self.woken & vacant.0 != 0;
        if moved {
            self.carry = ALL_BITS;
        }
        moved
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    /// Counts its wake-ups.
    struct Counter(AtomicUsize);

    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counting() -> (Arc<Counter>, Waker) {
        let counter = Arc::new(Counter(AtomicUsize::new(0)));
        (counter.clone(), Waker::from(counter))
    }

    fn quiet(sources: &mut Sources, task: &Waker) {
        let _ = sources.due(task);
        assert!(!sources.settle(None, Due::NONE, Due::NONE));
    }

    #[test]
    fn the_wakers_and_their_clones_hold_the_shared_state_until_the_last_is_dropped() {
        let sources = Sources::new();
        let shared = Arc::downgrade(&sources.shared);
        let clone = sources.waker(Source::Timer).clone();
        assert_eq!(
            Arc::strong_count(&sources.shared),
            1 + Source::ALL.len() + 1
        );
        drop(sources);
        assert!(shared.upgrade().is_some(), "a clone still holds it");
        clone.wake();
        assert!(shared.upgrade().is_none(), "freed with the last waker");
    }

    #[test]
    fn the_first_look_polls_everything() {
        let (_, task) = counting();
        let mut sources = Sources::new();
        let due = sources.due(&task);
        assert!(Source::ALL.iter().all(|s| due.contains(*s)));
    }

    #[test]
    fn a_source_wakes_the_task_once_and_only_it_is_due() {
        let (count, task) = counting();
        let mut sources = Sources::new();
        quiet(&mut sources, &task);
        sources.waker(Source::Model).wake_by_ref();
        sources.waker(Source::Model).wake_by_ref();
        sources.waker(Source::Control).wake_by_ref();
        assert_eq!(
            count.0.load(Ordering::SeqCst),
            1,
            "one wake-up for three wakes"
        );
        let due = sources.due(&task);
        assert!(due.contains(Source::Model) && due.contains(Source::Control));
        assert!(!due.contains(Source::Twilio) && !due.contains(Source::Timer));
        assert!(!sources.settle(None, Due::NONE, Due::NONE));
        sources.waker(Source::Twilio).wake_by_ref();
        assert_eq!(
            count.0.load(Ordering::SeqCst),
            2,
            "woken again after the loop looked"
        );
    }

    #[test]
    fn a_wake_up_without_a_source_polls_everything() {
        let (_, task) = counting();
        let mut sources = Sources::new();
        quiet(&mut sources, &task);
        let due = sources.due(&task);
        assert!(Source::ALL.iter().all(|s| due.contains(*s)));
    }

    #[test]
    fn what_gave_or_was_not_reached_is_due_again_and_the_next_look_starts_after_it() {
        let (_, task) = counting();
        let mut sources = Sources::new();
        quiet(&mut sources, &task);
        sources.waker(Source::Twilio).wake_by_ref();
        sources.waker(Source::Tools).wake_by_ref();
        let due = sources.due(&task);
        assert!(!sources.settle(Some(Source::Twilio), due.without(Source::Twilio), Due::NONE));
        let due = sources.due(&task);
        assert!(due.contains(Source::Twilio) && due.contains(Source::Tools));
        assert!(!due.contains(Source::Model));
        assert_eq!(sources.order()[0], Source::Model);
    }

    #[test]
    fn poll_all_makes_every_source_due() {
        let (_, task) = counting();
        let mut sources = Sources::new();
        quiet(&mut sources, &task);
        sources.waker(Source::Twilio).wake_by_ref();
        sources.poll_all();
        let due = sources.due(&task);
        assert!(Source::ALL.iter().all(|s| due.contains(*s)));
    }

    #[test]
    fn a_new_task_waker_is_stored_and_everything_is_looked_at() {
        let (first_count, first) = counting();
        let (second_count, second) = counting();
        let mut sources = Sources::new();
        quiet(&mut sources, &first);
        quiet(&mut sources, &second);
        sources.waker(Source::Timer).wake_by_ref();
        assert_eq!(first_count.0.load(Ordering::SeqCst), 0);
        assert_eq!(second_count.0.load(Ordering::SeqCst), 1);
    }

    /// A standby session's socket registered under the standby's waker; the session then became the
    /// current one. Its next frame wakes the standby's bit, whose slot is now empty: without another
    /// look the model source would not be polled until a timer or command came.
    #[test]
    fn a_wake_for_a_source_found_vacant_makes_the_loop_look_everywhere_at_once() {
        let (_, task) = counting();
        let mut sources = Sources::new();
        quiet(&mut sources, &task);
        sources.waker(Source::Standby).wake_by_ref();
        let due = sources.due(&task);
        assert!(due.contains(Source::Standby) && !due.contains(Source::Model));
        let vacant = Due::NONE.with(Source::Standby);
        assert!(
            sources.settle(None, Due::NONE, vacant),
            "look again at once"
        );
        let due = sources.due(&task);
        assert!(Source::ALL.iter().all(|s| due.contains(*s)));
        assert!(!sources.settle(None, Due::NONE, Due::NONE), "only once");
    }

    #[test]
    fn an_empty_slot_polled_without_its_own_wake_is_no_reason_to_look_again() {
        let (_, task) = counting();
        let mut sources = Sources::new();
        quiet(&mut sources, &task);
        sources.waker(Source::Twilio).wake_by_ref();
        sources.poll_all();
        let _ = sources.due(&task);
        let vacant = Due::NONE.with(Source::Standby).with(Source::Operator);
        assert!(!sources.settle(Some(Source::Twilio), Due::NONE, vacant));
    }
}

//! Money spent in a rolling window (24 hours): what the daily budget is checked against. Kept in
//! memory so that a call checking its budget never waits for the disk; seeded from the call library at
//! start so a restart does not reset it.
//!
//! Spending is summed per minute ([`BUCKET_MS`]): a charge leaves the window up to a minute late, never
//! early, and the ledger holds at most 1,440 entries however many calls there are. Kept per charge, it
//! grew by every response of every call for a day (2.9 MB an hour at 200 calls: the soak's RSS growth,
//! BENCHMARKS.md, issue 16).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

/// See the module docs.
#[derive(Debug)]
pub struct SpendLedger {
    window_ms: i64,
    inner: Mutex<Inner>,
}

/// The span one entry sums.
pub const BUCKET_MS: i64 = 60_000;

#[derive(Debug, Default)]
struct Inner {
    /// (start of the minute, picodollars spent in it), oldest first.
    entries: VecDeque<(i64, u64)>,
    total: u64,
}

impl Inner {
    fn prune(&mut self, since_ms: i64) {
        while let Some(&(start, pico)) = self.entries.front() {
            // Dropped once all of its minute is older than the window.
            if start + BUCKET_MS > since_ms {
                break;
            }
            self.entries.pop_front();
            self.total = self.total.saturating_sub(pico);
        }
    }
}

impl SpendLedger {
    pub fn new(window: Duration) -> Self {
        SpendLedger {
            window_ms: i64::try_from(window.as_millis()).unwrap_or(i64::MAX),
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves consistent numbers (every update is one step).
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds what was spent at `at_ms` to its minute (charges may arrive slightly out of order; the
    /// minutes are kept sorted).
    pub fn add(&self, at_ms: i64, pico: u64) {
        if pico == 0 {
            return;
        }
        let start = at_ms - at_ms.rem_euclid(BUCKET_MS);
        let mut inner = self.lock();
        let at = inner.entries.partition_point(|&(t, _)| t < start);
        match inner.entries.get_mut(at) {
            Some((t, sum)) if *t == start => *sum = sum.saturating_add(pico),
            _ => inner.entries.insert(at, (start, pico)),
        }
        inner.total = inner.total.saturating_add(pico);
    }

    /// Picodollars spent in the window that ends at `now_ms`.
    pub fn spent(&self, now_ms: i64) -> u64 {
        let mut inner = self.lock();
        inner.prune(now_ms.saturating_sub(self.window_ms));
        inner.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spending_leaves_the_window_after_a_day() {
        let hour = 3_600_000;
        let ledger = SpendLedger::new(Duration::from_secs(24 * 3600));
        ledger.add(10 * hour, 5);
        ledger.add(2 * hour, 7);
        ledger.add(20 * hour, 0);
        assert_eq!(ledger.spent(20 * hour), 12);
        assert_eq!(
            ledger.spent(26 * hour),
            12,
            "exactly a day old still counts"
        );
        assert_eq!(
            ledger.spent(26 * hour + BUCKET_MS - 1),
            12,
            "its minute is still partly in the window"
        );
        assert_eq!(
            ledger.spent(26 * hour + BUCKET_MS),
            5,
            "the entry at 2 h left the window"
        );
        assert_eq!(ledger.spent(34 * hour + BUCKET_MS), 0);
    }

    #[test]
    fn a_day_of_charges_is_at_most_a_minute_each() {
        let ledger = SpendLedger::new(Duration::from_secs(24 * 3600));
        let mut expected = 0;
        // A charge every 100 ms for a day, some late by up to a second.
        for i in 0..864_000i64 {
            let at = i * 100 - (i % 7) * 150;
            ledger.add(at, 3);
            expected += 3;
        }
        assert_eq!(ledger.spent(86_400_000 - 1), expected);
        assert!(ledger.lock().entries.len() <= 1_441);
        let sorted = ledger.lock().entries.iter().is_sorted_by_key(|&(t, _)| t);
        assert!(sorted);
    }
}

//! Money spent in a rolling window (24 hours): what the daily budget is checked against. Kept in
//! memory so that a call checking its budget never waits for the disk; seeded from the call library at
//! start so a restart does not reset it.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

/// See the module docs.
#[derive(Debug)]
pub struct SpendLedger {
    window_ms: i64,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// (when, picodollars), oldest first.
    entries: VecDeque<(i64, u64)>,
    total: u64,
}

impl Inner {
    fn prune(&mut self, since_ms: i64) {
        while let Some(&(at, pico)) = self.entries.front() {
            if at >= since_ms {
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

    /// Adds what was spent at `at_ms` (entries may arrive slightly out of order; they are kept sorted).
    pub fn add(&self, at_ms: i64, pico: u64) {
        if pico == 0 {
            return;
        }
        let mut inner = self.lock();
        let at = inner.entries.partition_point(|&(t, _)| t <= at_ms);
        inner.entries.insert(at, (at_ms, pico));
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
        assert_eq!(ledger.spent(26 * hour), 12, "exactly a day old still counts");
        assert_eq!(ledger.spent(26 * hour + 1), 5, "the entry at 2 h left the window");
        assert_eq!(ledger.spent(34 * hour + 1), 0);
    }
}

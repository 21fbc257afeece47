//! The model session's lifecycle: which session to open when, and what to do when one fails.
//!
//! A call's first session is opened at once. A session that drops is replaced (with backoff, a bounded
//! number of times; never for a refusal no retry can fix, such as a bad key). Before the 60-minute cap a
//! fresh session is opened in the background (rollover) and waits as the standby; if the current session
//! drops meanwhile, the standby takes over, and a rollover connection still on its way becomes the
//! replacement. Pure state: the socket loop opens the connections and reports back.

use std::time::Duration;

use tokio::time::Instant;

use super::model_setup::is_permanent;
use crate::realtime::client::RealtimeError;

/// Why a session is being opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opening {
    /// The call's first session.
    Initial,
    /// Replacing a session that dropped.
    Reconnect,
    /// A fresh session for the rollover before the session cap.
    Rollover,
}

/// What the socket loop must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Open a session after `delay`.
    Connect { opening: Opening, delay: Duration },
    /// Nothing now.
    Wait,
    /// Give up: the model cannot be reached (the caller hears the apology).
    End(String),
}

/// Where a session that just connected goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// It becomes the current session; `replaces` says whether it replaces a dropped one (seed it).
    Current { replaces: bool },
    /// It waits as the standby for a quiet moment.
    Standby,
}

/// What a dropped current session means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lost {
    /// The standby takes over now (it needs the conversation so far).
    UseStandby,
    /// A connection is already on its way; it becomes the replacement.
    AwaitConnection,
    /// Open a replacement now.
    Connect(Opening),
}

/// A rollover or standby that failed is tried again after this long (the current session has time left).
pub const ROLLOVER_RETRY: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub struct Lifecycle {
    connecting: Option<Opening>,
    failed_attempts: u32,
    max_attempts: u32,
    backoff: Duration,
    rollover_after: Duration,
    rollover_at: Option<Instant>,
}

impl Lifecycle {
    /// A call starting at `now`, its first session on its way (the socket loop opens it at once).
    pub fn new(
        max_attempts: u32,
        backoff: Duration,
        rollover_after: Duration,
        now: Instant,
    ) -> Self {
        Lifecycle {
            connecting: Some(Opening::Initial),
            failed_attempts: 0,
            max_attempts,
            backoff,
            rollover_after,
            rollover_at: Some(now + rollover_after),
        }
    }

    /// Whether a connection is on its way, and why.
    pub fn connecting(&self) -> Option<Opening> {
        self.connecting
    }

    /// When the rollover is due.
    pub fn rollover_at(&self) -> Option<Instant> {
        self.rollover_at
    }

    fn connect(&mut self, opening: Opening, delay: Duration) -> Next {
        self.connecting = Some(opening);
        Next::Connect { opening, delay }
    }

    /// The connection succeeded; `has_current`: a current session is still up.
    pub fn on_connected(&mut self, has_current: bool) -> Placement {
        match self.connecting.take() {
            Some(Opening::Rollover) if has_current => Placement::Standby,
            Some(Opening::Initial) | None => Placement::Current { replaces: false },
            Some(_) => Placement::Current { replaces: true },
        }
    }

    /// The connection (or its setup) failed.
    pub fn on_connect_failed(
        &mut self,
        error: &RealtimeError,
        has_current: bool,
        now: Instant,
    ) -> Next {
        let opening = self.connecting.take().unwrap_or(Opening::Reconnect);
        if opening == Opening::Rollover && has_current {
            // The current session still has time left; try again shortly.
            self.rollover_at = Some(now + ROLLOVER_RETRY);
            return Next::Wait;
        }
        if is_permanent(error) {
            // A bad key or an unknown model stays bad: no point making the caller wait for retries.
            return Next::End(error.to_string());
        }
        self.failed_attempts += 1;
        if self.failed_attempts > self.max_attempts {
            return Next::End(error.to_string());
        }
        let backoff = self.backoff * 2u32.saturating_pow(self.failed_attempts - 1);
        // A first session that never came up is still the first session for the caller.
        let retry = if opening == Opening::Initial {
            Opening::Initial
        } else {
            Opening::Reconnect
        };
        self.connect(retry, backoff)
    }

    /// The current session dropped; `has_standby`: a configured standby is waiting.
    pub fn on_current_lost(&mut self, has_standby: bool) -> Lost {
        if has_standby {
            return Lost::UseStandby;
        }
        match self.connecting {
            Some(_) => {
                // A rollover connection already on its way becomes the replacement.
                self.connecting = Some(Opening::Reconnect);
                Lost::AwaitConnection
            }
            None => {
                self.connecting = Some(Opening::Reconnect);
                Lost::Connect(Opening::Reconnect)
            }
        }
    }

    /// The rollover timer fired.
    pub fn on_rollover_due(&mut self, has_standby: bool) -> Next {
        self.rollover_at = None;
        if self.connecting.is_some() || has_standby {
            return Next::Wait;
        }
        self.connect(Opening::Rollover, Duration::ZERO)
    }

    /// The standby closed, failed its setup or timed out before taking over.
    pub fn on_standby_lost(&mut self, now: Instant) {
        self.rollover_at = Some(now + ROLLOVER_RETRY);
    }

    /// The standby took over at a quiet moment: the next rollover counts from now.
    pub fn on_swapped(&mut self, now: Instant) {
        self.rollover_at = Some(now + self.rollover_after);
    }

    /// A session is configured and carrying the call: failures start counting again.
    pub fn on_ready(&mut self) {
        self.failed_attempts = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BACKOFF: Duration = Duration::from_millis(100);
    const ROLL: Duration = Duration::from_secs(3300);

    fn life(now: Instant) -> Lifecycle {
        let mut l = Lifecycle::new(3, BACKOFF, ROLL, now);
        assert_eq!(l.connecting(), Some(Opening::Initial));
        assert_eq!(
            l.on_connected(false),
            Placement::Current { replaces: false }
        );
        l.on_ready();
        l
    }

    #[test]
    fn a_dropped_session_is_replaced_with_backoff_until_the_attempts_run_out() {
        let now = Instant::now();
        let mut l = life(now);
        assert_eq!(l.on_current_lost(false), Lost::Connect(Opening::Reconnect));
        let err = RealtimeError::Connect("refused".into());
        for (i, delay) in [100u64, 200, 400].iter().enumerate() {
            assert_eq!(
                l.on_connect_failed(&err, false, now),
                Next::Connect {
                    opening: Opening::Reconnect,
                    delay: Duration::from_millis(*delay)
                },
                "attempt {i}"
            );
        }
        assert!(matches!(
            l.on_connect_failed(&err, false, now),
            Next::End(_)
        ));
    }

    #[test]
    fn a_bad_key_is_not_retried() {
        let now = Instant::now();
        let mut l = Lifecycle::new(3, BACKOFF, ROLL, now);
        assert!(matches!(
            l.on_connect_failed(&RealtimeError::Rejected(401), false, now),
            Next::End(_)
        ));
    }

    #[test]
    fn rollover_during_a_reconnect_becomes_the_replacement() {
        let now = Instant::now();
        let mut l = life(now);
        // The rollover connection is on its way...
        assert_eq!(
            l.on_rollover_due(false),
            Next::Connect {
                opening: Opening::Rollover,
                delay: Duration::ZERO
            }
        );
        // ...when the current session drops: no second connection, the rollover one replaces it.
        assert_eq!(l.on_current_lost(false), Lost::AwaitConnection);
        assert_eq!(l.on_connected(false), Placement::Current { replaces: true });
        // A later rollover timer while a reconnect is on its way opens nothing more.
        assert_eq!(l.on_current_lost(false), Lost::Connect(Opening::Reconnect));
        assert_eq!(l.on_rollover_due(false), Next::Wait);
    }

    #[test]
    fn a_failed_rollover_is_retried_later_and_a_standby_takes_over_a_drop() {
        let now = Instant::now();
        let mut l = life(now);
        l.on_rollover_due(false);
        let err = RealtimeError::Timeout;
        assert_eq!(l.on_connect_failed(&err, true, now), Next::Wait);
        assert_eq!(l.rollover_at(), Some(now + ROLLOVER_RETRY));
        l.on_rollover_due(false);
        assert_eq!(l.on_connected(true), Placement::Standby);
        assert_eq!(l.on_current_lost(true), Lost::UseStandby);
        l.on_standby_lost(now);
        assert_eq!(l.rollover_at(), Some(now + ROLLOVER_RETRY));
        l.on_swapped(now);
        assert_eq!(l.rollover_at(), Some(now + ROLL));
    }
}

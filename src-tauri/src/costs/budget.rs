//! Budgets in money: per call and per day (a rolling 24 hours, like the minute budget). Near a cap the
//! agent is told to wrap up; at a cap the call ends with the user's goodbye line, and new calls are
//! refused while the day's budget is spent.

use serde::{Deserialize, Serialize};

use super::usd_to_pico;

/// The user's budgets (dollars); `None` caps nothing. Unknown fields are ignored (the window sends
/// back the read-only `spent_today_usd` it was shown).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    #[serde(default)]
    pub call_usd: Option<f64>,
    #[serde(default)]
    pub daily_usd: Option<f64>,
    /// How far into a cap (percent) the agent is told to wrap up.
    #[serde(default = "default_wrap_up")]
    pub wrap_up_percent: u8,
    /// What the agent says when a cap ends the call.
    #[serde(default = "default_goodbye")]
    pub goodbye: String,
}

fn default_wrap_up() -> u8 {
    80
}

fn default_goodbye() -> String {
    "I'm sorry, I have to end our call now. Thank you for calling, goodbye.".into()
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            call_usd: None,
            daily_usd: None,
            wrap_up_percent: default_wrap_up(),
            goodbye: default_goodbye(),
        }
    }
}

/// A budget that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid budget: {0}")]
pub struct InvalidBudget(pub String);

impl Budget {
    pub fn validate(&self) -> Result<(), InvalidBudget> {
        for (name, cap) in [("call_usd", self.call_usd), ("daily_usd", self.daily_usd)] {
            if let Some(usd) = cap {
                if usd_to_pico(usd).is_none_or(|p| p == 0) {
                    return Err(InvalidBudget(format!(
                        "{name} must be more than 0 and below 1 000 000 dollars, not {usd}"
                    )));
                }
            }
        }
        if !(10..=99).contains(&self.wrap_up_percent) {
            return Err(InvalidBudget(format!(
                "wrap_up_percent must be 10–99, not {}",
                self.wrap_up_percent
            )));
        }
        let goodbye = self.goodbye.trim();
        if goodbye.is_empty() || goodbye.len() > 500 {
            return Err(InvalidBudget("goodbye must be 1–500 characters".into()));
        }
        Ok(())
    }

    fn cap(&self, scope: BudgetScope) -> Option<u64> {
        match scope {
            BudgetScope::Call => self.call_usd,
            BudgetScope::Day => self.daily_usd,
        }
        .and_then(usd_to_pico)
    }

    /// Whether the day's budget is spent (new calls are refused).
    pub fn day_spent(&self, spent_today: u64) -> bool {
        self.cap(BudgetScope::Day)
            .is_some_and(|cap| spent_today >= cap)
    }
}

/// Which cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetScope {
    Call,
    Day,
}

/// What a call must do about its budget now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetStep {
    /// Tell the agent to finish the conversation.
    WrapUp {
        scope: BudgetScope,
        spent: u64,
        cap: u64,
    },
    /// End the call with the goodbye line.
    Stop {
        scope: BudgetScope,
        spent: u64,
        cap: u64,
    },
}

/// One call's view of the budgets: each step happens once.
#[derive(Debug, Default)]
pub struct BudgetWatch {
    wrapped_up: bool,
    stopped: bool,
}

impl BudgetWatch {
    /// After the call's cost went up: `call_spent` by this call, `day_spent` by every call in the
    /// window (this one included).
    pub fn observe(
        &mut self,
        budget: &Budget,
        call_spent: u64,
        day_spent: u64,
    ) -> Option<BudgetStep> {
        if self.stopped {
            return None;
        }
        let scopes = [
            (BudgetScope::Call, call_spent),
            (BudgetScope::Day, day_spent),
        ];
        let capped = scopes
            .iter()
            .filter_map(|&(scope, spent)| budget.cap(scope).map(|cap| (scope, spent, cap)));
        for (scope, spent, cap) in capped.clone() {
            if spent >= cap {
                self.stopped = true;
                return Some(BudgetStep::Stop { scope, spent, cap });
            }
        }
        if self.wrapped_up {
            return None;
        }
        for (scope, spent, cap) in capped {
            let threshold = u128::from(cap) * u128::from(budget.wrap_up_percent) / 100;
            if u128::from(spent) >= threshold {
                self.wrapped_up = true;
                return Some(BudgetStep::WrapUp { scope, spent, cap });
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CENT: u64 = 10_000_000_000;

    #[test]
    fn wrap_up_then_stop_each_once() {
        let budget = Budget {
            call_usd: Some(0.10),
            ..Budget::default()
        };
        let mut w = BudgetWatch::default();
        assert_eq!(w.observe(&budget, 7 * CENT, 7 * CENT), None);
        assert_eq!(
            w.observe(&budget, 8 * CENT, 8 * CENT),
            Some(BudgetStep::WrapUp {
                scope: BudgetScope::Call,
                spent: 8 * CENT,
                cap: 10 * CENT
            })
        );
        assert_eq!(w.observe(&budget, 9 * CENT, 9 * CENT), None);
        assert!(matches!(
            w.observe(&budget, 10 * CENT, 10 * CENT),
            Some(BudgetStep::Stop {
                scope: BudgetScope::Call,
                ..
            })
        ));
        assert_eq!(w.observe(&budget, 20 * CENT, 20 * CENT), None);
    }

    #[test]
    fn the_day_cap_counts_every_call_and_refuses_new_ones() {
        let budget = Budget {
            call_usd: Some(1.0),
            daily_usd: Some(0.50),
            ..Budget::default()
        };
        let mut w = BudgetWatch::default();
        // This call spent little, but the day is spent: the call ends.
        assert!(matches!(
            w.observe(&budget, CENT, 50 * CENT),
            Some(BudgetStep::Stop {
                scope: BudgetScope::Day,
                ..
            })
        ));
        assert!(budget.day_spent(50 * CENT));
        assert!(!budget.day_spent(49 * CENT));
        assert!(!Budget::default().day_spent(u64::MAX));
    }

    #[test]
    fn a_skipped_wrap_up_still_stops() {
        let budget = Budget {
            call_usd: Some(0.10),
            ..Budget::default()
        };
        let mut w = BudgetWatch::default();
        assert!(matches!(
            w.observe(&budget, 12 * CENT, 12 * CENT),
            Some(BudgetStep::Stop { .. })
        ));
    }

    #[test]
    fn bad_budgets_are_refused() {
        assert!(Budget::default().validate().is_ok());
        for bad in [
            Budget {
                call_usd: Some(0.0),
                ..Budget::default()
            },
            Budget {
                daily_usd: Some(-1.0),
                ..Budget::default()
            },
            Budget {
                daily_usd: Some(f64::INFINITY),
                ..Budget::default()
            },
            Budget {
                wrap_up_percent: 100,
                ..Budget::default()
            },
            Budget {
                goodbye: "  ".into(),
                ..Budget::default()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}

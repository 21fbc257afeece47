//! One call's running cost: each usage the model reports is priced from the table in force, added to
//! the call and to the day's spend, and checked against the budgets.

use std::collections::BTreeSet;

use crate::costs::budget::{BudgetStep, BudgetWatch};
use crate::costs::{CostBook, Metered};

/// What one usage cost, and what the budgets say now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Charge {
    /// `None`: the table has no price for the model (the call's cost is then a lower bound).
    pub cost: Option<u64>,
    /// The call's cost so far, picodollars.
    pub total: u64,
    pub step: Option<BudgetStep>,
    /// The first time this call met `model` without a price (say so once, not per response).
    pub newly_unpriced: bool,
}

/// See the module docs.
#[derive(Debug, Default)]
pub struct CallCost {
    total: u64,
    unpriced: BTreeSet<String>,
    watch: BudgetWatch,
}

impl CallCost {
    pub fn new() -> Self {
        Self::default()
    }

    /// Prices `usage` on `model` at `now_ms`, adds it to the call and the day.
    pub fn charge(&mut self, book: &CostBook, model: &str, usage: &Metered, now_ms: i64) -> Charge {
        let cost = book.price(model, usage);
        let mut newly_unpriced = false;
        match cost {
            Some(pico) => {
                self.total = self.total.saturating_add(pico);
                book.spend(now_ms, pico);
            }
            None => newly_unpriced = self.unpriced.insert(model.to_string()),
        }
        let step = self
            .watch
            .observe(&book.budget(), self.total, book.spent(now_ms));
        Charge {
            cost,
            total: self.total,
            step,
            newly_unpriced,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::costs::budget::{Budget, BudgetScope};
    use crate::costs::prices::PriceTable;
    use std::time::Duration;

    #[test]
    fn each_usage_adds_to_the_call_and_the_day_and_the_cap_stops_it() {
        let book = CostBook::new(
            PriceTable::default(),
            Budget {
                call_usd: Some(0.01),
                ..Budget::default()
            },
            Duration::from_secs(86_400),
        );
        let mut call = CallCost::new();
        // 100 audio output tokens on gpt-realtime: 100 × $64/M = $0.0064.
        let usage = Metered {
            output_audio: 100,
            ..Metered::default()
        };
        let first = call.charge(&book, "gpt-realtime", &usage, 1_000);
        assert_eq!(first.cost, Some(6_400_000_000));
        assert_eq!(first.step, None, "64 % of the cap");
        let second = call.charge(&book, "gpt-realtime", &usage, 2_000);
        assert_eq!(second.total, 12_800_000_000);
        assert_eq!(
            second.step,
            Some(BudgetStep::Stop {
                scope: BudgetScope::Call,
                spent: 12_800_000_000,
                cap: 10_000_000_000
            })
        );
        assert_eq!(book.spent(2_000), 12_800_000_000);
        let unknown = call.charge(&book, "no-such-model", &usage, 3_000);
        assert_eq!(unknown.cost, None);
        assert!(unknown.newly_unpriced);
        assert_eq!(unknown.total, 12_800_000_000);
        assert!(
            !call
                .charge(&book, "no-such-model", &usage, 4_000)
                .newly_unpriced
        );
    }
}

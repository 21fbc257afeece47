//! The one place calls and the doors (window, local API) share for money: the price table in force,
//! the budgets, and the rolling day's spend. In memory; `Services` loads and saves the user's edits.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::budget::{Budget, InvalidBudget};
use super::ledger::SpendLedger;
use super::prices::{InvalidPrices, PriceTable};
use super::Metered;

/// See the module docs. Cheap to share (`Arc`).
#[derive(Debug)]
pub struct CostBook {
    prices: RwLock<Arc<PriceTable>>,
    budget: RwLock<Arc<Budget>>,
    ledger: SpendLedger,
}

fn read<T>(lock: &RwLock<Arc<T>>) -> Arc<T> {
    lock.read()
        .map(|g| g.clone())
        .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
}

fn write<T>(lock: &RwLock<Arc<T>>, value: T) {
    let mut guard = lock
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    *guard = Arc::new(value);
}

impl CostBook {
    /// `window`: how far back the day's budget counts (see `calls::admission::BUDGET_WINDOW`).
    pub fn new(prices: PriceTable, budget: Budget, window: Duration) -> Self {
        CostBook {
            prices: RwLock::new(Arc::new(prices)),
            budget: RwLock::new(Arc::new(budget)),
            ledger: SpendLedger::new(window),
        }
    }

    pub fn prices(&self) -> Arc<PriceTable> {
        read(&self.prices)
    }

    /// Puts an edited table in force for every cost from now on (costs already counted keep theirs).
    pub fn set_prices(&self, table: PriceTable) -> Result<(), InvalidPrices> {
        table.validate()?;
        write(&self.prices, table);
        Ok(())
    }

    pub fn budget(&self) -> Arc<Budget> {
        read(&self.budget)
    }

    pub fn set_budget(&self, budget: Budget) -> Result<(), InvalidBudget> {
        budget.validate()?;
        write(&self.budget, budget);
        Ok(())
    }

    /// The cost of `usage` on `model` in picodollars; `None`: the table has no price for it.
    pub fn price(&self, model: &str, usage: &Metered) -> Option<u64> {
        self.prices.read().map_or_else(
            |poisoned| poisoned.into_inner().price(model, usage),
            |table| table.price(model, usage),
        )
    }

    /// Counts money spent at `at_ms` toward the day's budget.
    pub fn spend(&self, at_ms: i64, pico: u64) {
        self.ledger.add(at_ms, pico);
    }

    /// Picodollars spent in the window ending at `now_ms`.
    pub fn spent(&self, now_ms: i64) -> u64 {
        self.ledger.spent(now_ms)
    }

    /// Whether the day's budget is spent at `now_ms`.
    pub fn day_spent(&self, now_ms: i64) -> bool {
        self.budget().day_spent(self.spent(now_ms))
    }
}

impl Default for CostBook {
    fn default() -> Self {
        CostBook::new(
            PriceTable::default(),
            Budget::default(),
            Duration::from_secs(24 * 60 * 60),
        )
    }
}

//! The desk for money and speed: the price table and budgets as the user edits them (kept in the
//! call library's settings, so they survive a restart), a call's cost and latency, and the library's
//! day-by-day figures. Both doors (window commands, local API) call these; calls themselves price their
//! usage through the shared [`CostBook`].

use std::sync::Arc;

use serde::Serialize;
use tracing::warn;

use super::ServiceError;
use crate::calls::admission::BUDGET_WINDOW;
use crate::costs::budget::Budget;
use crate::costs::prices::PriceTable;
use crate::costs::{pico_to_usd, CostBook};
use crate::store::costs::{CallCostTotal, DayStats};
use crate::store::StoreHandle;
use crate::types::now_ms;

const PRICES_KEY: &str = "price_table";
const BUDGET_KEY: &str = "budget";

/// The budgets, with what the day has spent so far.
#[derive(Debug, Clone, Serialize)]
pub struct BudgetView {
    #[serde(flatten)]
    pub budget: Budget,
    /// Spent in the last 24 hours (read-only).
    pub spent_today_usd: f64,
}

/// Opens the cost book: the user's saved table and budgets (the defaults when none are saved, or a
/// saved one no longer parses), and the money spent in the budget window so far.
pub async fn open_cost_book(store: &StoreHandle) -> CostBook {
    let prices = load(store, PRICES_KEY, PriceTable::validate).await;
    let budget = load(store, BUDGET_KEY, Budget::validate).await;
    let book = CostBook::new(
        prices.unwrap_or_default(),
        budget.unwrap_or_default(),
        BUDGET_WINDOW,
    );
    let since = now_ms() - BUDGET_WINDOW.as_millis() as i64;
    match store.spent_since(since).await {
        Ok(rows) => rows.into_iter().for_each(|(at, pico)| book.spend(at, pico)),
        // The budget then counts from now; say so.
        Err(e) => warn!("cannot read the day's spending from the call library: {e}"),
    }
    book
}

async fn load<T, E: std::fmt::Display>(
    store: &StoreHandle,
    key: &'static str,
    validate: impl Fn(&T) -> Result<(), E>,
) -> Option<T>
where
    T: serde::de::DeserializeOwned,
{
    let text = match store.setting(key).await {
        Ok(text) => text?,
        Err(e) => {
            warn!(key, "cannot read a saved setting; using the default: {e}");
            return None;
        }
    };
    match serde_json::from_str::<T>(&text) {
        Ok(value) => match validate(&value) {
            Ok(()) => Some(value),
            Err(e) => {
                warn!(
                    key,
                    "the saved setting is not valid any more; using the default: {e}"
                );
                None
            }
        },
        Err(e) => {
            warn!(
                key,
                "the saved setting does not parse; using the default: {e}"
            );
            None
        }
    }
}

/// See the module docs.
pub struct CostDesk {
    book: Arc<CostBook>,
    store: StoreHandle,
}

impl CostDesk {
    pub fn new(book: Arc<CostBook>, store: StoreHandle) -> Self {
        CostDesk { book, store }
    }

    pub fn prices(&self) -> PriceTable {
        self.book.prices().as_ref().clone()
    }

    /// Validates, saves and puts the table in force (for costs from now on).
    pub async fn set_prices(&self, table: PriceTable) -> Result<PriceTable, ServiceError> {
        table.validate().map_err(ServiceError::Prices)?;
        let text = serde_json::to_string(&table)
            .map_err(|e| ServiceError::Invalid(format!("price table: {e}")))?;
        self.store.set_setting(PRICES_KEY, text).await?;
        self.book
            .set_prices(table.clone())
            .map_err(ServiceError::Prices)?;
        Ok(table)
    }

    pub fn budget(&self) -> BudgetView {
        BudgetView {
            budget: self.book.budget().as_ref().clone(),
            spent_today_usd: pico_to_usd(self.book.spent(now_ms())),
        }
    }

    /// Validates, saves and applies the budgets (live calls check them at their next cost).
    pub async fn set_budget(&self, budget: Budget) -> Result<BudgetView, ServiceError> {
        budget.validate().map_err(ServiceError::Budget)?;
        let text = serde_json::to_string(&budget)
            .map_err(|e| ServiceError::Invalid(format!("budget: {e}")))?;
        self.store.set_setting(BUDGET_KEY, text).await?;
        self.book.set_budget(budget).map_err(ServiceError::Budget)?;
        Ok(self.budget())
    }

    /// What a call cost so far (live or ended).
    pub async fn call_cost(&self, call_sid: &str) -> Result<CallCostTotal, ServiceError> {
        if self.store.call(call_sid).await?.is_none() {
            return Err(ServiceError::UnknownCall(call_sid.to_string()));
        }
        Ok(self.store.call_cost(call_sid).await?)
    }

    /// The library's last `days` local days (1–366), oldest first.
    pub async fn daily(&self, days: u32) -> Result<Vec<DayStats>, ServiceError> {
        if !(1..=366).contains(&days) {
            return Err(ServiceError::Invalid(format!(
                "days must be 1–366, not {days}"
            )));
        }
        Ok(self.store.daily_stats(days).await?)
    }
}

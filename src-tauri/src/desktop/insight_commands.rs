//! Tauri commands for what calls cost and how fast they felt (issue 15): a call's latency and cost,
//! the library's day-by-day figures, the price table and the budgets. One line each into
//! [`Services::turn_latency`](crate::services::Services::turn_latency) and
//! [`CostDesk`](crate::services::costs::CostDesk) (`services.costs`), which `/api` uses too.

use tauri::State;

use super::commands::Res;
use super::Core;
use crate::costs::budget::Budget;
use crate::costs::prices::PriceTable;
use crate::services::costs::BudgetView;
use crate::services::CallLatency;
use crate::store::costs::{CallCostTotal, DayStats};
use crate::types::CallSid;

/// A call's turn latency as heard (p50/p95/max and every turn) and its barge-ins.
#[tauri::command]
pub async fn call_latency(core: State<'_, Core>, call_sid: CallSid) -> Res<CallLatency> {
    Ok(core.services().await?.turn_latency(&call_sid).await?)
}

/// What a call cost so far, by source.
#[tauri::command]
pub async fn call_cost(core: State<'_, Core>, call_sid: CallSid) -> Res<CallCostTotal> {
    Ok(core.services().await?.costs.call_cost(&call_sid).await?)
}

/// Calls, minutes, cost and p95 turn latency for each of the last `days` days.
#[tauri::command]
pub async fn daily_stats(core: State<'_, Core>, days: u32) -> Res<Vec<DayStats>> {
    Ok(core.services().await?.costs.daily(days).await?)
}

#[tauri::command]
pub async fn get_prices(core: State<'_, Core>) -> Res<PriceTable> {
    Ok(core.services().await?.costs.prices())
}

#[tauri::command]
pub async fn set_prices(core: State<'_, Core>, table: PriceTable) -> Res<PriceTable> {
    Ok(core.services().await?.costs.set_prices(table).await?)
}

#[tauri::command]
pub async fn get_budget(core: State<'_, Core>) -> Res<BudgetView> {
    Ok(core.services().await?.costs.budget())
}

#[tauri::command]
pub async fn set_budget(core: State<'_, Core>, budget: Budget) -> Res<BudgetView> {
    Ok(core.services().await?.costs.set_budget(budget).await?)
}

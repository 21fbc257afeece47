//! Whether a call that reaches `/twiml` may stream: the registry's answer ([`CallRegistry::admit`]:
//! replays, a retried webhook, the concurrency cap) with what only the call library knows (calls older
//! than the registry remembers, the minutes streamed in the last 24 hours).

use std::time::Duration;

use tracing::warn;

use crate::calls::registry::{Admission, AdmissionRequest, CallRegistry};
use crate::config::BridgeSettings;
use crate::costs::CostBook;
use crate::events::CallCap;
use crate::store::StoreHandle;
use crate::types::now_ms;

/// The daily minute budget is a rolling window: no reset at midnight (in whose time zone?) that
/// would let a day's budget be spent twice in a row.
pub const BUDGET_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);

/// What the caller hears when a cap turns the call away (then the call is hung up).
pub fn refusal_message(cap: CallCap) -> &'static str {
    match cap {
        CallCap::ConcurrentCalls => {
            "Sorry, all our lines are busy right now. Please call again later. Goodbye."
        }
        CallCap::DailyMinutes
        | CallCap::CallLength
        | CallCap::CallBudget
        | CallCap::DailyBudget => {
            "Sorry, we cannot take your call right now. Please call again later. Goodbye."
        }
    }
}

/// The call's admission: asks the library, then the registry (which decides in one step).
pub async fn admit(
    registry: &CallRegistry,
    store: &StoreHandle,
    settings: &BridgeSettings,
    costs: &CostBook,
    call_sid: &str,
    from: Option<String>,
    to: Option<String>,
) -> Admission {
    // A library that cannot answer does not stop calls: the registry still knows the last two hours.
    let answered_in_library = match store.call_answered(call_sid).await {
        Ok(answered) => answered,
        Err(e) => {
            warn!(%call_sid, "cannot check the call library for a replayed webhook: {e}");
            false
        }
    };
    let over_budget = match settings.daily_minutes {
        None => false,
        Some(minutes) => match minutes_used_ms(registry, store).await {
            Ok(used) => used >= i64::from(minutes) * 60_000,
            // The user asked for a hard budget: when it cannot be counted, no new call starts.
            Err(e) => {
                warn!(%call_sid, "cannot count today's call minutes; refusing the call: {e}");
                true
            }
        },
    };
    registry.admit(AdmissionRequest {
        call_sid: call_sid.to_string(),
        from,
        to,
        max_concurrent_calls: settings.max_concurrent_calls as usize,
        answered_in_library,
        over_budget,
        money_spent: costs.day_spent(now_ms()),
    })
}

/// Milliseconds streamed in the last [`BUDGET_WINDOW`]: ended calls from the library, live ones from
/// the registry. Counted from the library so a restart does not reset the budget.
async fn minutes_used_ms(
    registry: &CallRegistry,
    store: &StoreHandle,
) -> Result<i64, crate::store::StoreError> {
    let now = now_ms();
    let since = now - BUDGET_WINDOW.as_millis() as i64;
    let ended = store.streamed_ms_since(since).await?;
    Ok(ended + registry.live_ms(now))
}

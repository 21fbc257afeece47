//! Tauri commands for the post-call summary. One line each into [`Services::call_summary`] and
//! [`Services::rerun_summary`] (which `GET` and `POST /api/sessions/{id}/summary` use too). No logic
//! lives here.
//!
//! [`Services::call_summary`]: crate::services::Services::call_summary
//! [`Services::rerun_summary`]: crate::services::Services::rerun_summary

use tauri::State;

use super::commands::Res;
use super::Core;
use crate::store::summaries::SummaryRecord;
use crate::types::CallSid;

/// A call's summary; `None` when it has none (yet, or at all).
#[tauri::command]
pub async fn call_summary(core: State<'_, Core>, call_sid: CallSid) -> Res<Option<SummaryRecord>> {
    Ok(core.services().await?.call_summary(&call_sid).await?)
}

/// Makes a call's summary again now (after a failed or invalid one); the new one replaces it.
#[tauri::command]
pub async fn rerun_summary(core: State<'_, Core>, call_sid: CallSid) -> Res<SummaryRecord> {
    Ok(core.services().await?.rerun_summary(&call_sid).await?)
}

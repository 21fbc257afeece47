//! Tauri commands for the tools that do real work (issue 14): the operator's approvals and a call's tool
//! log. One line each into [`ToolDesk`](crate::services::tools::ToolDesk) (`services.tools`) and
//! [`Services::tool_calls`](crate::services::Services::tool_calls), which `/api/call/{sid}/tool/{id}/…` and
//! `/api/sessions/{id}/tools` use too. No logic lives here.

use tauri::State;

use super::commands::Res;
use super::Core;
use crate::calls::approvals::PendingApproval;
use crate::store::tool_calls::ToolCallRecord;
use crate::types::CallSid;

/// Which door answered, as the `tool_approval_settled` event and the tool log name it.
pub const BY_WINDOW: &str = "window";
/// A notification's Approve/Decline buttons.
pub const BY_NOTIFICATION: &str = "notification";

/// Tool calls waiting for the operator's answer, oldest first (the window re-reads them when it opens).
#[tauri::command]
pub async fn tools_pending(core: State<'_, Core>) -> Res<Vec<PendingApproval>> {
    Ok(core.services().await?.tools.pending_approvals())
}

/// Approves or declines a waiting tool call; `not_pending` once it was answered or timed out.
#[tauri::command]
pub async fn tool_decide(
    core: State<'_, Core>,
    call_sid: CallSid,
    call_id: String,
    approved: bool,
) -> Res<()> {
    Ok(core
        .services()
        .await?
        .tools
        .decide(&call_sid, &call_id, approved, BY_WINDOW)?)
}

/// A call's tool log (every tool call with its result or error, latency and who approved it).
#[tauri::command]
pub async fn tool_log(core: State<'_, Core>, call_sid: CallSid) -> Res<Vec<ToolCallRecord>> {
    Ok(core.services().await?.tool_calls(&call_sid).await?)
}

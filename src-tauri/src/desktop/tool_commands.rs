//! Tauri commands for the tools that do real work (issue 14): the operator's approvals, a call's tool
//! log and HTTP tools' signing secrets. One line each into [`ToolDesk`](crate::services::tools::ToolDesk)
//! (`services.tools`), [`Services::tool_calls`](crate::services::Services::tool_calls) (which
//! `/api/call/{sid}/tool/{id}/…`, `/api/sessions/{id}/tools` and `/api/tools/{name}/secret` use too) and
//! [`Secrets::tool_secret_status`](crate::secrets::Secrets::tool_secret_status). No logic lives here.

use tauri::State;

use super::commands::Res;
use super::{Core, Desktop};
use crate::calls::approvals::PendingApproval;
use crate::secrets::ToolSecretStatus;
use crate::services::tools::ToolSecret;
use crate::store::tool_calls::ToolCallRecord;
use crate::tools::mcp::McpServerStatus;
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

/// Whether HTTP tool `name` has a signing secret, and where from (never its value).
#[tauri::command(async)]
pub fn tool_secret_status(desktop: State<'_, Desktop>, name: String) -> Res<ToolSecretStatus> {
    Ok(desktop.secrets.tool_secret_status(&name)?)
}

/// HTTP tool `name`'s signing secret, made (and kept in the keychain) if it has none yet: for the user
/// to copy to their endpoint, which verifies `X-Verbio-Signature` with it.
#[tauri::command]
pub async fn tool_secret(core: State<'_, Core>, name: String) -> Res<ToolSecret> {
    Ok(core.services().await?.tools.tool_secret(&name).await?)
}

/// Each MCP server of the session: starting, ready (with every tool it lists) or failed (with why).
#[tauri::command]
pub async fn mcp_statuses(core: State<'_, Core>) -> Res<Vec<McpServerStatus>> {
    Ok(core.services().await?.tools.mcp_statuses())
}

//! `/api` routes of the tools that do real work: the operator's approvals, the tool log. Thin: the
//! logic is in [`crate::services::tools`].

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::calls::approvals::PendingApproval;
use crate::server::errors::{ApiError, ApiResult};
use crate::server::extract::ApiPath;
use crate::services::Services;
use crate::store::tool_calls::ToolCallRecord;
use crate::types::CallSid;

/// The answer a door gives on an approval.
async fn decide(
    s: &Services,
    sid: &str,
    call_id: &str,
    approved: bool,
) -> Result<Response, ApiError> {
    s.tools.decide(sid, call_id, approved, "api")?;
    let status = if approved { "approved" } else { "declined" };
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "status": status })),
    )
        .into_response())
}

/// `POST /api/call/{sid}/tool/{call_id}/approve`.
pub(super) async fn approve(
    State(s): State<Arc<Services>>,
    ApiPath((sid, call_id)): ApiPath<(CallSid, String)>,
) -> Result<Response, ApiError> {
    decide(&s, &sid, &call_id, true).await
}

/// `POST /api/call/{sid}/tool/{call_id}/decline`.
pub(super) async fn decline(
    State(s): State<Arc<Services>>,
    ApiPath((sid, call_id)): ApiPath<(CallSid, String)>,
) -> Result<Response, ApiError> {
    decide(&s, &sid, &call_id, false).await
}

/// `GET /api/tools/pending`: tool calls waiting for the operator, oldest first.
pub(super) async fn pending(State(s): State<Arc<Services>>) -> ApiResult<Vec<PendingApproval>> {
    Ok(Json(s.tools.pending_approvals()))
}

/// `GET /api/tools/{name}/secret`: an HTTP tool's signing secret (made on first use), to set up the
/// endpoint that verifies `X-Verbio-Signature`. The local API never faces the internet.
pub(super) async fn secret(
    State(s): State<Arc<Services>>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<crate::services::tools::ToolSecret> {
    Ok(Json(s.tools.tool_secret(&name).await?))
}

/// `GET /api/mcp/servers`: each MCP server's state and the tools it lists.
pub(super) async fn mcp_servers(
    State(s): State<Arc<Services>>,
) -> ApiResult<Vec<crate::tools::mcp::McpServerStatus>> {
    Ok(Json(s.tools.mcp_statuses()))
}

/// `POST /api/mcp/servers/{name}/retry`: tries a failed server again now.
pub(super) async fn mcp_retry(
    State(s): State<Arc<Services>>,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    if s.tools.retry_mcp(&name) {
        Ok(StatusCode::ACCEPTED)
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no MCP server of that name",
        ))
    }
}

/// `GET /api/sessions/{id}/tools`: a call's tool log.
pub(super) async fn log(
    State(s): State<Arc<Services>>,
    ApiPath(sid): ApiPath<CallSid>,
) -> ApiResult<Vec<ToolCallRecord>> {
    Ok(Json(s.tool_calls(&sid).await?))
}

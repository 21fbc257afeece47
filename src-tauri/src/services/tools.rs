//! The tools that do real work, as both doors and the calls use them: which tools a call offers, running
//! one (the user's HTTP endpoint, signed; or an MCP server's tool), and the operator's approvals. The
//! call's task only starts runs (`calls::tool_runner::ToolRunner`, implemented here) and hears their
//! results.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use tokio::sync::broadcast;
use tracing::{info, warn};

use super::ServiceError;
use crate::calls::approvals::{Approvals, Decision, PendingApproval};
use crate::calls::registry::CallRegistry;
use crate::calls::tool_runner::ToolRunner;
use crate::realtime::session::{FunctionTool, SessionConfig};
use crate::secrets::Secrets;
use crate::tools::http::HttpTools;
use crate::tools::mcp::{McpHub, McpServerStatus, McpState};
use crate::tools::{FailureKind, ToolFailure, ToolRequest};
use crate::types::Secret;

/// See the module docs. One per running core.
pub struct ToolDesk {
    approvals: Approvals,
    registry: CallRegistry,
    http: Arc<HttpTools>,
    /// Each HTTP tool's signing secret (the keychain; `VERBIO_TOOL_SECRET_<NAME>` wins).
    secrets: Arc<Secrets>,
    /// The session's MCP servers, kept connected (restarted when they fail).
    mcp: Arc<McpHub>,
    /// Each change of an MCP server's state, for the window.
    mcp_events: broadcast::Sender<McpServerStatus>,
}

impl ToolDesk {
    /// The desk, connecting the MCP servers of `session` (in the background).
    pub fn new(
        approvals: Approvals,
        registry: CallRegistry,
        secrets: Arc<Secrets>,
        session: &SessionConfig,
    ) -> Arc<Self> {
        let (mcp_events, _) = broadcast::channel(64);
        let publish = mcp_events.clone();
        let mcp = McpHub::new(Arc::new(move |status: McpServerStatus| {
            match status.state {
                McpState::Failed => warn!(
                    server = %status.name,
                    "MCP server unavailable: {}",
                    status.message.as_deref().unwrap_or("no reason given")
                ),
                McpState::Ready => {
                    info!(server = %status.name, tools = status.tools.len(), "MCP server ready")
                }
                McpState::Starting => {}
            }
            let _ = publish.send(status);
        }));
        mcp.configure(&session.mcp_servers);
        Arc::new(ToolDesk {
            approvals,
            registry,
            http: Arc::new(HttpTools::new()),
            secrets,
            mcp,
            mcp_events,
        })
    }

    /// Every change of an MCP server's state from now on.
    pub fn subscribe_mcp(&self) -> broadcast::Receiver<McpServerStatus> {
        self.mcp_events.subscribe()
    }

    /// The session's MCP servers changed: start new ones, stop removed ones (live calls keep the tools
    /// they started with; a removed server's tools fail on them).
    pub fn configure_mcp(&self, session: &SessionConfig) {
        self.mcp.configure(&session.mcp_servers);
    }

    /// Each MCP server's state (and every tool it lists, for the allow-list).
    pub fn mcp_statuses(&self) -> Vec<McpServerStatus> {
        self.mcp.statuses()
    }

    /// The allowed tools of MCP servers that are up now.
    pub fn mcp_tools(&self) -> Vec<crate::tools::mcp::McpTool> {
        self.mcp.tools()
    }

    /// Tries a failed MCP server again now; false when there is no such server.
    pub fn retry_mcp(&self, name: &str) -> bool {
        self.mcp.retry(name)
    }

    /// Stops every MCP server (their processes end).
    pub async fn shutdown(&self) {
        self.mcp.shutdown().await;
    }

    /// The signing secret of HTTP tool `name`, made (and kept in the keychain) if it has none yet: what
    /// the user's endpoint verifies `X-Verbio-Signature` with.
    pub async fn tool_secret(&self, name: &str) -> Result<ToolSecret, ServiceError> {
        let secrets = self.secrets.clone();
        let tool = name.to_string();
        tokio::task::spawn_blocking(move || signing_secret(&secrets, &tool))
            .await
            .map_err(|_| ServiceError::Invalid("the keychain thread failed".into()))?
            .map(|secret| ToolSecret {
                tool: name.to_string(),
                secret: secret.expose().to_string(),
                env_var: crate::secrets::tool_secret_env_var(name),
            })
            .map_err(|e| ServiceError::NotConfigured(e.to_string()))
    }

    /// Tool calls waiting for the operator's answer, oldest first.
    pub fn pending_approvals(&self) -> Vec<PendingApproval> {
        self.approvals.pending()
    }

    /// The operator's answer to a tool call waiting for approval (`by`: which door).
    pub fn decide(
        &self,
        call_sid: &str,
        call_id: &str,
        approved: bool,
        by: &str,
    ) -> Result<(), ServiceError> {
        let decision = Decision {
            approved,
            by: by.to_string(),
        };
        self.approvals
            .decide(call_sid, call_id, decision)
            .map_err(|e| {
                if self.registry.is_live(call_sid) {
                    ServiceError::NotPending(e.to_string())
                } else {
                    ServiceError::UnknownCall(call_sid.to_string())
                }
            })
    }
}

/// An HTTP tool's signing secret, shown to the user to set up their endpoint.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ToolSecret {
    pub tool: String,
    pub secret: String,
    /// The environment variable that overrides the keychain (for `verbio serve`).
    pub env_var: String,
}

/// The tool's secret, made and stored on first use.
fn signing_secret(secrets: &Secrets, tool: &str) -> Result<Secret, crate::secrets::SecretsError> {
    match secrets.tool_secret(tool)? {
        Some(secret) => Ok(secret),
        None => secrets.generate_tool_secret(tool),
    }
}

impl ToolRunner for ToolDesk {
    fn session_for_call(&self, session: Arc<SessionConfig>) -> Arc<SessionConfig> {
        let offered = self.mcp.tools();
        if offered.is_empty() {
            return session;
        }
        let mut call = (*session).clone();
        for tool in offered {
            // A session tool of the same name wins (the model cannot tell two apart).
            if call.tools.iter().any(|t| t.name == tool.name) {
                continue;
            }
            call.tools.push(FunctionTool {
                name: tool.name,
                description: tool.description,
                parameters: tool.input_schema,
                needs_approval: tool.needs_approval,
                endpoint: None,
            });
        }
        Arc::new(call)
    }

    fn needs_approval(&self, session: &SessionConfig, tool: &str) -> bool {
        session
            .tools
            .iter()
            .any(|t| t.name == tool && t.needs_approval)
    }

    fn run(
        &self,
        session: Arc<SessionConfig>,
        request: ToolRequest,
    ) -> BoxFuture<'static, Result<String, ToolFailure>> {
        let endpoint = session
            .tools
            .iter()
            .find(|t| t.name == request.tool)
            .and_then(|t| t.endpoint.clone());
        let (http, secrets, mcp) = (self.http.clone(), self.secrets.clone(), self.mcp.clone());
        async move {
            let Some(endpoint) = endpoint else {
                // Not an HTTP tool: an MCP server's, or nothing at all.
                return match mcp.call(&request.tool, request.arguments.clone()).await {
                    Err(f) if f.kind == FailureKind::NotAvailable => Err(ToolFailure::new(
                        FailureKind::NotAvailable,
                        format!("tool {} has nothing behind it on this app", request.tool),
                    )),
                    other => other,
                };
            };
            // The keychain may take a moment (D-Bus): not on the runtime's threads.
            let tool = request.tool.clone();
            let secret = tokio::task::spawn_blocking(move || signing_secret(&secrets, &tool))
                .await
                .map_err(|_| "the keychain thread failed".to_string())
                .and_then(|r| r.map_err(|e| e.to_string()));
            let secret = secret.map_err(|why| {
                ToolFailure::new(
                    FailureKind::Unreachable,
                    format!(
                        "tool {} cannot be called: its signing secret is not available ({why})",
                        request.tool
                    ),
                )
            })?;
            http.call(&endpoint, Some(&secret), &request).await
        }
        .boxed()
    }
}

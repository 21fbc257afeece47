//! The tools that do real work, as both doors and the calls use them: which tools a call offers, running
//! one (the user's HTTP endpoint, signed; or an MCP server's tool), and the operator's approvals. The
//! call's task only starts runs (`calls::tool_runner::ToolRunner`, implemented here) and hears their
//! results.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;

use super::ServiceError;
use crate::calls::approvals::{Approvals, Decision, PendingApproval};
use crate::calls::registry::CallRegistry;
use crate::calls::tool_runner::ToolRunner;
use crate::realtime::session::SessionConfig;
use crate::secrets::Secrets;
use crate::tools::http::HttpTools;
use crate::tools::{FailureKind, ToolFailure, ToolRequest};
use crate::types::Secret;

/// See the module docs. One per running core.
pub struct ToolDesk {
    approvals: Approvals,
    registry: CallRegistry,
    http: Arc<HttpTools>,
    /// Each HTTP tool's signing secret (the keychain; `VERBIO_TOOL_SECRET_<NAME>` wins).
    secrets: Arc<Secrets>,
}

impl ToolDesk {
    pub fn new(approvals: Approvals, registry: CallRegistry, secrets: Arc<Secrets>) -> Arc<Self> {
        Arc::new(ToolDesk {
            approvals,
            registry,
            http: Arc::new(HttpTools::new()),
            secrets,
        })
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
        session
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
        let (http, secrets) = (self.http.clone(), self.secrets.clone());
        async move {
            let Some(endpoint) = endpoint else {
                return Err(ToolFailure::new(
                    FailureKind::NotAvailable,
                    format!("tool {} has nothing behind it on this app", request.tool),
                ));
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

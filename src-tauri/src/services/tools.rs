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
use crate::tools::{FailureKind, ToolFailure, ToolRequest};

/// See the module docs. One per running core.
pub struct ToolDesk {
    approvals: Approvals,
    registry: CallRegistry,
}

impl ToolDesk {
    pub fn new(approvals: Approvals, registry: CallRegistry) -> Arc<Self> {
        Arc::new(ToolDesk {
            approvals,
            registry,
        })
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
        _session: Arc<SessionConfig>,
        request: ToolRequest,
    ) -> BoxFuture<'static, Result<String, ToolFailure>> {
        async move {
            Err(ToolFailure::new(
                FailureKind::NotAvailable,
                format!("tool {} has nothing behind it on this app", request.tool),
            ))
        }
        .boxed()
    }
}

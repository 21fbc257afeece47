//! What a call needs from the app's tools: which tools a new call offers beyond its session's own (MCP
//! tools of servers that are up), whether a tool needs the operator's approval, and running one. The
//! services layer implements it over HTTP tools and MCP servers; the bridge only starts runs and hears
//! their results.

use std::sync::Arc;

use futures_util::future::BoxFuture;

use crate::realtime::session::SessionConfig;
use crate::tools::{ToolFailure, ToolRequest};

pub trait ToolRunner: Send + Sync {
    /// The session a new call runs: `session` with the tools the runner adds (MCP tools of servers
    /// that are ready now). A call keeps the tools it started with.
    fn session_for_call(&self, session: Arc<SessionConfig>) -> Arc<SessionConfig>;
    /// Whether running `tool` on a call with `session` needs the operator's approval first.
    fn needs_approval(&self, session: &SessionConfig, tool: &str) -> bool;
    /// Runs `request` (its result, or a failure the model can talk about).
    fn run(
        &self,
        session: Arc<SessionConfig>,
        request: ToolRequest,
    ) -> BoxFuture<'static, Result<String, ToolFailure>>;
}

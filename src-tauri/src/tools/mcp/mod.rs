//! MCP servers as tool providers, through the official Rust SDK (`rmcp`).
//!
//! The user lists servers ([`McpServerConfig`]: a command spoken to over stdio, or a streamable-HTTP
//! URL) and, per server, the tools the agent may use. One [`McpHub`] per running core keeps a session
//! with each server, in the background: [`McpHub::tools`] gives the allowed tools of the servers that
//! are ready (for new calls' session config), [`McpHub::call`] runs one.
//!
//! A server that fails to start or dies is reported ([`McpServerStatus`], `Failed` with a message),
//! its tools are withdrawn, calls to them fail at once with
//! [`FailureKind::ServerUnavailable`](super::FailureKind::ServerUnavailable), and it is tried again
//! after 5 s, 30 s, then every 5 minutes ([`RestartPolicy`]); the other servers are not affected.

mod config;
mod connect;
mod hub;
mod output;

use serde::Serialize;

pub use config::{
    validate_list, McpServerConfig, McpTransport, DEFAULT_TIMEOUT_MS, MAX_NAME_LEN,
    TIMEOUT_RANGE_MS,
};
pub use hub::{McpHub, RestartPolicy, StatusCallback};
pub use output::exposed_name;

/// One tool of an MCP server, as handed to the model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct McpTool {
    /// The server's configured name.
    pub server: String,
    /// The tool's name on its server.
    pub tool: String,
    /// The name the model sees and calls: `<server>__<tool>`, limited to `[a-zA-Z0-9_-]{1,64}`.
    pub name: String,
    pub description: String,
    /// The tool's input JSON Schema (an empty object schema when the server gives none).
    pub input_schema: serde_json::Value,
    /// Whether the operator must approve each call.
    pub needs_approval: bool,
}

/// Where a server is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum McpState {
    /// Being spawned or connected, or listing its tools.
    Starting,
    /// Its tools can be used.
    Ready,
    /// It did not start, or it died; `message` says why and when it is tried again.
    Failed,
}

/// A server's state, for the window and the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct McpServerStatus {
    pub name: String,
    pub state: McpState,
    /// Why it failed ("server 'orders' exited with status 1; next try in 5 s").
    pub message: Option<String>,
    /// Every tool the server lists (allowed or not), for choosing the allow-list.
    pub tools: Vec<String>,
}

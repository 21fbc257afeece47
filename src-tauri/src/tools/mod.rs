//! Tools that do real work during calls: the user's HTTP endpoints (`http`), MCP servers (`mcp`), and
//! the types every tool path shares. The call's task never waits for a tool: it starts the run and
//! hears of the result as an event (`calls::bridge`), with the operator's approval first where a tool
//! needs it.

pub mod http;
pub mod mcp;

use serde::Serialize;

/// The largest tool result handed to the model, in bytes (a longer one is a failure, not cut: a
/// truncated JSON answer would mislead the model).
pub const MAX_OUTPUT_BYTES: usize = 16 * 1024;

/// One call of a tool by the model.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolRequest {
    pub call_sid: String,
    /// The model's `call_id` for this function call.
    pub call_id: String,
    /// The tool's name as the model knows it.
    pub tool: String,
    /// The arguments the model gave (a JSON object).
    pub arguments: serde_json::Value,
}

/// Why a tool gave no result. `message` is safe to hand the model and show the operator: it names what
/// failed ("the order system did not answer in 8 s"), never a secret or a full URL with its query.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ToolFailure {
    pub kind: FailureKind,
    pub message: String,
}

impl ToolFailure {
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        ToolFailure {
            kind,
            message: message.into(),
        }
    }
}

/// The kinds of tool failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// No answer within the tool's timeout.
    Timeout,
    /// The endpoint or server could not be reached (refused, DNS, TLS).
    Unreachable,
    /// The endpoint answered with a non-2xx status.
    HttpStatus,
    /// The answer was not what the tool promises (not JSON, not UTF-8).
    Malformed,
    /// The answer was larger than [`MAX_OUTPUT_BYTES`].
    TooLarge,
    /// The MCP server is not running (failed to start, died).
    ServerUnavailable,
    /// The tool itself reported an error (an MCP `isError` result).
    ToolError,
    /// The operator declined, or did not answer in time.
    Declined,
    /// No such tool on this call.
    NotAvailable,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Timeout => "timeout",
            FailureKind::Unreachable => "unreachable",
            FailureKind::HttpStatus => "http_status",
            FailureKind::Malformed => "malformed",
            FailureKind::TooLarge => "too_large",
            FailureKind::ServerUnavailable => "server_unavailable",
            FailureKind::ToolError => "tool_error",
            FailureKind::Declined => "declined",
            FailureKind::NotAvailable => "not_available",
        }
    }
}

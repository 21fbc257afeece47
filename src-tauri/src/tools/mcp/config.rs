//! What the user configures for one MCP server, and the checks that run before anything is started.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// The longest server name: it prefixes every exposed tool name, which the model caps at 64.
pub const MAX_NAME_LEN: usize = 32;
/// The shortest and longest per-call timeouts, in milliseconds.
pub const TIMEOUT_RANGE_MS: std::ops::RangeInclusive<u64> = 100..=120_000;
/// The per-call timeout when the config names none.
pub const DEFAULT_TIMEOUT_MS: u64 = 8_000;

/// One MCP server the agent may use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpServerConfig {
    /// 1–32 characters of `[a-z0-9_-]`, unique in the list: the prefix of its tools' names.
    pub name: String,
    /// How to reach it.
    pub transport: McpTransport,
    /// The server's tools the agent may use (its own names). Empty: none, so that a server that gains
    /// a tool never hands it to the agent unasked.
    #[serde(default)]
    pub allowed_tools: Vec<String>,
    /// The server's tools that wait for the operator's approval before they run.
    #[serde(default)]
    pub needs_approval: Vec<String>,
    /// How long one call may take, in milliseconds (100–120000).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_timeout_ms() -> u64 {
    DEFAULT_TIMEOUT_MS
}

/// How the core talks to an MCP server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum McpTransport {
    /// A child process speaking MCP on its stdin/stdout.
    Stdio {
        /// The program (a path, or a name looked up in `PATH`).
        command: String,
        #[serde(default)]
        args: Vec<String>,
        /// Variables the child gets on top of a minimal environment (`PATH`, `HOME`, `LANG`).
        #[serde(default)]
        env: BTreeMap<String, String>,
    },
    /// A streamable-HTTP endpoint (`https://…`; plain `http://` only on loopback).
    Http { url: String },
}

impl McpServerConfig {
    /// Checks one server's config: name, transport and timeout.
    pub fn validate(&self) -> Result<(), String> {
        validate_name(&self.name)?;
        let name = &self.name;
        match &self.transport {
            McpTransport::Stdio { command, env, .. } => {
                if command.trim().is_empty() {
                    return Err(format!("MCP server '{name}': the command is empty"));
                }
                if command.contains('\0') {
                    return Err(format!("MCP server '{name}': the command contains a NUL"));
                }
                for key in env.keys() {
                    if key.is_empty() || key.contains('=') || key.contains('\0') {
                        return Err(format!(
                            "MCP server '{name}': '{key}' is not a valid environment variable name"
                        ));
                    }
                }
            }
            McpTransport::Http { url } => validate_url(url)
                .map_err(|reason| format!("MCP server '{name}': the URL {reason}"))?,
        }
        for tool in self.allowed_tools.iter().chain(&self.needs_approval) {
            if tool.trim().is_empty() {
                return Err(format!("MCP server '{name}': a tool name is empty"));
            }
        }
        if !TIMEOUT_RANGE_MS.contains(&self.timeout_ms) {
            return Err(format!(
                "MCP server '{name}': timeout_ms must be between {} and {}",
                TIMEOUT_RANGE_MS.start(),
                TIMEOUT_RANGE_MS.end()
            ));
        }
        Ok(())
    }
}

/// Checks every server, and that no two share a name (their tools' names would collide).
pub fn validate_list(servers: &[McpServerConfig]) -> Result<(), String> {
    let mut seen = HashSet::new();
    for server in servers {
        server.validate()?;
        if !seen.insert(server.name.as_str()) {
            return Err(format!(
                "two MCP servers are named '{}': names must be unique",
                server.name
            ));
        }
    }
    Ok(())
}

fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(format!(
            "MCP server name '{name}' must be 1 to {MAX_NAME_LEN} characters"
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        return Err(format!(
            "MCP server name '{name}' may only use a-z, 0-9, '_' and '-'"
        ));
    }
    Ok(())
}

/// `Err` says what is wrong with the URL, without repeating it (it may carry a token in its query).
fn validate_url(raw: &str) -> Result<(), String> {
    let url = url::Url::parse(raw).map_err(|e| format!("is not a valid URL ({e})"))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => return Err("must use https (plain http only for localhost)".into()),
        other => return Err(format!("must be https, not {other}")),
    }
    if url.host().is_none() {
        return Err("has no host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry a user name or password".into());
    }
    Ok(())
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(name: &str, url: &str) -> McpServerConfig {
        McpServerConfig {
            name: name.into(),
            transport: McpTransport::Http { url: url.into() },
            allowed_tools: vec![],
            needs_approval: vec![],
            timeout_ms: DEFAULT_TIMEOUT_MS,
        }
    }

    #[test]
    fn parses_both_transports_with_defaults() {
        let servers: Vec<McpServerConfig> = serde_json::from_value(serde_json::json!([
            {"name": "orders", "transport": {"type": "stdio", "command": "orders-mcp"},
             "allowed_tools": ["lookup_order"]},
            {"name": "crm", "transport": {"type": "http", "url": "https://crm.example.com/mcp"},
             "needs_approval": ["refund"], "timeout_ms": 3000}
        ]))
        .unwrap();
        assert_eq!(servers[0].timeout_ms, DEFAULT_TIMEOUT_MS);
        assert_eq!(
            servers[0].transport,
            McpTransport::Stdio {
                command: "orders-mcp".into(),
                args: vec![],
                env: BTreeMap::new()
            }
        );
        assert_eq!(servers[1].needs_approval, vec!["refund".to_string()]);
        validate_list(&servers).unwrap();
    }

    #[test]
    fn unknown_fields_are_refused() {
        let bad = serde_json::json!({"name": "a", "transport": {"type": "http", "url": "https://x"}, "allowed": []});
        assert!(serde_json::from_value::<McpServerConfig>(bad).is_err());
        let bad = serde_json::json!({"name": "a", "transport": {"type": "stdio", "command": "x", "cwd": "/"}});
        assert!(serde_json::from_value::<McpServerConfig>(bad).is_err());
    }

    #[test]
    fn names_are_checked() {
        assert!(http("", "https://x.example").validate().is_err());
        assert!(http("Orders", "https://x.example").validate().is_err());
        assert!(http("or ders", "https://x.example").validate().is_err());
        assert!(http(&"a".repeat(33), "https://x.example")
            .validate()
            .is_err());
        assert!(http(&"a".repeat(32), "https://x.example")
            .validate()
            .is_ok());
        assert!(http("orders_v2-eu", "https://x.example").validate().is_ok());
    }

    #[test]
    fn plain_http_only_on_loopback() {
        assert!(http("a", "http://127.0.0.1:9000/mcp").validate().is_ok());
        assert!(http("a", "http://localhost:9000/mcp").validate().is_ok());
        assert!(http("a", "http://[::1]:9000/mcp").validate().is_ok());
        assert!(http("a", "http://10.0.0.1/mcp").validate().is_err());
        assert!(http("a", "http://example.com/mcp").validate().is_err());
        assert!(http("a", "ftp://example.com/mcp").validate().is_err());
        assert!(http("a", "not a url").validate().is_err());
        assert!(http("a", "https://user:pw@example.com/mcp")
            .validate()
            .is_err());
    }

    #[test]
    fn error_does_not_repeat_the_url() {
        let err = http("a", "http://example.com/mcp?token=s3cret")
            .validate()
            .unwrap_err();
        assert!(!err.contains("s3cret"), "{err}");
    }

    #[test]
    fn command_and_timeout_are_checked() {
        let mut s = http("a", "https://x.example");
        s.timeout_ms = 99;
        assert!(s.validate().is_err());
        s.timeout_ms = 120_001;
        assert!(s.validate().is_err());
        s.timeout_ms = 100;
        assert!(s.validate().is_ok());
        s.transport = McpTransport::Stdio {
            command: "  ".into(),
            args: vec![],
            env: BTreeMap::new(),
        };
        assert!(s.validate().is_err());
        s.transport = McpTransport::Stdio {
            command: "srv".into(),
            args: vec![],
            env: BTreeMap::from([("A=B".to_string(), "x".to_string())]),
        };
        assert!(s.validate().is_err());
    }

    #[test]
    fn duplicate_names_are_refused() {
        let list = vec![
            http("a", "https://x.example"),
            http("a", "https://y.example"),
        ];
        assert!(validate_list(&list).unwrap_err().contains("unique"));
    }
}

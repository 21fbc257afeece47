//! A small MCP server (`rmcp`) for the tests of the MCP tools: over stdio (`verbio sim-mcp --stdio`,
//! as a user's server would run) or streamable HTTP (`verbio sim-mcp --http ADDR`, or in-process with
//! [`serve_http`]).
//!
//! Its tools, each one case the client must handle:
//! - `lookup_order {order}`: the JSON text `{"order": …, "status": "shipped", "eta": "tomorrow"}`;
//! - `slow {ms}`: sleeps that long, then answers "done" (timeouts);
//! - `fail`: an `isError` result, "the order system is down";
//! - `crash`: over stdio the process exits with status 3; over HTTP the server stops, dropping every
//!   connection (a server dying mid-call);
//! - `huge`: 40 KB of text (over the tool output limit).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rmcp::handler::server::ServerHandler;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, JsonObject,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServiceExt};
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// The exit status of the stdio server's `crash` tool.
pub const CRASH_EXIT_STATUS: i32 = 3;
/// The size of the `huge` tool's answer.
pub const HUGE_BYTES: usize = 40 * 1024;

/// What `crash` does: ends the process, or stops the HTTP server.
type CrashFn = Arc<dyn Fn() + Send + Sync>;

/// The server's handler; one per session.
#[derive(Clone)]
struct SimMcpServer {
    crash: CrashFn,
}

fn schema(value: serde_json::Value) -> Arc<JsonObject> {
    match value {
        serde_json::Value::Object(map) => Arc::new(map),
        _ => Arc::new(JsonObject::new()),
    }
}

fn tools() -> Vec<Tool> {
    vec![
        Tool::new(
            "lookup_order",
            "Looks up an order by its number: status and delivery estimate.",
            schema(json!({
                "type": "object",
                "properties": {"order": {"type": "string", "description": "the order number"}},
                "required": ["order"]
            })),
        ),
        Tool::new(
            "slow",
            "Waits the given time, then answers \"done\".",
            schema(json!({
                "type": "object",
                "properties": {"ms": {"type": "integer", "minimum": 0}},
                "required": ["ms"]
            })),
        ),
        Tool::new("fail", "Always fails.", schema(json!({"type": "object"}))),
        Tool::new(
            "crash",
            "Ends the server.",
            schema(json!({"type": "object"})),
        ),
        Tool::new(
            "huge",
            "Answers 40 KB of text.",
            schema(json!({"type": "object"})),
        ),
    ]
}

impl ServerHandler for SimMcpServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_instructions("Verbio's test MCP server")
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(tools()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let args = request.arguments.unwrap_or_default();
        let result = match request.name.as_ref() {
            "lookup_order" => {
                let Some(order) = args.get("order").and_then(|v| v.as_str()) else {
                    return Err(ErrorData::invalid_params("'order' must be a string", None));
                };
                let answer = json!({"order": order, "status": "shipped", "eta": "tomorrow"});
                CallToolResult::success(vec![ContentBlock::text(answer.to_string())])
            }
            "slow" => {
                let Some(ms) = args.get("ms").and_then(|v| v.as_u64()) else {
                    return Err(ErrorData::invalid_params("'ms' must be an integer", None));
                };
                tokio::time::sleep(Duration::from_millis(ms)).await;
                CallToolResult::success(vec![ContentBlock::text("done")])
            }
            "fail" => CallToolResult::error(vec![ContentBlock::text("the order system is down")]),
            "crash" => {
                (self.crash)();
                // Over HTTP the connection is gone before this answer could leave.
                CallToolResult::error(vec![ContentBlock::text("crashing")])
            }
            "huge" => CallToolResult::success(vec![ContentBlock::text("x".repeat(HUGE_BYTES))]),
            other => {
                return Err(ErrorData::invalid_params(
                    format!("no tool named '{other}'"),
                    None,
                ))
            }
        };
        Ok(result.into())
    }
}

/// Serves MCP on this process's stdin/stdout until stdin closes. `crash` exits with status 3.
pub async fn serve_stdio() -> Result<(), String> {
    let server = SimMcpServer {
        crash: Arc::new(|| std::process::exit(CRASH_EXIT_STATUS)),
    };
    let running = server
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| format!("MCP handshake failed: {e}"))?;
    running
        .waiting()
        .await
        .map_err(|e| format!("MCP server task failed: {e}"))?;
    Ok(())
}

/// A running HTTP test server. Dropping it stops the server.
pub struct SimMcpHttp {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl SimMcpHttp {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its MCP endpoint, `http://ADDR/mcp`.
    pub fn url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }

    /// Stops the server: the listener closes and every open connection is dropped.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }

    /// Waits until the server has stopped (through [`SimMcpHttp::stop`] or its `crash` tool).
    pub async fn stopped(&mut self) {
        let _ = (&mut self.task).await;
    }
}

impl Drop for SimMcpHttp {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Serves MCP over streamable HTTP at `http://ADDR/mcp` (port 0: any free one).
pub async fn serve_http(addr: SocketAddr) -> std::io::Result<(SocketAddr, SimMcpHttp)> {
    use rmcp::transport::streamable_http_server::{
        session::local::LocalSessionManager, StreamableHttpServerConfig, StreamableHttpService,
    };

    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let (stop, mut stop_rx) = watch::channel(false);
    let crash_stop = stop.clone();
    let crash: CrashFn = Arc::new(move || {
        let _ = crash_stop.send(true);
    });
    let service: StreamableHttpService<SimMcpServer, LocalSessionManager> =
        StreamableHttpService::new(
            move || {
                Ok(SimMcpServer {
                    crash: crash.clone(),
                })
            },
            Default::default(),
            StreamableHttpServerConfig::default(),
        );
    let router = axum::Router::new().nest_service("/mcp", service);
    let task = tokio::spawn(async move {
        // Our own accept loop, so that a stop drops every connection at once (as a crash would).
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                _ = stop_rx.wait_for(|stop| *stop) => break,
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let router = router.clone();
                    connections.spawn(async move {
                        let service = hyper::service::service_fn(move |request| {
                            tower::ServiceExt::oneshot(router.clone(), request)
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                            .await;
                    });
                }
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        connections.abort_all();
        while connections.join_next().await.is_some() {}
    });
    Ok((addr, SimMcpHttp { addr, stop, task }))
}

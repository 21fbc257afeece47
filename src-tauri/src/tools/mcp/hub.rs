//! [`McpHub`]: one supervised session per configured MCP server, its tools, and calls to them.
//!
//! Each server has a supervisor task: connect, list the tools, mark it ready, then watch for its end
//! (the child exits, the session closes, a ping goes unanswered) or for a stop; after a failure, wait
//! per [`RestartPolicy`] and start again. The hub's methods only read what the supervisors publish,
//! so one slow or broken server never holds up another, nor a call to another.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures_util::future::FusedFuture;
use futures_util::FutureExt;
use rmcp::model::{CallToolRequestParams, Tool};
use rmcp::service::ServiceError;
use rmcp::{Peer, RoleClient};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use super::config::{McpServerConfig, McpTransport};
use super::connect::{self, Connection, Handler};
use super::output::{call_output, cut, exposed_name, input_schema};
use super::{McpServerStatus, McpState, McpTool};
use crate::tools::{FailureKind, ToolFailure};

/// Told of every state change of a server (the window shows it; the core may log it). Called from
/// the servers' tasks with no lock held: it may call the hub, but should not block.
pub type StatusCallback = Arc<dyn Fn(McpServerStatus) + Send + Sync>;

/// How often an HTTP server is pinged: nothing else tells that its session is gone.
const HTTP_PING_EVERY: Duration = Duration::from_secs(30);
/// How long a ping may take before the server counts as lost.
const PING_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the supervisor waits for a session to close when stopping, before dropping it.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long [`McpHub::shutdown`] waits for each server to stop.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// When a failed server is tried again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestartPolicy {
    /// The waits after the first, second, … failure in a row; the last one repeats.
    pub delays: Vec<Duration>,
    /// A session that lasted this long resets the count: the next failure waits the first delay.
    pub stable_after: Duration,
}

impl Default for RestartPolicy {
    /// 5 s, 30 s, then every 5 minutes: a server that crashed once is back quickly, one that is
    /// down for good costs a spawn every 5 minutes, not a crash loop.
    fn default() -> Self {
        RestartPolicy {
            delays: vec![
                Duration::from_secs(5),
                Duration::from_secs(30),
                Duration::from_secs(300),
            ],
            stable_after: Duration::from_secs(60),
        }
    }
}

impl RestartPolicy {
    fn delay(&self, failures_in_a_row: usize) -> Duration {
        let last = self.delays.len().saturating_sub(1);
        self.delays
            .get(failures_in_a_row.min(last))
            .copied()
            .unwrap_or(Duration::from_secs(300))
    }
}

/// The MCP servers of one running core.
pub struct McpHub {
    on_status: StatusCallback,
    policy: RestartPolicy,
    servers: Mutex<BTreeMap<String, Slot>>,
}

/// A configured server: what the supervisor publishes, and how to stop it.
struct Slot {
    server: Arc<Server>,
    transport: McpTransport,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

/// What the hub and the supervisor of one server share.
struct Server {
    name: String,
    /// The current config (the allow-list, approvals and timeout change in place).
    config: Mutex<McpServerConfig>,
    live: Mutex<Live>,
    /// A call failed on the transport: the supervisor checks whether the server is still there.
    suspect: Notify,
    /// The server said its tool list changed.
    tools_changed: Arc<Notify>,
    /// Try again now rather than at the next restart time.
    retry_now: Notify,
}

struct Live {
    state: McpState,
    message: Option<String>,
    tools: Vec<Tool>,
    peer: Option<Peer<RoleClient>>,
}

/// What a call goes to.
struct Target {
    server: Arc<Server>,
    tool: String,
    peer: Peer<RoleClient>,
    timeout: Duration,
}

/// Locks, shrugging off poisoning: a panicked holder left plain data, still worth reading.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl McpHub {
    /// A hub with no servers; `on_status` hears every server's state changes.
    pub fn new(on_status: StatusCallback) -> Arc<Self> {
        Self::with_policy(on_status, RestartPolicy::default())
    }

    /// Like [`McpHub::new`], with its own restart timing (tests).
    pub fn with_policy(on_status: StatusCallback, policy: RestartPolicy) -> Arc<Self> {
        Arc::new(McpHub {
            on_status,
            policy,
            servers: Mutex::new(BTreeMap::new()),
        })
    }

    /// Starts servers that are new or whose transport changed, stops removed ones, and takes the
    /// allow-list, approvals and timeout of the others as they are; returns at once (connecting runs
    /// in the background). The list should have passed [`super::validate_list`]; an invalid server is
    /// shown as failed and not started. Needs a Tokio runtime.
    pub fn configure(&self, servers: &[McpServerConfig]) {
        let runtime = tokio::runtime::Handle::try_current();
        // Servers that could not be started; told to `on_status` once the lock is released (it may
        // call back into the hub).
        let mut not_started = Vec::new();
        let mut slots = lock(&self.servers);
        slots.retain(|name, slot| {
            let keep = servers
                .iter()
                .any(|s| &s.name == name && s.transport == slot.transport);
            if !keep {
                tracing::info!(server = %name, "stopping MCP server (removed or changed)");
                let _ = slot.stop.send(true);
            }
            keep
        });
        for config in servers {
            if let Some(slot) = slots.get(&config.name) {
                *lock(&slot.server.config) = config.clone();
                continue;
            }
            let server = Arc::new(Server {
                name: config.name.clone(),
                config: Mutex::new(config.clone()),
                live: Mutex::new(Live {
                    state: McpState::Starting,
                    message: None,
                    tools: Vec::new(),
                    peer: None,
                }),
                suspect: Notify::new(),
                tools_changed: Arc::new(Notify::new()),
                retry_now: Notify::new(),
            });
            let (stop, stop_rx) = watch::channel(false);
            let problem = match (&runtime, config.validate()) {
                (_, Err(reason)) => Some(reason),
                (Err(_), _) => Some("internal error: no async runtime to run it on".to_string()),
                (Ok(_), Ok(())) => None,
            };
            let task = match (&runtime, problem) {
                (Ok(runtime), None) => Some(runtime.spawn(supervise(
                    server.clone(),
                    config.transport.clone(),
                    self.on_status.clone(),
                    self.policy.clone(),
                    stop_rx,
                ))),
                (_, problem) => {
                    let message = problem.unwrap_or_default();
                    tracing::warn!(server = %config.name, "MCP server not started: {message}");
                    not_started.push((server.clone(), message));
                    None
                }
            };
            slots.insert(
                config.name.clone(),
                Slot {
                    server,
                    transport: config.transport.clone(),
                    stop,
                    task,
                },
            );
        }
        drop(slots);
        for (server, message) in not_started {
            server.publish(&self.on_status, McpState::Failed, Some(message), None);
        }
    }

    /// The allowed tools of the servers that are ready now, for new calls' session config.
    pub fn tools(&self) -> Vec<McpTool> {
        let slots = lock(&self.servers);
        let mut out = Vec::new();
        for slot in slots.values() {
            let config = lock(&slot.server.config).clone();
            let live = lock(&slot.server.live);
            if live.state != McpState::Ready {
                continue;
            }
            let mut seen = std::collections::HashSet::new();
            for tool in &live.tools {
                if !config.allowed_tools.iter().any(|t| t == tool.name.as_ref()) {
                    continue;
                }
                let name = exposed_name(&config.name, &tool.name);
                if !seen.insert(name.clone()) {
                    tracing::warn!(server = %config.name, tool = %tool.name, exposed = %name,
                        "two tools of an MCP server have the same exposed name; the second is left out");
                    continue;
                }
                out.push(McpTool {
                    server: config.name.clone(),
                    tool: tool.name.to_string(),
                    name,
                    description: tool
                        .description
                        .as_deref()
                        .or(tool.title.as_deref())
                        .unwrap_or_default()
                        .to_string(),
                    input_schema: input_schema(&tool.input_schema),
                    needs_approval: config
                        .needs_approval
                        .iter()
                        .any(|t| t == tool.name.as_ref()),
                });
            }
        }
        out
    }

    /// Calls an exposed tool (`<server>__<tool>`) with `arguments` (a JSON object; `null` counts as
    /// `{}`), within the server's timeout. Failures: `NotAvailable` (unknown or not allowed),
    /// `ServerUnavailable` (not running: at once, no waiting), `Timeout`, `ToolError` (the tool's own
    /// error), `TooLarge`, `Malformed`.
    pub async fn call(
        &self,
        name: &str,
        arguments: serde_json::Value,
    ) -> Result<String, ToolFailure> {
        let arguments = match arguments {
            serde_json::Value::Object(map) => map,
            serde_json::Value::Null => serde_json::Map::new(),
            _ => {
                return Err(ToolFailure::new(
                    FailureKind::Malformed,
                    format!("the arguments of '{name}' must be a JSON object"),
                ))
            }
        };
        let Target {
            server,
            tool,
            peer,
            timeout,
        } = self.resolve(name)?;
        let started = Instant::now();
        let request = CallToolRequestParams::new(tool.clone()).with_arguments(arguments);
        // Dropping the request on timeout sends the server a cancellation.
        let answer = tokio::time::timeout(timeout, peer.call_tool(request)).await;
        tracing::debug!(server = %server.name, tool = %tool, ms = started.elapsed().as_millis() as u64,
            ok = matches!(answer, Ok(Ok(_))), "MCP tool call");
        match answer {
            Ok(Ok(result)) => call_output(&server.name, &tool, result),
            Ok(Err(error)) => Err(call_error(&server, &tool, error)),
            Err(_) => {
                // A dead HTTP server can look like a slow one (the client waits to resume the
                // answer's stream): the supervisor checks which.
                server.suspect.notify_one();
                Err(ToolFailure::new(
                    FailureKind::Timeout,
                    format!(
                        "the tool '{tool}' of server '{}' did not answer in {}",
                        server.name,
                        seconds(timeout)
                    ),
                ))
            }
        }
    }

    /// Finds the server, tool, session and timeout of an exposed name, or why it cannot be called.
    fn resolve(&self, name: &str) -> Result<Target, ToolFailure> {
        let slots = lock(&self.servers);
        for slot in slots.values() {
            let config = lock(&slot.server.config).clone();
            let Some(allowed) = config
                .allowed_tools
                .iter()
                .find(|tool| exposed_name(&config.name, tool) == name)
            else {
                continue;
            };
            let live = lock(&slot.server.live);
            let peer = match (&live.state, &live.peer) {
                (McpState::Ready, Some(peer)) => peer.clone(),
                _ => {
                    let why = live
                        .message
                        .as_deref()
                        .map(|m| format!(" ({m})"))
                        .unwrap_or_else(|| " (still starting)".to_string());
                    return Err(ToolFailure::new(
                        FailureKind::ServerUnavailable,
                        format!("the tool server '{}' is not available{why}", config.name),
                    ));
                }
            };
            if !live.tools.iter().any(|t| t.name.as_ref() == allowed) {
                return Err(ToolFailure::new(
                    FailureKind::NotAvailable,
                    format!("server '{}' has no tool '{allowed}'", config.name),
                ));
            }
            return Ok(Target {
                server: slot.server.clone(),
                tool: allowed.clone(),
                peer,
                timeout: Duration::from_millis(config.timeout_ms),
            });
        }
        Err(ToolFailure::new(
            FailureKind::NotAvailable,
            format!("tool '{name}' is not available"),
        ))
    }

    /// Every configured server's state, by name.
    pub fn statuses(&self) -> Vec<McpServerStatus> {
        lock(&self.servers)
            .values()
            .map(|slot| slot.server.status())
            .collect()
    }

    /// Tries a failed server again now instead of at its next restart time. `false`: no such server.
    pub fn retry(&self, name: &str) -> bool {
        match lock(&self.servers).get(name) {
            Some(slot) => {
                slot.server.retry_now.notify_one();
                true
            }
            None => false,
        }
    }

    /// Stops every server: sessions closed, child processes ended and waited for.
    pub async fn shutdown(&self) {
        let slots: Vec<Slot> = std::mem::take(&mut *lock(&self.servers))
            .into_values()
            .collect();
        let mut tasks = Vec::new();
        for mut slot in slots {
            let _ = slot.stop.send(true);
            if let Some(task) = slot.task.take() {
                let name = slot.server.name.clone();
                tasks.push(async move {
                    if tokio::time::timeout(SHUTDOWN_TIMEOUT, task).await.is_err() {
                        tracing::warn!(server = %name, "MCP server did not stop in time");
                    }
                });
            }
        }
        futures_util::future::join_all(tasks).await;
    }
}

impl Drop for McpHub {
    /// A hub dropped without [`McpHub::shutdown`] still stops its servers (in the background).
    fn drop(&mut self) {
        for slot in lock(&self.servers).values() {
            let _ = slot.stop.send(true);
        }
    }
}

impl Server {
    fn status(&self) -> McpServerStatus {
        let live = lock(&self.live);
        McpServerStatus {
            name: self.name.clone(),
            state: live.state,
            message: live.message.clone(),
            tools: live.tools.iter().map(|t| t.name.to_string()).collect(),
        }
    }

    /// Sets the state (tools and session only while ready) and tells `on_status`.
    fn publish(
        &self,
        on_status: &StatusCallback,
        state: McpState,
        message: Option<String>,
        ready: Option<(Vec<Tool>, Peer<RoleClient>)>,
    ) {
        {
            let mut live = lock(&self.live);
            live.state = state;
            live.message = message;
            match ready {
                Some((tools, peer)) => {
                    live.tools = tools;
                    live.peer = Some(peer);
                }
                None if state != McpState::Ready => {
                    live.tools.clear();
                    live.peer = None;
                }
                None => {}
            }
        }
        on_status(self.status());
    }
}

/// Maps a failed request to what the model and the operator are told.
fn call_error(server: &Server, tool: &str, error: ServiceError) -> ToolFailure {
    let name = &server.name;
    match error {
        ServiceError::McpError(e) => ToolFailure::new(
            FailureKind::ToolError,
            format!(
                "the tool '{tool}' of server '{name}' refused the call: {}",
                cut(&e.message, 300)
            ),
        ),
        ServiceError::Timeout { .. } => ToolFailure::new(
            FailureKind::Timeout,
            format!("the tool '{tool}' of server '{name}' did not answer in time"),
        ),
        ServiceError::UnexpectedResponse => ToolFailure::new(
            FailureKind::Malformed,
            format!("server '{name}' gave an answer that is not a tool result"),
        ),
        _ => {
            // The session broke under the call: the supervisor finds out whether the server is gone.
            server.suspect.notify_one();
            ToolFailure::new(
                FailureKind::ServerUnavailable,
                format!("the tool server '{name}' stopped answering"),
            )
        }
    }
}

/// "8 s", "500 ms", "5 min".
fn seconds(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else if d >= Duration::from_secs(120) && d.as_secs().is_multiple_of(60) {
        format!("{} min", d.as_secs() / 60)
    } else if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// Resolves once a stop is asked for (or the hub is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// One server's life: start, serve, and after a failure wait and start again, until stopped.
async fn supervise(
    server: Arc<Server>,
    transport: McpTransport,
    on_status: StatusCallback,
    policy: RestartPolicy,
    mut stop: watch::Receiver<bool>,
) {
    let name = server.name.clone();
    let mut failures = 0usize;
    loop {
        server.publish(&on_status, McpState::Starting, None, None);
        let handler = Handler {
            tools_changed: server.tools_changed.clone(),
        };
        // A stop while connecting drops the attempt; its child is killed on drop.
        let connected = tokio::select! {
            _ = stopped(&mut stop) => return,
            connected = connect::connect(&name, &transport, handler) => connected,
        };
        let failure = match connected {
            Err(message) => message,
            Ok(connection) => {
                let up = Instant::now();
                match serve(&server, &on_status, connection, &mut stop).await {
                    None => return,
                    Some(message) => {
                        if up.elapsed() >= policy.stable_after {
                            failures = 0;
                        }
                        message
                    }
                }
            }
        };
        let delay = policy.delay(failures);
        failures += 1;
        tracing::warn!(server = %name, "MCP server failed: {failure}; next try in {}", seconds(delay));
        server.publish(
            &on_status,
            McpState::Failed,
            Some(format!("{failure}; next try in {}", seconds(delay))),
            None,
        );
        tokio::select! {
            _ = stopped(&mut stop) => return,
            _ = tokio::time::sleep(delay) => {}
            _ = server.retry_now.notified() => {}
        }
    }
}

/// Lists the tools, publishes the server as ready, and watches the session until it ends (`Some`:
/// why) or a stop is asked for (`None`). Either way the session and its child are closed on return.
async fn serve(
    server: &Server,
    on_status: &StatusCallback,
    connection: Connection,
    stop: &mut watch::Receiver<bool>,
) -> Option<String> {
    let name = server.name.as_str();
    let Connection { service, mut child } = connection;
    let peer = service.peer().clone();
    let closer = service.cancellation_token();
    // Fused: it may end inside `watch_session` and must not be polled again when closing.
    let mut quit = std::pin::pin!(service.waiting().fuse());

    let listed = tokio::select! {
        _ = stopped(stop) => None,
        listed = tokio::time::timeout(connect::START_TIMEOUT, peer.list_all_tools()) => Some(listed),
    };
    let outcome = match listed {
        None => None,
        Some(Ok(Ok(tools))) => {
            tracing::info!(server = %name, tools = tools.len(), "MCP server ready");
            server.publish(
                on_status,
                McpState::Ready,
                None,
                Some((tools, peer.clone())),
            );
            watch_session(server, on_status, &peer, &mut child, quit.as_mut(), stop).await
        }
        Some(Ok(Err(e))) => Some(format!("server '{name}' could not list its tools: {e}")),
        Some(Err(_)) => Some(format!(
            "server '{name}' did not list its tools in {}",
            seconds(connect::START_TIMEOUT)
        )),
    };
    // Withdraw the tools before the (possibly slow) close, so no new call reaches a dying session.
    if outcome.is_some() {
        let mut live = lock(&server.live);
        live.peer = None;
        live.tools.clear();
    }
    closer.cancel();
    if !quit.is_terminated() {
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, quit).await;
    }
    if let Some(child) = child.as_mut() {
        connect::stop_child(name, child).await;
    }
    outcome
}

/// Waits for the end of a ready session: `Some(why)` when it died, `None` when asked to stop.
async fn watch_session(
    server: &Server,
    on_status: &StatusCallback,
    peer: &Peer<RoleClient>,
    child: &mut Option<tokio::process::Child>,
    mut quit: std::pin::Pin<&mut impl FusedFuture>,
    stop: &mut watch::Receiver<bool>,
) -> Option<String> {
    let name = server.name.as_str();
    let is_http = child.is_none();
    let mut ping_every = tokio::time::interval(HTTP_PING_EVERY);
    ping_every.reset();
    loop {
        tokio::select! {
            _ = stopped(stop) => return None,
            status = async { child.as_mut()?.wait().await.ok() }, if child.is_some() => {
                return Some(match status {
                    Some(status) => connect::exited_message(name, status),
                    None => format!("server '{name}' ended"),
                });
            }
            _ = &mut quit => {
                let fallback = if is_http {
                    format!("lost the connection to server '{name}'")
                } else {
                    format!("server '{name}' closed its output")
                };
                return Some(why_ended(name, child, fallback).await);
            }
            _ = server.suspect.notified() => {
                if !connect::ping(peer, PING_TIMEOUT).await {
                    return Some(why_ended(name, child, format!("server '{name}' stopped answering")).await);
                }
            }
            _ = ping_every.tick(), if is_http => {
                if !connect::ping(peer, PING_TIMEOUT).await {
                    return Some(format!("lost the connection to server '{name}'"));
                }
            }
            _ = server.tools_changed.notified() => {
                match tokio::time::timeout(connect::START_TIMEOUT, peer.list_all_tools()).await {
                    Ok(Ok(tools)) => {
                        tracing::info!(server = %name, tools = tools.len(), "MCP server's tools changed");
                        server.publish(on_status, McpState::Ready, None, Some((tools, peer.clone())));
                    }
                    _ => tracing::warn!(server = %name, "could not list the MCP server's changed tools"),
                }
            }
        }
    }
}

/// Why a session ended: a stdio server's exit status when it exited (the likeliest cause, and the
/// most useful to read), else `fallback`.
async fn why_ended(
    name: &str,
    child: &mut Option<tokio::process::Child>,
    fallback: String,
) -> String {
    if let Some(child) = child.as_mut() {
        if let Ok(Ok(status)) = tokio::time::timeout(Duration::from_secs(1), child.wait()).await {
            return connect::exited_message(name, status);
        }
    }
    fallback
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_delays_repeat_the_last() {
        let p = RestartPolicy::default();
        assert_eq!(p.delay(0), Duration::from_secs(5));
        assert_eq!(p.delay(1), Duration::from_secs(30));
        assert_eq!(p.delay(2), Duration::from_secs(300));
        assert_eq!(p.delay(9), Duration::from_secs(300));
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(seconds(Duration::from_millis(500)), "500 ms");
        assert_eq!(seconds(Duration::from_secs(8)), "8 s");
        assert_eq!(seconds(Duration::from_millis(1500)), "1.5 s");
        assert_eq!(seconds(Duration::from_secs(300)), "5 min");
    }

    #[tokio::test]
    async fn unknown_tool_and_bad_arguments() {
        let hub = McpHub::new(Arc::new(|_| {}));
        let e = hub
            .call("nope__x", serde_json::json!({}))
            .await
            .unwrap_err();
        assert_eq!(e.kind, FailureKind::NotAvailable);
        let e = hub
            .call("nope__x", serde_json::json!([1]))
            .await
            .unwrap_err();
        assert_eq!(e.kind, FailureKind::Malformed);
    }

    #[tokio::test]
    async fn an_invalid_server_is_failed_not_started() {
        let hub = McpHub::new(Arc::new(|_| {}));
        hub.configure(&[McpServerConfig {
            name: "Bad Name".into(),
            transport: McpTransport::Http {
                url: "https://x.example/mcp".into(),
            },
            allowed_tools: vec![],
            needs_approval: vec![],
            timeout_ms: 8000,
        }]);
        let statuses = hub.statuses();
        assert_eq!(statuses[0].state, McpState::Failed);
        assert!(statuses[0]
            .message
            .as_deref()
            .unwrap_or("")
            .contains("Bad Name"));
        hub.shutdown().await;
    }
}

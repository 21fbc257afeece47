//! Opening one MCP session: spawning a stdio server (with a clean environment and its stderr sent to
//! the log) or connecting to a streamable-HTTP one, the MCP handshake, and watching for its end.

use std::collections::BTreeMap;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use rmcp::model::{ClientCapabilities, ClientRequest, Implementation, InitializeRequestParams};
use rmcp::service::{NotificationContext, RunningService};
use rmcp::{ClientHandler, Peer, RoleClient, ServiceExt};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::Notify;

use super::config::McpTransport;

/// How long the handshake and the first tool list may take.
pub(super) const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a stdio server gets to exit on its own once its stdin is closed, before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(1);
/// The longest stderr line logged; the rest of the line is dropped.
const MAX_STDERR_LINE: usize = 400;
/// The largest HTTP answer accepted: well above a tool result we would pass on, small enough that a
/// broken server cannot fill memory.
const MAX_HTTP_RESPONSE: usize = 1024 * 1024;
/// The inherited variables a stdio server gets (besides its configured `env`): enough to find
/// programs and read a locale, nothing of Verbio's own (its keys and Twilio credentials stay here).
const INHERITED_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "LANG",
    #[cfg(windows)]
    "SYSTEMROOT",
    #[cfg(windows)]
    "USERPROFILE",
    #[cfg(windows)]
    "TEMP",
];

/// Our side of the session: answers the server's notifications. It only cares that the tool list
/// changed (the supervisor lists the tools again).
#[derive(Clone)]
pub(super) struct Handler {
    pub tools_changed: Arc<Notify>,
}

impl ClientHandler for Handler {
    fn get_info(&self) -> InitializeRequestParams {
        InitializeRequestParams::new(
            ClientCapabilities::default(),
            Implementation::new("verbio", env!("CARGO_PKG_VERSION")),
        )
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.tools_changed.notify_one();
    }
}

/// A live MCP session, and the child process behind it for stdio servers.
pub(super) struct Connection {
    pub service: RunningService<RoleClient, Handler>,
    pub child: Option<Child>,
}

/// Opens a session (spawn or connect, then the MCP handshake). `Err` is a message for the operator.
pub(super) async fn connect(
    server: &str,
    transport: &McpTransport,
    handler: Handler,
) -> Result<Connection, String> {
    match transport {
        McpTransport::Stdio { command, args, env } => {
            connect_stdio(server, command, args, env, handler).await
        }
        McpTransport::Http { url } => connect_http(server, url, handler).await,
    }
}

async fn connect_stdio(
    server: &str,
    command: &str,
    args: &[String],
    env: &BTreeMap<String, String>,
    handler: Handler,
) -> Result<Connection, String> {
    let mut cmd = Command::new(command);
    cmd.args(args)
        .env_clear()
        .envs(
            INHERITED_ENV
                .iter()
                .filter_map(|key| std::env::var_os(key).map(|value| (*key, value))),
        )
        .envs(env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // A backstop: whatever path drops the child (a cancelled start, a panic), it is killed.
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            format!("cannot start server '{server}': command '{command}' not found")
        }
        std::io::ErrorKind::PermissionDenied => {
            format!("cannot start server '{server}': command '{command}' is not executable")
        }
        _ => format!("cannot start server '{server}': {e}"),
    })?;
    if let Some(stderr) = child.stderr.take() {
        tokio::spawn(log_stderr(server.to_string(), stderr));
    }
    let (Some(stdout), Some(stdin)) = (child.stdout.take(), child.stdin.take()) else {
        return Err(format!("cannot start server '{server}': no pipes to it"));
    };
    let started = tokio::time::timeout(START_TIMEOUT, handler.serve((stdout, stdin))).await;
    match started {
        Ok(Ok(service)) => Ok(Connection {
            service,
            child: Some(child),
        }),
        Ok(Err(e)) => {
            // Most often the child died before answering: its exit status says more than the
            // handshake's "connection closed".
            let exited = tokio::time::timeout(EXIT_GRACE, child.wait()).await;
            match exited {
                Ok(Ok(status)) => Err(exited_message(server, status)),
                _ => {
                    stop_child(server, &mut child).await;
                    Err(format!(
                        "server '{server}' failed the MCP handshake: {}",
                        init_error(&e)
                    ))
                }
            }
        }
        Err(_) => {
            stop_child(server, &mut child).await;
            Err(format!(
                "server '{server}' did not finish the MCP handshake in {} s",
                START_TIMEOUT.as_secs()
            ))
        }
    }
}

async fn connect_http(server: &str, url: &str, handler: Handler) -> Result<Connection, String> {
    use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
    use rmcp::transport::StreamableHttpClientTransport;

    // reqwest 0.13 here is built without a crypto provider of its own: it uses the process's.
    crate::tls::install_crypto_provider();
    let client = reqwest013::Client::builder()
        .pool_max_idle_per_host(0)
        .redirect(reqwest013::redirect::Policy::none())
        .build()
        .map_err(|e| format!("cannot connect to server '{server}': {e}"))?;
    let config = StreamableHttpClientTransportConfig::with_uri(url)
        .max_json_response_size(MAX_HTTP_RESPONSE)
        .max_sse_event_size(MAX_HTTP_RESPONSE);
    let transport = StreamableHttpClientTransport::with_client(client, config);
    match tokio::time::timeout(START_TIMEOUT, handler.serve(transport)).await {
        Ok(Ok(service)) => Ok(Connection {
            service,
            child: None,
        }),
        Ok(Err(e)) => Err(redact_url(
            &format!("cannot connect to server '{server}': {}", init_error(&e)),
            url,
        )),
        Err(_) => Err(format!(
            "server '{server}' did not answer the MCP handshake in {} s",
            START_TIMEOUT.as_secs()
        )),
    }
}

/// Asks the server whether it is still there (after a call failed on the transport, and now and then
/// for HTTP servers, whose loss nothing else reports).
pub(super) async fn ping(peer: &Peer<RoleClient>, within: Duration) -> bool {
    let request = ClientRequest::PingRequest(Default::default());
    matches!(
        tokio::time::timeout(within, peer.send_request(request)).await,
        Ok(Ok(_))
    )
}

/// Ends a stdio server: its stdin is already closed (the session is over); it gets a moment to exit,
/// then is killed. Either way it is waited for, so no zombie is left.
pub(super) async fn stop_child(server: &str, child: &mut Child) {
    match tokio::time::timeout(EXIT_GRACE, child.wait()).await {
        Ok(Ok(_)) => {}
        _ => {
            if let Err(e) = child.kill().await {
                tracing::warn!(server, error = %e, "could not kill the MCP server's process");
            }
        }
    }
}

/// "server 'orders' exited with status 1", or the signal that ended it.
pub(super) fn exited_message(server: &str, status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("server '{server}' exited with status {code}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return format!("server '{server}' was killed by signal {signal}");
        }
    }
    format!("server '{server}' exited ({status})")
}

/// What went wrong in a handshake, in a line.
fn init_error(error: &rmcp::service::ClientInitializeError) -> String {
    match error {
        // Its transport error is a field, not a `source`: follow it by hand.
        rmcp::service::ClientInitializeError::TransportError { error, .. } => {
            use rmcp::transport::streamable_http_client::StreamableHttpError;
            // The HTTP client's own error is not a `source` either; its innermost cause is the
            // useful part ("Connection refused").
            match error
                .error
                .downcast_ref::<StreamableHttpError<reqwest013::Error>>()
            {
                Some(StreamableHttpError::Client(client)) => root_cause(client),
                _ => root_cause(error),
            }
        }
        other => root_cause(other),
    }
}

/// The innermost error of a chain ("Connection refused (os error 111)"): what the operator can act
/// on, without the SDK's layers of wrapping.
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(source) = current.source() {
        current = source;
    }
    current.to_string()
}

/// Replaces the configured URL (which may carry a token in its query) by its origin and path.
pub(super) fn redact_url(message: &str, url: &str) -> String {
    let Ok(parsed) = url::Url::parse(url) else {
        return message.replace(url, "<url>");
    };
    let mut shown = parsed.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    let shown = shown.to_string();
    message
        .replace(url, &shown)
        .replace(parsed.as_str(), &shown)
}

/// Sends a stdio server's stderr to the log at debug, a line at a time, long lines cut: a chatty or
/// broken server never reaches the terminal and never holds much memory.
async fn log_stderr(server: String, stderr: impl AsyncRead + Unpin) {
    let mut reader = BufReader::new(stderr);
    let mut line = Vec::with_capacity(MAX_STDERR_LINE);
    loop {
        line.clear();
        let read = (&mut reader)
            .take(MAX_STDERR_LINE as u64)
            .read_until(b'\n', &mut line)
            .await;
        match read {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let cut = line.last() != Some(&b'\n');
        if cut && skip_line(&mut reader).await.is_err() {
            return;
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end();
        if !text.is_empty() {
            tracing::debug!(server = %server, cut, "mcp server stderr: {text}");
        }
    }
}

/// Reads up to the end of the current line without keeping it.
async fn skip_line(reader: &mut (impl AsyncBufReadExt + Unpin)) -> std::io::Result<()> {
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return Ok(());
        }
        match buf.iter().position(|b| *b == b'\n') {
            Some(at) => {
                reader.consume(at + 1);
                return Ok(());
            }
            None => {
                let n = buf.len();
                reader.consume(n);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_hides_the_query() {
        let url = "https://crm.example.com/mcp?token=s3cret";
        let msg = format!("error sending request for url ({url})");
        let shown = redact_url(&msg, url);
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("https://crm.example.com/mcp"), "{shown}");
    }

    #[tokio::test]
    async fn long_stderr_lines_are_skipped_to_their_end() {
        let data = format!("{}\nnext\n", "x".repeat(5000));
        let mut reader = BufReader::new(data.as_bytes());
        let mut line = Vec::new();
        (&mut reader)
            .take(MAX_STDERR_LINE as u64)
            .read_until(b'\n', &mut line)
            .await
            .unwrap();
        assert_eq!(line.len(), MAX_STDERR_LINE);
        skip_line(&mut reader).await.unwrap();
        let mut rest = String::new();
        reader.read_to_string(&mut rest).await.unwrap();
        assert_eq!(rest, "next\n");
    }
}

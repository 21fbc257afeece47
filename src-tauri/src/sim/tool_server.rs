//! A user's HTTP tool endpoint, for the tests of `tools::http`: one answer per kind of trouble.
//!
//! | `POST` path  | answer                                                                 |
//! |--------------|------------------------------------------------------------------------|
//! | `/ok`        | `200` `application/json` `{"order":"42","status":"shipped"}`           |
//! | `/slow`      | the same, after 10 s                                                   |
//! | `/500`       | `500` with a text body                                                 |
//! | `/malformed` | `200` `application/json` `{"order": ` (cut short)                      |
//! | `/huge`      | `200` `text/plain`, 1 MB, streamed (no `Content-Length`)              |
//! | `/endless`   | `200` `text/plain`, streamed until the client hangs up                 |
//! | `/text`      | `200` `text/plain` `Order 42 has shipped.`                             |
//!
//! Started with a secret, it checks every request's `X-Verbio-Signature` with
//! [`crate::tools::http::verify`] (5 minutes' tolerance) and answers `401` to a missing, wrong or stale
//! one, as a real endpoint should. Every request is recorded, verified or not.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;

use crate::tools::http::{verify, SIGNATURE_HEADER};

/// How far a signature's timestamp may be from the server's clock.
pub const TOLERANCE_SECS: u64 = 300;
/// What `/ok` and `/slow` answer.
pub const OK_BODY: &str = r#"{"order":"42","status":"shipped"}"#;
/// What `/text` answers.
pub const TEXT_BODY: &str = "Order 42 has shipped.";
/// What `/500` answers.
pub const ERROR_BODY: &str = "database unavailable: order lookup failed";
/// How long `/slow` takes.
pub const SLOW_DELAY: Duration = Duration::from_secs(10);
/// The size of `/huge`.
pub const HUGE_BYTES: usize = 1024 * 1024;
const CHUNK: usize = 16 * 1024;

/// One request the server received.
#[derive(Debug, Clone)]
pub struct ReceivedRequest {
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// Header names lower-cased, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The signature was checked and matched (always `false` when the server has no secret).
    pub verified: bool,
}

impl ReceivedRequest {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON, if it is.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

struct Shared {
    secret: Option<Vec<u8>>,
    requests: Mutex<Vec<ReceivedRequest>>,
    /// Bytes `/huge` and `/endless` have handed to the connection so far.
    streamed: AtomicU64,
}

/// The running server; it stops when dropped.
pub struct ToolServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl ToolServer {
    /// Starts a server on a free loopback port, checking signatures when `secret` is given.
    ///
    /// # Panics
    /// If no loopback port can be bound (a test cannot go on without it).
    pub async fn start(secret: Option<Vec<u8>>) -> ToolServer {
        let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
            Ok(l) => l,
            Err(e) => panic!("the tool server cannot bind a loopback port: {e}"),
        };
        let addr = match listener.local_addr() {
            Ok(a) => a,
            Err(e) => panic!("the tool server has no local address: {e}"),
        };
        let shared = Arc::new(Shared {
            secret,
            requests: Mutex::default(),
            streamed: AtomicU64::new(0),
        });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        ToolServer { addr, shared, task }
    }

    /// The URL of `path` on this server (`/ok`, `/slow`, …).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<ReceivedRequest> {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Bytes of streamed bodies (`/huge`, `/endless`) handed to connections so far: a client that stops
    /// reading stops this from growing.
    pub fn streamed_bytes(&self) -> u64 {
        self.shared.streamed.load(Ordering::Relaxed)
    }
}

impl Drop for ToolServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let method = request.method().to_string();
    let path = request.uri().path().to_string();
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = match axum::body::to_bytes(request.into_body(), 1024 * 1024).await {
        Ok(b) => b.to_vec(),
        Err(_) => return (StatusCode::PAYLOAD_TOO_LARGE, "body too large").into_response(),
    };
    let check = shared.secret.as_ref().map(|secret| {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        match headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(SIGNATURE_HEADER))
        {
            Some((_, value)) => verify(secret, value, &body, now, TOLERANCE_SECS),
            None => Err("no signature".to_string()),
        }
    });
    let verified = matches!(check, Some(Ok(())));
    shared
        .requests
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(ReceivedRequest {
            method: method.clone(),
            path: path.clone(),
            headers,
            body,
            verified,
        });
    if let Some(Err(why)) = check {
        return (StatusCode::UNAUTHORIZED, format!("bad signature: {why}")).into_response();
    }
    if method != "POST" {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    const JSON: &str = "application/json";
    const TEXT: &str = "text/plain; charset=utf-8";
    match path.as_str() {
        "/ok" => ([(header::CONTENT_TYPE, JSON)], OK_BODY).into_response(),
        "/slow" => {
            tokio::time::sleep(SLOW_DELAY).await;
            ([(header::CONTENT_TYPE, JSON)], OK_BODY).into_response()
        }
        "/500" => (StatusCode::INTERNAL_SERVER_ERROR, ERROR_BODY).into_response(),
        "/malformed" => ([(header::CONTENT_TYPE, JSON)], r#"{"order": "#).into_response(),
        "/huge" => streamed(shared, Some(HUGE_BYTES / CHUNK)),
        "/endless" => streamed(shared, None),
        "/text" => ([(header::CONTENT_TYPE, TEXT)], TEXT_BODY).into_response(),
        _ => (StatusCode::NOT_FOUND, "no such tool").into_response(),
    }
}

/// A text body of `chunks` × 16 KB (forever when `None`), without a `Content-Length`, so a client can
/// only learn its size by reading it.
fn streamed(shared: Arc<Shared>, chunks: Option<usize>) -> Response {
    let chunk = Bytes::from(vec![b'x'; CHUNK]);
    let stream = futures_util::stream::unfold(0usize, move |sent| {
        let (shared, chunk) = (shared.clone(), chunk.clone());
        async move {
            if chunks.is_some_and(|n| sent >= n) {
                return None;
            }
            shared
                .streamed
                .fetch_add(chunk.len() as u64, Ordering::Relaxed);
            Some((Ok::<_, std::io::Error>(chunk), sent + 1))
        }
    });
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        Body::from_stream(stream),
    )
        .into_response()
}

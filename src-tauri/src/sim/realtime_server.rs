//! A fake OpenAI Realtime GA server on 127.0.0.1, for tests, the benchmark and the demo call.
//!
//! One WebSocket = one session. It speaks the GA event names from `docs/protocols.md`, rejects the beta shape
//! the way the live service does (error `beta_api_shape_disabled`, close 4000), runs an energy VAD on the
//! μ-law it is fed, answers each caller turn with a scripted tone streamed faster than real time, validates
//! truncations against the audio it really sent, and can fail on command (outage, unreachable, session cap).
//! Everything a test may want to assert is kept in a per-session [`SessionLog`].

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::realtime_session::Session;
use super::{new_id, SimError};

/// One scripted answer of the simulated model.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentTurn {
    /// The answer's transcript (`response.output_audio_transcript.done`).
    pub text: String,
    /// Frequency of the answer's tone (the "voice").
    pub tone_hz: f64,
    /// Length of the answer's audio; the deltas add up to exactly `tone_ms * 8` bytes.
    pub tone_ms: u32,
    /// `(name, arguments JSON)`: after its audio the response also carries this function call.
    pub call_tool: Option<(String, String)>,
}

impl AgentTurn {
    /// A turn with the default tone (880 Hz, 1200 ms) and no tool call.
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            ..Self::default()
        }
    }

    /// A turn with its own tone.
    pub fn with_tone(text: impl Into<String>, tone_hz: f64, tone_ms: u32) -> Self {
        Self {
            text: text.into(),
            tone_hz,
            tone_ms,
            call_tool: None,
        }
    }
}

impl Default for AgentTurn {
    fn default() -> Self {
        Self {
            text: "Hello, this is the simulated agent.".into(),
            tone_hz: 880.0,
            tone_ms: 1200,
            call_tool: None,
        }
    }
}

/// What the benchmark can observe, timestamped at the moment it happens in the server.
#[derive(Debug, Clone)]
pub enum RealtimeProbe {
    /// An `input_audio_buffer.append` arrived (decoded μ-law).
    Append {
        session: u64,
        at: std::time::Instant,
        audio: Vec<u8>,
    },
    /// A `response.output_audio.delta` of `bytes` μ-law bytes was handed to the socket.
    DeltaSent {
        session: u64,
        at: std::time::Instant,
        item_id: String,
        bytes: usize,
        /// The delta's tag when `tag_deltas` is on.
        tag: Option<u32>,
    },
    /// The VAD heard the caller start speaking.
    SpeechStarted {
        session: u64,
        at: std::time::Instant,
    },
}

/// How the fake server behaves. `Default` is a sensible, fast, fully recorded server.
#[derive(Debug, Clone)]
pub struct SimRealtimeConfig {
    /// RMS (linear PCM units) above which a 20 ms frame counts as speech.
    pub vad_rms_threshold: f64,
    /// Silence after speech that ends a caller turn.
    pub silence_ms: u32,
    /// Audio per `response.output_audio.delta`.
    pub delta_ms: u32,
    /// Multiple of real time at which answer audio is streamed (`f64::INFINITY`: all at once;
    /// zero, negative or NaN: real time). OpenAI streams faster than playback, so the default is 2.0.
    pub speed_factor: f64,
    /// Session length limit; at the cap the server sends `session_expired` and closes.
    pub session_cap: Option<Duration>,
    /// Answers, used in order; the last one repeats. Empty means one [`AgentTurn::default`].
    pub script: Vec<AgentTurn>,
    /// Transcripts of the caller's turns, used in order; past the end (or when empty) `"caller turn N"`.
    pub caller_transcripts: Vec<String>,
    /// Store every client event in [`SessionLog::client_events`] (turn off for the 1000-session benchmark).
    pub record_events: bool,
    /// Optional timing probe for the benchmark.
    pub probe: Option<mpsc::UnboundedSender<RealtimeProbe>>,
    /// Stamp each audio delta's first bytes with a unique tag (see [`super::frame_tag`]) so the benchmark
    /// can match it on the caller's side.
    pub tag_deltas: bool,
}

impl Default for SimRealtimeConfig {
    fn default() -> Self {
        Self {
            vad_rms_threshold: 500.0,
            silence_ms: 400,
            delta_ms: 100,
            speed_factor: 2.0,
            session_cap: None,
            script: vec![AgentTurn::default()],
            caller_transcripts: Vec::new(),
            record_events: true,
            probe: None,
            tag_deltas: false,
        }
    }
}

/// Everything one session (one WebSocket, or one refused handshake) did, for assertions.
#[derive(Debug, Clone, Default)]
pub struct SessionLog {
    /// 1-based, in order of arrival.
    pub id: u64,
    /// The `model` query parameter.
    pub model: Option<String>,
    /// Whether `Authorization: Bearer <non-empty>` was sent.
    pub authorization_present: bool,
    /// Whether an `OpenAI-Beta` header was sent.
    pub beta_header: bool,
    /// `Some(401)` / `Some(503)` when the handshake was refused; such entries never saw a socket.
    pub rejected: Option<u16>,
    /// Every client event received, in order (empty when `record_events` is off; malformed JSON is kept as a string).
    pub client_events: Vec<Value>,
    /// Every `conversation.item.truncate` as `(item_id, audio_end_ms)`, valid or not.
    pub truncates: Vec<(String, u64)>,
    /// Number of client `response.create` events.
    pub response_creates: usize,
    /// The `response` object of each client `response.create` (`Value::Null` when absent).
    pub response_requests: Vec<Value>,
    /// The `item` of each client `conversation.item.create`.
    pub items_created: Vec<Value>,
    /// Decoded μ-law bytes received through `input_audio_buffer.append`.
    pub appended_audio_bytes: u64,
    /// The session configuration after the last accepted `session.update` (merged, as echoed).
    pub session_config: Option<Value>,
    /// Codes of every `error` event the server sent.
    pub errors_sent: Vec<String>,
    /// μ-law bytes sent in `response.output_audio.delta` events.
    pub audio_sent_bytes: u64,
    /// Responses started (by VAD or `response.create`), completed and cancelled.
    pub responses_started: usize,
    pub responses_completed: usize,
    pub responses_cancelled: usize,
    /// `input_audio_buffer.speech_started` events sent.
    pub speech_started: usize,
    /// The socket is gone (closed by either side, dropped, expired, or never opened).
    pub closed: bool,
}

/// State shared by the accept loop, the session tasks and the test's handle.
struct Shared {
    config: Arc<SimRealtimeConfig>,
    sessions: Mutex<Vec<Arc<Mutex<SessionLog>>>>,
    reject: AtomicBool,
    /// Bumped by [`SimRealtimeServer::drop_all`]; every session task drops its socket when it changes.
    kill: watch::Sender<u64>,
}

impl Shared {
    fn register(&self, mut log: SessionLog) -> (u64, Arc<Mutex<SessionLog>>) {
        let mut sessions = lock(&self.sessions);
        let id = sessions.len() as u64 + 1;
        log.id = id;
        let log = Arc::new(Mutex::new(log));
        sessions.push(log.clone());
        (id, log)
    }
}

/// Locks a mutex even if a panicking test thread poisoned it: the logs stay readable.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A running fake Realtime server. Dropping it stops accepting and drops every open session.
pub struct SimRealtimeServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl SimRealtimeServer {
    /// Binds 127.0.0.1 on a free port and starts accepting sessions.
    pub async fn start(config: SimRealtimeConfig) -> std::io::Result<SimRealtimeServer> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (kill, _) = watch::channel(0u64);
        let shared = Arc::new(Shared {
            config: Arc::new(config),
            sessions: Mutex::new(Vec::new()),
            reject: AtomicBool::new(false),
            kill,
        });
        let accept = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(SimRealtimeServer {
            addr,
            shared,
            accept,
        })
    }

    /// `ws://127.0.0.1:PORT/v1/realtime`; the client appends `?model=…`.
    pub fn url(&self) -> String {
        format!("ws://{}/v1/realtime", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Drops every open socket without a close frame, as a model outage would.
    pub fn drop_all(&self) {
        self.shared.kill.send_modify(|generation| *generation += 1);
    }

    /// While `true`, new handshakes fail with HTTP 503 (the model stays unreachable).
    pub fn set_reject_connections(&self, reject: bool) {
        self.shared.reject.store(reject, Ordering::SeqCst);
    }

    /// A snapshot of every session so far, including refused handshakes (see [`SessionLog::rejected`]).
    pub fn sessions(&self) -> Vec<SessionLog> {
        let sessions = lock(&self.shared.sessions).clone();
        sessions.iter().map(|log| lock(log).clone()).collect()
    }

    /// Like [`sessions`](Self::sessions) but only sessions whose handshake succeeded.
    pub fn accepted_sessions(&self) -> Vec<SessionLog> {
        self.sessions()
            .into_iter()
            .filter(|s| s.rejected.is_none())
            .collect()
    }

    /// Polls the snapshot every 10 ms until `predicate` holds; returns that snapshot.
    pub async fn wait_for<F>(
        &self,
        predicate: F,
        timeout: Duration,
    ) -> Result<Vec<SessionLog>, SimError>
    where
        F: Fn(&[SessionLog]) -> bool,
    {
        let deadline = Instant::now() + timeout;
        loop {
            let snapshot = self.sessions();
            if predicate(&snapshot) {
                return Ok(snapshot);
            }
            if Instant::now() >= deadline {
                return Err(SimError::Timeout {
                    what: "realtime sessions predicate".into(),
                    after: timeout,
                });
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for SimRealtimeServer {
    fn drop(&mut self) {
        self.accept.abort();
        self.drop_all();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve_connection(stream, shared.clone()));
            }
            Err(err) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(%err, "sim realtime: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// What the handshake callback saw.
#[derive(Default)]
struct Handshake {
    seen: bool,
    model: Option<String>,
    authorization: bool,
    beta: bool,
    rejected: Option<u16>,
}

fn refuse(status: StatusCode, body: &str) -> ErrorResponse {
    let mut response = ErrorResponse::new(Some(body.to_string()));
    *response.status_mut() = status;
    response
}

/// Notes what the handshake carried; `Err` is the HTTP status and body to refuse it with.
fn inspect_request(
    request: &Request,
    reject: bool,
    hs: &mut Handshake,
) -> Result<(), (StatusCode, &'static str)> {
    hs.seen = true;
    hs.model = request.uri().query().and_then(|query| {
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "model")
            .map(|(_, v)| v.into_owned())
    });
    hs.authorization = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|key| !key.trim().is_empty());
    hs.beta = request.headers().contains_key("openai-beta");
    if reject {
        hs.rejected = Some(503);
        return Err((StatusCode::SERVICE_UNAVAILABLE, "simulated outage"));
    }
    if !hs.authorization {
        hs.rejected = Some(401);
        return Err((StatusCode::UNAUTHORIZED, "missing bearer token"));
    }
    Ok(())
}

type Ws = WebSocketStream<TcpStream>;

// The handshake callback's error type is tungstenite's `http::Response`; boxing is not an option there.
#[allow(clippy::result_large_err)]
async fn serve_connection(stream: TcpStream, shared: Arc<Shared>) {
    let reject = shared.reject.load(Ordering::SeqCst);
    let mut hs = Handshake::default();
    let accepted =
        tokio_tungstenite::accept_hdr_async(stream, |request: &Request, response: Response| {
            inspect_request(request, reject, &mut hs)
                .map(|()| response)
                .map_err(|(status, body)| refuse(status, body))
        })
        .await;
    if !hs.seen {
        return; // Not even an HTTP request: nothing to log.
    }
    let log = SessionLog {
        model: hs.model.clone(),
        authorization_present: hs.authorization,
        beta_header: hs.beta,
        rejected: hs.rejected,
        closed: true,
        ..SessionLog::default()
    };
    let ws = match accepted {
        Ok(ws) if hs.rejected.is_none() => ws,
        _ => {
            shared.register(log);
            return;
        }
    };
    let (id, log) = shared.register(SessionLog {
        closed: false,
        ..log
    });
    let kill = shared.kill.subscribe();
    run_session(ws, id, hs, log.clone(), shared.config.clone(), kill).await;
    lock(&log).closed = true;
}

/// Why a session loop ended.
enum End {
    /// Socket error, or the client closed: nothing left to do.
    Gone,
    /// `drop_all`: drop the TCP stream without a close frame.
    Dropped,
    /// Close politely with this frame.
    Close(CloseFrame),
}

async fn run_session(
    mut ws: Ws,
    id: u64,
    hs: Handshake,
    log: Arc<Mutex<SessionLog>>,
    config: Arc<SimRealtimeConfig>,
    mut kill: watch::Receiver<u64>,
) {
    let model = hs.model.unwrap_or_else(|| "gpt-realtime".to_string());
    let mut session = Session::new(id, model, config.clone(), log.clone());
    let mut out = Vec::new();
    let end = if hs.beta {
        session.error(
            &mut out,
            "beta_api_shape_disabled",
            "The Realtime beta interface has been shut down; use the GA interface.",
            None,
            None,
        );
        End::Close(close_frame(4000, "beta_api_shape_disabled"))
    } else {
        session.created(&mut out);
        let cap_deadline = config.session_cap.map(|cap| Instant::now() + cap);
        loop {
            if send_all(&mut ws, &mut out, &log).await.is_err() {
                break End::Gone;
            }
            let due = session.next_due();
            tokio::select! {
                biased;
                _ = kill.changed() => break End::Dropped,
                _ = sleep_until_opt(cap_deadline) => {
                    session.error(&mut out, "session_expired", "Your session hit the maximum duration.", None, None);
                    break End::Close(close_frame(1000, "session_expired"));
                }
                _ = sleep_until_opt(due) => session.pump(Instant::now(), &mut out),
                message = ws.next() => match message {
                    Some(Ok(Message::Text(text))) => session.handle_text(text.as_str(), &mut out),
                    Some(Ok(Message::Binary(_))) => session.error(
                        &mut out, "invalid_value", "Binary frames are not supported; send JSON text events.", None, None,
                    ),
                    Some(Ok(_)) => {} // ping/pong handled by tungstenite; a close is answered on the next read.
                    Some(Err(_)) | None => break End::Gone,
                },
            }
        }
    };
    match end {
        End::Gone | End::Dropped => drop(ws),
        End::Close(frame) => {
            let _ = send_all(&mut ws, &mut out, &log).await;
            close_gracefully(&mut ws, frame).await;
        }
    }
}

fn close_frame(code: u16, reason: &str) -> CloseFrame {
    CloseFrame {
        code: CloseCode::from(code),
        reason: reason.to_string().into(),
    }
}

/// Sends the close frame and waits (briefly) for the peer's answer so the code reaches it intact.
async fn close_gracefully(ws: &mut Ws, frame: CloseFrame) {
    if ws.close(Some(frame)).await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Stamps each queued event with an `event_id`, notes errors in the log, and writes them all.
async fn send_all(ws: &mut Ws, out: &mut Vec<Value>, log: &Mutex<SessionLog>) -> Result<(), ()> {
    if out.is_empty() {
        return Ok(());
    }
    for mut event in out.drain(..) {
        if event.get("type").and_then(Value::as_str) == Some("error") {
            let code = event
                .pointer("/error/code")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            lock(log).errors_sent.push(code);
        }
        if let Some(map) = event.as_object_mut() {
            map.insert("event_id".into(), json!(new_id("event_")));
        }
        ws.feed(Message::text(event.to_string()))
            .await
            .map_err(|_| ())?;
    }
    ws.flush().await.map_err(|_| ())
}

#[cfg(test)]
#[path = "realtime_server_tests.rs"]
mod tests;

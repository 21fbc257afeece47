//! A fake OpenAI Realtime GA server on 127.0.0.1, for tests, the benchmark and the demo call.
//!
//! One WebSocket = one session. It speaks the GA event names from `docs/protocols.md` and is at least as strict
//! as the live service (see `docs/simulator.md`): every client event is checked field by field and value by
//! value against the GA schema and refused with an `error` carrying the client's `event_id` and the bad field's
//! `param`; a refused `session.update` changes nothing (the session stays on `audio/pcm` 24 kHz, and audio is
//! read and written in the session's actual format); one response at a time, cancelled asynchronously;
//! function calls in the live event order (partial ones on cancel); `response.done` with status, details and
//! usage; answer deltas of varying size; input transcripts after the response. It rejects the beta shape the
//! way the live service does (error `beta_api_shape_disabled`, close 4000), runs an energy VAD on the audio it
//! is fed, answers each caller turn with a scripted tone streamed faster than real time, validates truncations
//! against the audio it really sent, pings its clients, and can fail on command (outage, refused handshakes,
//! unreachable, session cap, closing one session). [`SimRealtimeConfig::lenient`] keeps the old forgiving
//! server for benchmarks. Everything a test may want to assert is kept in a per-session [`SessionLog`].

use std::collections::HashMap;
use std::net::SocketAddr;
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

use super::realtime_session::{known_model, Session};
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
    /// `(name, arguments JSON)`: after its audio the response also carries this function call (streamed as
    /// `function_call_arguments.delta`s, then `.done`). With `tone_ms: 0` the response is the call alone.
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

/// How a response ends, forced per response with [`SimRealtimeConfig::response_outcomes`].
///
/// (A field of its own rather than one on [`AgentTurn`]: existing tests build `AgentTurn` literally.)
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TurnOutcome {
    /// Audio, transcript and any function call in full; `response.done` status `completed`.
    #[default]
    Completed,
    /// No output at all: `response.created` then `response.done` status `failed` with
    /// `status_details.error.code` = `code` (e.g. `insufficient_quota`, `rate_limit_exceeded`, `server_error`).
    Failed { code: String },
    /// The answer stops halfway (audio, transcript; no function call): items `incomplete`, `response.done`
    /// status `incomplete` with `status_details.reason` = `reason` (`max_output_tokens` or `content_filter`).
    Incomplete { reason: String },
}

/// When `conversation.item.input_audio_transcription.completed` arrives for a caller turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TranscriptTiming {
    /// At the commit, before the response (the old, lenient behaviour).
    AtCommit,
    /// Right after the `response.done` of the response that answers the turn (the first response started
    /// after the commit, whatever its status); a turn no response answers gets its transcript 1 s after the commit.
    #[default]
    AfterResponse,
    /// This long after the commit, whatever the responses do.
    After(Duration),
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
    /// can match it on the caller's side (μ-law output only).
    pub tag_deltas: bool,
    /// Check every client event field by field and value by value against the GA schema (unknown fields,
    /// wrong types, out-of-range values, items, `reasoning` on models that don't take it, …). `false` keeps
    /// only the old checks (beta fields, `session.type`, truncation limits): for benchmarks, never for
    /// correctness tests.
    pub strict: bool,
    /// How long a cancelled response (`response.cancel`, or a barge-in with `interrupt_response`) stays
    /// active before its `response.done` (status `cancelled`). No audio is generated meanwhile, but a
    /// `response.create` is refused with `conversation_already_has_active_response`. Zero: at once.
    pub cancel_delay: Duration,
    /// Audio per delta varies in this range (ms, inclusive), from a pseudo-random sequence seeded by the
    /// session id, so runs repeat. `None`: every delta is `delta_ms` long.
    pub delta_ms_range: Option<(u32, u32)>,
    /// With `delta_ms_range`, sizes are multiples of this many ms (1: any whole ms; 20: whole Twilio frames).
    /// Odd sizes leave a partial 20 ms frame before each mark a bridge sends after a delta, which the
    /// simulated caller plays as a whole tick.
    pub delta_ms_step: u32,
    /// Gap between `response.function_call_arguments.delta` events, in ms of stream time (scaled by
    /// `speed_factor` like the audio).
    pub function_call_delta_ms: u32,
    /// When the caller's input transcripts arrive.
    pub transcript_timing: TranscriptTiming,
    /// Outcome of the Nth response of each session (0-based, in the order they start); past the end
    /// [`TurnOutcome::Completed`].
    pub response_outcomes: Vec<TurnOutcome>,
    /// What a response the client asks for with `tool_choice: "none"` says (the bridge's short lines while
    /// a tool runs) instead of the next scripted turn; `None`: such responses take the script's turns too.
    pub filler: Option<AgentTurn>,
    /// Dotted params (e.g. `"session.audio.input.noise_reduction"`) that a `session.update` may not set: an
    /// update that sets one (even to `null`) is refused with an error naming it, and changes nothing.
    pub reject_session_params: Vec<String>,
    /// A WebSocket Ping goes to the client this often ([`SessionLog::pings_sent`], and the Pongs that came
    /// back in [`SessionLog::pongs_received`]). Zero: no pings.
    pub ping_interval: Duration,
    /// Refuse the handshake with HTTP 404 when `?model=` is missing or not a known GA Realtime model (a family
    /// such as `gpt-realtime-2.1` or a dated snapshot `gpt-realtime-YYYY-MM-DD`), as the live service does.
    pub refuse_unknown_models: bool,
    /// The model's "thinking" before each response's first output: nothing of the response is sent until
    /// this long after it was created (after `response.created`).
    pub first_audio_delay: Duration,
    /// How much loud audio the VAD needs before it says speech started (`speech_started` arrives that
    /// late, with `audio_start_ms` at the first loud frame). Zero: at the first loud frame.
    pub speech_detect_ms: u32,
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
            strict: true,
            cancel_delay: Duration::from_millis(40),
            delta_ms_range: Some((40, 240)),
            delta_ms_step: 1,
            function_call_delta_ms: 20,
            transcript_timing: TranscriptTiming::AfterResponse,
            response_outcomes: Vec::new(),
            filler: None,
            reject_session_params: Vec::new(),
            ping_interval: Duration::from_secs(5),
            refuse_unknown_models: true,
            first_audio_delay: Duration::ZERO,
            speech_detect_ms: 0,
        }
    }
}

impl SimRealtimeConfig {
    /// The old forgiving server, for benchmarks only: no field checks, synchronous cancel, fixed-size deltas
    /// (`delta_ms`), transcripts at the commit (unless transcription is set to `null`), any model name.
    pub fn lenient() -> Self {
        Self {
            strict: false,
            cancel_delay: Duration::ZERO,
            delta_ms_range: None,
            transcript_timing: TranscriptTiming::AtCommit,
            refuse_unknown_models: false,
            ..Self::default()
        }
    }
}

/// One `error` event the server sent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SimErrorRecord {
    pub code: String,
    pub message: String,
    /// The dotted path of the bad field (`session.audio.output.speed`), if the error names one.
    pub param: Option<String>,
    /// The `event_id` of the client event that caused it (`None` when that event had none, or for errors
    /// no client event caused, such as `session_expired`).
    pub event_id: Option<String>,
}

/// A function call as it ended inside a response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SimFunctionCallRecord {
    pub item_id: String,
    pub call_id: String,
    pub name: String,
    /// The arguments sent (partial when the call did not complete).
    pub arguments: String,
    /// The item's final status: `completed` or `incomplete`.
    pub status: String,
}

/// One response, as its `response.done` reported it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SimResponseRecord {
    pub id: String,
    /// `completed`, `cancelled`, `incomplete` or `failed`.
    pub status: String,
    /// `status_details.reason` (`turn_detected`, `client_cancelled`, `max_output_tokens`, `content_filter`).
    pub reason: Option<String>,
    /// `status_details.error.code` of a failed response.
    pub error_code: Option<String>,
    /// Assistant audio sent in this response, in ms.
    pub audio_ms: u64,
    pub function_calls: Vec<SimFunctionCallRecord>,
    /// The `usage` object as sent.
    pub usage: Value,
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
    /// The `item` of each accepted client `conversation.item.create` (refused ones are in [`Self::errors`]).
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
    /// Every `error` event sent, with its param and the client event id it answers.
    pub errors: Vec<SimErrorRecord>,
    /// `response.create` events refused (a response was active, or the params were invalid).
    pub response_creates_refused: usize,
    /// Client `response.cancel` events received (valid or not).
    pub cancels_received: usize,
    /// Every response that ended, in order, with its final status.
    pub responses: Vec<SimResponseRecord>,
    /// `session.update` events refused (the session did not change).
    pub session_updates_rejected: usize,
    /// `(item_id, transcript)` of every input transcript sent, in order of sending.
    pub transcripts_sent: Vec<(String, String)>,
    /// The `usage` of each input transcript sent, in the same order.
    pub transcription_usage: Vec<Value>,
    /// WebSocket Pings sent, and Pongs received (the client answers only while it reads its socket).
    pub pings_sent: u64,
    pub pongs_received: u64,
    /// The close frame the server sent (code, reason), if it closed the socket politely.
    pub close_sent: Option<(u16, String)>,
}

/// A command from the test's handle to one session task.
enum Control {
    /// Close politely with this code and reason.
    Close(u16, String),
}

/// State shared by the accept loop, the session tasks and the test's handle.
struct Shared {
    config: Arc<SimRealtimeConfig>,
    sessions: Mutex<Vec<Arc<Mutex<SessionLog>>>>,
    /// While `Some`, new handshakes are refused with this HTTP status.
    reject_status: Mutex<Option<u16>>,
    /// Open sessions' command channels, by session id.
    controls: Mutex<HashMap<u64, mpsc::UnboundedSender<Control>>>,
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
            reject_status: Mutex::new(None),
            controls: Mutex::new(HashMap::new()),
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

    /// While `true`, new handshakes fail with HTTP 503 (the model stays unreachable). Same as
    /// `set_reject_status(Some(503))` / `set_reject_status(None)`.
    pub fn set_reject_connections(&self, reject: bool) {
        self.set_reject_status(reject.then_some(503));
    }

    /// While `Some(status)`, new handshakes are refused with that HTTP status and an OpenAI-style JSON error
    /// body: 401 `invalid_api_key`, 403, 404 `model_not_found`, 429 `rate_limit_exceeded`, 5xx a server
    /// error. `None` accepts again. Open sessions are not touched.
    pub fn set_reject_status(&self, status: Option<u16>) {
        *lock(&self.shared.reject_status) = status;
    }

    /// Closes the open session `id` (see [`SessionLog::id`]) with a close frame `code` / `reason`, as the
    /// service closes an idle or expired session. Returns `false` if that session is not open.
    pub fn close_session(&self, id: u64, code: u16, reason: &str) -> bool {
        lock(&self.shared.controls)
            .get(&id)
            .is_some_and(|tx| tx.send(Control::Close(code, reason.to_string())).is_ok())
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
    if let Ok(value) = "application/json".parse() {
        response.headers_mut().insert("content-type", value);
    }
    response
}

/// An OpenAI-style JSON error body for a refused handshake.
fn refusal_body(status: u16, model: Option<&str>) -> String {
    let (kind, code, message) = match status {
        401 => (
            "invalid_request_error",
            Some("invalid_api_key"),
            "Incorrect API key provided.".to_string(),
        ),
        403 => (
            "invalid_request_error",
            None,
            "You are not allowed to use this model.".to_string(),
        ),
        404 => (
            "invalid_request_error",
            Some("model_not_found"),
            format!(
                "The model '{}' does not exist or you do not have access to it.",
                model.unwrap_or("")
            ),
        ),
        429 => (
            "requests",
            Some("rate_limit_exceeded"),
            "Rate limit reached for requests.".to_string(),
        ),
        _ => (
            "server_error",
            None,
            "The server is temporarily unavailable (simulated outage).".to_string(),
        ),
    };
    json!({"error": {"message": message, "type": kind, "param": null, "code": code}}).to_string()
}

/// Notes what the handshake carried; `Err` is the HTTP status and body to refuse it with.
fn inspect_request(
    request: &Request,
    reject: Option<u16>,
    refuse_unknown_models: bool,
    hs: &mut Handshake,
) -> Result<(), (StatusCode, String)> {
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
    let refusal = if let Some(status) = reject {
        Some(status)
    } else if !hs.authorization {
        Some(401)
    } else if refuse_unknown_models && !hs.model.as_deref().is_some_and(known_model) {
        Some(404)
    } else {
        None
    };
    match refusal {
        Some(status) => {
            hs.rejected = Some(status);
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            Err((code, refusal_body(status, hs.model.as_deref())))
        }
        None => Ok(()),
    }
}

type Ws = WebSocketStream<TcpStream>;

// The handshake callback's error type is tungstenite's `http::Response`; boxing is not an option there.
#[allow(clippy::result_large_err)]
async fn serve_connection(stream: TcpStream, shared: Arc<Shared>) {
    let reject = *lock(&shared.reject_status);
    let refuse_unknown = shared.config.refuse_unknown_models;
    let mut hs = Handshake::default();
    let accepted =
        tokio_tungstenite::accept_hdr_async(stream, |request: &Request, response: Response| {
            inspect_request(request, reject, refuse_unknown, &mut hs)
                .map(|()| response)
                .map_err(|(status, body)| refuse(status, &body))
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
    let (control_tx, control) = mpsc::unbounded_channel();
    lock(&shared.controls).insert(id, control_tx);
    let channels = Channels { kill, control };
    run_session(ws, id, hs, log.clone(), shared.config.clone(), channels).await;
    lock(&shared.controls).remove(&id);
    lock(&log).closed = true;
}

/// What a session task listens to besides its socket.
struct Channels {
    kill: watch::Receiver<u64>,
    control: mpsc::UnboundedReceiver<Control>,
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
    channels: Channels,
) {
    let Channels {
        mut kill,
        mut control,
    } = channels;
    let mut ping = (!config.ping_interval.is_zero()).then(|| {
        let mut ping =
            tokio::time::interval_at(Instant::now() + config.ping_interval, config.ping_interval);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ping
    });
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
                Some(Control::Close(code, reason)) = control.recv() => break End::Close(close_frame(code, &reason)),
                _ = tick_opt(&mut ping) => {
                    if ws.send(Message::Ping(Vec::new().into())).await.is_err() {
                        break End::Gone;
                    }
                    lock(&log).pings_sent += 1;
                }
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
                    Some(Ok(Message::Pong(_))) => lock(&log).pongs_received += 1,
                    Some(Ok(_)) => {} // pings are answered by tungstenite; a close is answered on the next read.
                    Some(Err(_)) | None => break End::Gone,
                },
            }
        }
    };
    match end {
        End::Gone | End::Dropped => drop(ws),
        End::Close(frame) => {
            let _ = send_all(&mut ws, &mut out, &log).await;
            lock(&log).close_sent = Some((u16::from(frame.code), frame.reason.to_string()));
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

async fn tick_opt(interval: &mut Option<tokio::time::Interval>) {
    match interval {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
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
            let text = |pointer: &str| {
                event
                    .pointer(pointer)
                    .and_then(Value::as_str)
                    .map(str::to_string)
            };
            let record = SimErrorRecord {
                code: text("/error/code").unwrap_or_default(),
                message: text("/error/message").unwrap_or_default(),
                param: text("/error/param"),
                event_id: text("/error/event_id"),
            };
            let mut log = lock(log);
            log.errors_sent.push(record.code.clone());
            log.errors.push(record);
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

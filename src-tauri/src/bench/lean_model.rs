//! The lean fake Realtime GA server of `verbio bench`: the lenient simulator's behaviour (energy VAD,
//! `speech_started` / `speech_stopped` / commit, one scripted answer per caller turn streamed at twice real
//! time in 100 ms deltas, synchronous cancel on barge-in, truncation checked against the audio sent,
//! optional function calls, a session cap) at a fraction of its cost:
//! - `input_audio_buffer.append`, the one event that comes 50 times a second per call, is read with a
//!   borrowed scan (no `serde_json::Value`) and its audio decoded into a reused buffer;
//! - the answer's audio is base64-encoded once for every session; each delta only re-encodes the 20
//!   characters that carry its tag, and is written from a template;
//! - everything one wake-up produces goes out in one socket write.
//!
//! The rare client events (`session.update`, `conversation.item.create`, truncate, `response.create`,
//! cancel) are parsed with serde as the simulator does: they are a handful per call-minute.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Map, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

use super::lean_caller::socket_config;
use super::meter::{slot_of, Meter};
use super::scan::{find_str, push_tagged_payload, TAG_GROUP_CHARS};
use crate::audio::mulaw;
use crate::sim::frame_tag::read_tag;

/// Delta tags count up from here (caller frame tags stay below).
static NEXT_DELTA_TAG: AtomicU64 = AtomicU64::new(0x8000_0000);

/// How the lean model behaves.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    /// The answer: its transcript, tone and length.
    pub text: String,
    pub tone_hz: f64,
    pub tone_ms: u32,
    /// Audio per delta, and how much faster than real time the answer is streamed.
    pub delta_ms: u32,
    pub speed: f64,
    pub vad_rms_threshold: f64,
    pub silence_ms: u32,
    /// Every Nth answer to a caller turn (1-based count per session) ends with a function call.
    pub tool_every: Option<usize>,
    /// `(name, arguments JSON)` of that call.
    pub tool: (String, String),
    /// At the cap: `error` `session_expired`, then close (1000).
    pub session_cap: Option<Duration>,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            text: "Here is my answer.".into(),
            tone_hz: 880.0,
            tone_ms: 2000,
            delta_ms: 100,
            speed: 2.0,
            vad_rms_threshold: 500.0,
            silence_ms: 400,
            tool_every: None,
            tool: ("transfer_call".into(), r#"{"reason":"soak"}"#.into()),
            session_cap: None,
        }
    }
}

/// What the server did, all sessions together.
#[derive(Debug, Default)]
pub struct ModelCounters {
    pub sessions: AtomicU64,
    pub open_sessions: AtomicU64,
    pub expired: AtomicU64,
    pub responses: AtomicU64,
    pub cancelled: AtomicU64,
    pub tool_calls: AtomicU64,
    pub function_outputs: AtomicU64,
    pub items_created: AtomicU64,
    pub truncates: AtomicU64,
    pub errors_sent: AtomicU64,
}

/// The answer's audio, cut into deltas and encoded once.
struct Answer {
    /// Per delta: its first 160 bytes (for the tag patch), the base64 after the tagged part, its length.
    deltas: Vec<([u8; 160], String, usize)>,
    /// Transcript pieces sent with each delta.
    words: Vec<String>,
}

impl Answer {
    fn new(config: &ModelConfig) -> Self {
        let audio = mulaw::tone(config.tone_hz, config.tone_ms, 0.5);
        let per = (config.delta_ms as usize * 8).max(160);
        let chars: Vec<char> = config.text.chars().collect();
        let n = audio.len().div_ceil(per);
        let mut deltas = Vec::with_capacity(n);
        let mut words = Vec::with_capacity(n);
        let mut text_sent = 0;
        for (i, chunk) in audio.chunks(per).enumerate() {
            let mut first = [mulaw::SILENCE; 160];
            let head = chunk.len().min(160);
            first[..head].copy_from_slice(&chunk[..head]);
            let encoded = base64::engine::general_purpose::STANDARD.encode(chunk);
            let rest = if chunk.len() >= 160 {
                encoded[TAG_GROUP_CHARS..].to_string()
            } else {
                encoded
            };
            deltas.push((first, rest, chunk.len()));
            let end = (i * per + chunk.len()).min(audio.len());
            let upto = chars.len() * end / audio.len().max(1);
            words.push(chars[text_sent..upto].iter().collect());
            text_sent = upto;
        }
        Answer { deltas, words }
    }
}

/// A running lean model. Dropping it stops accepting and ends every session.
pub struct LeanModel {
    addr: std::net::SocketAddr,
    pub counters: Arc<ModelCounters>,
    stop: watch::Sender<bool>,
    accept: tokio::task::JoinHandle<()>,
}

impl LeanModel {
    pub async fn start(config: ModelConfig, meter: Arc<Meter>) -> std::io::Result<LeanModel> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let counters = Arc::new(ModelCounters::default());
        let (stop, stopped) = watch::channel(false);
        let shared = Arc::new(Shared {
            answer: Answer::new(&config),
            config,
            meter,
            counters: counters.clone(),
        });
        let accept = tokio::spawn(async move {
            let mut next_id = 0u64;
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        let _ = stream.set_nodelay(true);
                        next_id += 1;
                        tokio::spawn(serve(stream, shared.clone(), next_id, stopped.clone()));
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
        Ok(LeanModel {
            addr,
            counters,
            stop,
            accept,
        })
    }

    /// `ws://127.0.0.1:PORT/v1/realtime`.
    pub fn url(&self) -> String {
        format!("ws://{}/v1/realtime", self.addr)
    }
}

impl Drop for LeanModel {
    fn drop(&mut self) {
        self.accept.abort();
        let _ = self.stop.send(true);
    }
}

struct Shared {
    config: ModelConfig,
    answer: Answer,
    meter: Arc<Meter>,
    counters: Arc<ModelCounters>,
}

async fn serve(
    stream: TcpStream,
    shared: Arc<Shared>,
    id: u64,
    mut stopped: watch::Receiver<bool>,
) {
    let Ok(mut ws) =
        tokio_tungstenite::accept_async_with_config(stream, Some(socket_config())).await
    else {
        return;
    };
    let counters = shared.counters.clone();
    counters.sessions.fetch_add(1, Ordering::Relaxed);
    counters.open_sessions.fetch_add(1, Ordering::Relaxed);
    let cap = shared.config.session_cap.map(|cap| Instant::now() + cap);
    let mut session = Session::new(shared, id);
    session.created();
    let mut close = None;
    loop {
        if !session.out.is_empty() {
            let mut sent = Ok(());
            for text in session.out.drain(..) {
                sent = ws.feed(Message::text(text)).await;
                if sent.is_err() {
                    break;
                }
            }
            if sent.is_err() || ws.flush().await.is_err() {
                break;
            }
        }
        if let Some(frame) = close.take() {
            let _ = ws.close(Some(frame)).await;
            let _ = tokio::time::timeout(Duration::from_secs(1), async {
                while let Some(Ok(_)) = ws.next().await {}
            })
            .await;
            break;
        }
        let due = session.next_due();
        tokio::select! {
            biased;
            _ = stopped.changed() => break,
            _ = sleep_until_opt(cap) => {
                session.counters().expired.fetch_add(1, Ordering::Relaxed);
                session.current_event_id = None; // no client event caused it
                session.error("session_expired", "Your session hit the maximum duration.", None);
                close = Some(CloseFrame { code: CloseCode::Normal, reason: "session_expired".into() });
            }
            _ = sleep_until_opt(due) => session.pump(Instant::now()),
            message = ws.next() => match message {
                Some(Ok(Message::Text(text))) => session.on_text(text.as_str()),
                Some(Ok(Message::Binary(_))) => session.error("invalid_value", "Binary frames are not supported; send JSON text events.", None),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            },
        }
    }
    counters.open_sessions.fetch_sub(1, Ordering::Relaxed);
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

struct Response {
    id: String,
    /// The meter's number for it (interruption bookkeeping).
    no: u32,
    item_id: String,
    started: Instant,
    /// Deltas sent.
    sent: usize,
    bytes_sent: usize,
    tool: bool,
}

/// An item the conversation holds: assistant audio can be truncated.
struct Item {
    id: String,
    /// `(bytes sent, response number)` for assistant audio.
    audio: Option<(usize, u32)>,
}

struct Session {
    shared: Arc<Shared>,
    id: u64,
    events: u64,
    slot: Option<usize>,
    session: Value,
    transcription_off: bool,
    out: Vec<String>,
    audio: Vec<u8>,
    pending: Vec<u8>,
    input_ms: u64,
    loud_since: Option<u64>,
    speaking: Option<String>,
    silence_run_ms: u32,
    uncommitted_ms: u64,
    user_turns: usize,
    answered_turns: usize,
    items: Vec<Item>,
    response: Option<Response>,
    current_event_id: Option<String>,
}

impl Session {
    fn new(shared: Arc<Shared>, id: u64) -> Self {
        let session = crate::sim::realtime_session::default_session(
            format!("sess_{id:024x}"),
            "gpt-realtime",
            0,
            shared.config.silence_ms,
        );
        Session {
            shared,
            id,
            events: 0,
            slot: None,
            session,
            transcription_off: false,
            out: Vec::new(),
            audio: Vec::with_capacity(1024),
            pending: Vec::with_capacity(320),
            input_ms: 0,
            loud_since: None,
            speaking: None,
            silence_run_ms: 0,
            uncommitted_ms: 0,
            user_turns: 0,
            answered_turns: 0,
            items: Vec::new(),
            response: None,
            current_event_id: None,
        }
    }

    fn counters(&self) -> &ModelCounters {
        &self.shared.counters
    }

    fn new_id(&mut self, prefix: &str) -> String {
        self.events += 1;
        format!("{prefix}{:08x}{:016x}", self.id, self.events)
    }

    /// Queues a server event built as a `Value` (the rare ones), stamped with an `event_id`.
    fn push(&mut self, mut event: Value) {
        let id = self.new_id("event_");
        if let Some(map) = event.as_object_mut() {
            map.insert("event_id".into(), Value::String(id));
        }
        self.out.push(event.to_string());
    }

    fn error(&mut self, code: &str, message: &str, param: Option<&str>) {
        self.counters().errors_sent.fetch_add(1, Ordering::Relaxed);
        let event_id = self.current_event_id.clone();
        self.push(json!({
            "type": "error",
            "error": {"type": "invalid_request_error", "code": code, "message": message, "param": param, "event_id": event_id}
        }));
    }

    fn created(&mut self) {
        let session = self.session.clone();
        self.push(json!({"type": "session.created", "session": session}));
    }

    fn next_due(&self) -> Option<Instant> {
        let r = self.response.as_ref()?;
        Some(r.started + self.delta_offset(r.sent))
    }

    fn delta_offset(&self, n: usize) -> Duration {
        let ms = n as f64 * f64::from(self.shared.config.delta_ms) / self.shared.config.speed;
        Duration::from_secs_f64(ms / 1000.0)
    }

    fn on_text(&mut self, text: &str) {
        if find_str(text, &["type"]) == Some("input_audio_buffer.append") {
            if let Some(audio) = find_str(text, &["audio"]) {
                return self.append(audio);
            }
        }
        self.on_event(text);
    }

    // ----- the hot path -----

    fn append(&mut self, encoded: &str) {
        self.audio.clear();
        if base64::engine::general_purpose::STANDARD
            .decode_vec(encoded, &mut self.audio)
            .is_err()
        {
            return self.error(
                "invalid_value",
                "Invalid 'audio': not valid base64.",
                Some("audio"),
            );
        }
        let meter = self.shared.meter.clone();
        for offset in (0..self.audio.len()).step_by(160) {
            if let Some(tag) = read_tag(&self.audio[offset..]) {
                if let Some(slot) = slot_of(tag) {
                    self.slot.get_or_insert(slot);
                    meter.frame_received(tag);
                }
            }
        }
        let mut pending = std::mem::take(&mut self.pending);
        pending.extend_from_slice(&self.audio);
        let whole = pending.len() / 160 * 160;
        for frame in pending[..whole].chunks_exact(160) {
            self.vad_frame(frame);
        }
        pending.drain(..whole);
        self.pending = pending;
    }

    fn vad_frame(&mut self, frame: &[u8]) {
        let start_ms = self.input_ms;
        self.input_ms += 20;
        self.uncommitted_ms += 20;
        if mulaw::rms(frame) > self.shared.config.vad_rms_threshold {
            self.silence_run_ms = 0;
            let loud_since = *self.loud_since.get_or_insert(start_ms);
            if self.speaking.is_none() {
                let item_id = self.new_id("item_");
                if let Some(slot) = self.slot {
                    self.shared.meter.speech_started(slot);
                }
                self.push(json!({
                    "type": "input_audio_buffer.speech_started",
                    "audio_start_ms": loud_since,
                    "item_id": item_id,
                }));
                self.speaking = Some(item_id);
                if self.response.is_some() {
                    self.cancel("turn_detected");
                }
            }
        } else if self.speaking.is_none() {
            self.loud_since = None;
        } else {
            self.silence_run_ms += 20;
            if self.silence_run_ms >= self.shared.config.silence_ms {
                let Some(item_id) = self.speaking.take() else {
                    return;
                };
                self.silence_run_ms = 0;
                self.loud_since = None;
                let end = self.input_ms;
                self.push(json!({
                    "type": "input_audio_buffer.speech_stopped",
                    "audio_end_ms": end,
                    "item_id": item_id,
                }));
                self.commit(item_id);
                if self.response.is_none() {
                    self.answered_turns += 1;
                    let tool = self
                        .shared
                        .config
                        .tool_every
                        .is_some_and(|n| n > 0 && self.answered_turns.is_multiple_of(n));
                    self.start_response(tool);
                }
            }
        }
    }

    fn previous_item(&self) -> Option<String> {
        self.items.last().map(|i| i.id.clone())
    }

    fn commit(&mut self, item_id: String) {
        self.uncommitted_ms = 0;
        self.user_turns += 1;
        let previous = self.previous_item();
        let item = json!({
            "id": item_id, "object": "realtime.item", "type": "message", "role": "user",
            "status": "completed", "content": [{"type": "input_audio", "transcript": null}]
        });
        self.push(json!({"type": "input_audio_buffer.committed", "item_id": item_id, "previous_item_id": previous}));
        self.push(
            json!({"type": "conversation.item.added", "previous_item_id": previous, "item": item}),
        );
        self.items.push(Item {
            id: item_id.clone(),
            audio: None,
        });
        if !self.transcription_off {
            let transcript = format!("caller turn {}", self.user_turns);
            self.push(json!({
                "type": "conversation.item.input_audio_transcription.completed",
                "item_id": item_id, "content_index": 0, "transcript": transcript,
                "usage": {"type": "tokens", "input_tokens": 6, "output_tokens": 3, "total_tokens": 9,
                          "input_token_details": {"text_tokens": 0, "audio_tokens": 6}}
            }));
        }
    }

    // ----- responses -----

    fn response_base(&self, id: &str, status: &str) -> Value {
        json!({
            "id": id, "object": "realtime.response", "status": status, "status_details": null,
            "output": [], "conversation_id": "conv_sim", "output_modalities": ["audio"],
            "max_output_tokens": "inf",
            "audio": {"output": {"format": {"type": "audio/pcmu"}, "voice": "marin"}},
            "metadata": null, "usage": null
        })
    }

    fn start_response(&mut self, tool: bool) {
        self.counters().responses.fetch_add(1, Ordering::Relaxed);
        let id = self.new_id("resp_");
        let item_id = self.new_id("item_");
        let no = self
            .slot
            .map_or(0, |slot| self.shared.meter.response_started(slot));
        let base = self.response_base(&id, "in_progress");
        self.push(json!({"type": "response.created", "response": base}));
        let item = json!({
            "id": item_id, "object": "realtime.item", "type": "message", "role": "assistant",
            "status": "in_progress", "content": []
        });
        self.push(json!({"type": "response.output_item.added", "response_id": id, "output_index": 0, "item": item}));
        let previous = self.previous_item();
        self.push(
            json!({"type": "conversation.item.added", "previous_item_id": previous, "item": item}),
        );
        self.push(json!({
            "type": "response.content_part.added", "response_id": id, "item_id": item_id,
            "output_index": 0, "content_index": 0, "part": {"type": "audio", "transcript": ""}
        }));
        self.items.push(Item {
            id: item_id.clone(),
            audio: Some((0, no)),
        });
        self.response = Some(Response {
            id,
            no,
            item_id,
            started: Instant::now(),
            sent: 0,
            bytes_sent: 0,
            tool,
        });
    }

    /// Sends the deltas that are due; ends the response after the last.
    fn pump(&mut self, now: Instant) {
        loop {
            let Some(r) = self.response.as_ref() else {
                return;
            };
            if r.sent >= self.shared.answer.deltas.len() {
                return self.finish(None);
            }
            if r.started + self.delta_offset(r.sent) > now {
                return;
            }
            self.send_delta();
        }
    }

    fn send_delta(&mut self) {
        let shared = self.shared.clone();
        let event_id = self.new_id("event_");
        let Some(r) = self.response.as_mut() else {
            return;
        };
        let (first, rest, len) = &shared.answer.deltas[r.sent];
        let mut text = String::with_capacity(rest.len() + 256);
        text.push_str("{\"type\":\"response.output_audio.delta\",\"event_id\":\"");
        text.push_str(&event_id);
        text.push_str("\",\"response_id\":\"");
        text.push_str(&r.id);
        text.push_str("\",\"item_id\":\"");
        text.push_str(&r.item_id);
        text.push_str("\",\"output_index\":0,\"content_index\":0,\"delta\":\"");
        if *len >= 160 {
            let tag = NEXT_DELTA_TAG.fetch_add(1, Ordering::Relaxed) as u32;
            if let Some(slot) = self.slot {
                shared.meter.delta_sent(slot, tag, *len, r.no);
            }
            push_tagged_payload(&mut text, first, rest, tag);
        } else {
            text.push_str(rest);
        }
        text.push_str("\"}");
        self.out.push(text);
        let words = &shared.answer.words[r.sent];
        let (id, item_id) = (r.id.clone(), r.item_id.clone());
        r.sent += 1;
        r.bytes_sent += len;
        let bytes_sent = r.bytes_sent;
        if let Some(item) = self.items.iter_mut().rev().find(|i| i.id == item_id) {
            if let Some((sent, _)) = item.audio.as_mut() {
                *sent = bytes_sent;
            }
        }
        if !words.is_empty() {
            let event_id = self.new_id("event_");
            let mut text = String::with_capacity(200);
            text.push_str("{\"type\":\"response.output_audio_transcript.delta\",\"event_id\":\"");
            text.push_str(&event_id);
            text.push_str("\",\"response_id\":\"");
            text.push_str(&id);
            text.push_str("\",\"item_id\":\"");
            text.push_str(&item_id);
            text.push_str("\",\"output_index\":0,\"content_index\":0,\"delta\":");
            text.push_str(&Value::String(words.clone()).to_string());
            text.push('}');
            self.out.push(text);
        }
    }

    fn cancel(&mut self, reason: &str) {
        if let Some(r) = self.response.as_ref() {
            if let Some(slot) = self.slot {
                self.shared.meter.response_interrupted(slot, r.no);
            }
            self.counters().cancelled.fetch_add(1, Ordering::Relaxed);
            self.finish(Some(reason));
        }
    }

    /// Closes the message (and the function call, if any) and sends `response.done`.
    fn finish(&mut self, cancelled: Option<&str>) {
        let Some(r) = self.response.take() else {
            return;
        };
        let status = if cancelled.is_some() {
            "incomplete"
        } else {
            "completed"
        };
        let transcript: String = self.shared.answer.words[..r.sent].concat();
        let base = |kind: &str| json!({"type": kind, "response_id": r.id, "item_id": r.item_id, "output_index": 0, "content_index": 0});
        self.push(base("response.output_audio.done"));
        let mut done = base("response.output_audio_transcript.done");
        done["transcript"] = json!(transcript);
        self.push(done);
        let mut part = base("response.content_part.done");
        part["part"] = json!({"type": "audio", "transcript": transcript});
        self.push(part);
        let item = json!({
            "id": r.item_id, "object": "realtime.item", "type": "message", "role": "assistant",
            "status": status, "content": [{"type": "output_audio", "transcript": transcript}]
        });
        self.push(json!({"type": "response.output_item.done", "response_id": r.id, "output_index": 0, "item": item}));
        self.push(json!({"type": "conversation.item.done", "item": item}));
        let mut output = vec![item];
        if r.tool && cancelled.is_none() {
            output.push(self.function_call(&r.id));
        }
        let audio_ms = (r.bytes_sent / 8) as u64;
        let mut response = self.response_base(
            &r.id,
            if cancelled.is_some() {
                "cancelled"
            } else {
                "completed"
            },
        );
        if let Some(reason) = cancelled {
            response["status_details"] = json!({"type": "cancelled", "reason": reason});
        }
        response["output"] = Value::Array(output);
        let input = 40 + 10 * self.user_turns as u64;
        let output_audio = audio_ms.div_ceil(50);
        response["usage"] = json!({
            "total_tokens": input + output_audio + 5, "input_tokens": input, "output_tokens": output_audio + 5,
            "input_token_details": {"text_tokens": 30, "audio_tokens": input - 30, "image_tokens": 0, "cached_tokens": 0,
                "cached_tokens_details": {"text_tokens": 0, "audio_tokens": 0, "image_tokens": 0}},
            "output_token_details": {"text_tokens": 5, "audio_tokens": output_audio}
        });
        self.push(json!({"type": "response.done", "response": response}));
    }

    /// A function call at the end of a response, streamed in three argument deltas.
    fn function_call(&mut self, response_id: &str) -> Value {
        self.counters().tool_calls.fetch_add(1, Ordering::Relaxed);
        let (name, arguments) = self.shared.config.tool.clone();
        let item_id = self.new_id("item_");
        let call_id = self.new_id("call_");
        let item = json!({
            "id": item_id, "object": "realtime.item", "type": "function_call", "status": "in_progress",
            "name": name, "call_id": call_id, "arguments": ""
        });
        self.push(json!({"type": "response.output_item.added", "response_id": response_id, "output_index": 1, "item": item}));
        let previous = self.previous_item();
        self.push(
            json!({"type": "conversation.item.added", "previous_item_id": previous, "item": item}),
        );
        let chars: Vec<char> = arguments.chars().collect();
        for i in 0..3 {
            let piece: String = chars[chars.len() * i / 3..chars.len() * (i + 1) / 3]
                .iter()
                .collect();
            self.push(json!({
                "type": "response.function_call_arguments.delta", "response_id": response_id, "item_id": item_id,
                "output_index": 1, "call_id": call_id, "delta": piece
            }));
        }
        self.push(json!({
            "type": "response.function_call_arguments.done", "response_id": response_id, "item_id": item_id,
            "output_index": 1, "call_id": call_id, "name": name, "arguments": arguments
        }));
        let item = json!({
            "id": item_id, "object": "realtime.item", "type": "function_call", "status": "completed",
            "name": name, "call_id": call_id, "arguments": arguments
        });
        self.push(json!({"type": "response.output_item.done", "response_id": response_id, "output_index": 1, "item": item}));
        self.push(json!({"type": "conversation.item.done", "item": item}));
        self.items.push(Item {
            id: item_id,
            audio: None,
        });
        item
    }

    // ----- the rare client events -----

    fn on_event(&mut self, text: &str) {
        self.current_event_id = None;
        let Ok(Value::Object(event)) = serde_json::from_str::<Value>(text) else {
            return self.error("invalid_json", "The event is not a JSON object.", None);
        };
        self.current_event_id = event
            .get("event_id")
            .and_then(Value::as_str)
            .map(str::to_string);
        let kind = event.get("type").and_then(Value::as_str).unwrap_or("");
        match kind {
            "session.update" => self.session_update(&event),
            "conversation.item.create" => self.item_create(&event),
            "conversation.item.truncate" => self.truncate(&event),
            "conversation.item.delete" => {
                let id = event.get("item_id").and_then(Value::as_str).unwrap_or("");
                match self.items.iter().position(|i| i.id == id) {
                    Some(pos) => {
                        let item = self.items.remove(pos);
                        self.push(json!({"type": "conversation.item.deleted", "item_id": item.id}));
                    }
                    None => self.error(
                        "invalid_value",
                        &format!("Item with item_id '{id}' not found."),
                        Some("item_id"),
                    ),
                }
            }
            "response.create" => {
                if self.response.is_some() {
                    self.error(
                        "conversation_already_has_active_response",
                        "Conversation already has an active response in progress. Wait until the response is finished before creating a new one.",
                        None,
                    );
                } else {
                    self.start_response(false);
                }
            }
            "response.cancel" => {
                if self.response.is_some() {
                    self.cancel("client_cancelled");
                } else {
                    self.error(
                        "response_cancel_not_active",
                        "Cancellation failed: no active response found.",
                        None,
                    );
                }
            }
            "input_audio_buffer.commit" => {
                if self.uncommitted_ms == 0 {
                    self.error(
                        "input_audio_buffer_commit_empty",
                        "Error committing input audio buffer: buffer too small.",
                        None,
                    );
                } else {
                    let id = self.speaking.take().unwrap_or_else(|| self.new_id("item_"));
                    self.commit(id);
                }
            }
            "input_audio_buffer.clear" => {
                self.uncommitted_ms = 0;
                self.speaking = None;
                self.pending.clear();
                self.push(json!({"type": "input_audio_buffer.cleared"}));
            }
            "input_audio_buffer.append" => {
                self.error("invalid_value", "Invalid 'audio'.", Some("audio"))
            }
            other => {
                let message = format!("Invalid value: '{other:.60}'.");
                self.error("invalid_value", &message, Some("type"))
            }
        }
    }

    fn session_update(&mut self, event: &Map<String, Value>) {
        let Some(patch) = event.get("session").and_then(Value::as_object) else {
            return self.error(
                "missing_required_parameter",
                "Missing required parameter: 'session'.",
                Some("session"),
            );
        };
        if let Some(off) =
            crate::sim::realtime_session::merge_session_update(&mut self.session, patch)
        {
            self.transcription_off = off;
        }
        let session = self.session.clone();
        self.push(json!({"type": "session.updated", "session": session}));
    }

    fn item_create(&mut self, event: &Map<String, Value>) {
        let Some(item) = event.get("item").and_then(Value::as_object) else {
            return self.error(
                "missing_required_parameter",
                "Missing required parameter: 'item'.",
                Some("item"),
            );
        };
        self.counters()
            .items_created
            .fetch_add(1, Ordering::Relaxed);
        if item.get("type").and_then(Value::as_str) == Some("function_call_output") {
            self.counters()
                .function_outputs
                .fetch_add(1, Ordering::Relaxed);
        }
        let mut stored = item.clone();
        let id = match stored.get("id").and_then(Value::as_str) {
            Some(id) => id.to_string(),
            None => {
                let id = self.new_id("item_");
                stored.insert("id".into(), json!(id));
                id
            }
        };
        stored.insert("object".into(), json!("realtime.item"));
        stored.entry("status").or_insert(json!("completed"));
        let previous = self.previous_item();
        let value = Value::Object(stored);
        self.push(
            json!({"type": "conversation.item.added", "previous_item_id": previous, "item": value}),
        );
        self.push(
            json!({"type": "conversation.item.done", "previous_item_id": previous, "item": value}),
        );
        self.items.push(Item { id, audio: None });
    }

    fn truncate(&mut self, event: &Map<String, Value>) {
        self.counters().truncates.fetch_add(1, Ordering::Relaxed);
        let item_id = event.get("item_id").and_then(Value::as_str).unwrap_or("");
        let Some(end_ms) = event.get("audio_end_ms").and_then(Value::as_u64) else {
            return self.error(
                "missing_required_parameter",
                "conversation.item.truncate needs 'item_id' and a non-negative integer 'audio_end_ms'.",
                Some("audio_end_ms"),
            );
        };
        let found = self.items.iter().find(|i| i.id == item_id).map(|i| i.audio);
        if let (Some(slot), Some(Some((_, response)))) = (self.slot, found) {
            self.shared.meter.truncate_received(slot, response, end_ms);
        }
        match found {
            None => self.error(
                "invalid_value",
                &format!("Item with item_id '{item_id}' not found."),
                Some("item_id"),
            ),
            Some(None) | Some(Some((0, _))) => self.error(
                "unsupported_content_type",
                "Only model output audio messages can be truncated.",
                Some("item_id"),
            ),
            Some(Some((sent, no))) => {
                if let Some(slot) = self.slot {
                    self.shared.meter.response_interrupted(slot, no);
                }
                let have_ms = (sent / 8) as u64;
                if end_ms > have_ms {
                    let message =
                        format!("Audio content of {have_ms}ms is already shorter than {end_ms}ms.");
                    return self.error("invalid_value", &message, Some("audio_end_ms"));
                }
                let item_id = item_id.to_string();
                self.push(json!({
                    "type": "conversation.item.truncated", "item_id": item_id,
                    "content_index": 0, "audio_end_ms": end_ms
                }));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(config: ModelConfig) -> Session {
        let meter = Arc::new(Meter::default());
        Session::new(
            Arc::new(Shared {
                answer: Answer::new(&config),
                config,
                meter,
                counters: Arc::new(ModelCounters::default()),
            }),
            1,
        )
    }

    fn append(frame: &[u8]) -> String {
        json!({"type": "input_audio_buffer.append", "event_id": "evt_1",
               "audio": base64::engine::general_purpose::STANDARD.encode(frame)})
        .to_string()
    }

    fn types(out: &[String]) -> Vec<String> {
        out.iter()
            .map(|t| {
                let v: Value = serde_json::from_str(t).expect("valid JSON");
                assert!(v.get("event_id").is_some(), "{t}");
                v["type"].as_str().unwrap().to_string()
            })
            .collect()
    }

    #[tokio::test]
    async fn a_turn_is_heard_answered_in_tagged_deltas_and_interrupted() {
        let mut s = session(ModelConfig {
            tool_every: Some(1),
            ..ModelConfig::default()
        });
        let mut frame = [0u8; 160];
        frame.copy_from_slice(&mulaw::tone(440.0, 20, 0.5));
        let mut tagged = frame;
        crate::sim::frame_tag::tag_frame(&mut tagged, Meter::frame_tag(3, 1));
        s.on_text(&append(&tagged));
        assert_eq!(s.slot, Some(3));
        assert_eq!(types(&s.out), vec!["input_audio_buffer.speech_started"]);
        s.out.clear();
        for _ in 0..20 {
            s.on_text(&append(&[mulaw::SILENCE; 160]));
        }
        let t = types(&s.out);
        assert_eq!(
            &t[..6],
            [
                "input_audio_buffer.speech_stopped",
                "input_audio_buffer.committed",
                "conversation.item.added",
                "conversation.item.input_audio_transcription.completed",
                "response.created",
                "response.output_item.added"
            ]
        );
        s.out.clear();
        let start = s.response.as_ref().unwrap().started;
        s.pump(start + Duration::from_secs(5));
        let t = types(&s.out);
        let deltas: Vec<&String> = s
            .out
            .iter()
            .filter(|m| m.contains("response.output_audio.delta"))
            .collect();
        assert_eq!(deltas.len(), 20);
        let first: Value = serde_json::from_str(deltas[0]).unwrap();
        let audio = base64::engine::general_purpose::STANDARD
            .decode(first["delta"].as_str().unwrap())
            .unwrap();
        assert_eq!(audio.len(), 800);
        assert!(read_tag(&audio).is_some_and(|tag| tag >= 0x8000_0000));
        assert!(t.contains(&"response.function_call_arguments.done".to_string()));
        assert_eq!(t.last().map(String::as_str), Some("response.done"));
        let done: Value = serde_json::from_str(s.out.last().unwrap()).unwrap();
        assert_eq!(done["response"]["status"], "completed");
        assert_eq!(done["response"]["output"].as_array().unwrap().len(), 2);
        // A barge-in cancels the next answer.
        s.out.clear();
        s.on_text(&json!({"type": "response.create", "event_id": "evt_2"}).to_string());
        s.on_text(&append(&frame));
        let t = types(&s.out);
        assert!(t.contains(&"input_audio_buffer.speech_started".to_string()));
        let done: Value = serde_json::from_str(s.out.last().unwrap()).unwrap();
        assert_eq!(done["response"]["status"], "cancelled");
    }

    #[tokio::test]
    async fn updates_and_truncates_are_answered() {
        let mut s = session(ModelConfig::default());
        s.on_text(&json!({"type": "session.update", "event_id": "e1", "session": {"type": "realtime",
            "audio": {"input": {"format": {"type": "audio/pcmu"}}, "output": {"format": {"type": "audio/pcmu"}}}}}).to_string());
        let updated: Value = serde_json::from_str(&s.out[0]).unwrap();
        assert_eq!(updated["type"], "session.updated");
        assert_eq!(
            updated["session"]["audio"]["output"]["format"]["type"],
            "audio/pcmu"
        );
        assert_eq!(updated["session"]["audio"]["output"]["voice"], "marin");
        s.out.clear();
        s.start_response(false);
        let start = s.response.as_ref().unwrap().started;
        s.pump(start + Duration::from_millis(120)); // three deltas: 300 ms of audio
        let item = s.response.as_ref().unwrap().item_id.clone();
        s.out.clear();
        s.on_text(
            &json!({"type": "conversation.item.truncate", "event_id": "e2", "item_id": item,
            "content_index": 0, "audio_end_ms": 250})
            .to_string(),
        );
        assert_eq!(types(&s.out), vec!["conversation.item.truncated"]);
        s.out.clear();
        s.on_text(
            &json!({"type": "conversation.item.truncate", "event_id": "e3", "item_id": item,
            "content_index": 0, "audio_end_ms": 900})
            .to_string(),
        );
        let error: Value = serde_json::from_str(&s.out[0]).unwrap();
        assert_eq!(error["error"]["event_id"], "e3");
        assert_eq!(error["error"]["param"], "audio_end_ms");
    }
}

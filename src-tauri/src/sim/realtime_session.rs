//! One simulated Realtime session: client events in, server events out, no I/O.
//!
//! Kept apart from the socket loop so the protocol behaviour (VAD, responses, truncation rules) reads as one
//! state machine. Every handler appends the server events it causes to `out`; the loop stamps and sends them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine;
use serde_json::{json, Value};

use super::new_id;
use super::realtime_server::{lock, RealtimeProbe, SessionLog, SimRealtimeConfig};
use crate::audio::mulaw;

mod response;
use response::ActiveResponse;

/// 20 ms of 8 kHz μ-law: the VAD's frame.
const FRAME: usize = 160;
/// μ-law bytes per millisecond.
const BYTES_PER_MS: u64 = 8;

/// Session fields the GA interface rejects (they belong to the shut-down beta shape).
const BETA_FIELDS: [&str; 6] = [
    "input_audio_format",
    "output_audio_format",
    "voice",
    "modalities",
    "temperature",
    "turn_detection",
];

/// The caller is speaking: the user item being filled.
struct Speech {
    item_id: String,
}

pub(crate) struct Session {
    id: u64,
    config: Arc<SimRealtimeConfig>,
    log: Arc<Mutex<SessionLog>>,
    /// The session object as echoed in `session.created/updated`.
    session: Value,
    /// The client explicitly set `audio.input.transcription: null`: no transcripts then.
    transcription_off: bool,
    /// The client's event id being handled, for `error.event_id`.
    current_event_id: Option<String>,
    /// Bytes that went through the VAD (its clock: 8 bytes = 1 ms).
    vad_bytes: u64,
    /// An incomplete VAD frame left over from the last append.
    pending: Vec<u8>,
    speaking: Option<Speech>,
    silence_run_ms: u32,
    /// Bytes appended since the last commit or clear.
    uncommitted_bytes: u64,
    user_turns: usize,
    /// Conversation item ids in order (for `previous_item_id`, retrieve, delete).
    items: Vec<String>,
    /// Assistant audio items: μ-law bytes actually sent per item (truncation limit).
    audio_sent: HashMap<String, u64>,
    responses_started: usize,
    response: Option<ActiveResponse>,
}

impl Session {
    pub(crate) fn new(
        id: u64,
        model: String,
        config: Arc<SimRealtimeConfig>,
        log: Arc<Mutex<SessionLog>>,
    ) -> Self {
        let expires_at = config
            .session_cap
            .map(|cap| unix_now() + cap.as_secs())
            .unwrap_or(unix_now() + 3600);
        let session = json!({
            "type": "realtime",
            "object": "realtime.session",
            "id": new_id("sess_"),
            "model": model,
            "output_modalities": ["audio"],
            "instructions": "",
            "tools": [],
            "tool_choice": "auto",
            "max_output_tokens": "inf",
            "tracing": null,
            "truncation": "auto",
            "prompt": null,
            "expires_at": expires_at,
            "audio": {
                "input": {
                    "format": {"type": "audio/pcm", "rate": 24000},
                    "transcription": null,
                    "noise_reduction": null,
                    "turn_detection": {
                        "type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300,
                        "silence_duration_ms": config.silence_ms, "create_response": true,
                        "interrupt_response": true, "idle_timeout_ms": null
                    }
                },
                "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "marin", "speed": 1.0}
            }
        });
        Self {
            id,
            config,
            log,
            session,
            transcription_off: false,
            current_event_id: None,
            vad_bytes: 0,
            pending: Vec::new(),
            speaking: None,
            silence_run_ms: 0,
            uncommitted_bytes: 0,
            user_turns: 0,
            items: Vec::new(),
            audio_sent: HashMap::new(),
            responses_started: 0,
            response: None,
        }
    }

    /// `session.created`, sent as soon as the socket opens.
    pub(crate) fn created(&mut self, out: &mut Vec<Value>) {
        out.push(json!({"type": "session.created", "session": self.session}));
    }

    /// Queues an `error` event (`invalid_request_error`); the session stays open.
    pub(crate) fn error(
        &mut self,
        out: &mut Vec<Value>,
        code: &str,
        message: &str,
        param: Option<&str>,
        kind: Option<&str>,
    ) {
        out.push(json!({
            "type": "error",
            "error": {
                "type": kind.unwrap_or("invalid_request_error"),
                "code": code,
                "message": message,
                "param": param,
                "event_id": self.current_event_id,
            }
        }));
    }

    /// Handles one text frame from the client.
    pub(crate) fn handle_text(&mut self, text: &str, out: &mut Vec<Value>) {
        self.current_event_id = None;
        let event: Value = match serde_json::from_str(text) {
            Ok(event @ Value::Object(_)) => event,
            _ => {
                if self.config.record_events {
                    lock(&self.log)
                        .client_events
                        .push(Value::String(text.to_string()));
                }
                self.error(
                    out,
                    "invalid_json",
                    "The event is not a JSON object.",
                    None,
                    None,
                );
                return;
            }
        };
        if self.config.record_events {
            lock(&self.log).client_events.push(event.clone());
        }
        self.current_event_id = event
            .get("event_id")
            .and_then(Value::as_str)
            .map(str::to_string);
        let kind = event
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        match kind.as_str() {
            "session.update" => self.session_update(&event, out),
            "input_audio_buffer.append" => self.append(&event, out),
            "input_audio_buffer.commit" => self.commit(out),
            "input_audio_buffer.clear" => self.clear(out),
            "conversation.item.create" => self.item_create(&event, out),
            "conversation.item.truncate" => self.truncate(&event, out),
            "conversation.item.retrieve" => self.item_retrieve(&event, out),
            "conversation.item.delete" => self.item_delete(&event, out),
            "response.create" => {
                let request = event.get("response").cloned().unwrap_or(Value::Null);
                {
                    let mut log = lock(&self.log);
                    log.response_creates += 1;
                    log.response_requests.push(request);
                }
                self.start_response(out);
            }
            "response.cancel" => {
                if self.response.is_some() {
                    self.cancel_response("client_cancelled", out);
                } else {
                    self.error(
                        out,
                        "response_cancel_not_active",
                        "There is no active response to cancel.",
                        None,
                        None,
                    );
                }
            }
            "" => self.error(
                out,
                "missing_required_parameter",
                "Missing required parameter: 'type'.",
                Some("type"),
                None,
            ),
            other => {
                let message =
                    format!("Invalid value: '{other}'. This is not a supported client event type.");
                self.error(out, "invalid_value", &message, Some("type"), None);
            }
        }
    }

    fn session_update(&mut self, event: &Value, out: &mut Vec<Value>) {
        let Some(patch) = event.get("session").and_then(Value::as_object) else {
            return self.error(
                out,
                "missing_required_parameter",
                "Missing required parameter: 'session'.",
                Some("session"),
                None,
            );
        };
        for field in BETA_FIELDS {
            if patch.contains_key(field) {
                let message = format!("Unknown parameter: 'session.{field}'.");
                return self.error(
                    out,
                    "unknown_parameter",
                    &message,
                    Some(&format!("session.{field}")),
                    None,
                );
            }
        }
        match patch.get("type").and_then(Value::as_str) {
            Some("realtime") => {}
            None => {
                return self.error(
                    out,
                    "missing_required_parameter",
                    "Missing required parameter: 'session.type'.",
                    Some("session.type"),
                    None,
                )
            }
            Some(other) => {
                let message =
                    format!("Invalid value: '{other}'. This simulator supports only 'realtime'.");
                return self.error(out, "invalid_value", &message, Some("session.type"), None);
            }
        }
        let patch = Value::Object(patch.clone());
        match patch.pointer("/audio/input/transcription") {
            Some(Value::Null) => self.transcription_off = true,
            Some(_) => self.transcription_off = false,
            None => {}
        }
        merge(&mut self.session, &patch);
        lock(&self.log).session_config = Some(self.session.clone());
        out.push(json!({"type": "session.updated", "session": self.session}));
    }

    /// Server VAD settings: `None` when turn detection is off (`turn_detection: null`).
    fn turn_detection(&self) -> Option<&Value> {
        match self.session.pointer("/audio/input/turn_detection") {
            Some(Value::Null) => None,
            Some(value) => Some(value),
            None => Some(&Value::Null),
        }
    }

    fn turn_detection_flag(&self, name: &str) -> bool {
        self.turn_detection()
            .and_then(|td| td.get(name))
            .and_then(Value::as_bool)
            .unwrap_or(true)
    }

    fn append(&mut self, event: &Value, out: &mut Vec<Value>) {
        let Some(encoded) = event.get("audio").and_then(Value::as_str) else {
            return self.error(
                out,
                "missing_required_parameter",
                "Missing required parameter: 'audio'.",
                Some("audio"),
                None,
            );
        };
        let audio = match base64::engine::general_purpose::STANDARD.decode(encoded) {
            Ok(audio) => audio,
            Err(_) => {
                return self.error(
                    out,
                    "invalid_value",
                    "Invalid 'audio': not valid base64.",
                    Some("audio"),
                    None,
                )
            }
        };
        lock(&self.log).appended_audio_bytes += audio.len() as u64;
        self.uncommitted_bytes += audio.len() as u64;
        if self.turn_detection().is_none() {
            self.vad_bytes += audio.len() as u64;
        } else {
            let mut pending = std::mem::take(&mut self.pending);
            pending.extend_from_slice(&audio);
            let whole = pending.len() / FRAME * FRAME;
            for frame in pending[..whole].chunks_exact(FRAME) {
                self.vad_frame(frame, out);
            }
            pending.drain(..whole);
            self.pending = pending;
        }
        if let Some(probe) = &self.config.probe {
            let _ = probe.send(RealtimeProbe::Append {
                session: self.id,
                at: std::time::Instant::now(),
                audio,
            });
        }
    }

    /// Energy VAD on one 20 ms frame.
    fn vad_frame(&mut self, frame: &[u8], out: &mut Vec<Value>) {
        let start_ms = self.vad_bytes / BYTES_PER_MS;
        self.vad_bytes += frame.len() as u64;
        if mulaw::rms(frame) > self.config.vad_rms_threshold {
            self.silence_run_ms = 0;
            if self.speaking.is_none() {
                let item_id = new_id("item_");
                out.push(json!({
                    "type": "input_audio_buffer.speech_started",
                    "audio_start_ms": start_ms,
                    "item_id": item_id,
                }));
                lock(&self.log).speech_started += 1;
                if let Some(probe) = &self.config.probe {
                    let _ = probe.send(RealtimeProbe::SpeechStarted {
                        session: self.id,
                        at: std::time::Instant::now(),
                    });
                }
                self.speaking = Some(Speech { item_id });
                if self.response.is_some() && self.turn_detection_flag("interrupt_response") {
                    self.cancel_response("turn_detected", out);
                }
            }
        } else if self.speaking.is_some() {
            self.silence_run_ms += (frame.len() as u64 / BYTES_PER_MS) as u32;
            if self.silence_run_ms >= self.config.silence_ms {
                let Some(speech) = self.speaking.take() else {
                    return;
                };
                self.silence_run_ms = 0;
                out.push(json!({
                    "type": "input_audio_buffer.speech_stopped",
                    "audio_end_ms": self.vad_bytes / BYTES_PER_MS,
                    "item_id": speech.item_id,
                }));
                self.commit_user_turn(speech.item_id, out);
                if self.turn_detection_flag("create_response") {
                    self.start_response(out);
                }
            }
        }
    }

    /// `committed`, the user item, and its transcript.
    fn commit_user_turn(&mut self, item_id: String, out: &mut Vec<Value>) {
        self.uncommitted_bytes = 0;
        self.user_turns += 1;
        let previous = self.items.last().cloned();
        out.push(json!({
            "type": "input_audio_buffer.committed",
            "item_id": item_id,
            "previous_item_id": previous,
        }));
        out.push(json!({
            "type": "conversation.item.added",
            "previous_item_id": previous,
            "item": {
                "id": item_id, "object": "realtime.item", "type": "message", "role": "user",
                "status": "completed", "content": [{"type": "input_audio", "transcript": null}]
            }
        }));
        self.items.push(item_id.clone());
        if !self.transcription_off {
            let transcript = self
                .config
                .caller_transcripts
                .get(self.user_turns - 1)
                .cloned()
                .unwrap_or_else(|| format!("caller turn {}", self.user_turns));
            out.push(json!({
                "type": "conversation.item.input_audio_transcription.completed",
                "item_id": item_id,
                "content_index": 0,
                "transcript": transcript,
            }));
        }
    }

    fn commit(&mut self, out: &mut Vec<Value>) {
        if self.uncommitted_bytes == 0 {
            return self.error(
                out,
                "input_audio_buffer_commit_empty",
                "Error committing input audio buffer: buffer is empty.",
                None,
                None,
            );
        }
        let item_id = match self.speaking.take() {
            Some(speech) => speech.item_id,
            None => new_id("item_"),
        };
        self.silence_run_ms = 0;
        self.commit_user_turn(item_id, out);
    }

    fn clear(&mut self, out: &mut Vec<Value>) {
        self.uncommitted_bytes = 0;
        self.speaking = None;
        self.silence_run_ms = 0;
        self.pending.clear();
        out.push(json!({"type": "input_audio_buffer.cleared"}));
    }

    fn item_create(&mut self, event: &Value, out: &mut Vec<Value>) {
        let Some(item) = event.get("item").and_then(Value::as_object) else {
            return self.error(
                out,
                "missing_required_parameter",
                "Missing required parameter: 'item'.",
                Some("item"),
                None,
            );
        };
        let mut item = item.clone();
        lock(&self.log)
            .items_created
            .push(Value::Object(item.clone()));
        let id = match item.get("id").and_then(Value::as_str) {
            Some(id) => id.to_string(),
            None => {
                let id = new_id("item_");
                item.insert("id".into(), json!(id));
                id
            }
        };
        item.insert("object".into(), json!("realtime.item"));
        item.entry("status").or_insert(json!("completed"));
        let previous = self.items.last().cloned();
        self.items.push(id);
        out.push(
            json!({"type": "conversation.item.added", "previous_item_id": previous, "item": item}),
        );
        out.push(
            json!({"type": "conversation.item.done", "previous_item_id": previous, "item": item}),
        );
    }

    fn item_retrieve(&mut self, event: &Value, out: &mut Vec<Value>) {
        let item_id = event.get("item_id").and_then(Value::as_str).unwrap_or("");
        if self.items.iter().any(|id| id == item_id) {
            out.push(json!({"type": "conversation.item.retrieved", "item": {"id": item_id, "object": "realtime.item"}}));
        } else {
            let message = format!("Item with item_id '{item_id}' not found.");
            self.error(out, "invalid_value", &message, Some("item_id"), None);
        }
    }

    fn item_delete(&mut self, event: &Value, out: &mut Vec<Value>) {
        let item_id = event
            .get("item_id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if let Some(pos) = self.items.iter().position(|id| *id == item_id) {
            self.items.remove(pos);
            out.push(json!({"type": "conversation.item.deleted", "item_id": item_id}));
        } else {
            let message = format!("Item with item_id '{item_id}' not found.");
            self.error(out, "invalid_value", &message, Some("item_id"), None);
        }
    }

    fn truncate(&mut self, event: &Value, out: &mut Vec<Value>) {
        let item_id = event
            .get("item_id")
            .and_then(Value::as_str)
            .map(str::to_string);
        let audio_end_ms = event.get("audio_end_ms").and_then(Value::as_u64);
        let content_index = event
            .get("content_index")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let (Some(item_id), Some(audio_end_ms)) = (item_id, audio_end_ms) else {
            return self.error(
                out,
                "missing_required_parameter",
                "conversation.item.truncate needs 'item_id' and a non-negative integer 'audio_end_ms'.",
                Some("audio_end_ms"),
                None,
            );
        };
        lock(&self.log)
            .truncates
            .push((item_id.clone(), audio_end_ms));
        let Some(&sent) = self.audio_sent.get(&item_id) else {
            let message = format!("Item with item_id '{item_id}' not found or has no audio.");
            return self.error(out, "invalid_value", &message, Some("item_id"), None);
        };
        let sent_ms = sent / BYTES_PER_MS;
        if audio_end_ms > sent_ms || content_index != 0 {
            let message =
                format!("Audio content of {sent_ms}ms is already shorter than {audio_end_ms}ms.");
            return self.error(out, "invalid_value", &message, Some("audio_end_ms"), None);
        }
        out.push(json!({
            "type": "conversation.item.truncated",
            "item_id": item_id,
            "content_index": content_index,
            "audio_end_ms": audio_end_ms,
        }));
    }
}

/// JSON merge: objects merge key by key (recursively), anything else replaces.
fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(target), Value::Object(patch)) => {
            for (key, value) in patch {
                match target.get_mut(key) {
                    Some(existing) if existing.is_object() && value.is_object() => {
                        merge(existing, value)
                    }
                    _ => {
                        target.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (target, patch) => *target = patch.clone(),
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

//! One simulated Realtime session: client events in, server events out, no I/O.
//!
//! Kept apart from the socket loop so the protocol behaviour (validation, VAD, responses, truncation rules,
//! transcript timing) reads as one state machine. Every handler appends the server events it causes to `out`;
//! the loop stamps and sends them. Time enters only through [`Session::pump`] and [`Session::next_due`].

use std::sync::{Arc, Mutex};

use base64::Engine;
use serde_json::{json, Map, Value};
use tokio::time::Instant;

use super::new_id;
use super::realtime_server::{
    lock, RealtimeProbe, SessionLog, SimRealtimeConfig, TranscriptTiming,
};

mod codec;
mod models;
mod response;
mod validate;

use codec::AudioFormat;
use response::ActiveResponse;
use validate::{Checked, Context, Conversation, Invalid};

/// Whether the simulator knows `model` (a GA Realtime family or a dated snapshot of one).
pub(crate) fn known_model(model: &str) -> bool {
    models::lookup(model).is_some()
}

/// The input clock counts 1/48 ms (one byte of 24 kHz PCM16; a μ-law or A-law byte is 6 units).
const UNITS_PER_MS: u64 = 48;

/// A turn no response answers gets its transcript this long after the commit.
const UNANSWERED_TRANSCRIPT_DELAY: std::time::Duration = std::time::Duration::from_secs(1);

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

/// Token counts of one item (for `usage`).
#[derive(Debug, Clone, Copy, Default)]
struct Tokens {
    text: u64,
    audio: u64,
}

fn text_tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

/// One conversation item as the server keeps it.
pub(super) struct Item {
    id: String,
    /// What `conversation.item.retrieve` returns.
    value: Value,
    /// Assistant audio: bytes sent so far, and the format's bytes per ms.
    audio: Option<(u64, u64)>,
    /// Set by an accepted truncation.
    truncated_ms: Option<u64>,
    /// A function call's `call_id`.
    call_id: Option<String>,
    tokens: Tokens,
}

impl Item {
    fn new(id: String, value: Value) -> Self {
        Self {
            id,
            value,
            audio: None,
            truncated_ms: None,
            call_id: None,
            tokens: Tokens::default(),
        }
    }
}

/// A caller turn's transcript waiting for its moment.
struct PendingTranscript {
    item_id: String,
    transcript: String,
    audio_ms: u64,
    model: String,
    /// Released right after this response's `response.done`.
    after_response: Option<usize>,
    /// Released at this time (unless bound to a response first).
    at: Option<Instant>,
}

pub(crate) struct Session {
    id: u64,
    /// The model the socket was opened with.
    model: String,
    config: Arc<SimRealtimeConfig>,
    log: Arc<Mutex<SessionLog>>,
    /// The effective session object, as echoed in `session.created/updated`.
    session: Value,
    /// Lenient mode only: the client set `audio.input.transcription: null`.
    transcription_nulled: bool,
    /// The client's event id being handled, for `error.event_id`.
    current_event_id: Option<String>,
    /// Audio received through appends, in 1/48 ms (the VAD's clock).
    input_clock: u64,
    /// An incomplete VAD frame left over from the last append.
    pending: Vec<u8>,
    speaking: Option<Speech>,
    /// Where the current run of loud frames began (speech is detected `speech_detect_ms` into it).
    loud_since: Option<u64>,
    silence_run_ms: u32,
    /// Audio appended since the last commit or clear, in 1/48 ms.
    uncommitted: u64,
    user_turns: usize,
    /// The conversation, in order.
    items: Vec<Item>,
    responses_started: usize,
    /// Scripted turns used so far (filler responses use none).
    script_used: usize,
    response: Option<ActiveResponse>,
    /// A VAD turn ended while the interrupted response was still being cancelled: answer once it is done.
    respond_after_cancel: bool,
    transcripts: Vec<PendingTranscript>,
    /// The model has spoken (the voice is locked).
    audio_out_sent: bool,
    /// Delta-size sequence state (seeded by the session id).
    rng: u64,
    /// Input tokens of the previous response (the cached prefix of the next one).
    last_input_tokens: u64,
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
        let session = default_session(new_id("sess_"), &model, expires_at, config.silence_ms);
        Self {
            id,
            model,
            config,
            log,
            session,
            transcription_nulled: false,
            current_event_id: None,
            input_clock: 0,
            pending: Vec::new(),
            speaking: None,
            loud_since: None,
            silence_run_ms: 0,
            uncommitted: 0,
            user_turns: 0,
            items: Vec::new(),
            responses_started: 0,
            script_used: 0,
            response: None,
            respond_after_cancel: false,
            transcripts: Vec::new(),
            audio_out_sent: false,
            rng: splitmix(id ^ 0x005E_ED0F_5E55_1075),
            last_input_tokens: 0,
        }
    }

    /// `session.created`, sent as soon as the socket opens.
    pub(crate) fn created(&mut self, out: &mut Vec<Value>) {
        out.push(json!({"type": "session.created", "session": self.session}));
    }

    /// Queues an `error` event (`invalid_request_error` unless `kind` says otherwise); the session stays open.
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

    fn refuse(&mut self, out: &mut Vec<Value>, invalid: Invalid) {
        self.error(
            out,
            invalid.code,
            &invalid.message,
            invalid.param.as_deref(),
            None,
        );
    }

    fn input_format(&self) -> AudioFormat {
        AudioFormat::from_json(self.session.pointer("/audio/input/format"))
    }

    fn output_format(&self) -> AudioFormat {
        AudioFormat::from_json(self.session.pointer("/audio/output/format"))
    }

    fn context(&self) -> Context<'_> {
        Context {
            model: &self.model,
            voice: self
                .session
                .pointer("/audio/output/voice")
                .unwrap_or(&Value::Null),
            audio_sent: self.audio_out_sent,
            tracing: self.session.get("tracing").unwrap_or(&Value::Null),
            reject_params: &self.config.reject_session_params,
        }
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
        let kind = match event.get("type") {
            None => return self.refuse(out, validate::missing("type")),
            Some(Value::String(kind)) => kind.clone(),
            Some(other) => {
                return self.refuse(out, validate::bad_type("type", "a string", other));
            }
        };
        let Some(own) = validate::event_keys(&kind) else {
            return self.refuse(
                out,
                validate::bad_value(
                    "type",
                    &kind,
                    &[
                        "session.update",
                        "input_audio_buffer.append",
                        "input_audio_buffer.commit",
                        "input_audio_buffer.clear",
                        "conversation.item.create",
                        "conversation.item.retrieve",
                        "conversation.item.truncate",
                        "conversation.item.delete",
                        "response.create",
                        "response.cancel",
                    ],
                ),
            );
        };
        let Value::Object(map) = &event else {
            return;
        };
        if self.config.strict {
            if let Err(invalid) = validate::check_envelope(map, own) {
                return self.refuse(out, invalid);
            }
        }
        match kind.as_str() {
            "session.update" => self.session_update(map, out),
            "input_audio_buffer.append" => self.append(map, out),
            "input_audio_buffer.commit" => self.commit(out),
            "input_audio_buffer.clear" => self.clear(out),
            "conversation.item.create" => self.item_create(map, out),
            "conversation.item.truncate" => self.truncate(map, out),
            "conversation.item.retrieve" => self.item_retrieve(map, out),
            "conversation.item.delete" => self.item_delete(map, out),
            "response.create" => self.response_create(map, out),
            "response.cancel" => self.response_cancel(map, out),
            _ => {}
        }
    }

    // ----- session.update -----

    fn session_update(&mut self, event: &Map<String, Value>, out: &mut Vec<Value>) {
        let outcome = self.check_update(event);
        let patch = match outcome {
            Ok(patch) => patch,
            Err(invalid) => {
                lock(&self.log).session_updates_rejected += 1;
                return self.refuse(out, invalid);
            }
        };
        let before = self.input_format();
        self.apply_update(&patch);
        if self.input_format() != before {
            self.pending.clear();
        }
        lock(&self.log).session_config = Some(self.session.clone());
        out.push(json!({"type": "session.updated", "session": self.session}));
    }

    /// The update's `session` object if it may be applied (in full: a refused update changes nothing).
    fn check_update(&self, event: &Map<String, Value>) -> Checked<Map<String, Value>> {
        let Some(session) = event.get("session") else {
            return Err(validate::missing("session"));
        };
        let Some(patch) = session.as_object() else {
            return Err(validate::bad_type("session", "an object", session));
        };
        if let Some(field) = BETA_FIELDS.iter().find(|f| patch.contains_key(**f)) {
            let param = format!("session.{field}");
            return Err(Invalid::new(
                "unknown_parameter",
                format!("Unknown parameter: '{param}'."),
                Some(&param),
            ));
        }
        match patch.get("type").and_then(Value::as_str) {
            Some("realtime") => {}
            None => return Err(validate::missing("session.type")),
            Some(other) => {
                return Err(validate::bad_value("session.type", other, &["realtime"]));
            }
        }
        if self.config.strict {
            validate::check_session(session, &self.context())?;
        }
        Ok(patch.clone())
    }

    /// Merges an accepted update: `audio.input` and `audio.output` key by key, a turn detection of the same
    /// type key by key (of another type: its defaults, then the update's keys), everything else replaced.
    fn apply_update(&mut self, patch: &Map<String, Value>) {
        if let Some(nulled) = merge_session_update(&mut self.session, patch) {
            self.transcription_nulled = nulled;
        }
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

    /// The transcription model when input transcription is on.
    fn transcription_model(&self) -> Option<String> {
        match self.session.pointer("/audio/input/transcription") {
            Some(Value::Object(t)) => Some(
                t.get("model")
                    .and_then(Value::as_str)
                    .unwrap_or("gpt-4o-mini-transcribe")
                    .to_string(),
            ),
            // Lenient: transcripts unless the client turned them off explicitly (the old behaviour).
            _ if !self.config.strict && !self.transcription_nulled => {
                Some("gpt-4o-mini-transcribe".to_string())
            }
            _ => None,
        }
    }

    // ----- input audio -----

    fn append(&mut self, event: &Map<String, Value>, out: &mut Vec<Value>) {
        let encoded = match event.get("audio") {
            None => return self.refuse(out, validate::missing("audio")),
            Some(Value::String(encoded)) => encoded,
            Some(other) => return self.refuse(out, validate::bad_type("audio", "a string", other)),
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
        let format = self.input_format();
        let units_per_byte = UNITS_PER_MS / format.bytes_per_ms();
        lock(&self.log).appended_audio_bytes += audio.len() as u64;
        if self.turn_detection().is_none() {
            self.input_clock += audio.len() as u64 * units_per_byte;
            self.uncommitted += audio.len() as u64 * units_per_byte;
        } else {
            // With VAD the buffer fills frame by frame, so a turn that ends mid-append holds only its own audio.
            let frame_len = format.frame_bytes();
            let mut pending = std::mem::take(&mut self.pending);
            pending.extend_from_slice(&audio);
            let whole = pending.len() / frame_len * frame_len;
            for frame in pending[..whole].chunks_exact(frame_len) {
                self.vad_frame(frame, format, out);
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

    /// Energy VAD on one 20 ms frame, read in the session's input format.
    fn vad_frame(&mut self, frame: &[u8], format: AudioFormat, out: &mut Vec<Value>) {
        let start_ms = self.input_clock / UNITS_PER_MS;
        let units = frame.len() as u64 * (UNITS_PER_MS / format.bytes_per_ms());
        self.input_clock += units;
        self.uncommitted += units;
        if format.rms(frame) > self.config.vad_rms_threshold {
            self.silence_run_ms = 0;
            let loud_since = *self.loud_since.get_or_insert(start_ms);
            let heard_ms = self.input_clock / UNITS_PER_MS - loud_since;
            if self.speaking.is_none() && heard_ms >= u64::from(self.config.speech_detect_ms) {
                let item_id = new_id("item_");
                out.push(json!({
                    "type": "input_audio_buffer.speech_started",
                    "audio_start_ms": loud_since,
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
                    self.request_cancel("turn_detected", out);
                }
            }
        } else if self.speaking.is_none() {
            self.loud_since = None;
        } else {
            self.silence_run_ms += 20;
            if self.silence_run_ms >= self.config.silence_ms {
                let Some(speech) = self.speaking.take() else {
                    return;
                };
                self.silence_run_ms = 0;
                self.loud_since = None;
                out.push(json!({
                    "type": "input_audio_buffer.speech_stopped",
                    "audio_end_ms": self.input_clock / UNITS_PER_MS,
                    "item_id": speech.item_id,
                }));
                self.commit_user_turn(speech.item_id, out);
                if self.turn_detection_flag("create_response") {
                    match &self.response {
                        None => self.start_response(None, out),
                        Some(r) if r.cancelling() => self.respond_after_cancel = true,
                        // `interrupt_response: false` and the model still talking: no new response.
                        Some(_) => {}
                    }
                }
            }
        }
    }

    /// `committed`, the user item, and its transcript (now or later, per `transcript_timing`).
    fn commit_user_turn(&mut self, item_id: String, out: &mut Vec<Value>) {
        let audio_ms = self.uncommitted / UNITS_PER_MS;
        self.uncommitted = 0;
        self.user_turns += 1;
        let previous = self.items.last().map(|item| item.id.clone());
        let item = json!({
            "id": item_id, "object": "realtime.item", "type": "message", "role": "user",
            "status": "completed", "content": [{"type": "input_audio", "transcript": null}]
        });
        out.push(json!({
            "type": "input_audio_buffer.committed",
            "item_id": item_id,
            "previous_item_id": previous,
        }));
        out.push(json!({
            "type": "conversation.item.added",
            "previous_item_id": previous,
            "item": item,
        }));
        let mut stored = Item::new(item_id.clone(), item);
        stored.tokens.audio = audio_ms.div_ceil(100);
        self.items.push(stored);
        let Some(model) = self.transcription_model() else {
            return;
        };
        let transcript = self
            .config
            .caller_transcripts
            .get(self.user_turns - 1)
            .cloned()
            .unwrap_or_else(|| format!("caller turn {}", self.user_turns));
        let now = Instant::now();
        let mut pending = PendingTranscript {
            item_id,
            transcript,
            audio_ms,
            model,
            after_response: None,
            at: None,
        };
        match self.config.transcript_timing {
            TranscriptTiming::AtCommit => return self.send_transcript(pending, out),
            TranscriptTiming::AfterResponse => pending.at = Some(now + UNANSWERED_TRANSCRIPT_DELAY),
            TranscriptTiming::After(delay) => pending.at = Some(now + delay),
        }
        self.transcripts.push(pending);
    }

    fn send_transcript(&mut self, t: PendingTranscript, out: &mut Vec<Value>) {
        let usage = if t.model == "whisper-1" {
            json!({"type": "duration", "seconds": t.audio_ms as f64 / 1000.0})
        } else {
            let audio = t.audio_ms.div_ceil(100);
            let output = text_tokens(&t.transcript);
            json!({
                "type": "tokens", "input_tokens": audio, "output_tokens": output, "total_tokens": audio + output,
                "input_token_details": {"text_tokens": 0, "audio_tokens": audio}
            })
        };
        lock(&self.log).transcription_usage.push(usage.clone());
        out.push(json!({
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": t.item_id,
            "content_index": 0,
            "transcript": t.transcript,
            "usage": usage,
        }));
        if let Some(item) = self.items.iter_mut().find(|item| item.id == t.item_id) {
            item.value["content"][0]["transcript"] = json!(t.transcript);
            item.tokens.text = text_tokens(&t.transcript);
        }
        lock(&self.log)
            .transcripts_sent
            .push((t.item_id, t.transcript));
    }

    /// Transcripts waiting for a response get bound to the one starting now.
    fn bind_transcripts(&mut self, response: usize) {
        if self.config.transcript_timing != TranscriptTiming::AfterResponse {
            return;
        }
        for t in &mut self.transcripts {
            if t.after_response.is_none() {
                t.after_response = Some(response);
                t.at = None;
            }
        }
    }

    /// Sends the transcripts bound to `response` (just done), or those whose time has come.
    fn release_transcripts(&mut self, response: Option<usize>, now: Instant, out: &mut Vec<Value>) {
        let (due, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.transcripts)
            .into_iter()
            .partition(|t| {
                (response.is_some() && t.after_response == response)
                    || t.at.is_some_and(|at| at <= now)
            });
        self.transcripts = keep;
        for t in due {
            self.send_transcript(t, out);
        }
    }

    fn commit(&mut self, out: &mut Vec<Value>) {
        let ms = self.uncommitted as f64 / UNITS_PER_MS as f64;
        let too_small = if self.config.strict {
            ms < 100.0
        } else {
            self.uncommitted == 0
        };
        if too_small {
            let message = format!("Error committing input audio buffer: buffer too small. Expected at least 100ms of audio, but buffer only has {ms:.2}ms of audio.");
            return self.error(out, "input_audio_buffer_commit_empty", &message, None, None);
        }
        let item_id = match self.speaking.take() {
            Some(speech) => speech.item_id,
            None => new_id("item_"),
        };
        self.silence_run_ms = 0;
        self.commit_user_turn(item_id, out);
    }

    fn clear(&mut self, out: &mut Vec<Value>) {
        self.uncommitted = 0;
        self.speaking = None;
        self.silence_run_ms = 0;
        self.pending.clear();
        out.push(json!({"type": "input_audio_buffer.cleared"}));
    }

    // ----- conversation items -----

    fn position(&self, item_id: &str) -> Option<usize> {
        self.items.iter().position(|item| item.id == item_id)
    }

    /// A required string field of the event (`item_id`), or the error to send.
    fn required_str<'e>(&self, event: &'e Map<String, Value>, key: &str) -> Checked<&'e str> {
        match event.get(key) {
            Some(Value::String(s)) => Ok(s),
            None => Err(validate::missing(key)),
            Some(other) => Err(validate::bad_type(key, "a string", other)),
        }
    }

    fn item_create(&mut self, event: &Map<String, Value>, out: &mut Vec<Value>) {
        let Some(item) = event.get("item") else {
            return self.refuse(out, validate::missing("item"));
        };
        let Some(map) = item.as_object() else {
            return self.refuse(out, validate::bad_type("item", "an object", item));
        };
        let mut after = None;
        if let Some(previous) = event.get("previous_item_id") {
            match previous.as_str().and_then(|id| self.position(id)) {
                Some(pos) => after = Some(pos),
                None if self.config.strict => {
                    let id = previous.as_str().unwrap_or("");
                    return self.error(
                        out,
                        "invalid_value",
                        &format!("Item with item_id '{id}' not found for previous_item_id."),
                        Some("previous_item_id"),
                        None,
                    );
                }
                None => {}
            }
        }
        if self.config.strict {
            if let Err(invalid) = validate::check_item(item, "item", self) {
                return self.refuse(out, invalid);
            }
        }
        lock(&self.log).items_created.push(item.clone());
        let mut stored = map.clone();
        let id = match stored.get("id").and_then(Value::as_str) {
            Some(id) => id.to_string(),
            None => {
                let id = new_id("item_");
                stored.insert("id".into(), json!(id));
                id
            }
        };
        stored.insert("object".into(), json!("realtime.item"));
        stored.entry("status").or_insert(json!("completed"));
        let kind = stored
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let mut call_id = None;
        if kind == "function_call" {
            let id = stored
                .get("call_id")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| new_id("call_"));
            stored.insert("call_id".into(), json!(id));
            call_id = Some(id);
        }
        let tokens = Tokens {
            text: text_tokens(&item_text(&stored)),
            audio: 0,
        };
        let value = Value::Object(stored);
        let pos = after.map_or(self.items.len(), |pos| pos + 1);
        let previous = pos
            .checked_sub(1)
            .and_then(|p| self.items.get(p))
            .map(|item| item.id.clone());
        let mut entry = Item::new(id, value.clone());
        entry.call_id = call_id;
        entry.tokens = tokens;
        self.items.insert(pos, entry);
        out.push(
            json!({"type": "conversation.item.added", "previous_item_id": previous, "item": value}),
        );
        out.push(
            json!({"type": "conversation.item.done", "previous_item_id": previous, "item": value}),
        );
    }

    fn item_retrieve(&mut self, event: &Map<String, Value>, out: &mut Vec<Value>) {
        let item_id = match self.required_str(event, "item_id") {
            Ok(id) => id.to_string(),
            Err(invalid) => return self.refuse(out, invalid),
        };
        match self.position(&item_id) {
            Some(pos) => out.push(
                json!({"type": "conversation.item.retrieved", "item": self.items[pos].value}),
            ),
            None => {
                let message = format!("Item with item_id '{item_id}' not found.");
                self.error(out, "invalid_value", &message, Some("item_id"), None);
            }
        }
    }

    fn item_delete(&mut self, event: &Map<String, Value>, out: &mut Vec<Value>) {
        let item_id = match self.required_str(event, "item_id") {
            Ok(id) => id.to_string(),
            Err(invalid) => return self.refuse(out, invalid),
        };
        match self.position(&item_id) {
            Some(pos) => {
                self.items.remove(pos);
                out.push(json!({"type": "conversation.item.deleted", "item_id": item_id}));
            }
            None => {
                let message = format!("Item with item_id '{item_id}' not found.");
                self.error(out, "invalid_value", &message, Some("item_id"), None);
            }
        }
    }

    fn truncate(&mut self, event: &Map<String, Value>, out: &mut Vec<Value>) {
        let parsed = if self.config.strict {
            self.required_str(event, "item_id").and_then(|item_id| {
                let content_index = match event.get("content_index") {
                    None => return Err(validate::missing("content_index")),
                    Some(v) => validate::integer(v, "content_index", 0, None)?,
                };
                let audio_end_ms = match event.get("audio_end_ms") {
                    None => return Err(validate::missing("audio_end_ms")),
                    Some(v) => validate::integer(v, "audio_end_ms", 0, None)?,
                };
                Ok((
                    item_id.to_string(),
                    content_index as u64,
                    audio_end_ms as u64,
                ))
            })
        } else {
            let item_id = event.get("item_id").and_then(Value::as_str);
            let audio_end_ms = event.get("audio_end_ms").and_then(Value::as_u64);
            let content_index = event
                .get("content_index")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            match (item_id, audio_end_ms) {
                (Some(id), Some(ms)) => Ok((id.to_string(), content_index, ms)),
                _ => Err(Invalid::new(
                    "missing_required_parameter",
                    "conversation.item.truncate needs 'item_id' and a non-negative integer 'audio_end_ms'.",
                    Some("audio_end_ms"),
                )),
            }
        };
        let (item_id, content_index, audio_end_ms) = match parsed {
            Ok(parsed) => parsed,
            Err(invalid) => return self.refuse(out, invalid),
        };
        lock(&self.log)
            .truncates
            .push((item_id.clone(), audio_end_ms));
        let Some(pos) = self.position(&item_id) else {
            let message = format!("Item with item_id '{item_id}' not found.");
            return self.error(out, "invalid_value", &message, Some("item_id"), None);
        };
        let item = &self.items[pos];
        let Some((sent, bytes_per_ms)) = item.audio.filter(|(sent, _)| *sent > 0) else {
            return self.error(
                out,
                "unsupported_content_type",
                "Only model output audio messages can be truncated.",
                Some("item_id"),
                None,
            );
        };
        if content_index != 0 {
            let message =
                format!("Invalid content_index {content_index}: the item's audio is content 0.");
            return self.error(out, "invalid_value", &message, Some("content_index"), None);
        }
        let mut have_ms = sent / bytes_per_ms;
        if let Some(truncated) = item.truncated_ms {
            have_ms = have_ms.min(truncated);
        }
        if audio_end_ms > have_ms {
            let message =
                format!("Audio content of {have_ms}ms is already shorter than {audio_end_ms}ms.");
            return self.error(out, "invalid_value", &message, Some("audio_end_ms"), None);
        }
        self.items[pos].truncated_ms = Some(audio_end_ms);
        out.push(json!({
            "type": "conversation.item.truncated",
            "item_id": item_id,
            "content_index": content_index,
            "audio_end_ms": audio_end_ms,
        }));
    }

    // ----- responses -----

    fn response_create(&mut self, event: &Map<String, Value>, out: &mut Vec<Value>) {
        let request = event.get("response").cloned().unwrap_or(Value::Null);
        {
            let mut log = lock(&self.log);
            log.response_creates += 1;
            log.response_requests.push(request.clone());
        }
        if self.config.strict && !request.is_null() {
            if let Err(invalid) = validate::check_response(&request, &self.context(), self) {
                lock(&self.log).response_creates_refused += 1;
                return self.refuse(out, invalid);
            }
        }
        if self.response.is_some() {
            lock(&self.log).response_creates_refused += 1;
            return self.error(
                out,
                "conversation_already_has_active_response",
                "Conversation already has an active response in progress. Wait until the response is finished before creating a new one.",
                None,
                None,
            );
        }
        let params = request.as_object().cloned();
        self.start_response(params, out);
    }

    fn response_cancel(&mut self, event: &Map<String, Value>, out: &mut Vec<Value>) {
        lock(&self.log).cancels_received += 1;
        let wanted = match event.get("response_id") {
            None => None,
            Some(Value::String(id)) => Some(id.clone()),
            Some(other) if self.config.strict => {
                return self.refuse(out, validate::bad_type("response_id", "a string", other))
            }
            Some(_) => None,
        };
        let active = self
            .response
            .as_ref()
            .is_some_and(|r| wanted.as_deref().is_none_or(|id| id == r.id()));
        if active {
            self.request_cancel("client_cancelled", out);
        } else {
            self.error(
                out,
                "response_cancel_not_active",
                "Cancellation failed: no active response found.",
                None,
                None,
            );
        }
    }

    /// The conversation's tokens now (`usage.input_tokens` of a response starting now).
    fn context_tokens(&self, instructions: &str, tools: &Value) -> Tokens {
        let mut tokens = Tokens {
            text: text_tokens(instructions) + text_tokens(&tools.to_string()),
            audio: 0,
        };
        for item in &self.items {
            tokens.text += item.tokens.text;
            tokens.audio += item.tokens.audio;
        }
        tokens
    }

    /// The next delta's length in ms.
    fn next_delta_ms(&mut self) -> u32 {
        match self.config.delta_ms_range {
            Some((lo, hi)) => {
                let lo = lo.max(1);
                let hi = hi.max(lo);
                self.rng = splitmix(self.rng);
                let step = self.config.delta_ms_step.max(1);
                let ms = lo + (self.rng % u64::from(hi - lo + 1)) as u32;
                (ms / step * step).max(step)
            }
            None => self.config.delta_ms.max(1),
        }
    }
}

impl Conversation for Session {
    fn has_item(&self, id: &str) -> bool {
        self.position(id).is_some()
    }

    fn has_call(&self, call_id: &str) -> bool {
        self.items
            .iter()
            .any(|item| item.call_id.as_deref() == Some(call_id))
    }
}

/// The session object the service starts with (what `session.created` carries), before any update:
/// its defaults, with `silence_ms` of server VAD. The lean bench model starts from it too.
pub(crate) fn default_session(id: String, model: &str, expires_at: u64, silence_ms: u32) -> Value {
    json!({
        "type": "realtime",
        "object": "realtime.session",
        "id": id,
        "model": model,
        "output_modalities": ["audio"],
        "instructions": "You are a helpful, witty, and friendly AI.",
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": null,
        "truncation": "auto",
        "prompt": null,
        "include": null,
        "expires_at": expires_at,
        "audio": {
            "input": {
                "format": AudioFormat::Pcm24k.to_json(),
                "transcription": null,
                "noise_reduction": null,
                "turn_detection": {
                    "type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300,
                    "silence_duration_ms": silence_ms, "create_response": true,
                    "interrupt_response": true, "idle_timeout_ms": null
                }
            },
            "output": {"format": AudioFormat::Pcm24k.to_json(), "voice": "marin", "speed": 1.0}
        }
    })
}

/// Merges an accepted `session.update` into `session` as the service does: `audio.input` and
/// `audio.output` key by key, a turn detection of the same type key by key (of another type: its
/// defaults, then the update's keys), everything else replaced. Returns whether the update turned input
/// transcription off (`Some(true)`) or on (`Some(false)`), `None` when it did not touch it. The lean bench
/// model merges with it too.
pub(crate) fn merge_session_update(
    session: &mut Value,
    patch: &Map<String, Value>,
) -> Option<bool> {
    let mut transcription_nulled = None;
    for (key, value) in patch {
        if key != "audio" {
            session[key] = value.clone();
            continue;
        }
        let Some(audio) = value.as_object() else {
            continue;
        };
        for (direction, fields) in audio {
            let Some(fields) = fields.as_object() else {
                continue;
            };
            for (field, value) in fields {
                let target = &mut session["audio"][direction.as_str()][field.as_str()];
                if field == "turn_detection" && value.is_object() {
                    *target = merged_turn_detection(target, value);
                } else {
                    if field == "transcription" {
                        transcription_nulled = Some(value.is_null());
                    }
                    *target = value.clone();
                }
            }
        }
    }
    transcription_nulled
}

/// A turn detection update: merged into the current one of the same type, else onto that type's defaults.
fn merged_turn_detection(current: &Value, patch: &Value) -> Value {
    let kind = patch.get("type").and_then(Value::as_str).unwrap_or("");
    let mut merged = if current.get("type").and_then(Value::as_str) == Some(kind) {
        current.clone()
    } else if kind == "semantic_vad" {
        json!({"type": "semantic_vad", "eagerness": "auto", "create_response": true, "interrupt_response": true})
    } else {
        json!({
            "type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": 500,
            "create_response": true, "interrupt_response": true, "idle_timeout_ms": null
        })
    };
    if let (Some(merged), Some(patch)) = (merged.as_object_mut(), patch.as_object()) {
        for (key, value) in patch {
            merged.insert(key.clone(), value.clone());
        }
    }
    merged
}

/// The words an item carries (for token counts).
fn item_text(item: &Map<String, Value>) -> String {
    let mut text = String::new();
    for key in ["name", "arguments", "output"] {
        if let Some(s) = item.get(key).and_then(Value::as_str) {
            text.push_str(s);
        }
    }
    if let Some(parts) = item.get("content").and_then(Value::as_array) {
        for part in parts {
            for key in ["text", "transcript"] {
                if let Some(s) = part.get(key).and_then(Value::as_str) {
                    text.push_str(s);
                }
            }
        }
    }
    text
}

/// SplitMix64: a tiny deterministic sequence for delta sizes.
fn splitmix(state: u64) -> u64 {
    let mut z = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

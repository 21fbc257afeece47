//! The model's answers, one at a time, in the live service's event order:
//!
//! `response.created` → the assistant message (`output_item.added`, `content_part.added`, audio and transcript
//! deltas of varying size streamed at a multiple of real time, then `output_audio.done`,
//! `output_audio_transcript.done`, `content_part.done`, `output_item.done`) → an optional function call
//! (`output_item.added` type `function_call`, `function_call_arguments.delta`…, `function_call_arguments.done`,
//! `output_item.done`) → `response.done` with `status`, `status_details` and `usage`.
//!
//! A cancel (client `response.cancel`, or a barge-in) is asynchronous: generation stops at once, but the
//! response stays active for `cancel_delay`; then every open item is closed with status `incomplete` (a
//! function call still gets its `arguments.done`) and `response.done` says `cancelled`. Scripted outcomes
//! (`response_outcomes`) end a response `failed` (no output) or `incomplete` (halfway).

use std::time::Duration;

use base64::Engine;
use serde_json::{json, Map, Value};
use tokio::time::Instant;

use super::codec::AudioFormat;
use super::{text_tokens, Item, Session, Tokens};
use crate::sim::new_id;
use crate::sim::realtime_server::{
    lock, AgentTurn, RealtimeProbe, SimFunctionCallRecord, SimResponseRecord, TurnOutcome,
};

/// Delta tags count down from the top of the range so they never collide with caller frame tags.
static NEXT_DELTA_TAG: std::sync::atomic::AtomicU32 =
    std::sync::atomic::AtomicU32::new(0x8000_0000);

/// Output tokens per second of assistant audio, input tokens per second of caller audio (plausible, fixed).
const OUTPUT_AUDIO_MS_PER_TOKEN: u64 = 50;

/// The assistant message being streamed.
struct MessageOut {
    item_id: String,
    output_index: usize,
    /// Audio mode (`output_modalities: ["audio"]`); else text only.
    audio_mode: bool,
    audio: Vec<u8>,
    /// Bytes to send before the message ends (less than `audio.len()` when the response ends incomplete).
    limit: usize,
    sent: usize,
    text: String,
    /// Characters of `text` sent as transcript deltas (in step with the audio).
    text_sent: usize,
}

/// The function call being streamed.
struct CallOut {
    item_id: String,
    call_id: String,
    name: String,
    output_index: usize,
    /// The arguments cut into delta-sized pieces (at least one, maybe empty).
    chunks: Vec<String>,
    sent: usize,
    started: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// A scripted failure: `response.done` `failed` at the next pump.
    Failing,
    Message,
    Call,
}

/// How a response ends.
enum Ending {
    Completed,
    Cancelled(String),
    Incomplete(String),
    Failed(String),
}

/// The one response in progress.
pub(in crate::sim) struct ActiveResponse {
    id: String,
    /// 0-based number of this response in the session.
    seq: usize,
    turn: AgentTurn,
    stage: Stage,
    started: Instant,
    format: AudioFormat,
    voice: Value,
    modalities: Value,
    max_output_tokens: Value,
    /// Why the answer stops early (`max_output_tokens`, `content_filter`), if it does.
    stop_reason: Option<String>,
    failure: Option<String>,
    message: Option<MessageOut>,
    call: Option<CallOut>,
    /// When the cancel lands, and its reason.
    cancel: Option<(Instant, String)>,
    /// Output items closed so far (for `response.done`).
    output: Vec<Value>,
    calls: Vec<SimFunctionCallRecord>,
    input: Tokens,
    output_audio_ms: u64,
    output_text: String,
}

impl ActiveResponse {
    pub(in crate::sim) fn id(&self) -> &str {
        &self.id
    }

    /// A cancel was requested and its `response.done` has not gone out yet.
    pub(in crate::sim) fn cancelling(&self) -> bool {
        self.cancel.is_some()
    }

    fn base(&self, status: &str) -> Value {
        json!({
            "id": self.id, "object": "realtime.response", "status": status, "status_details": null,
            "output": [], "conversation_id": "conv_sim", "output_modalities": self.modalities,
            "max_output_tokens": self.max_output_tokens,
            "audio": {"output": {"format": self.format.to_json(), "voice": self.voice}},
            "metadata": null, "usage": null
        })
    }
}

/// Splits `text` into `n` pieces on character boundaries (at least one piece).
fn chunks(text: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    if chars.is_empty() {
        return vec![String::new()];
    }
    let n = n.clamp(1, chars.len());
    (0..n)
        .map(|i| {
            chars[chars.len() * i / n..chars.len() * (i + 1) / n]
                .iter()
                .collect()
        })
        .collect()
}

impl Session {
    /// Stream time `ms` after `base`, at the configured speed (all at once for an infinite speed).
    fn at(&self, base: Instant, ms: u64) -> Instant {
        let speed = self.config.speed_factor;
        let speed = if speed.is_nan() || speed <= 0.0 {
            1.0
        } else {
            speed
        };
        if speed.is_infinite() {
            return base;
        }
        base + Duration::from_secs_f64(ms as f64 / 1000.0 / speed)
    }

    /// When something is next due: a delta, the end of a cancel, a transcript (`None`: nothing pending).
    pub(crate) fn next_due(&self) -> Option<Instant> {
        let response = self.response.as_ref().map(|r| self.response_due(r));
        let transcript = self.transcripts.iter().filter_map(|t| t.at).min();
        response.into_iter().chain(transcript).min()
    }

    fn response_due(&self, r: &ActiveResponse) -> Instant {
        if let Some((at, _)) = &r.cancel {
            return *at;
        }
        match r.stage {
            Stage::Failing => r.started,
            Stage::Message => {
                let m = r.message.as_ref().expect("message stage has a message");
                if m.sent < m.limit {
                    self.at(r.started, m.sent as u64 / r.format.bytes_per_ms())
                } else {
                    r.started
                }
            }
            Stage::Call => {
                let c = r.call.as_ref().expect("call stage has a call");
                let step = u64::from(self.config.function_call_delta_ms);
                self.at(c.started, c.sent as u64 * step)
            }
        }
    }

    /// Sends everything that is due at `now`.
    pub(crate) fn pump(&mut self, now: Instant, out: &mut Vec<Value>) {
        while self.step(now, out) {}
        self.release_transcripts(None, now, out);
    }

    /// One due step of the response; `false` when nothing is due.
    fn step(&mut self, now: Instant, out: &mut Vec<Value>) -> bool {
        let Some(mut r) = self.response.take() else {
            return false;
        };
        if let Some((at, reason)) = r.cancel.clone() {
            if at <= now {
                self.finish(r, Ending::Cancelled(reason), out);
                return true;
            }
            self.response = Some(r);
            return false;
        }
        if self.response_due(&r) > now {
            self.response = Some(r);
            return false;
        }
        match r.stage {
            Stage::Failing => {
                let code = r.failure.clone().unwrap_or_default();
                self.finish(r, Ending::Failed(code), out);
            }
            Stage::Message => {
                let m = r.message.as_ref().expect("message stage has a message");
                if m.sent < m.limit {
                    self.send_delta(&mut r, out);
                    self.response = Some(r);
                } else if let Some(reason) = r.stop_reason.clone() {
                    self.finish(r, Ending::Incomplete(reason), out);
                } else {
                    self.close_message(&mut r, "completed", out);
                    if r.turn.call_tool.is_some() {
                        let started = self.at(r.started, r.turn.tone_ms as u64);
                        self.open_call(&mut r, started, out);
                        self.response = Some(r);
                    } else {
                        self.finish(r, Ending::Completed, out);
                    }
                }
            }
            Stage::Call => {
                let c = r.call.as_mut().expect("call stage has a call");
                // A tool-only answer that ends incomplete stops halfway through its arguments.
                let stop_at = match &r.stop_reason {
                    Some(_) => c.chunks.len() / 2,
                    None => c.chunks.len(),
                };
                if c.sent < stop_at {
                    let delta = c.chunks[c.sent].clone();
                    c.sent += 1;
                    out.push(json!({
                        "type": "response.function_call_arguments.delta", "response_id": r.id,
                        "item_id": c.item_id, "output_index": c.output_index, "call_id": c.call_id,
                        "delta": delta,
                    }));
                    self.response = Some(r);
                } else if let Some(reason) = r.stop_reason.clone() {
                    self.finish(r, Ending::Incomplete(reason), out);
                } else {
                    self.close_call(&mut r, "completed", out);
                    self.finish(r, Ending::Completed, out);
                }
            }
        }
        true
    }

    /// The scripted turn for the next response (the last one repeats), or the filler for a response
    /// asked with `tool_choice: "none"` when one is configured.
    fn next_turn(&mut self, params: &Map<String, Value>) -> AgentTurn {
        if let Some(filler) = &self.config.filler {
            if params.get("tool_choice").and_then(Value::as_str) == Some("none") {
                return filler.clone();
            }
        }
        let turn = match self.config.script.len() {
            0 => AgentTurn::default(),
            n => self.config.script[self.script_used.min(n - 1)].clone(),
        };
        self.script_used += 1;
        turn
    }

    /// Starts a response (the caller checked that none is active). `params`: `response.create`'s `response`.
    pub(super) fn start_response(
        &mut self,
        params: Option<Map<String, Value>>,
        out: &mut Vec<Value>,
    ) {
        let params = params.unwrap_or_default();
        let turn = self.next_turn(&params);
        let seq = self.responses_started;
        let outcome = self
            .config
            .response_outcomes
            .get(seq)
            .cloned()
            .unwrap_or_default();
        self.responses_started += 1;
        lock(&self.log).responses_started += 1;
        let session_or = |key: &str| {
            params
                .get(key)
                .cloned()
                .unwrap_or_else(|| self.session.get(key).cloned().unwrap_or(Value::Null))
        };
        let modalities = session_or("output_modalities");
        let max_output_tokens = session_or("max_output_tokens");
        let instructions = session_or("instructions");
        let tools = session_or("tools");
        let response_audio = params.get("audio").and_then(|a| a.get("output"));
        let format = match response_audio.and_then(|o| o.get("format")) {
            Some(format) => AudioFormat::from_json(Some(format)),
            None => self.output_format(),
        };
        let voice = response_audio
            .and_then(|o| o.get("voice"))
            .or_else(|| self.session.pointer("/audio/output/voice"))
            .cloned()
            .unwrap_or(json!("marin"));
        let audio_mode = modalities
            .as_array()
            .is_none_or(|m| m.iter().any(|m| m == "audio"));
        let input = self.context_tokens(instructions.as_str().unwrap_or(""), &tools);
        let mut r = ActiveResponse {
            id: new_id("resp_"),
            seq,
            stage: Stage::Message,
            started: Instant::now() + self.config.first_audio_delay,
            format,
            voice,
            modalities,
            max_output_tokens,
            stop_reason: None,
            failure: None,
            message: None,
            call: None,
            cancel: None,
            output: Vec::new(),
            calls: Vec::new(),
            input,
            output_audio_ms: 0,
            output_text: String::new(),
            turn,
        };
        out.push(json!({"type": "response.created", "response": r.base("in_progress")}));
        self.bind_transcripts(seq);
        match outcome {
            TurnOutcome::Failed { code } => {
                r.stage = Stage::Failing;
                r.failure = Some(code);
            }
            TurnOutcome::Incomplete { reason } => r.stop_reason = Some(reason),
            TurnOutcome::Completed => {}
        }
        if r.stage != Stage::Failing {
            let has_message = r.turn.tone_ms > 0 || r.turn.call_tool.is_none();
            if has_message {
                self.open_message(&mut r, audio_mode, out);
            } else {
                let started = r.started;
                self.open_call(&mut r, started, out);
            }
        }
        self.response = Some(r);
    }

    fn open_message(&mut self, r: &mut ActiveResponse, audio_mode: bool, out: &mut Vec<Value>) {
        let item_id = new_id("item_");
        let output_index = r.output.len();
        let item = json!({
            "id": item_id, "object": "realtime.item", "type": "message", "role": "assistant",
            "status": "in_progress", "content": []
        });
        out.push(json!({"type": "response.output_item.added", "response_id": r.id, "output_index": output_index, "item": item}));
        let previous = self.items.last().map(|item| item.id.clone());
        out.push(
            json!({"type": "conversation.item.added", "previous_item_id": previous, "item": item}),
        );
        let part = if audio_mode {
            json!({"type": "audio", "transcript": ""})
        } else {
            json!({"type": "text", "text": ""})
        };
        out.push(json!({
            "type": "response.content_part.added", "response_id": r.id, "item_id": item_id,
            "output_index": output_index, "content_index": 0, "part": part
        }));
        let mut stored = Item::new(item_id.clone(), item);
        if audio_mode {
            stored.audio = Some((0, r.format.bytes_per_ms()));
        }
        self.items.push(stored);
        let audio = if audio_mode {
            r.format.tone(r.turn.tone_hz, r.turn.tone_ms, 0.5)
        } else {
            Vec::new()
        };
        let bytes_per_ms = r.format.bytes_per_ms() as usize;
        let mut limit = audio.len();
        if let Some(tokens) = r.max_output_tokens.as_u64() {
            let allowed = tokens as usize * OUTPUT_AUDIO_MS_PER_TOKEN as usize * bytes_per_ms;
            if allowed < limit {
                limit = allowed;
                r.stop_reason = Some("max_output_tokens".into());
            }
        }
        if r.stop_reason.is_some() {
            limit = limit.min(audio.len() / 2 / bytes_per_ms * bytes_per_ms);
        }
        r.message = Some(MessageOut {
            item_id,
            output_index,
            audio_mode,
            audio,
            limit,
            sent: 0,
            text: r.turn.text.clone(),
            text_sent: 0,
        });
        r.stage = Stage::Message;
    }

    fn send_delta(&mut self, r: &mut ActiveResponse, out: &mut Vec<Value>) {
        let ms = self.next_delta_ms() as usize;
        let bytes_per_ms = r.format.bytes_per_ms() as usize;
        let m = r.message.as_mut().expect("message stage has a message");
        let end = (m.sent + ms * bytes_per_ms).min(m.limit);
        let mut bytes = m.audio[m.sent..end].to_vec();
        let tag = (self.config.tag_deltas && r.format == AudioFormat::Pcmu && bytes.len() >= 160)
            .then(|| {
                let tag = NEXT_DELTA_TAG.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let mut frame = [0u8; 160];
                frame.copy_from_slice(&bytes[..160]);
                crate::sim::frame_tag::tag_frame(&mut frame, tag);
                bytes[..160].copy_from_slice(&frame);
                tag
            });
        out.push(json!({
            "type": "response.output_audio.delta",
            "response_id": r.id,
            "item_id": m.item_id,
            "output_index": m.output_index,
            "content_index": 0,
            "delta": base64::engine::general_purpose::STANDARD.encode(&bytes),
        }));
        if let Some(probe) = &self.config.probe {
            let _ = probe.send(RealtimeProbe::DeltaSent {
                session: self.id,
                at: std::time::Instant::now(),
                item_id: m.item_id.clone(),
                bytes: bytes.len(),
                tag,
            });
        }
        // The words go out in step with the audio, as `response.output_audio_transcript.delta`s.
        let chars: Vec<char> = m.text.chars().collect();
        let upto = chars.len() * end / m.audio.len().max(1);
        if upto > m.text_sent {
            let delta: String = chars[m.text_sent..upto].iter().collect();
            out.push(json!({
                "type": "response.output_audio_transcript.delta",
                "response_id": r.id,
                "item_id": m.item_id,
                "output_index": m.output_index,
                "content_index": 0,
                "delta": delta,
            }));
            m.text_sent = upto;
        }
        let sent = (end - m.sent) as u64;
        m.sent = end;
        if let Some(item) = self.items.iter_mut().find(|item| item.id == m.item_id) {
            if let Some((bytes, _)) = item.audio.as_mut() {
                *bytes += sent;
            }
        }
        self.audio_out_sent = true;
        lock(&self.log).audio_sent_bytes += sent;
    }

    /// Closes the assistant message with `status`: what was sent is what it holds.
    fn close_message(&mut self, r: &mut ActiveResponse, status: &str, out: &mut Vec<Value>) {
        let Some(m) = r.message.take() else {
            return;
        };
        let bytes_per_ms = r.format.bytes_per_ms() as usize;
        let (content, part) = if m.audio_mode {
            let transcript: String = m.text.chars().take(m.text_sent).collect();
            let base = |kind: &str| json!({"type": kind, "response_id": r.id, "item_id": m.item_id, "output_index": m.output_index, "content_index": 0});
            out.push(base("response.output_audio.done"));
            let mut done = base("response.output_audio_transcript.done");
            done["transcript"] = json!(transcript);
            out.push(done);
            r.output_audio_ms += (m.sent / bytes_per_ms) as u64;
            r.output_text.push_str(&transcript);
            (
                json!({"type": "output_audio", "transcript": transcript}),
                json!({"type": "audio", "transcript": transcript}),
            )
        } else {
            let keep = if status == "completed" {
                m.text.chars().count()
            } else {
                m.text.chars().count() / 2
            };
            let text: String = m.text.chars().take(keep).collect();
            let base = |kind: &str| json!({"type": kind, "response_id": r.id, "item_id": m.item_id, "output_index": m.output_index, "content_index": 0});
            if !text.is_empty() {
                let mut delta = base("response.output_text.delta");
                delta["delta"] = json!(text);
                out.push(delta);
            }
            let mut done = base("response.output_text.done");
            done["text"] = json!(text);
            out.push(done);
            r.output_text.push_str(&text);
            (
                json!({"type": "output_text", "text": text}),
                json!({"type": "text", "text": text}),
            )
        };
        out.push(json!({
            "type": "response.content_part.done", "response_id": r.id, "item_id": m.item_id,
            "output_index": m.output_index, "content_index": 0, "part": part
        }));
        let item = json!({
            "id": m.item_id, "object": "realtime.item", "type": "message", "role": "assistant",
            "status": status, "content": [content]
        });
        out.push(json!({"type": "response.output_item.done", "response_id": r.id, "output_index": m.output_index, "item": item}));
        out.push(json!({"type": "conversation.item.done", "item": item}));
        if let Some(stored) = self.items.iter_mut().find(|i| i.id == m.item_id) {
            stored.tokens = Tokens {
                text: text_tokens(&r.output_text),
                audio: (m.sent / bytes_per_ms) as u64 / OUTPUT_AUDIO_MS_PER_TOKEN,
            };
            stored.value = item.clone();
        }
        r.output.push(item);
    }

    fn open_call(&mut self, r: &mut ActiveResponse, started: Instant, out: &mut Vec<Value>) {
        let (name, arguments) = r.turn.call_tool.clone().unwrap_or_default();
        let item_id = new_id("item_");
        let call_id = new_id("call_");
        let output_index = r.output.len();
        let item = json!({
            "id": item_id, "object": "realtime.item", "type": "function_call", "status": "in_progress",
            "name": name, "call_id": call_id, "arguments": ""
        });
        out.push(json!({"type": "response.output_item.added", "response_id": r.id, "output_index": output_index, "item": item}));
        let previous = self.items.last().map(|item| item.id.clone());
        out.push(
            json!({"type": "conversation.item.added", "previous_item_id": previous, "item": item}),
        );
        let mut stored = Item::new(item_id.clone(), item);
        stored.call_id = Some(call_id.clone());
        self.items.push(stored);
        r.call = Some(CallOut {
            item_id,
            call_id,
            name,
            output_index,
            chunks: chunks(&arguments, 3),
            sent: 0,
            started,
        });
        r.stage = Stage::Call;
    }

    /// Closes the function call with `status`; its `arguments.done` carries what was streamed.
    fn close_call(&mut self, r: &mut ActiveResponse, status: &str, out: &mut Vec<Value>) {
        let Some(c) = r.call.take() else {
            return;
        };
        let arguments: String = c.chunks[..c.sent].concat();
        out.push(json!({
            "type": "response.function_call_arguments.done", "response_id": r.id, "item_id": c.item_id,
            "output_index": c.output_index, "call_id": c.call_id, "name": c.name, "arguments": arguments
        }));
        let item = json!({
            "id": c.item_id, "object": "realtime.item", "type": "function_call", "status": status,
            "name": c.name, "call_id": c.call_id, "arguments": arguments
        });
        out.push(json!({"type": "response.output_item.done", "response_id": r.id, "output_index": c.output_index, "item": item}));
        out.push(json!({"type": "conversation.item.done", "item": item}));
        if let Some(stored) = self.items.iter_mut().find(|i| i.id == c.item_id) {
            stored.tokens.text = text_tokens(&c.name) + text_tokens(&arguments);
            stored.value = item.clone();
        }
        r.output_text.push_str(&c.name);
        r.output_text.push_str(&arguments);
        r.calls.push(SimFunctionCallRecord {
            item_id: c.item_id,
            call_id: c.call_id,
            name: c.name,
            arguments,
            status: status.to_string(),
        });
        r.output.push(item);
    }

    /// Closes what is still open and sends `response.done`.
    fn finish(&mut self, mut r: ActiveResponse, ending: Ending, out: &mut Vec<Value>) {
        let item_status = match ending {
            Ending::Completed => "completed",
            _ => "incomplete",
        };
        self.close_message(&mut r, item_status, out);
        self.close_call(&mut r, item_status, out);
        let (status, details, reason, error_code) = match &ending {
            Ending::Completed => ("completed", Value::Null, None, None),
            Ending::Cancelled(reason) => (
                "cancelled",
                json!({"type": "cancelled", "reason": reason}),
                Some(reason.clone()),
                None,
            ),
            Ending::Incomplete(reason) => (
                "incomplete",
                json!({"type": "incomplete", "reason": reason}),
                Some(reason.clone()),
                None,
            ),
            Ending::Failed(code) => {
                let kind = match code.as_str() {
                    "insufficient_quota" => "insufficient_quota",
                    "rate_limit_exceeded" => "requests",
                    _ => "server_error",
                };
                (
                    "failed",
                    json!({"type": "failed", "error": {"type": kind, "code": code}}),
                    None,
                    Some(code.clone()),
                )
            }
        };
        let usage = self.usage(&r);
        let mut response = r.base(status);
        response["status_details"] = details;
        response["output"] = Value::Array(r.output.clone());
        response["usage"] = usage.clone();
        out.push(json!({"type": "response.done", "response": response}));
        {
            let mut log = lock(&self.log);
            match status {
                "completed" => log.responses_completed += 1,
                "cancelled" => log.responses_cancelled += 1,
                _ => {}
            }
            log.responses.push(SimResponseRecord {
                id: r.id.clone(),
                status: status.to_string(),
                reason,
                error_code,
                audio_ms: r.output_audio_ms,
                function_calls: r.calls.clone(),
                usage,
            });
        }
        self.release_transcripts(Some(r.seq), Instant::now(), out);
        self.response = None;
        if std::mem::take(&mut self.respond_after_cancel) {
            self.start_response(None, out);
        }
    }

    /// `usage` of a finished response: input from the conversation when it started (the previous response's
    /// input counts as cached once it is at least 1024 tokens, in 64-token steps), output from what was sent.
    fn usage(&mut self, r: &ActiveResponse) -> Value {
        let input_total = r.input.text + r.input.audio;
        let cached = if self.last_input_tokens >= 1024 {
            self.last_input_tokens.min(input_total) / 64 * 64
        } else {
            0
        };
        self.last_input_tokens = input_total;
        let cached_audio = cached * r.input.audio / input_total.max(1);
        let output_audio = r.output_audio_ms.div_ceil(OUTPUT_AUDIO_MS_PER_TOKEN);
        let output_text = text_tokens(&r.output_text);
        let output_total = output_audio + output_text;
        json!({
            "total_tokens": input_total + output_total,
            "input_tokens": input_total,
            "output_tokens": output_total,
            "input_token_details": {
                "text_tokens": r.input.text,
                "audio_tokens": r.input.audio,
                "image_tokens": 0,
                "cached_tokens": cached,
                "cached_tokens_details": {
                    "text_tokens": cached - cached_audio,
                    "audio_tokens": cached_audio,
                    "image_tokens": 0
                }
            },
            "output_token_details": {"text_tokens": output_text, "audio_tokens": output_audio}
        })
    }

    /// Starts cancelling the active response: no more output; `response.done` (`cancelled`, `reason`) after
    /// `cancel_delay` (at once when that is zero). A second request while cancelling changes nothing.
    pub(super) fn request_cancel(&mut self, reason: &str, out: &mut Vec<Value>) {
        let delay = self.config.cancel_delay;
        let Some(r) = self.response.as_mut() else {
            return;
        };
        if r.cancel.is_some() {
            return;
        }
        if delay.is_zero() {
            if let Some(r) = self.response.take() {
                self.finish(r, Ending::Cancelled(reason.to_string()), out);
            }
            return;
        }
        r.cancel = Some((Instant::now() + delay, reason.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::chunks;

    #[test]
    fn chunks_cover_the_text() {
        assert_eq!(chunks("", 3), vec![String::new()]);
        assert_eq!(chunks("ab", 3), vec!["a".to_string(), "b".to_string()]);
        let text = r#"{"reason":"done"}"#;
        let pieces = chunks(text, 3);
        assert_eq!(pieces.len(), 3);
        assert_eq!(pieces.concat(), text);
    }
}

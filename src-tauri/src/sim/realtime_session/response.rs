//! The model's answers: a scripted tone streamed as `response.output_audio.delta` chunks at a multiple of
//! real time, the closing events (with an optional function call), and cancellation on barge-in.

use std::time::Duration;

use base64::Engine;
use serde_json::{json, Value};
use tokio::time::Instant;

use super::{Session, BYTES_PER_MS};
use crate::audio::mulaw;
use crate::sim::new_id;
use crate::sim::realtime_server::{lock, AgentTurn, RealtimeProbe};

/// Delta tags count down from the top of the range so they never collide with caller frame tags.
static NEXT_DELTA_TAG: std::sync::atomic::AtomicU32 =
    std::sync::atomic::AtomicU32::new(0x8000_0000);

/// A response whose audio is still being streamed.
pub(super) struct ActiveResponse {
    id: String,
    item_id: String,
    turn: AgentTurn,
    audio: Vec<u8>,
    sent: usize,
    chunks_sent: u32,
    started: Instant,
    /// Characters of the turn's text already sent as transcript deltas (in step with the audio).
    text_sent: usize,
}

impl Session {
    /// When the streaming response wants its next delta (`None` when nothing streams).
    pub(crate) fn next_due(&self) -> Option<Instant> {
        let response = self.response.as_ref()?;
        Some(response.started + self.delta_interval() * response.chunks_sent)
    }

    fn delta_interval(&self) -> Duration {
        let speed = self.config.speed_factor;
        let speed = if speed.is_nan() || speed <= 0.0 {
            1.0
        } else {
            speed
        };
        if speed.is_infinite() {
            return Duration::ZERO;
        }
        Duration::from_secs_f64(self.config.delta_ms.max(1) as f64 / 1000.0 / speed)
    }

    /// Sends every delta that is due at `now`, and the closing events after the last one.
    pub(crate) fn pump(&mut self, now: Instant, out: &mut Vec<Value>) {
        let interval = self.delta_interval();
        let chunk = (self.config.delta_ms.max(1) as usize) * BYTES_PER_MS as usize;
        let Some(response) = self.response.as_mut() else {
            return;
        };
        while response.sent < response.audio.len()
            && response.started + interval * response.chunks_sent <= now
        {
            let end = (response.sent + chunk).min(response.audio.len());
            let mut bytes = response.audio[response.sent..end].to_vec();
            let tag = (self.config.tag_deltas && bytes.len() >= 160).then(|| {
                let tag = NEXT_DELTA_TAG.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let mut frame = [0u8; 160];
                frame.copy_from_slice(&bytes[..160]);
                crate::sim::frame_tag::tag_frame(&mut frame, tag);
                bytes[..160].copy_from_slice(&frame);
                tag
            });
            let bytes = &bytes[..];
            out.push(json!({
                "type": "response.output_audio.delta",
                "response_id": response.id,
                "item_id": response.item_id,
                "output_index": 0,
                "content_index": 0,
                "delta": base64::engine::general_purpose::STANDARD.encode(bytes),
            }));
            if let Some(probe) = &self.config.probe {
                let _ = probe.send(RealtimeProbe::DeltaSent {
                    session: self.id,
                    at: std::time::Instant::now(),
                    item_id: response.item_id.clone(),
                    bytes: bytes.len(),
                    tag,
                });
            }
            // The words go out in step with the audio, as `response.output_audio_transcript.delta`s.
            let chars: Vec<char> = response.turn.text.chars().collect();
            let upto = chars.len() * end / response.audio.len().max(1);
            if upto > response.text_sent {
                let delta: String = chars[response.text_sent..upto].iter().collect();
                out.push(json!({
                    "type": "response.output_audio_transcript.delta",
                    "response_id": response.id,
                    "item_id": response.item_id,
                    "output_index": 0,
                    "content_index": 0,
                    "delta": delta,
                }));
                response.text_sent = upto;
            }
            *self.audio_sent.entry(response.item_id.clone()).or_default() += bytes.len() as u64;
            lock(&self.log).audio_sent_bytes += bytes.len() as u64;
            response.sent = end;
            response.chunks_sent += 1;
        }
        if response.sent >= response.audio.len() {
            self.finish_response(out);
        }
    }

    /// The scripted turn for the next response (the last one repeats).
    pub(super) fn next_turn(&self) -> AgentTurn {
        match self.config.script.len() {
            0 => AgentTurn::default(),
            n => self.config.script[self.responses_started.min(n - 1)].clone(),
        }
    }

    pub(super) fn start_response(&mut self, out: &mut Vec<Value>) {
        if self.response.is_some() {
            return self.error(
                out,
                "conversation_already_has_active_response",
                "Conversation already has an active response in progress.",
                None,
                None,
            );
        }
        let turn = self.next_turn();
        self.responses_started += 1;
        lock(&self.log).responses_started += 1;
        let id = new_id("resp_");
        let item_id = new_id("item_");
        let item = json!({
            "id": item_id, "object": "realtime.item", "type": "message", "role": "assistant",
            "status": "in_progress", "content": []
        });
        out.push(json!({
            "type": "response.created",
            "response": {
                "id": id, "object": "realtime.response", "status": "in_progress", "status_details": null,
                "output": [], "conversation_id": "conv_sim", "output_modalities": ["audio"],
                "audio": {"output": {"format": {"type": "audio/pcmu"}, "voice": "marin"}}, "usage": null
            }
        }));
        out.push(json!({"type": "response.output_item.added", "response_id": id, "output_index": 0, "item": item}));
        let previous = self.items.last().cloned();
        out.push(
            json!({"type": "conversation.item.added", "previous_item_id": previous, "item": item}),
        );
        out.push(json!({
            "type": "response.content_part.added", "response_id": id, "item_id": item_id,
            "output_index": 0, "content_index": 0, "part": {"type": "audio", "transcript": ""}
        }));
        self.items.push(item_id.clone());
        self.audio_sent.insert(item_id.clone(), 0);
        let audio = mulaw::tone(turn.tone_hz, turn.tone_ms, 0.5);
        self.response = Some(ActiveResponse {
            id,
            item_id,
            turn,
            audio,
            sent: 0,
            chunks_sent: 0,
            started: Instant::now(),
            text_sent: 0,
        });
    }

    pub(super) fn finish_response(&mut self, out: &mut Vec<Value>) {
        let Some(r) = self.response.take() else {
            return;
        };
        let (id, item_id, text) = (&r.id, &r.item_id, &r.turn.text);
        let base = |kind: &str| json!({"type": kind, "response_id": id, "item_id": item_id, "output_index": 0, "content_index": 0});
        out.push(base("response.output_audio.done"));
        let mut transcript_done = base("response.output_audio_transcript.done");
        transcript_done["transcript"] = json!(text);
        out.push(transcript_done);
        let mut part_done = base("response.content_part.done");
        part_done["part"] = json!({"type": "audio", "transcript": text});
        out.push(part_done);
        let message = json!({
            "id": item_id, "object": "realtime.item", "type": "message", "role": "assistant",
            "status": "completed", "content": [{"type": "output_audio", "transcript": text}]
        });
        out.push(json!({"type": "response.output_item.done", "response_id": id, "output_index": 0, "item": message}));
        out.push(json!({"type": "conversation.item.done", "item": message}));
        let mut output = vec![message];
        if let Some((name, arguments)) = &r.turn.call_tool {
            let call_item_id = new_id("item_");
            let call_id = new_id("call_");
            let mut call = json!({
                "id": call_item_id, "object": "realtime.item", "type": "function_call", "status": "in_progress",
                "name": name, "call_id": call_id, "arguments": ""
            });
            out.push(json!({"type": "response.output_item.added", "response_id": id, "output_index": 1, "item": call}));
            out.push(json!({"type": "conversation.item.added", "previous_item_id": item_id, "item": call}));
            out.push(json!({
                "type": "response.function_call_arguments.done", "response_id": id, "item_id": call_item_id,
                "output_index": 1, "call_id": call_id, "name": name, "arguments": arguments
            }));
            call["status"] = json!("completed");
            call["arguments"] = json!(arguments);
            out.push(json!({"type": "response.output_item.done", "response_id": id, "output_index": 1, "item": call}));
            out.push(json!({"type": "conversation.item.done", "item": call}));
            self.items.push(call_item_id);
            output.push(call);
        }
        out.push(json!({
            "type": "response.done",
            "response": {
                "id": id, "object": "realtime.response", "status": "completed", "status_details": null,
                "output": output, "conversation_id": "conv_sim", "output_modalities": ["audio"],
                "usage": {"total_tokens": 0, "input_tokens": 0, "output_tokens": 0}
            }
        }));
        lock(&self.log).responses_completed += 1;
    }

    /// Stops streaming at once and reports the response as cancelled.
    pub(super) fn cancel_response(&mut self, reason: &str, out: &mut Vec<Value>) {
        let Some(r) = self.response.take() else {
            return;
        };
        out.push(json!({
            "type": "response.done",
            "response": {
                "id": r.id, "object": "realtime.response", "status": "cancelled",
                "status_details": {"type": "cancelled", "reason": reason},
                "output": [{
                    "id": r.item_id, "object": "realtime.item", "type": "message", "role": "assistant",
                    "status": "incomplete", "content": [{"type": "output_audio", "transcript": r.turn.text}]
                }],
                "conversation_id": "conv_sim", "output_modalities": ["audio"], "usage": null
            }
        }));
        lock(&self.log).responses_cancelled += 1;
    }
}

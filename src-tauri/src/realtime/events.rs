//! OpenAI Realtime GA events: the client events the bridge sends and the server events it reads.
//!
//! Client events are built as JSON text directly (the hot-path `input_audio_buffer.append` just wraps
//! Twilio's base64 payload). Server events are parsed in one pass into [`ServerEvent`], borrowing the
//! large audio `delta` so it can be forwarded to Twilio without a copy. Unknown event types are kept as
//! [`ServerEvent::Other`] rather than failing: the API adds events over time.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::{json, Value};

use crate::wire::decimal::decimal;
use crate::wire::json_scan::{Field, Scan, Value as Scanned};

/// Who a conversation message is from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The caller (`input_text`).
    User,
    /// The agent (`output_text`: the API cannot create assistant audio, so history is text).
    Assistant,
    /// A note for the model that is not part of what anyone said (`input_text`).
    System,
}

// Every client event carries an `event_id`, so the service's `error.event_id` ties an error back to
// the event that caused it.

/// `session.update` with a full GA session object (see [`crate::realtime::session`]).
pub fn session_update(event_id: &str, session: Value) -> String {
    json!({"type": "session.update", "event_id": event_id, "session": session}).to_string()
}

/// `input_audio_buffer.append`; `audio_b64` is base64 μ-law, passed through as it is. The event id is
/// `{id_prefix}{id_number}`, written in place: this runs fifty times a second per call.
pub fn input_audio_append(id_prefix: &str, id_number: u64, audio_b64: &str) -> String {
    let mut digits = [0u8; 20];
    input_audio_append_parts(id_prefix, id_number, &mut digits, audio_b64).concat()
}

/// [`input_audio_append`] as the pieces of its text, for a socket that frames them without building
/// the string first (50 a second per call). `digits` holds the formatted id.
pub fn input_audio_append_parts<'a>(
    id_prefix: &'a str,
    id_number: u64,
    digits: &'a mut [u8; 20],
    audio_b64: &'a str,
) -> [&'a str; 6] {
    [
        r#"{"type":"input_audio_buffer.append","event_id":""#,
        id_prefix,
        decimal(id_number, digits),
        r#"","audio":""#,
        audio_b64,
        r#""}"#,
    ]
}

/// `conversation.item.truncate`: cut the agent's item to what the caller actually heard.
pub fn item_truncate(event_id: &str, item_id: &str, audio_end_ms: u64) -> String {
    json!({"type": "conversation.item.truncate", "event_id": event_id, "item_id": item_id, "content_index": 0, "audio_end_ms": audio_end_ms})
        .to_string()
}

/// `response.create`, with optional response parameters (`instructions`, `tool_choice`, …).
pub fn response_create(event_id: &str, response: Option<&Value>) -> String {
    match response {
        Some(params) => {
            json!({"type": "response.create", "event_id": event_id, "response": params}).to_string()
        }
        None => json!({"type": "response.create", "event_id": event_id}).to_string(),
    }
}

/// `response.cancel`: stop the response in progress. Asynchronous: the response ends with its own
/// `response.done` (status `cancelled`).
pub fn response_cancel(event_id: &str) -> String {
    json!({"type": "response.cancel", "event_id": event_id}).to_string()
}

/// `conversation.item.create` with a text message (DTMF notes, system notes, or seeding a fresh
/// session with the conversation so far).
pub fn message_item_create(event_id: &str, role: Role, text: &str) -> String {
    let (role, kind) = match role {
        Role::User => ("user", "input_text"),
        Role::Assistant => ("assistant", "output_text"),
        Role::System => ("system", "input_text"),
    };
    json!({
        "type": "conversation.item.create",
        "event_id": event_id,
        "item": {"type": "message", "role": role, "content": [{"type": kind, "text": text}]},
    })
    .to_string()
}

/// `conversation.item.create` with a function call's result.
pub fn function_output_create(event_id: &str, call_id: &str, output: &str) -> String {
    json!({
        "type": "conversation.item.create",
        "event_id": event_id,
        "item": {"type": "function_call_output", "call_id": call_id, "output": output},
    })
    .to_string()
}

/// Why a server frame could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("malformed Realtime server event: {0}")]
pub struct EventParseError(pub String);

/// `error` body of a server `error` event.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct ApiError {
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    /// The field of the client event that was refused (`session.audio.output.speed`).
    #[serde(default)]
    pub param: Option<String>,
    /// The `event_id` of the client event that caused the error.
    #[serde(default)]
    pub event_id: Option<String>,
}

/// Why a response did not complete (`response.status_details`).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct StatusDetails {
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// `turn_detected`, `client_cancelled`, `max_output_tokens`, `content_filter`.
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub error: Option<StatusError>,
}

/// The error of a failed response (`insufficient_quota`, `rate_limit_exceeded`, …).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct StatusError {
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
}

impl StatusDetails {
    /// One line for people: the reason, or the error's code or type.
    pub fn describe(&self) -> String {
        let error = self
            .error
            .as_ref()
            .and_then(|e| e.code.clone().or_else(|| e.kind.clone()));
        match (&self.reason, error) {
            (Some(reason), Some(error)) => format!("{reason} ({error})"),
            (Some(reason), None) => reason.clone(),
            (None, Some(error)) => error,
            (None, None) => self
                .kind
                .clone()
                .unwrap_or_else(|| "no reason given".into()),
        }
    }
}

/// Token counts of one response (`response.usage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub total_tokens: u64,
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
    #[serde(default)]
    pub input_token_details: InputTokenDetails,
    #[serde(default)]
    pub output_token_details: OutputTokenDetails,
}

impl From<Usage> for crate::types::TokenUsage {
    fn from(u: Usage) -> Self {
        let d = &u.input_token_details;
        let (cached_text, cached_audio) = match d.cached_tokens_details {
            Some(split) => (split.text_tokens, split.audio_tokens),
            None => {
                // Not split by the server: proportional to the input's own split.
                let input = d.text_tokens + d.audio_tokens;
                let audio = if input == 0 {
                    0
                } else {
                    (u128::from(d.cached_tokens) * u128::from(d.audio_tokens) / u128::from(input))
                        as u64
                };
                (d.cached_tokens.saturating_sub(audio), audio)
            }
        };
        crate::types::TokenUsage {
            input_text: d.text_tokens,
            input_audio: d.audio_tokens,
            input_cached: d.cached_tokens,
            input_cached_text: cached_text,
            input_cached_audio: cached_audio,
            output_text: u.output_token_details.text_tokens,
            output_audio: u.output_token_details.audio_tokens,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub struct InputTokenDetails {
    #[serde(default)]
    pub text_tokens: u64,
    #[serde(default)]
    pub audio_tokens: u64,
    #[serde(default)]
    pub cached_tokens: u64,
    #[serde(default)]
    pub cached_tokens_details: Option<CachedTokenDetails>,
}

/// Which cached input tokens were text and which audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub struct CachedTokenDetails {
    #[serde(default)]
    pub text_tokens: u64,
    #[serde(default)]
    pub audio_tokens: u64,
}

/// What transcribing one caller turn used: tokens (`gpt-4o-transcribe` and its kin) or seconds of
/// audio (`whisper-1`).
#[derive(Debug, Clone, Copy, PartialEq, Default, Deserialize)]
pub struct TranscriptionUsage {
    /// `tokens` or `duration`.
    #[serde(default, rename = "type")]
    pub kind: Option<UsageKind>,
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
    #[serde(default)]
    pub input_token_details: Option<TranscriptionInputDetails>,
    #[serde(default)]
    pub seconds: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UsageKind {
    Tokens,
    Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub struct TranscriptionInputDetails {
    #[serde(default)]
    pub text_tokens: u64,
    #[serde(default)]
    pub audio_tokens: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub struct OutputTokenDetails {
    #[serde(default)]
    pub text_tokens: u64,
    #[serde(default)]
    pub audio_tokens: u64,
}

/// The server events the bridge acts on.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerEvent<'a> {
    SessionCreated,
    /// The session as the service now has it: the audio formats say whether μ-law took.
    SessionUpdated {
        input_format: Option<String>,
        output_format: Option<String>,
    },
    /// The caller started talking (server VAD): time to barge in.
    SpeechStarted {
        item_id: Option<String>,
        /// Where speech starts in the audio this session has received (ms since the session began).
        audio_start_ms: Option<u64>,
    },
    SpeechStopped {
        item_id: Option<String>,
        audio_end_ms: Option<u64>,
    },
    ResponseCreated {
        response_id: Option<String>,
    },
    /// A chunk of the agent's speech, base64 μ-law.
    AudioDelta {
        response_id: Option<String>,
        item_id: String,
        delta: Cow<'a, str>,
    },
    /// The item's audio is complete.
    AudioDone {
        item_id: String,
    },
    /// Part of the agent's words for an item, as they are spoken.
    AudioTranscriptDelta {
        item_id: String,
        delta: String,
    },
    /// The agent's full words for an item.
    AudioTranscriptDone {
        item_id: String,
        transcript: String,
    },
    /// The caller's words for an item.
    InputTranscriptionCompleted {
        item_id: String,
        transcript: String,
        usage: Option<TranscriptionUsage>,
    },
    InputTranscriptionFailed {
        item_id: String,
        message: String,
    },
    /// A function call's arguments are complete. Also sent for calls in responses that were cut or
    /// cancelled: only [`ServerEvent::OutputItemDone`] with status `completed` makes it a real call.
    FunctionCallDone {
        call_id: String,
        name: Option<String>,
        item_id: Option<String>,
        arguments: String,
    },
    /// An output item started; function calls carry their name here.
    OutputItemAdded {
        item_id: Option<String>,
        kind: Option<String>,
        name: Option<String>,
    },
    /// An output item is finished, with its final status (`completed`, `incomplete`).
    OutputItemDone {
        item_id: Option<String>,
        kind: Option<String>,
        status: Option<String>,
        call_id: Option<String>,
        name: Option<String>,
        arguments: Option<String>,
    },
    ItemTruncated {
        item_id: String,
        audio_end_ms: u64,
    },
    ResponseDone {
        response_id: Option<String>,
        /// `completed`, `cancelled`, `incomplete` or `failed`.
        status: Option<String>,
        details: Option<StatusDetails>,
        usage: Option<Usage>,
    },
    Error(ApiError),
    /// Any other event (kept so new API events never break a call).
    Other(String),
}

/// Flat view of every field the bridge reads; one serde pass over the frame.
#[derive(Deserialize)]
struct RawEvent<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    /// A plain `Cow` field (not `Option<Cow>`) so serde borrows it instead of copying.
    #[serde(default, borrow)]
    delta: Cow<'a, str>,
    #[serde(default)]
    item_id: Option<String>,
    #[serde(default)]
    response_id: Option<String>,
    #[serde(default)]
    transcript: Option<String>,
    #[serde(default)]
    call_id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
    #[serde(default)]
    audio_start_ms: Option<u64>,
    #[serde(default)]
    audio_end_ms: Option<u64>,
    #[serde(default)]
    error: Option<ApiError>,
    #[serde(default)]
    response: Option<RawResponse>,
    /// A transcription's usage (responses carry theirs inside `response`), read once the event is
    /// known to be one. A shape this build does not know loses the cost of one turn, never the event.
    #[serde(default, borrow)]
    usage: Option<&'a serde_json::value::RawValue>,
    #[serde(default)]
    item: Option<RawItem>,
    #[serde(default)]
    session: Option<RawSession>,
}

#[derive(Deserialize)]
struct RawResponse {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    status_details: Option<StatusDetails>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct RawItem {
    #[serde(default)]
    id: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    call_id: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

#[derive(Deserialize, Default)]
struct RawSession {
    #[serde(default)]
    audio: RawAudio,
}

#[derive(Deserialize, Default)]
struct RawAudio {
    #[serde(default)]
    input: RawAudioSide,
    #[serde(default)]
    output: RawAudioSide,
}

#[derive(Deserialize, Default)]
struct RawAudioSide {
    #[serde(default)]
    format: Option<RawFormat>,
}

#[derive(Deserialize)]
struct RawFormat {
    #[serde(default, rename = "type")]
    kind: Option<String>,
}

fn need(field: Option<String>, what: &str, kind: &str) -> Result<String, EventParseError> {
    field.ok_or_else(|| EventParseError(format!("{kind} without {what}")))
}

/// The fast path for the deltas that stream a response (audio and its transcript, several a second
/// per call): a borrowed scan of the fields GA sends with them, the rest stepped over. A message with any
/// other field, an escape, a value of an unexpected type or a repeated field goes to the full parse, so
/// both paths accept and refuse the same messages.
fn scan_delta(text: &str) -> Option<ServerEvent<'_>> {
    let (mut kind, mut delta, mut item_id, mut response_id) = (None, None, None, None);
    Scan::object(text, |Field { parent, key, value }| {
        let slot = match (parent, key) {
            (None, "type") => &mut kind,
            (None, "delta") => &mut delta,
            (None, "item_id") => &mut item_id,
            (None, "response_id") => &mut response_id,
            // Read by no event the full parse builds; any JSON value.
            (None, "event_id" | "output_index" | "content_index") => return Some(()),
            _ => return None,
        };
        match (slot.is_none(), value) {
            (true, Scanned::Str(s)) => {
                *slot = Some(s);
                Some(())
            }
            _ => None,
        }
    })?;
    let item_id = item_id?.to_string();
    match kind? {
        "response.output_audio.delta" => Some(ServerEvent::AudioDelta {
            response_id: response_id.map(str::to_string),
            item_id,
            delta: Cow::Borrowed(delta.filter(|d| !d.is_empty())?),
        }),
        "response.output_audio_transcript.delta" => Some(ServerEvent::AudioTranscriptDelta {
            item_id,
            delta: delta.unwrap_or_default().to_string(),
        }),
        _ => None,
    }
}

/// Parses one server frame.
///
/// ```
/// use verbio::realtime::events::{parse_server_event, ServerEvent};
/// let e = parse_server_event(r#"{"type":"response.output_audio.delta","item_id":"i1","delta":"//8="}"#).unwrap();
/// assert!(matches!(e, ServerEvent::AudioDelta { ref item_id, .. } if item_id == "i1"));
/// ```
pub fn parse_server_event(text: &str) -> Result<ServerEvent<'_>, EventParseError> {
    if let Some(event) = scan_delta(text) {
        return Ok(event);
    }
    match leading_type(text) {
        // An event the bridge does not read (`conversation.item.added`, `response.content_part.done`, …:
        // several per turn) is only checked to be JSON, not built field by field.
        Some(kind) if !BUILT.contains(&kind) => {
            serde_json::from_str::<serde::de::IgnoredAny>(text)
                .map_err(EventParseError::from_json)?;
            Ok(ServerEvent::Other(kind.to_string()))
        }
        _ => parse_in_full(text),
    }
}

impl EventParseError {
    /// serde's message, cut short: it quotes the frame near the error.
    fn from_json(e: serde_json::Error) -> Self {
        EventParseError(e.to_string().chars().take(160).collect())
    }
}

/// The events [`parse_in_full`] builds (anything else is [`ServerEvent::Other`]).
const BUILT: &[&str] = &[
    "response.output_audio.delta",
    "response.output_audio_transcript.delta",
    "session.created",
    "session.updated",
    "input_audio_buffer.speech_started",
    "input_audio_buffer.speech_stopped",
    "response.created",
    "response.output_audio.done",
    "response.output_audio_transcript.done",
    "conversation.item.input_audio_transcription.completed",
    "conversation.item.input_audio_transcription.failed",
    "response.function_call_arguments.done",
    "response.output_item.added",
    "response.output_item.done",
    "conversation.item.truncated",
    "response.done",
    "error",
];

/// The event's type when it is the object's first member, as the service writes it (`{"type":"…",`),
/// and has no escapes; otherwise `None` (and the full parse finds it).
fn leading_type(text: &str) -> Option<&str> {
    let json_space = |c: char| matches!(c, ' ' | '\t' | '\n' | '\r');
    let rest = text
        .trim_start_matches(json_space)
        .strip_prefix('{')?
        .trim_start_matches(json_space)
        .strip_prefix("\"type\"")?
        .trim_start_matches(json_space)
        .strip_prefix(':')?
        .trim_start_matches(json_space)
        .strip_prefix('"')?;
    let end = rest.find(['"', '\\'])?;
    (rest.as_bytes()[end] == b'"').then(|| &rest[..end])
}

/// Every event through serde (what [`scan_delta`] leaves).
fn parse_in_full(text: &str) -> Result<ServerEvent<'_>, EventParseError> {
    let raw: RawEvent<'_> = serde_json::from_str(text).map_err(EventParseError::from_json)?;
    let kind = raw.kind.as_ref();
    Ok(match kind {
        "response.output_audio.delta" => ServerEvent::AudioDelta {
            response_id: raw.response_id,
            item_id: need(raw.item_id, "item_id", kind)?,
            delta: if raw.delta.is_empty() {
                return Err(EventParseError(format!("{kind} without delta")));
            } else {
                raw.delta
            },
        },
        "response.output_audio_transcript.delta" => ServerEvent::AudioTranscriptDelta {
            item_id: need(raw.item_id, "item_id", kind)?,
            delta: raw.delta.into_owned(),
        },
        "session.created" => ServerEvent::SessionCreated,
        "session.updated" => {
            let audio = raw.session.unwrap_or_default().audio;
            ServerEvent::SessionUpdated {
                input_format: audio.input.format.and_then(|f| f.kind),
                output_format: audio.output.format.and_then(|f| f.kind),
            }
        }
        "input_audio_buffer.speech_started" => ServerEvent::SpeechStarted {
            item_id: raw.item_id,
            audio_start_ms: raw.audio_start_ms,
        },
        "input_audio_buffer.speech_stopped" => ServerEvent::SpeechStopped {
            item_id: raw.item_id,
            audio_end_ms: raw.audio_end_ms,
        },
        "response.created" => ServerEvent::ResponseCreated {
            response_id: raw.response.and_then(|r| r.id),
        },
        "response.output_audio.done" => ServerEvent::AudioDone {
            item_id: need(raw.item_id, "item_id", kind)?,
        },
        "response.output_audio_transcript.done" => ServerEvent::AudioTranscriptDone {
            item_id: need(raw.item_id, "item_id", kind)?,
            transcript: raw.transcript.unwrap_or_default(),
        },
        "conversation.item.input_audio_transcription.completed" => {
            ServerEvent::InputTranscriptionCompleted {
                item_id: need(raw.item_id, "item_id", kind)?,
                transcript: raw.transcript.unwrap_or_default(),
                usage: raw.usage.and_then(|u| serde_json::from_str(u.get()).ok()),
            }
        }
        "conversation.item.input_audio_transcription.failed" => {
            ServerEvent::InputTranscriptionFailed {
                item_id: need(raw.item_id, "item_id", kind)?,
                message: raw.error.and_then(|e| e.message).unwrap_or_default(),
            }
        }
        "response.function_call_arguments.done" => ServerEvent::FunctionCallDone {
            call_id: need(raw.call_id, "call_id", kind)?,
            name: raw.name,
            item_id: raw.item_id,
            arguments: raw.arguments.unwrap_or_default(),
        },
        "response.output_item.added" => {
            let item = raw.item;
            ServerEvent::OutputItemAdded {
                item_id: item.as_ref().and_then(|i| i.id.clone()),
                kind: item.as_ref().and_then(|i| i.kind.clone()),
                name: item.and_then(|i| i.name),
            }
        }
        "response.output_item.done" => match raw.item {
            Some(item) => ServerEvent::OutputItemDone {
                item_id: item.id,
                kind: item.kind,
                status: item.status,
                call_id: item.call_id,
                name: item.name,
                arguments: item.arguments,
            },
            None => return Err(EventParseError(format!("{kind} without item"))),
        },
        "conversation.item.truncated" => ServerEvent::ItemTruncated {
            item_id: need(raw.item_id, "item_id", kind)?,
            audio_end_ms: raw.audio_end_ms.unwrap_or(0),
        },
        "response.done" => match raw.response {
            Some(r) => ServerEvent::ResponseDone {
                response_id: r.id,
                status: r.status,
                details: r.status_details,
                usage: r.usage,
            },
            None => ServerEvent::ResponseDone {
                response_id: None,
                status: None,
                details: None,
                usage: None,
            },
        },
        "error" => ServerEvent::Error(raw.error.unwrap_or_default()),
        other => ServerEvent::Other(other.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Messages near the fast path's edge, and random corruptions of them: whatever the scan takes, the
    /// full parse reads the same way.
    #[test]
    fn the_fast_path_agrees_with_the_full_parse() {
        let seeds = [
            r#"{"type":"response.output_audio.delta","event_id":"event_1","response_id":"resp_1","item_id":"item_1","output_index":0,"content_index":0,"delta":"//8A/w=="}"#,
            r#"{"type":"response.output_audio_transcript.delta","event_id":"e","response_id":"r","item_id":"i","output_index":0,"content_index":0,"delta":"Hel"}"#,
            r#" { "type" : "response.output_audio.delta" , "item_id" : "i" , "delta" : "AAAA" } "#,
            r#"{"type":"response.output_audio.delta","item_id":"i","delta":""}"#,
            r#"{"type":"response.output_audio.delta","item_id":null,"delta":"AAAA"}"#,
            r#"{"type":"response.output_audio.delta","item_id":"i","item_id":"j","delta":"AAAA"}"#,
            r#"{"type":"response.output_audio.delta","item_id":"i","delta":"AAAA","transcript":5}"#,
            r#"{"type":"response.output_audio_transcript.delta","item_id":"i"}"#,
            r#"{"type":"response.output_audio_transcript.delta","item_id":"i","delta":"say \"hi\""}"#,
            r#"{"type":"input_audio_buffer.speech_started","audio_start_ms":12,"item_id":"i"}"#,
        ];
        let taken = crate::wire::json_scan::each_corruption(&seeds, 2000, |text| {
            let fast = scan_delta(text)?;
            assert_eq!(Ok(fast), parse_in_full(text), "{text}");
            Some(())
        });
        assert!(taken > 500, "the fast path took only {taken}");
    }

    /// Events the bridge does not read skip the field-by-field parse; whatever that path takes, the full
    /// parse reads as the same `Other` event, or refuses only for fields the bridge never reads.
    #[test]
    fn ignored_events_are_checked_as_json_and_agree_with_the_full_parse() {
        let seeds = [
            r#"{"type":"conversation.item.added","event_id":"e","previous_item_id":null,"item":{"id":"i","type":"message","status":"completed","role":"user","content":[{"type":"input_audio","transcript":null}]}}"#,
            r#"{"type":"response.content_part.done","event_id":"e","response_id":"r","item_id":"i","output_index":0,"content_index":0,"part":{"type":"audio","transcript":"Hi"}}"#,
            r#" { "type" : "input_audio_buffer.committed" , "previous_item_id" : "a" , "item_id" : "b" } "#,
            r#"{"type":"rate_limits.updated","rate_limits":[{"name":"tokens","limit":1,"remaining":1,"reset_seconds":0.5}]}"#,
        ];
        let taken = crate::wire::json_scan::each_corruption(&seeds, 2000, |text| {
            let kind = leading_type(text).filter(|k| !BUILT.contains(k))?;
            let skipped = parse_server_event(text);
            match parse_in_full(text) {
                Ok(full) => assert_eq!(skipped, Ok(full), "{text}"),
                Err(_) => {
                    // Refused in full: it is not JSON (then refused here too), or a field the bridge
                    // never reads has a type the full parse does not expect.
                    if serde_json::from_str::<Value>(text).is_err() {
                        assert!(skipped.is_err(), "{text}");
                    }
                }
            }
            assert!(!kind.contains('"'));
            Some(())
        });
        assert!(taken > 500, "the skip took only {taken}");
        assert!(parse_server_event(r#"{"type":"conversation.item.added","item":{}"#).is_err());
        assert!(parse_server_event(r#"{"type":"conversation.item.added"} x"#).is_err());
        assert_eq!(
            parse_server_event(r#"{"type":"response.content_part.added","part":{}}"#),
            Ok(ServerEvent::Other("response.content_part.added".into()))
        );
    }

    #[test]
    fn speech_started_says_where_speech_starts_in_the_input_audio() {
        let e = parse_server_event(
            r#"{"type":"input_audio_buffer.speech_started","event_id":"e","audio_start_ms":1280,"item_id":"i1"}"#,
        )
        .unwrap();
        assert_eq!(
            e,
            ServerEvent::SpeechStarted {
                item_id: Some("i1".into()),
                audio_start_ms: Some(1280)
            }
        );
    }

    #[test]
    fn client_events_have_ga_shapes() {
        let v: Value = serde_json::from_str(&input_audio_append("e", 1, "//8=")).unwrap();
        assert_eq!(
            v,
            json!({"type":"input_audio_buffer.append","event_id":"e1","audio":"//8="})
        );
        let v: Value = serde_json::from_str(&item_truncate("e2", "item_1", 740)).unwrap();
        assert_eq!(v["audio_end_ms"], 740);
        assert_eq!(v["content_index"], 0);
        assert_eq!(v["event_id"], "e2");
        let v: Value =
            serde_json::from_str(&message_item_create("e3", Role::Assistant, "hi")).unwrap();
        assert_eq!(v["item"]["role"], "assistant");
        assert_eq!(v["item"]["content"][0]["type"], "output_text");
        let v: Value =
            serde_json::from_str(&message_item_create("e4", Role::System, "note")).unwrap();
        assert_eq!(v["item"]["role"], "system");
        assert_eq!(v["item"]["content"][0]["type"], "input_text");
        let v: Value = serde_json::from_str(&response_create(
            "e5",
            Some(&json!({"instructions": "Say hello"})),
        ))
        .unwrap();
        assert_eq!(v["response"]["instructions"], "Say hello");
        assert_eq!(v["event_id"], "e5");
    }

    #[test]
    fn a_transcription_keeps_its_usage_and_survives_a_strange_one() {
        let with = r#"{"type":"conversation.item.input_audio_transcription.completed","item_id":"i1","content_index":0,"transcript":"hi","usage":{"type":"tokens","input_tokens":7,"output_tokens":1,"total_tokens":8,"input_token_details":{"text_tokens":0,"audio_tokens":7}}}"#;
        match parse_server_event(with).unwrap() {
            ServerEvent::InputTranscriptionCompleted { usage, .. } => {
                assert_eq!(usage.map(|u| u.input_tokens), Some(7));
            }
            other => panic!("{other:?}"),
        }
        let strange = r#"{"type":"conversation.item.input_audio_transcription.completed","item_id":"i1","content_index":0,"transcript":"hi","usage":{"type":"credits","input_tokens":"many"}}"#;
        match parse_server_event(strange).unwrap() {
            ServerEvent::InputTranscriptionCompleted {
                usage, transcript, ..
            } => {
                assert_eq!(usage, None);
                assert_eq!(transcript, "hi");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parses_server_events_and_keeps_unknown_ones() {
        let e = parse_server_event(
            r#"{"type":"response.output_audio.delta","event_id":"e","response_id":"r1","item_id":"i1","output_index":0,"content_index":0,"delta":"AAAA"}"#,
        )
        .unwrap();
        match e {
            ServerEvent::AudioDelta {
                delta, response_id, ..
            } => {
                assert!(matches!(delta, Cow::Borrowed("AAAA")));
                assert_eq!(response_id.as_deref(), Some("r1"));
            }
            other => panic!("{other:?}"),
        }
        let e = parse_server_event(
            r#"{"type":"error","event_id":"e","error":{"type":"invalid_request_error","code":"session_expired","message":"gone"}}"#,
        )
        .unwrap();
        assert!(
            matches!(e, ServerEvent::Error(ApiError { code: Some(ref c), .. }) if c == "session_expired")
        );
        let e = parse_server_event(
            r#"{"type":"response.done","response":{"id":"r1","status":"failed","status_details":{"type":"failed","error":{"type":"insufficient_quota","code":"insufficient_quota"}},"usage":{"total_tokens":30,"input_tokens":20,"output_tokens":10,"input_token_details":{"text_tokens":5,"audio_tokens":15,"cached_tokens":4},"output_token_details":{"text_tokens":2,"audio_tokens":8}}}}"#,
        )
        .unwrap();
        match e {
            ServerEvent::ResponseDone {
                response_id,
                status,
                details: Some(details),
                usage: Some(usage),
            } => {
                assert_eq!(response_id.as_deref(), Some("r1"));
                assert_eq!(status.as_deref(), Some("failed"));
                assert_eq!(details.describe(), "insufficient_quota");
                assert_eq!(usage.input_token_details.cached_tokens, 4);
                assert_eq!(usage.output_token_details.audio_tokens, 8);
            }
            other => panic!("{other:?}"),
        }
        let e = parse_server_event(
            r#"{"type":"error","error":{"type":"invalid_request_error","code":"invalid_value","message":"no","param":"session.reasoning","event_id":"vb_3"}}"#,
        )
        .unwrap();
        assert!(
            matches!(e, ServerEvent::Error(ApiError { param: Some(ref p), event_id: Some(ref id), .. }) if p == "session.reasoning" && id == "vb_3")
        );
        let e = parse_server_event(
            r#"{"type":"session.updated","session":{"audio":{"input":{"format":{"type":"audio/pcm","rate":24000}},"output":{"format":{"type":"audio/pcmu"}}}}}"#,
        )
        .unwrap();
        assert_eq!(
            e,
            ServerEvent::SessionUpdated {
                input_format: Some("audio/pcm".into()),
                output_format: Some("audio/pcmu".into())
            }
        );
        let e = parse_server_event(
            r#"{"type":"response.output_item.done","response_id":"r","output_index":0,"item":{"id":"fc1","type":"function_call","status":"incomplete","call_id":"c1","name":"end_call","arguments":"{}"}}"#,
        )
        .unwrap();
        assert!(
            matches!(e, ServerEvent::OutputItemDone { status: Some(ref s), call_id: Some(ref c), .. } if s == "incomplete" && c == "c1")
        );
        assert_eq!(
            parse_server_event(r#"{"type":"rate_limits.updated","rate_limits":[]}"#).unwrap(),
            ServerEvent::Other("rate_limits.updated".into())
        );
    }

    #[test]
    fn malformed_server_events_are_errors() {
        assert!(parse_server_event("nope").is_err());
        assert!(parse_server_event(r#"{"no_type":1}"#).is_err());
        assert!(
            parse_server_event(r#"{"type":"response.output_audio.delta","item_id":"i"}"#).is_err()
        );
    }
}

//! OpenAI Realtime GA events: the client events the bridge sends and the server events it reads.
//!
//! Client events are built as JSON text directly (the hot-path `input_audio_buffer.append` just wraps
//! Twilio's base64 payload). Server events are parsed in one pass into [`ServerEvent`], borrowing the
//! large audio `delta` so it can be forwarded to Twilio without a copy. Unknown event types are kept as
//! [`ServerEvent::Other`] rather than failing: the API adds events over time.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::{json, Value};

use crate::calls::events::Speaker;

/// `session.update` with a full GA session object (see [`crate::realtime::session`]).
pub fn session_update(session: Value) -> String {
    json!({"type": "session.update", "session": session}).to_string()
}

/// `input_audio_buffer.append`; `audio_b64` is base64 μ-law, passed through as it is.
pub fn input_audio_append(audio_b64: &str) -> String {
    let mut s = String::with_capacity(audio_b64.len() + 48);
    s.push_str(r#"{"type":"input_audio_buffer.append","audio":""#);
    s.push_str(audio_b64);
    s.push_str(r#""}"#);
    s
}

/// `conversation.item.truncate`: cut the agent's item to what the caller actually heard.
pub fn item_truncate(item_id: &str, audio_end_ms: u64) -> String {
    json!({"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0, "audio_end_ms": audio_end_ms})
        .to_string()
}

/// `response.create`, optionally with per-response instructions (used for the speak-first greeting).
pub fn response_create(instructions: Option<&str>) -> String {
    match instructions {
        Some(text) => {
            json!({"type": "response.create", "response": {"instructions": text}}).to_string()
        }
        None => json!({"type": "response.create"}).to_string(),
    }
}

/// `response.cancel`: stop the response in progress (a voicemail replaces whatever the agent was
/// saying to the machine's greeting).
pub fn response_cancel() -> String {
    json!({"type": "response.cancel"}).to_string()
}

/// `response.create` for words the app dictates (a voicemail): no tools, so the agent cannot wander off.
pub fn response_create_scripted(instructions: &str) -> String {
    json!({"type": "response.create", "response": {"instructions": instructions, "tool_choice": "none"}})
        .to_string()
}

/// `conversation.item.create` with a text message (DTMF notes, or seeding a fresh session with the
/// conversation so far). Agent turns are `output_text` items, caller turns `input_text`.
pub fn message_item_create(speaker: Speaker, text: &str) -> String {
    let (role, kind) = match speaker {
        Speaker::Caller => ("user", "input_text"),
        Speaker::Agent => ("assistant", "output_text"),
    };
    json!({
        "type": "conversation.item.create",
        "item": {"type": "message", "role": role, "content": [{"type": kind, "text": text}]},
    })
    .to_string()
}

/// `conversation.item.create` with a function call's result.
pub fn function_output_create(call_id: &str, output: &str) -> String {
    json!({
        "type": "conversation.item.create",
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
    #[serde(default)]
    pub event_id: Option<String>,
}

/// The server events the bridge acts on.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerEvent<'a> {
    SessionCreated,
    SessionUpdated,
    /// The caller started talking (server VAD): time to barge in.
    SpeechStarted {
        item_id: Option<String>,
        /// Where speech starts in the audio this session has received (ms since the session began).
        audio_start_ms: Option<u64>,
    },
    SpeechStopped,
    ResponseCreated {
        response_id: Option<String>,
    },
    /// A chunk of the agent's speech, base64 μ-law.
    AudioDelta {
        response_id: Option<String>,
        item_id: String,
        delta: Cow<'a, str>,
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
    },
    InputTranscriptionFailed {
        item_id: String,
        message: String,
    },
    /// A function tool call is complete.
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
    ItemTruncated {
        item_id: String,
        audio_end_ms: u64,
    },
    ResponseDone {
        response_id: Option<String>,
        status: Option<String>,
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
    #[serde(default)]
    item: Option<RawItem>,
}

#[derive(Deserialize)]
struct RawResponse {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    status: Option<String>,
}

#[derive(Deserialize)]
struct RawItem {
    #[serde(default)]
    id: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

fn need(field: Option<String>, what: &str, kind: &str) -> Result<String, EventParseError> {
    field.ok_or_else(|| EventParseError(format!("{kind} without {what}")))
}

/// Parses one server frame.
///
/// ```
/// use verbio::realtime::events::{parse_server_event, ServerEvent};
/// let e = parse_server_event(r#"{"type":"response.output_audio.delta","item_id":"i1","delta":"//8="}"#).unwrap();
/// assert!(matches!(e, ServerEvent::AudioDelta { ref item_id, .. } if item_id == "i1"));
/// ```
pub fn parse_server_event(text: &str) -> Result<ServerEvent<'_>, EventParseError> {
    let raw: RawEvent<'_> = serde_json::from_str(text)
        .map_err(|e| EventParseError(e.to_string().chars().take(160).collect()))?;
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
        "session.updated" => ServerEvent::SessionUpdated,
        "input_audio_buffer.speech_started" => ServerEvent::SpeechStarted {
            item_id: raw.item_id,
            audio_start_ms: raw.audio_start_ms,
        },
        "input_audio_buffer.speech_stopped" => ServerEvent::SpeechStopped,
        "response.created" => ServerEvent::ResponseCreated {
            response_id: raw.response.and_then(|r| r.id),
        },
        "response.output_audio_transcript.done" => ServerEvent::AudioTranscriptDone {
            item_id: need(raw.item_id, "item_id", kind)?,
            transcript: raw.transcript.unwrap_or_default(),
        },
        "conversation.item.input_audio_transcription.completed" => {
            ServerEvent::InputTranscriptionCompleted {
                item_id: need(raw.item_id, "item_id", kind)?,
                transcript: raw.transcript.unwrap_or_default(),
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
        "conversation.item.truncated" => ServerEvent::ItemTruncated {
            item_id: need(raw.item_id, "item_id", kind)?,
            audio_end_ms: raw.audio_end_ms.unwrap_or(0),
        },
        "response.done" => {
            let response = raw.response;
            ServerEvent::ResponseDone {
                response_id: response.as_ref().and_then(|r| r.id.clone()),
                status: response.and_then(|r| r.status),
            }
        }
        "error" => ServerEvent::Error(raw.error.unwrap_or_default()),
        other => ServerEvent::Other(other.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let v: Value = serde_json::from_str(&input_audio_append("//8=")).unwrap();
        assert_eq!(
            v,
            json!({"type":"input_audio_buffer.append","audio":"//8="})
        );
        let v: Value = serde_json::from_str(&item_truncate("item_1", 740)).unwrap();
        assert_eq!(v["audio_end_ms"], 740);
        assert_eq!(v["content_index"], 0);
        let v: Value = serde_json::from_str(&message_item_create(Speaker::Agent, "hi")).unwrap();
        assert_eq!(v["item"]["role"], "assistant");
        assert_eq!(v["item"]["content"][0]["type"], "output_text");
        let v: Value = serde_json::from_str(&response_create(Some("Say hello"))).unwrap();
        assert_eq!(v["response"]["instructions"], "Say hello");
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
            r#"{"type":"response.done","response":{"id":"r1","status":"cancelled"}}"#,
        )
        .unwrap();
        assert_eq!(
            e,
            ServerEvent::ResponseDone {
                response_id: Some("r1".into()),
                status: Some("cancelled".into())
            }
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

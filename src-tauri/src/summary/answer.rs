//! Reading a Responses API answer (`POST /v1/responses`, not streamed): what the model wrote, why it
//! wrote nothing, and the tokens it cost.
//!
//! The shape (see the API's `Response` object): a top-level `status` (`completed`, `incomplete`,
//! `failed`, …), an `error` object when it failed, `incomplete_details.reason` when it stopped short,
//! `output[]` items of which `type: "message"` ones carry `content[]` parts (`output_text` with `text`,
//! or `refusal` with `refusal`), and `usage` (`input_tokens`, `input_tokens_details.cached_tokens`,
//! `output_tokens`). Unknown fields and output items (reasoning, for example) are ignored.

use serde::{Deserialize, Serialize};

/// Tokens a summary used (for its cost).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SummaryUsage {
    pub input_tokens: u64,
    /// The part of `input_tokens` served from the prompt cache.
    pub cached_tokens: u64,
    pub output_tokens: u64,
}

/// What the model gave back.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// The structured output's text (to be parsed and validated).
    Text(String),
    /// The model declined (its words).
    Refused(String),
    /// The response did not finish: failed, cut short, or without any text.
    NotDone(String),
}

#[derive(Debug, Deserialize)]
struct Body {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    error: Option<ApiError>,
    #[serde(default)]
    incomplete_details: Option<Incomplete>,
    #[serde(default)]
    output: Vec<OutputItem>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Debug, Deserialize)]
struct ApiError {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Incomplete {
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type")]
enum OutputItem {
    #[serde(rename = "message")]
    Message {
        #[serde(default)]
        content: Vec<Part>,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type")]
enum Part {
    #[serde(rename = "output_text")]
    Text { text: String },
    #[serde(rename = "refusal")]
    Refusal { refusal: String },
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
struct Usage {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    input_tokens_details: Option<InputDetails>,
    #[serde(default)]
    output_tokens: u64,
}

#[derive(Debug, Deserialize)]
struct InputDetails {
    #[serde(default)]
    cached_tokens: u64,
}

/// Why an answer could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the Responses API answered something that is not a response: {0}")]
pub struct UnreadableAnswer(String);

/// Reads a 2xx answer's body.
pub fn read(body: &[u8]) -> Result<(Answer, Option<SummaryUsage>), UnreadableAnswer> {
    let body: Body = serde_json::from_slice(body).map_err(|e| UnreadableAnswer(e.to_string()))?;
    let usage = body.usage.map(|u| SummaryUsage {
        input_tokens: u.input_tokens,
        cached_tokens: u.input_tokens_details.map_or(0, |d| d.cached_tokens),
        output_tokens: u.output_tokens,
    });
    let status = body.status.as_deref().unwrap_or("completed");
    let answer = match status {
        "completed" => from_output(body.output),
        "incomplete" => Answer::NotDone(format!(
            "the response stopped short ({})",
            body.incomplete_details
                .and_then(|d| d.reason)
                .unwrap_or_else(|| "no reason given".into())
        )),
        "failed" => Answer::NotDone(match body.error {
            Some(e) => format!(
                "the response failed ({}): {}",
                e.code.as_deref().unwrap_or("no code"),
                e.message.as_deref().unwrap_or("no message")
            ),
            None => "the response failed".into(),
        }),
        other => Answer::NotDone(format!("the response ended as {other:?}")),
    };
    Ok((answer, usage))
}

fn from_output(output: Vec<OutputItem>) -> Answer {
    let mut text = String::new();
    for item in output {
        if let OutputItem::Message { content } = item {
            for part in content {
                match part {
                    Part::Text { text: t } => text.push_str(&t),
                    Part::Refusal { refusal } => return Answer::Refused(refusal),
                    Part::Other => {}
                }
            }
        }
    }
    if text.is_empty() {
        Answer::NotDone("the response has no text".into())
    } else {
        Answer::Text(text)
    }
}

/// The message of an OpenAI-style error body (`{"error": {"message", "code", …}}`), for a non-2xx
/// answer; at most 300 characters.
pub fn error_message(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Wrapper {
        error: ApiError,
    }
    let e = serde_json::from_slice::<Wrapper>(body).ok()?.error;
    let text = match (e.code, e.message) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (None, Some(message)) => message,
        (Some(code), None) => code,
        (None, None) => return None,
    };
    Some(text.chars().take(300).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bytes(v: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&v).unwrap()
    }

    #[test]
    fn a_completed_response_gives_its_text_and_usage() {
        let body = bytes(json!({
            "id": "resp_1", "object": "response", "status": "completed",
            "output": [
                {"type": "reasoning", "id": "rs_1", "summary": []},
                {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
                 "content": [{"type": "output_text", "text": "{\"a\":1}", "annotations": []}]}
            ],
            "usage": {"input_tokens": 120, "input_tokens_details": {"cached_tokens": 20},
                      "output_tokens": 30, "output_tokens_details": {"reasoning_tokens": 0},
                      "total_tokens": 150}
        }));
        let (answer, usage) = read(&body).unwrap();
        assert_eq!(answer, Answer::Text("{\"a\":1}".into()));
        assert_eq!(
            usage,
            Some(SummaryUsage {
                input_tokens: 120,
                cached_tokens: 20,
                output_tokens: 30
            })
        );
    }

    #[test]
    fn refusals_failures_and_cut_short_answers_say_why() {
        let refused = bytes(json!({"status": "completed", "output": [{"type": "message",
            "content": [{"type": "refusal", "refusal": "I can't help with that."}]}]}));
        assert_eq!(
            read(&refused).unwrap().0,
            Answer::Refused("I can't help with that.".into())
        );
        let short = bytes(json!({"status": "incomplete",
            "incomplete_details": {"reason": "max_output_tokens"}, "output": []}));
        assert!(
            matches!(read(&short).unwrap().0, Answer::NotDone(m) if m.contains("max_output_tokens"))
        );
        let failed = bytes(json!({"status": "failed",
            "error": {"code": "server_error", "message": "boom"}, "output": []}));
        assert!(
            read(&failed).unwrap().0
                == Answer::NotDone("the response failed (server_error): boom".into())
        );
        let empty = bytes(json!({"status": "completed", "output": []}));
        assert!(matches!(read(&empty).unwrap().0, Answer::NotDone(_)));
        assert!(read(b"<html>").is_err());
    }

    #[test]
    fn error_bodies_are_read() {
        let body = bytes(
            json!({"error": {"message": "Invalid schema", "type": "invalid_request_error",
            "param": "text.format.schema", "code": "invalid_json_schema"}}),
        );
        assert_eq!(
            error_message(&body).as_deref(),
            Some("invalid_json_schema: Invalid schema")
        );
        assert_eq!(error_message(b"nope"), None);
    }
}

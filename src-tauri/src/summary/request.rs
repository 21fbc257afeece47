//! The Responses API request for a call's summary: the transcript as input, and a strict JSON schema
//! (`text.format` of type `json_schema`) that the answer must follow.
//!
//! Strict structured outputs need every object to list all its properties in `required` and to say
//! `additionalProperties: false`; the user's fields schema need not, so it is rebuilt here (an optional
//! field becomes nullable, see [`super::config::FieldSpec::nullable`]).

use serde_json::{json, Map, Value};

use super::config::{FieldKind, FieldSpec, SummaryConfig};
use crate::types::Speaker;

/// The schema's name in `text.format` (letters, digits, `_`, `-`; at most 64).
pub const SCHEMA_NAME: &str = "call_summary";

/// Longest transcript sent, in characters: a runaway call must not become a huge (and costly) prompt.
/// The start of the call is kept, and the end, with a marker between.
pub const MAX_TRANSCRIPT_CHARS: usize = 60_000;

/// One line as the summary sees it.
#[derive(Debug, Clone, Copy)]
pub struct Line<'a> {
    pub speaker: Speaker,
    pub text: &'a str,
    pub offset_ms: u64,
}

/// The transcript as the model reads it: one `[m:ss] Speaker: text` line per turn. Whispers (the
/// operator's private notes to the agent) and tool lines are kept: they say what was done.
pub fn transcript_text<'a>(lines: impl IntoIterator<Item = Line<'a>>) -> String {
    let mut out = String::new();
    for line in lines {
        let secs = line.offset_ms / 1000;
        let who = match line.speaker {
            Speaker::Caller => "Caller",
            Speaker::Agent => "Agent",
            Speaker::Operator => "Operator",
            Speaker::Whisper => "Operator (private note to the agent)",
            Speaker::Tool => "Tool",
        };
        out.push_str(&format!(
            "[{}:{:02}] {who}: {}\n",
            secs / 60,
            secs % 60,
            line.text.trim()
        ));
    }
    shorten(out)
}

/// Keeps the first and last part of a transcript longer than [`MAX_TRANSCRIPT_CHARS`].
fn shorten(text: String) -> String {
    let total = text.chars().count();
    if total <= MAX_TRANSCRIPT_CHARS {
        return text;
    }
    let half = MAX_TRANSCRIPT_CHARS / 2;
    let head: String = text.chars().take(half).collect();
    let tail: String = text.chars().skip(total - half).collect();
    format!(
        "{head}\n[… {} characters left out …]\n{tail}",
        total - 2 * half
    )
}

/// The JSON schema the answer must follow: `{summary, disposition, fields}`, all required, nothing else.
pub fn answer_schema(dispositions: &[String], fields: &[FieldSpec]) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for field in fields {
        properties.insert(field.name.clone(), field_schema(field));
        required.push(Value::String(field.name.clone()));
    }
    json!({
        "type": "object",
        "properties": {
            "summary": {
                "type": "string",
                "description": "A short, factual summary of the call."
            },
            "disposition": {
                "type": "string",
                "enum": dispositions,
                "description": "How the call ended."
            },
            "fields": {
                "type": "object",
                "properties": properties,
                "required": required,
                "additionalProperties": false
            }
        },
        "required": ["summary", "disposition", "fields"],
        "additionalProperties": false
    })
}

fn field_schema(field: &FieldSpec) -> Value {
    let mut schema = Map::new();
    let kind = Value::String(field.kind.as_str().into());
    schema.insert(
        "type".into(),
        if field.nullable {
            json!([kind, "null"])
        } else {
            kind
        },
    );
    if let Some(choices) = &field.choices {
        debug_assert_eq!(field.kind, FieldKind::String);
        let mut values: Vec<Value> = choices.iter().cloned().map(Value::String).collect();
        if field.nullable {
            // In strict mode an enum lists every allowed value, `null` included.
            values.push(Value::Null);
        }
        schema.insert("enum".into(), Value::Array(values));
    }
    if let Some(description) = &field.description {
        schema.insert("description".into(), Value::String(description.clone()));
    }
    Value::Object(schema)
}

/// The body of `POST /v1/responses`. `store: false`: the call's words are not kept at OpenAI.
pub fn request_body(config: &SummaryConfig, fields: &[FieldSpec], transcript: &str) -> Value {
    json!({
        "model": config.model,
        "instructions": config.instructions,
        "input": transcript,
        "text": {
            "format": {
                "type": "json_schema",
                "name": SCHEMA_NAME,
                "strict": true,
                "schema": answer_schema(&config.dispositions, fields)
            }
        },
        "store": false
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> Vec<FieldSpec> {
        SummaryConfig {
            fields_schema: json!({
                "type": "object",
                "properties": {
                    "order_number": {"type": "string"},
                    "mood": {"type": "string", "enum": ["happy", "angry"]},
                    "items": {"type": "integer", "description": "How many"}
                },
                "required": ["order_number"]
            }),
            ..SummaryConfig::default()
        }
        .fields()
        .unwrap()
    }

    /// Every object in a strict schema lists all its properties as required and allows nothing else.
    fn assert_strict(schema: &Value) {
        if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            let required: Vec<&str> = schema["required"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            let mut names: Vec<&str> = props.keys().map(String::as_str).collect();
            names.sort();
            let mut sorted = required.clone();
            sorted.sort();
            assert_eq!(names, sorted, "{schema}");
            assert_eq!(schema["additionalProperties"], false, "{schema}");
            props.values().for_each(assert_strict);
        }
    }

    #[test]
    fn the_schema_is_strict_and_optional_fields_are_nullable() {
        let schema = answer_schema(&["done".into(), "other".into()], &fields());
        assert_strict(&schema);
        assert_eq!(
            schema["properties"]["disposition"]["enum"],
            json!(["done", "other"])
        );
        let f = &schema["properties"]["fields"]["properties"];
        assert_eq!(f["order_number"], json!({"type": "string"}));
        assert_eq!(
            f["mood"],
            json!({"type": ["string", "null"], "enum": ["happy", "angry", null]})
        );
        assert_eq!(
            f["items"],
            json!({"type": ["integer", "null"], "description": "How many"})
        );
    }

    #[test]
    fn the_body_asks_for_structured_output_and_no_storage() {
        let config = SummaryConfig::default();
        let body = request_body(&config, &[], "[0:01] Caller: hi\n");
        assert_eq!(body["model"], "gpt-4.1-mini");
        assert_eq!(body["input"], "[0:01] Caller: hi\n");
        assert_eq!(body["store"], false);
        let format = &body["text"]["format"];
        assert_eq!(format["type"], "json_schema");
        assert_eq!(format["name"], SCHEMA_NAME);
        assert_eq!(format["strict"], true);
        assert_strict(&format["schema"]);
    }

    #[test]
    fn the_transcript_has_times_and_speakers_and_stays_bounded() {
        let text = transcript_text([
            Line {
                speaker: Speaker::Agent,
                text: " Hello! ",
                offset_ms: 500,
            },
            Line {
                speaker: Speaker::Caller,
                text: "My order A-1",
                offset_ms: 61_200,
            },
        ]);
        assert_eq!(text, "[0:00] Agent: Hello!\n[1:01] Caller: My order A-1\n");
        let long = "x".repeat(100);
        let many: Vec<Line> = (0..2_000)
            .map(|i| Line {
                speaker: Speaker::Caller,
                text: &long,
                offset_ms: i,
            })
            .collect();
        let text = transcript_text(many);
        assert!(text.chars().count() < MAX_TRANSCRIPT_CHARS + 100);
        assert!(text.contains("characters left out"));
    }
}

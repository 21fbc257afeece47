//! What the user sets for the post-call summary (a part of the session config, so a call keeps the one
//! it started with), and the typed form of their fields schema.
//!
//! The user's `fields_schema` is a small JSON Schema: an object whose properties are strings, numbers,
//! integers, booleans or string enums, each optionally nullable (`["string", "null"]`). The Responses
//! API's strict structured outputs accept more, but the answer is validated here against what was sent,
//! and a small, closed set is what the UI can offer and what [`super::validate`] can check exactly.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// The model the summary asks by default: small, cheap and good at extraction.
pub const DEFAULT_MODEL: &str = "gpt-4.1-mini";
/// At most this many dispositions.
pub const MAX_DISPOSITIONS: usize = 30;
/// At most this many user fields.
pub const MAX_FIELDS: usize = 50;
/// Longest summary instructions accepted (characters).
pub const MAX_INSTRUCTIONS_CHARS: usize = 8_000;

/// The post-call summary's settings. Off by default: it spends the user's OpenAI key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SummaryConfig {
    pub enabled: bool,
    /// A Responses API model that takes structured outputs.
    pub model: String,
    /// What the call's outcome may be called; the model must pick one.
    pub dispositions: Vec<String>,
    /// JSON Schema (an object) of the fields to pull out of the call.
    pub fields_schema: Value,
    pub instructions: String,
}

impl Default for SummaryConfig {
    fn default() -> Self {
        SummaryConfig {
            enabled: false,
            model: DEFAULT_MODEL.into(),
            dispositions: [
                "resolved",
                "callback_requested",
                "escalated",
                "no_answer",
                "other",
            ]
            .map(String::from)
            .to_vec(),
            fields_schema: json!({"type": "object", "properties": {}}),
            instructions: DEFAULT_INSTRUCTIONS.into(),
        }
    }
}

/// The default instructions.
pub const DEFAULT_INSTRUCTIONS: &str = "You summarise a phone call between a caller and an AI phone \
agent, from its transcript. Write a short, factual summary (two to four sentences) of why the person \
called, what was done and what is left to do. Pick the disposition that best describes how the call \
ended. Fill in each field only from what was said in the call; use null when the call did not say it.";

/// A setting the summary cannot run with; `field` is its path under `summary`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct SummaryConfigError {
    pub field: &'static str,
    pub message: String,
}

fn invalid(field: &'static str, message: impl Into<String>) -> SummaryConfigError {
    SummaryConfigError {
        field,
        message: message.into(),
    }
}

/// The type of one user field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    String,
    Number,
    Integer,
    Boolean,
}

impl FieldKind {
    fn parse(name: &str) -> Option<FieldKind> {
        Some(match name {
            "string" => FieldKind::String,
            "number" => FieldKind::Number,
            "integer" => FieldKind::Integer,
            "boolean" => FieldKind::Boolean,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FieldKind::String => "string",
            FieldKind::Number => "number",
            FieldKind::Integer => "integer",
            FieldKind::Boolean => "boolean",
        }
    }
}

/// One user field, as the request builder and the validator need it.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldSpec {
    pub name: String,
    pub kind: FieldKind,
    /// The allowed values of a string field.
    pub choices: Option<Vec<String>>,
    /// May be `null`: the user's schema said so, or did not list the field in `required` (strict
    /// structured outputs need every property required, so an optional field becomes nullable).
    pub nullable: bool,
    pub description: Option<String>,
}

impl SummaryConfig {
    /// Checks everything the request builder relies on.
    pub fn validate(&self) -> Result<(), SummaryConfigError> {
        if self.model.trim().is_empty() {
            return Err(invalid("summary.model", "must not be empty"));
        }
        if self.dispositions.is_empty() || self.dispositions.len() > MAX_DISPOSITIONS {
            return Err(invalid(
                "summary.dispositions",
                format!(
                    "give 1–{MAX_DISPOSITIONS} (got {})",
                    self.dispositions.len()
                ),
            ));
        }
        for (i, d) in self.dispositions.iter().enumerate() {
            if d.trim().is_empty() {
                return Err(invalid("summary.dispositions", "an entry is empty"));
            }
            if d.chars().count() > 100 {
                return Err(invalid(
                    "summary.dispositions",
                    format!("{d:?} is longer than 100 characters"),
                ));
            }
            if self.dispositions[..i].contains(d) {
                return Err(invalid(
                    "summary.dispositions",
                    format!("{d:?} is listed twice"),
                ));
            }
        }
        let chars = self.instructions.chars().count();
        if chars > MAX_INSTRUCTIONS_CHARS {
            return Err(invalid(
                "summary.instructions",
                format!("{chars} characters; at most {MAX_INSTRUCTIONS_CHARS}"),
            ));
        }
        parse_fields(&self.fields_schema).map_err(|m| invalid("summary.fields_schema", m))?;
        Ok(())
    }

    /// The user's fields, typed (the config must be valid; an invalid schema gives an error).
    pub fn fields(&self) -> Result<Vec<FieldSpec>, String> {
        parse_fields(&self.fields_schema)
    }
}

/// Reads the user's fields schema: `{"type":"object","properties":{…}}`, optionally with `required`,
/// `additionalProperties: false`, `title` and `description`.
pub fn parse_fields(schema: &Value) -> Result<Vec<FieldSpec>, String> {
    let obj = schema
        .as_object()
        .ok_or("must be a JSON object (a JSON Schema)")?;
    for key in obj.keys() {
        if !matches!(
            key.as_str(),
            "type" | "properties" | "required" | "additionalProperties" | "title" | "description"
        ) {
            return Err(format!("the keyword {key:?} is not supported at the top"));
        }
    }
    if obj.get("type") != Some(&Value::String("object".into())) {
        return Err("must have \"type\": \"object\"".into());
    }
    if let Some(extra) = obj.get("additionalProperties") {
        if extra != &Value::Bool(false) {
            return Err("additionalProperties may only be false".into());
        }
    }
    let empty = Map::new();
    let properties = match obj.get("properties") {
        None => &empty,
        Some(Value::Object(p)) => p,
        Some(_) => return Err("properties must be an object".into()),
    };
    if properties.len() > MAX_FIELDS {
        return Err(format!("at most {MAX_FIELDS} fields"));
    }
    let required: Vec<&str> = match obj.get("required") {
        None => Vec::new(),
        Some(Value::Array(names)) => names
            .iter()
            .map(|n| n.as_str().ok_or("required must list field names"))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("required must be an array of field names".into()),
    };
    if let Some(unknown) = required.iter().find(|n| !properties.contains_key(**n)) {
        return Err(format!(
            "required names {unknown:?}, which is not a property"
        ));
    }
    properties
        .iter()
        .map(|(name, spec)| {
            parse_field(name, spec, required.contains(&name.as_str()))
                .map_err(|m| format!("field {name:?}: {m}"))
        })
        .collect()
}

fn parse_field(name: &str, spec: &Value, required: bool) -> Result<FieldSpec, String> {
    let valid_name = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !valid_name {
        return Err("names are 1–64 letters, digits, `_` or `-`".into());
    }
    let spec = spec.as_object().ok_or("must be a schema object")?;
    for key in spec.keys() {
        if !matches!(key.as_str(), "type" | "enum" | "description" | "title") {
            return Err(format!(
                "the keyword {key:?} is not supported (type, enum, description)"
            ));
        }
    }
    let (kind, null_in_type) = match spec.get("type") {
        Some(Value::String(t)) => (FieldKind::parse(t), false),
        Some(Value::Array(types)) => {
            let names: Vec<&str> = types.iter().filter_map(Value::as_str).collect();
            match names.as_slice() {
                [t, "null"] | ["null", t] if names.len() == types.len() => {
                    (FieldKind::parse(t), true)
                }
                _ => (None, true),
            }
        }
        _ => (None, false),
    };
    let kind = kind
        .ok_or("type must be string, number, integer or boolean (or one of them with \"null\")")?;
    let choices = match spec.get("enum") {
        None => None,
        Some(Value::Array(values)) if kind == FieldKind::String && !values.is_empty() => {
            let mut choices = Vec::new();
            for v in values {
                match v {
                    Value::String(s) if !choices.contains(s) => choices.push(s.clone()),
                    Value::String(s) => return Err(format!("enum lists {s:?} twice")),
                    // `null` in the enum of a nullable field is how strict mode spells it.
                    Value::Null if null_in_type => {}
                    _ => return Err("enum values must be strings".into()),
                }
            }
            if choices.is_empty() {
                return Err("enum needs at least one string".into());
            }
            Some(choices)
        }
        Some(_) => return Err("enum is a non-empty list of strings, on a string field".into()),
    };
    let description = match spec.get("description") {
        None => None,
        Some(Value::String(d)) => Some(d.clone()),
        Some(_) => return Err("description must be text".into()),
    };
    Ok(FieldSpec {
        name: name.to_string(),
        kind,
        choices,
        nullable: null_in_type || !required,
        description,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_schema(schema: Value) -> SummaryConfig {
        SummaryConfig {
            fields_schema: schema,
            ..SummaryConfig::default()
        }
    }

    #[test]
    fn the_default_is_valid_and_off() {
        let c = SummaryConfig::default();
        assert!(!c.enabled);
        c.validate().unwrap();
        assert!(c.fields().unwrap().is_empty());
        // An old saved session without `summary` loads as the default.
        let parsed: SummaryConfig = serde_json::from_value(json!({})).unwrap();
        assert_eq!(parsed, c);
    }

    #[test]
    fn fields_are_typed_and_optional_ones_nullable() {
        let c = with_schema(json!({
            "type": "object",
            "properties": {
                "order_number": {"type": "string", "description": "The order's number"},
                "callback_at": {"type": ["string", "null"]},
                "items": {"type": "integer"},
                "urgent": {"type": "boolean"},
                "mood": {"type": "string", "enum": ["happy", "angry"]}
            },
            "required": ["order_number", "callback_at", "items"],
            "additionalProperties": false
        }));
        c.validate().unwrap();
        let fields = c.fields().unwrap();
        let get = |n: &str| fields.iter().find(|f| f.name == n).unwrap();
        assert!(!get("order_number").nullable);
        assert!(get("callback_at").nullable, "null in its type");
        assert!(!get("items").nullable);
        assert_eq!(get("items").kind, FieldKind::Integer);
        assert!(get("urgent").nullable, "not required");
        assert_eq!(
            get("mood").choices.as_deref(),
            Some(&["happy".to_string(), "angry".to_string()][..])
        );
    }

    #[test]
    fn unsupported_schemas_are_refused_with_a_reason() {
        let cases = [
            (json!([]), "JSON object"),
            (json!({"type": "array"}), "\"type\": \"object\""),
            (
                json!({"type": "object", "additionalProperties": true}),
                "only be false",
            ),
            (
                json!({"type": "object", "properties": {"a": {"type": "object"}}}),
                "type must be",
            ),
            (
                json!({"type": "object", "properties": {"a": {"type": "string", "minLength": 2}}}),
                "minLength",
            ),
            (
                json!({"type": "object", "properties": {"a": {"type": "integer", "enum": ["x"]}}}),
                "enum",
            ),
            (
                json!({"type": "object", "properties": {"a b": {"type": "string"}}}),
                "names are",
            ),
            (
                json!({"type": "object", "properties": {}, "required": ["x"]}),
                "not a property",
            ),
            (
                json!({"type": "object", "properties": {"a": {"type": ["string", "number"]}}}),
                "type must be",
            ),
            (json!({"type": "object", "$defs": {}}), "$defs"),
        ];
        for (schema, why) in cases {
            let err = with_schema(schema.clone()).validate().unwrap_err();
            assert_eq!(err.field, "summary.fields_schema");
            assert!(err.message.contains(why), "{schema}: {err}");
        }
    }

    #[test]
    fn dispositions_and_model_are_checked() {
        let mut c = SummaryConfig {
            dispositions: vec![],
            ..SummaryConfig::default()
        };
        assert_eq!(c.validate().unwrap_err().field, "summary.dispositions");
        c.dispositions = vec!["a".into(), "a".into()];
        assert!(c.validate().unwrap_err().message.contains("twice"));
        c.dispositions = vec!["a".into(), " ".into()];
        assert!(c.validate().is_err());
        c.dispositions = (0..31).map(|i| i.to_string()).collect();
        assert!(c.validate().is_err());
        c.dispositions = vec!["done".into()];
        c.model = " ".into();
        assert_eq!(c.validate().unwrap_err().field, "summary.model");
    }
}

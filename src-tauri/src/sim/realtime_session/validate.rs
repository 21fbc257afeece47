//! Client events checked field by field and value by value, with rules taken from the GA schema
//! (openai-python `src/openai/types/realtime/*`: `realtime_session_create_request_param.py`,
//! `realtime_audio_config_*`, `realtime_response_create_params_param.py`, `realtime_conversation_item_*`, …).
//!
//! Each check returns the first problem as an [`Invalid`] that becomes an `error` event: `code` and `message` in
//! the service's style (`unknown_parameter`, `invalid_type`, `invalid_value`, `missing_required_parameter`,
//! `decimal_above_max_value`, …) and `param` as the dotted path of the bad field (`session.audio.output.speed`,
//! `item.content[0].text`). Pure functions: no session state beyond the [`Context`] they are given.

use serde_json::{Map, Value};

use super::models::{self, TRANSCRIPTION_MODELS};

/// Why a client event was refused.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Invalid {
    pub code: &'static str,
    pub message: String,
    pub param: Option<String>,
}

pub(crate) type Checked<T = ()> = Result<T, Invalid>;

impl Invalid {
    pub(crate) fn new(code: &'static str, message: impl Into<String>, param: Option<&str>) -> Self {
        Self {
            code,
            message: message.into(),
            param: param.map(str::to_string),
        }
    }
}

/// What the checks need to know about the session.
pub(crate) struct Context<'a> {
    /// The model the socket was opened with.
    pub model: &'a str,
    /// The session's voice now (it cannot change once audio went out).
    pub voice: &'a Value,
    /// The model has spoken in this session (audio output sent).
    pub audio_sent: bool,
    /// The session's tracing configuration now (`null`: off; it cannot change once on).
    pub tracing: &'a Value,
    /// Dotted params a `session.update` may not set (`SimRealtimeConfig::reject_session_params`).
    pub reject_params: &'a [String],
}

impl Context<'_> {
    fn reasoning(&self) -> bool {
        models::takes_reasoning(self.model)
    }
}

const VOICES: [&str; 10] = [
    "alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar",
];
const SESSION_KEYS: [&str; 14] = [
    "type",
    "model",
    "output_modalities",
    "instructions",
    "audio",
    "include",
    "max_output_tokens",
    "parallel_tool_calls",
    "prompt",
    "reasoning",
    "tool_choice",
    "tools",
    "tracing",
    "truncation",
];
const RESPONSE_KEYS: [&str; 12] = [
    "audio",
    "conversation",
    "input",
    "instructions",
    "max_output_tokens",
    "metadata",
    "output_modalities",
    "parallel_tool_calls",
    "prompt",
    "reasoning",
    "tool_choice",
    "tools",
];
const MCP_TOOL_KEYS: [&str; 14] = [
    "type",
    "server_label",
    "allowed_callers",
    "allowed_tools",
    "authorization",
    "connector_id",
    "defer_loading",
    "headers",
    "require_approval",
    "server_description",
    "server_url",
    "tunnel_id",
    "name",
    "description",
];

/// The keys each client event may carry besides `type` and `event_id`; `None` for an unknown type.
pub(crate) fn event_keys(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "session.update" => &["session"],
        "input_audio_buffer.append" => &["audio"],
        "input_audio_buffer.commit" | "input_audio_buffer.clear" => &[],
        "conversation.item.create" => &["item", "previous_item_id"],
        "conversation.item.retrieve" | "conversation.item.delete" => &["item_id"],
        "conversation.item.truncate" => &["item_id", "content_index", "audio_end_ms"],
        "response.create" => &["response"],
        "response.cancel" => &["response_id"],
        _ => return None,
    })
}

/// The envelope: `event_id` (a string when present) and no key the event type does not declare.
pub(crate) fn check_envelope(event: &Map<String, Value>, own: &[&str]) -> Checked {
    if let Some(id) = event.get("event_id") {
        if !id.is_string() {
            return Err(bad_type("event_id", "a string", id));
        }
    }
    for key in event.keys() {
        if key != "type" && key != "event_id" && !own.contains(&key.as_str()) {
            return Err(unknown(key));
        }
    }
    Ok(())
}

// ----- messages in the service's words -----

fn unknown(path: &str) -> Invalid {
    Invalid::new(
        "unknown_parameter",
        format!("Unknown parameter: '{path}'."),
        Some(path),
    )
}

pub(crate) fn missing(path: &str) -> Invalid {
    Invalid::new(
        "missing_required_parameter",
        format!("Missing required parameter: '{path}'."),
        Some(path),
    )
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a decimal",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub(crate) fn bad_type(path: &str, expected: &str, got: &Value) -> Invalid {
    Invalid::new(
        "invalid_type",
        format!(
            "Invalid type for '{path}': expected {expected}, but got {} instead.",
            kind_of(got)
        ),
        Some(path),
    )
}

pub(crate) fn bad_value(path: &str, got: &str, supported: &[&str]) -> Invalid {
    let list: Vec<String> = supported.iter().map(|s| format!("'{s}'")).collect();
    let message = if list.is_empty() {
        format!("Invalid value: '{got}'.")
    } else {
        format!(
            "Invalid value: '{got}'. Supported values are: {}.",
            list.join(", ")
        )
    };
    Invalid::new("invalid_value", message, Some(path))
}

fn invalid(path: &str, message: impl Into<String>) -> Invalid {
    Invalid::new("invalid_value", message, Some(path))
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

// ----- typed getters -----

fn object<'v>(value: &'v Value, path: &str) -> Checked<&'v Map<String, Value>> {
    value
        .as_object()
        .ok_or_else(|| bad_type(path, "an object", value))
}

fn array<'v>(value: &'v Value, path: &str) -> Checked<&'v Vec<Value>> {
    value
        .as_array()
        .ok_or_else(|| bad_type(path, "an array", value))
}

fn string<'v>(value: &'v Value, path: &str) -> Checked<&'v str> {
    value
        .as_str()
        .ok_or_else(|| bad_type(path, "a string", value))
}

fn boolean(value: &Value, path: &str) -> Checked<bool> {
    value
        .as_bool()
        .ok_or_else(|| bad_type(path, "a boolean", value))
}

pub(crate) fn integer(value: &Value, path: &str, min: i64, max: Option<i64>) -> Checked<i64> {
    let Some(n) = value
        .as_i64()
        .or_else(|| value.as_u64().map(|n| n.min(i64::MAX as u64) as i64))
    else {
        return Err(bad_type(path, "an integer", value));
    };
    if n < min {
        return Err(Invalid::new(
            "integer_below_min_value",
            format!("Invalid '{path}': integer below minimum value. Expected a value >= {min}, but got {n} instead."),
            Some(path),
        ));
    }
    if let Some(max) = max.filter(|max| n > *max) {
        return Err(Invalid::new(
            "integer_above_max_value",
            format!("Invalid '{path}': integer above maximum value. Expected a value <= {max}, but got {n} instead."),
            Some(path),
        ));
    }
    Ok(n)
}

fn decimal(value: &Value, path: &str, min: f64, max: f64) -> Checked<f64> {
    let Some(x) = value.as_f64() else {
        return Err(bad_type(path, "a decimal", value));
    };
    if x < min {
        return Err(Invalid::new(
            "decimal_below_min_value",
            format!("Invalid '{path}': decimal below minimum value. Expected a value >= {min}, but got {x} instead."),
            Some(path),
        ));
    }
    if x > max {
        return Err(Invalid::new(
            "decimal_above_max_value",
            format!("Invalid '{path}': decimal above maximum value. Expected a value <= {max}, but got {x} instead."),
            Some(path),
        ));
    }
    Ok(x)
}

fn one_of<'v>(value: &'v Value, path: &str, supported: &[&str]) -> Checked<&'v str> {
    let got = string(value, path)?;
    if supported.contains(&got) {
        Ok(got)
    } else {
        Err(bad_value(path, got, supported))
    }
}

/// Only `allowed` keys; every key in `required` present.
fn keys(map: &Map<String, Value>, path: &str, allowed: &[&str], required: &[&str]) -> Checked {
    for key in map.keys() {
        if !allowed.contains(&key.as_str()) {
            return Err(unknown(&join(path, key)));
        }
    }
    for key in required {
        if !map.contains_key(*key) {
            return Err(missing(&join(path, key)));
        }
    }
    Ok(())
}

fn each<'v>(
    map: &'v Map<String, Value>,
    path: &str,
) -> impl Iterator<Item = (&'v str, &'v Value, String)> {
    let path = path.to_string();
    map.iter()
        .map(move |(k, v)| (k.as_str(), v, join(&path, k)))
}

// ----- session -----

/// A `session.update`'s `session` object.
pub(crate) fn check_session(session: &Value, ctx: &Context) -> Checked {
    let path = "session";
    let map = object(session, path)?;
    keys(map, path, &SESSION_KEYS, &[])?;
    match map.get("type") {
        None => return Err(missing("session.type")),
        Some(kind) => {
            if kind.as_str() == Some("transcription") {
                return Err(invalid(
                    "session.type",
                    "A realtime session cannot become a transcription session.",
                ));
            }
            one_of(kind, "session.type", &["realtime"])?;
        }
    }
    for (key, value, path) in each(map, path) {
        match key {
            "model" => {
                let model = string(value, &path)?;
                if model != ctx.model && models::lookup(model).is_none() {
                    return Err(bad_value(&path, model, &[]));
                }
                if model != ctx.model {
                    return Err(invalid(
                        &path,
                        format!(
                            "The session's model is '{}' and cannot be changed to '{model}'.",
                            ctx.model
                        ),
                    ));
                }
            }
            "output_modalities" => check_modalities(value, &path)?,
            "instructions" => {
                string(value, &path)?;
            }
            "audio" => check_audio(value, &path, ctx)?,
            "include" => {
                for (i, item) in array(value, &path)?.iter().enumerate() {
                    one_of(
                        item,
                        &index(&path, i),
                        &["item.input_audio_transcription.logprobs"],
                    )?;
                }
            }
            "max_output_tokens" => check_max_tokens(value, &path)?,
            "parallel_tool_calls" => check_parallel_tool_calls(value, &path, ctx)?,
            "prompt" => check_prompt(value, &path)?,
            "reasoning" => check_reasoning(value, &path, ctx)?,
            "tool_choice" => check_tool_choice(value, &path)?,
            "tools" => check_tools(value, &path)?,
            "tracing" => check_tracing(value, &path, ctx)?,
            "truncation" => check_truncation(value, &path)?,
            _ => {}
        }
    }
    let root = serde_json::json!({ "session": session });
    for param in ctx.reject_params {
        if present(&root, param) {
            return Err(invalid(
                param,
                format!("Invalid value for '{param}': this setting is refused (simulator: reject_session_params)."),
            ));
        }
    }
    Ok(())
}

/// Whether a dotted path (`session.audio.input.noise_reduction`) is set in `root`, `null` included.
pub(crate) fn present(root: &Value, dotted: &str) -> bool {
    let mut at = root;
    for part in dotted.split('.') {
        match at.get(part) {
            Some(next) => at = next,
            None => return false,
        }
    }
    true
}

fn unsupported(path: &str, model: &str) -> Invalid {
    Invalid::new(
        "unsupported_parameter",
        format!("Unsupported parameter: '{path}' is not supported with the model '{model}'."),
        Some(path),
    )
}

fn check_modalities(value: &Value, path: &str) -> Checked {
    let list = array(value, path)?;
    for (i, item) in list.iter().enumerate() {
        one_of(item, &index(path, i), &["text", "audio"])?;
    }
    if list.len() != 1 {
        return Err(invalid(
            path,
            "Invalid modalities: use either ['audio'] or ['text']; both at once are not supported.",
        ));
    }
    Ok(())
}

fn check_max_tokens(value: &Value, path: &str) -> Checked {
    match value {
        Value::String(s) if s == "inf" => Ok(()),
        Value::String(s) => Err(bad_value(path, s, &["inf"])),
        _ => integer(value, path, 1, Some(4096)).map(drop),
    }
}

/// `parallel_tool_calls`, in a session or a response: a boolean, only for models that take reasoning.
fn check_parallel_tool_calls(value: &Value, path: &str, ctx: &Context) -> Checked {
    boolean(value, path)?;
    if !ctx.reasoning() {
        return Err(unsupported(path, ctx.model));
    }
    Ok(())
}

fn check_reasoning(value: &Value, path: &str, ctx: &Context) -> Checked {
    let map = object(value, path)?;
    keys(map, path, &["effort"], &[])?;
    if let Some(effort) = map.get("effort") {
        one_of(
            effort,
            &join(path, "effort"),
            &["minimal", "low", "medium", "high", "xhigh"],
        )?;
    }
    if !ctx.reasoning() {
        return Err(unsupported(path, ctx.model));
    }
    Ok(())
}

fn check_prompt(value: &Value, path: &str) -> Checked {
    if value.is_null() {
        return Ok(());
    }
    let map = object(value, path)?;
    keys(map, path, &["id", "variables", "version"], &["id"])?;
    for (key, value, path) in each(map, path) {
        match key {
            "id" => {
                string(value, &path)?;
            }
            "version" if !value.is_null() => {
                string(value, &path)?;
            }
            "variables" if !value.is_null() => {
                object(value, &path)?;
            }
            _ => {}
        }
    }
    Ok(())
}

fn check_tool_choice(value: &Value, path: &str) -> Checked {
    if value.is_string() {
        return one_of(value, path, &["none", "auto", "required"]).map(drop);
    }
    let map = object(value, path)?;
    let kind = map
        .get("type")
        .ok_or_else(|| missing(&join(path, "type")))?;
    match one_of(kind, &join(path, "type"), &["function", "mcp"])? {
        "function" => {
            keys(map, path, &["type", "name"], &["name"])?;
            string(&map["name"], &join(path, "name"))?;
        }
        _ => {
            keys(
                map,
                path,
                &["type", "server_label", "name"],
                &["server_label"],
            )?;
            string(&map["server_label"], &join(path, "server_label"))?;
        }
    }
    Ok(())
}

fn valid_function_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn check_tools(value: &Value, path: &str) -> Checked {
    let mut names = Vec::new();
    for (i, tool) in array(value, path)?.iter().enumerate() {
        let path = index(path, i);
        let map = object(tool, &path)?;
        let kind = match map.get("type") {
            Some(kind) => one_of(kind, &join(&path, "type"), &["function", "mcp"])?,
            None => "function",
        };
        if kind == "mcp" {
            keys(map, &path, &MCP_TOOL_KEYS, &["server_label"])?;
            string(&map["server_label"], &join(&path, "server_label"))?;
            continue;
        }
        keys(
            map,
            &path,
            &["type", "name", "description", "parameters"],
            &["name"],
        )?;
        let name_path = join(&path, "name");
        let name = string(&map["name"], &name_path)?;
        if !valid_function_name(name) {
            return Err(invalid(
                &name_path,
                format!("Invalid '{name_path}': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]{{1,64}}$'."),
            ));
        }
        if names.contains(&name) {
            return Err(invalid(
                &name_path,
                format!("Duplicate tool name: '{name}'."),
            ));
        }
        names.push(name);
        if let Some(description) = map.get("description") {
            string(description, &join(&path, "description"))?;
        }
        if let Some(parameters) = map.get("parameters") {
            object(parameters, &join(&path, "parameters"))?;
        }
    }
    Ok(())
}

fn check_tracing(value: &Value, path: &str, ctx: &Context) -> Checked {
    match value {
        Value::Null => {}
        Value::String(_) => {
            one_of(value, path, &["auto"])?;
        }
        _ => {
            let map = object(value, path)?;
            keys(map, path, &["group_id", "metadata", "workflow_name"], &[])?;
            for (key, value, path) in each(map, path) {
                if key == "metadata" {
                    object(value, &path)?;
                } else {
                    string(value, &path)?;
                }
            }
        }
    }
    if !ctx.tracing.is_null() && value != ctx.tracing {
        return Err(invalid(
            path,
            "Tracing cannot be modified once it is enabled for a session.",
        ));
    }
    Ok(())
}

fn check_truncation(value: &Value, path: &str) -> Checked {
    if value.is_string() {
        return one_of(value, path, &["auto", "disabled"]).map(drop);
    }
    let map = object(value, path)?;
    keys(
        map,
        path,
        &["type", "retention_ratio", "token_limits"],
        &["type", "retention_ratio"],
    )?;
    one_of(&map["type"], &join(path, "type"), &["retention_ratio"])?;
    decimal(
        &map["retention_ratio"],
        &join(path, "retention_ratio"),
        0.0,
        1.0,
    )?;
    if let Some(limits) = map.get("token_limits") {
        let path = join(path, "token_limits");
        let limits = object(limits, &path)?;
        keys(limits, &path, &["post_instructions"], &[])?;
        if let Some(n) = limits.get("post_instructions") {
            integer(n, &join(&path, "post_instructions"), 0, None)?;
        }
    }
    Ok(())
}

fn check_audio(value: &Value, path: &str, ctx: &Context) -> Checked {
    let map = object(value, path)?;
    keys(map, path, &["input", "output"], &[])?;
    if let Some(input) = map.get("input") {
        let path = join(path, "input");
        let input = object(input, &path)?;
        keys(
            input,
            &path,
            &[
                "format",
                "noise_reduction",
                "transcription",
                "turn_detection",
            ],
            &[],
        )?;
        for (key, value, path) in each(input, &path) {
            match key {
                "format" => check_format(value, &path)?,
                "noise_reduction" if !value.is_null() => {
                    let map = object(value, &path)?;
                    keys(map, &path, &["type"], &["type"])?;
                    one_of(
                        &map["type"],
                        &join(&path, "type"),
                        &["near_field", "far_field"],
                    )?;
                }
                "transcription" if !value.is_null() => check_transcription(value, &path)?,
                "turn_detection" if !value.is_null() => check_turn_detection(value, &path)?,
                _ => {}
            }
        }
    }
    if let Some(output) = map.get("output") {
        let path = join(path, "output");
        check_output_audio(output, &path, ctx, &["format", "voice", "speed"])?;
    }
    Ok(())
}

/// `audio.output` of a session (`format`, `voice`, `speed`) or of a response (`format`, `voice`).
fn check_output_audio(value: &Value, path: &str, ctx: &Context, allowed: &[&str]) -> Checked {
    let output = object(value, path)?;
    keys(output, path, allowed, &[])?;
    for (key, value, path) in each(output, path) {
        match key {
            "format" => check_format(value, &path)?,
            "voice" => {
                match value {
                    Value::String(name) => {
                        one_of(value, &path, &VOICES)
                            .map_err(|_| bad_value(&path, name, &VOICES))?;
                    }
                    _ => {
                        let map = object(value, &path)?;
                        keys(map, &path, &["id"], &["id"])?;
                        string(&map["id"], &join(&path, "id"))?;
                    }
                }
                if ctx.audio_sent && value != ctx.voice {
                    // The live service names no param for this one.
                    return Err(Invalid::new(
                        "cannot_update_voice",
                        "Cannot update a conversation's voice if assistant audio is present.",
                        None,
                    ));
                }
            }
            "speed" => {
                decimal(value, &path, 0.25, 1.5)?;
            }
            _ => {}
        }
    }
    Ok(())
}

fn check_format(value: &Value, path: &str) -> Checked {
    let map = object(value, path)?;
    let kind = map
        .get("type")
        .ok_or_else(|| missing(&join(path, "type")))?;
    let kind = one_of(
        kind,
        &join(path, "type"),
        &["audio/pcm", "audio/pcmu", "audio/pcma"],
    )?;
    if kind == "audio/pcm" {
        // The schema marks `rate` optional; the live GA service refuses `audio/pcm` without it.
        keys(map, path, &["type", "rate"], &["rate"])?;
        let rate_path = join(path, "rate");
        let rate = integer(&map["rate"], &rate_path, 0, None)?;
        if rate != 24000 {
            return Err(bad_value(&rate_path, &rate.to_string(), &["24000"]));
        }
    } else {
        keys(map, path, &["type"], &[])?;
    }
    Ok(())
}

fn check_transcription(value: &Value, path: &str) -> Checked {
    let map = object(value, path)?;
    keys(
        map,
        path,
        &[
            "model",
            "language",
            "prompt",
            "delay",
            "keywords",
            "languages",
        ],
        &["model"],
    )?;
    let model = one_of(&map["model"], &join(path, "model"), &TRANSCRIPTION_MODELS)?;
    let only = |key: &str, models: &[&str]| -> Checked {
        if map.contains_key(key) && !models.contains(&model) {
            let param = join(path, key);
            return Err(Invalid::new(
                "unsupported_parameter",
                format!("Unsupported parameter: '{param}' is not supported with the transcription model '{model}'."),
                Some(&param),
            ));
        }
        Ok(())
    };
    only("delay", &["gpt-realtime-whisper"])?;
    only("keywords", &["gpt-transcribe", "gpt-live-transcribe"])?;
    only("languages", &["gpt-transcribe", "gpt-live-transcribe"])?;
    if map.contains_key("prompt") && model == "gpt-realtime-whisper" {
        return Err(unsupported(&join(path, "prompt"), model));
    }
    for (key, value, path) in each(map, path) {
        match key {
            "language" => {
                let language = string(value, &path)?;
                if !(language.len() == 2 && language.bytes().all(|b| b.is_ascii_lowercase())) {
                    return Err(invalid(
                        &path,
                        format!("Invalid value: '{language}'. Expected an ISO-639-1 language code such as 'en'."),
                    ));
                }
            }
            "prompt" => {
                string(value, &path)?;
            }
            "delay" => {
                one_of(value, &path, &["minimal", "low", "medium", "high", "xhigh"])?;
            }
            "keywords" | "languages" => {
                for (i, item) in array(value, &path)?.iter().enumerate() {
                    string(item, &index(&path, i))?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn check_turn_detection(value: &Value, path: &str) -> Checked {
    let map = object(value, path)?;
    let kind = map
        .get("type")
        .ok_or_else(|| missing(&join(path, "type")))?;
    let kind = one_of(kind, &join(path, "type"), &["server_vad", "semantic_vad"])?;
    if kind == "server_vad" {
        keys(
            map,
            path,
            &[
                "type",
                "threshold",
                "prefix_padding_ms",
                "silence_duration_ms",
                "create_response",
                "interrupt_response",
                "idle_timeout_ms",
            ],
            &[],
        )?;
    } else {
        keys(
            map,
            path,
            &["type", "eagerness", "create_response", "interrupt_response"],
            &[],
        )?;
    }
    for (key, value, path) in each(map, path) {
        match key {
            "threshold" => {
                decimal(value, &path, 0.0, 1.0)?;
            }
            "prefix_padding_ms" | "silence_duration_ms" => {
                integer(value, &path, 0, None)?;
            }
            "idle_timeout_ms" if !value.is_null() => {
                integer(value, &path, 0, None)?;
            }
            "create_response" | "interrupt_response" => {
                boolean(value, &path)?;
            }
            "eagerness" => {
                one_of(value, &path, &["low", "medium", "high", "auto"])?;
            }
            _ => {}
        }
    }
    Ok(())
}

// ----- response.create -----

/// What an item check needs from the conversation.
pub(crate) trait Conversation {
    fn has_item(&self, id: &str) -> bool;
    fn has_call(&self, call_id: &str) -> bool;
}

/// A `response.create`'s `response` object.
pub(crate) fn check_response(
    value: &Value,
    ctx: &Context,
    conversation: &dyn Conversation,
) -> Checked {
    let path = "response";
    let map = object(value, path)?;
    keys(map, path, &RESPONSE_KEYS, &[])?;
    for (key, value, path) in each(map, path) {
        match key {
            "audio" => {
                let audio = object(value, &path)?;
                keys(audio, &path, &["output"], &[])?;
                if let Some(output) = audio.get("output") {
                    check_output_audio(output, &join(&path, "output"), ctx, &["format", "voice"])?;
                }
            }
            "conversation" => {
                one_of(value, &path, &["auto", "none"])?;
            }
            "input" => {
                for (i, item) in array(value, &path)?.iter().enumerate() {
                    let path = index(&path, i);
                    if item.get("type").and_then(Value::as_str) == Some("item_reference") {
                        let map = object(item, &path)?;
                        keys(map, &path, &["type", "id"], &["id"])?;
                        let id = string(&map["id"], &join(&path, "id"))?;
                        if !conversation.has_item(id) {
                            return Err(invalid(
                                &join(&path, "id"),
                                format!("Item with id '{id}' not found."),
                            ));
                        }
                    } else {
                        check_item(item, &path, conversation)?;
                    }
                }
            }
            "instructions" => {
                string(value, &path)?;
            }
            "max_output_tokens" => check_max_tokens(value, &path)?,
            "metadata" if !value.is_null() => {
                let metadata = object(value, &path)?;
                if metadata.len() > 16 {
                    return Err(invalid(&path, "Metadata can have at most 16 keys."));
                }
                for (key, value, item_path) in each(metadata, &path) {
                    let text = string(value, &item_path)?;
                    if key.len() > 64 || text.len() > 512 {
                        return Err(invalid(
                            &item_path,
                            "Metadata keys are at most 64 and values at most 512 characters.",
                        ));
                    }
                }
            }
            "output_modalities" => check_modalities(value, &path)?,
            "parallel_tool_calls" => check_parallel_tool_calls(value, &path, ctx)?,
            "prompt" => check_prompt(value, &path)?,
            "reasoning" => check_reasoning(value, &path, ctx)?,
            "tool_choice" => check_tool_choice(value, &path)?,
            "tools" => check_tools(value, &path)?,
            _ => {}
        }
    }
    Ok(())
}

// ----- conversation items -----

const ITEM_COMMON: [&str; 4] = ["type", "id", "object", "status"];

fn with<'a>(own: &[&'a str]) -> Vec<&'a str> {
    ITEM_COMMON.iter().chain(own).copied().collect()
}

/// A conversation item (`conversation.item.create`'s `item`, or an entry of `response.input`).
pub(crate) fn check_item(value: &Value, path: &str, conversation: &dyn Conversation) -> Checked {
    let map = object(value, path)?;
    let kind = map
        .get("type")
        .ok_or_else(|| missing(&join(path, "type")))?;
    let kind = string(kind, &join(path, "type"))?;
    match kind {
        "message" => keys(map, path, &with(&["role", "content"]), &["role", "content"])?,
        "function_call" => keys(
            map,
            path,
            &with(&["name", "arguments", "call_id"]),
            &["name", "arguments"],
        )?,
        "function_call_output" => keys(
            map,
            path,
            &with(&["call_id", "output"]),
            &["call_id", "output"],
        )?,
        "mcp_call" | "mcp_list_tools" | "mcp_approval_request" | "mcp_approval_response" => {
            return Err(invalid(
                &join(path, "type"),
                format!("Item type '{kind}' is not simulated (no MCP server is connected)."),
            ))
        }
        other => {
            return Err(bad_value(
                &join(path, "type"),
                other,
                &["message", "function_call", "function_call_output"],
            ))
        }
    }
    for (key, value, path) in each(map, path) {
        match key {
            "id" => {
                let id = string(value, &path)?;
                if conversation.has_item(id) {
                    return Err(invalid(
                        &path,
                        format!("Item with id '{id}' already exists."),
                    ));
                }
            }
            "object" => {
                one_of(value, &path, &["realtime.item"])?;
            }
            "status" => {
                one_of(value, &path, &["completed", "incomplete", "in_progress"])?;
            }
            "name" | "arguments" | "output" => {
                string(value, &path)?;
            }
            "call_id" => {
                let call_id = string(value, &path)?;
                if kind == "function_call_output" && !conversation.has_call(call_id) {
                    return Err(invalid(
                        &path,
                        format!(
                            "No function call with call_id '{call_id}' found in the conversation."
                        ),
                    ));
                }
            }
            _ => {}
        }
    }
    if kind == "message" {
        let role = one_of(
            &map["role"],
            &join(path, "role"),
            &["user", "assistant", "system"],
        )?;
        check_content(&map["content"], &join(path, "content"), role)?;
    }
    Ok(())
}

fn check_content(value: &Value, path: &str, role: &str) -> Checked {
    let parts = array(value, path)?;
    let allowed: &[&str] = match role {
        "user" => &["input_text", "input_audio", "input_image"],
        "assistant" => &["output_text", "output_audio"],
        _ => &["input_text"],
    };
    for (i, part) in parts.iter().enumerate() {
        let path = index(path, i);
        let map = object(part, &path)?;
        let kind_path = join(&path, "type");
        let kind = map.get("type").ok_or_else(|| missing(&kind_path))?;
        let kind = one_of(kind, &kind_path, allowed)?;
        match kind {
            "input_text" | "output_text" => {
                keys(map, &path, &["type", "text"], &["text"])?;
                string(&map["text"], &join(&path, "text"))?;
            }
            "input_audio" => {
                keys(map, &path, &["type", "audio", "transcript"], &["audio"])?;
                let audio_path = join(&path, "audio");
                let audio = string(&map["audio"], &audio_path)?;
                use base64::Engine;
                if base64::engine::general_purpose::STANDARD
                    .decode(audio)
                    .is_err()
                {
                    return Err(invalid(&audio_path, "Invalid audio: not valid base64."));
                }
                if let Some(transcript) = map.get("transcript") {
                    string(transcript, &join(&path, "transcript"))?;
                }
            }
            "input_image" => {
                keys(map, &path, &["type", "image_url", "detail"], &["image_url"])?;
                string(&map["image_url"], &join(&path, "image_url"))?;
                if let Some(detail) = map.get("detail") {
                    one_of(detail, &join(&path, "detail"), &["auto", "low", "high"])?;
                }
            }
            _ => {
                // `output_audio` for the assistant: the schema has it, the service refuses to create it.
                return Err(invalid(
                    &kind_path,
                    "Assistant audio cannot be created with conversation.item.create; add the assistant's words as 'output_text'.",
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    struct Convo;
    impl Conversation for Convo {
        fn has_item(&self, id: &str) -> bool {
            id == "item_known"
        }
        fn has_call(&self, call_id: &str) -> bool {
            call_id == "call_known"
        }
    }

    fn ctx<'a>(model: &'a str, reject: &'a [String]) -> Context<'a> {
        Context {
            model,
            voice: &Value::Null,
            audio_sent: false,
            tracing: &Value::Null,
            reject_params: reject,
        }
    }

    fn session_error(session: Value, model: &str) -> Option<(String, Option<String>)> {
        check_session(&session, &ctx(model, &[]))
            .err()
            .map(|e| (e.code.to_string(), e.param))
    }

    fn full_session() -> Value {
        json!({
            "type": "realtime", "model": "gpt-realtime-2.1", "output_modalities": ["audio"], "instructions": "Hi",
            "audio": {
                "input": {
                    "format": {"type": "audio/pcmu"}, "noise_reduction": {"type": "near_field"},
                    "transcription": {"model": "gpt-4o-mini-transcribe", "language": "en", "prompt": "names"},
                    "turn_detection": {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300,
                        "silence_duration_ms": 500, "create_response": true, "interrupt_response": true,
                        "idle_timeout_ms": null}
                },
                "output": {"format": {"type": "audio/pcmu"}, "voice": "marin", "speed": 1.0}
            },
            "max_output_tokens": "inf", "tool_choice": "auto",
            "tools": [{"type": "function", "name": "end_call", "description": "x", "parameters": {"type": "object"}}],
            "reasoning": {"effort": "low"}, "truncation": "auto", "tracing": null,
            "include": ["item.input_audio_transcription.logprobs"]
        })
    }

    #[test]
    fn a_full_ga_session_passes() {
        assert_eq!(session_error(full_session(), "gpt-realtime-2.1"), None);
        let mut semantic = full_session();
        semantic["audio"]["input"]["turn_detection"] =
            json!({"type": "semantic_vad", "eagerness": "auto", "create_response": false});
        semantic["audio"]["input"]["noise_reduction"] = Value::Null;
        semantic["audio"]["input"]["transcription"] = Value::Null;
        semantic["max_output_tokens"] = json!(4096);
        assert_eq!(session_error(semantic, "gpt-realtime-2.1"), None);
    }

    #[test]
    fn every_bad_field_is_named() {
        let cases: Vec<(&str, Value, &str, &str)> = vec![
            (
                "/audio/output/speed",
                json!(1.6),
                "decimal_above_max_value",
                "session.audio.output.speed",
            ),
            (
                "/audio/output/speed",
                json!(0.2),
                "decimal_below_min_value",
                "session.audio.output.speed",
            ),
            (
                "/audio/output/speed",
                json!("fast"),
                "invalid_type",
                "session.audio.output.speed",
            ),
            (
                "/audio/output/voice",
                json!("onyx"),
                "invalid_value",
                "session.audio.output.voice",
            ),
            (
                "/audio/input/format",
                json!({"type": "g711_ulaw"}),
                "invalid_value",
                "session.audio.input.format.type",
            ),
            (
                "/audio/input/format",
                json!({"type": "audio/pcm"}),
                "missing_required_parameter",
                "session.audio.input.format.rate",
            ),
            (
                "/audio/input/format",
                json!({"type": "audio/pcm", "rate": 16000}),
                "invalid_value",
                "session.audio.input.format.rate",
            ),
            (
                "/audio/input/format",
                json!({"type": "audio/pcmu", "rate": 8000}),
                "unknown_parameter",
                "session.audio.input.format.rate",
            ),
            (
                "/audio/input/noise_reduction",
                json!({"type": "mid_field"}),
                "invalid_value",
                "session.audio.input.noise_reduction.type",
            ),
            (
                "/audio/input/transcription",
                json!({"model": "gpt-5"}),
                "invalid_value",
                "session.audio.input.transcription.model",
            ),
            (
                "/audio/input/transcription",
                json!({"model": "whisper-1", "language": "English"}),
                "invalid_value",
                "session.audio.input.transcription.language",
            ),
            (
                "/audio/input/transcription",
                json!({"model": "whisper-1", "delay": "low"}),
                "unsupported_parameter",
                "session.audio.input.transcription.delay",
            ),
            (
                "/audio/input/turn_detection",
                json!({"type": "server_vad", "threshold": 1.5}),
                "decimal_above_max_value",
                "session.audio.input.turn_detection.threshold",
            ),
            (
                "/audio/input/turn_detection",
                json!({"type": "server_vad", "silence_duration_ms": -1}),
                "integer_below_min_value",
                "session.audio.input.turn_detection.silence_duration_ms",
            ),
            (
                "/audio/input/turn_detection",
                json!({"type": "semantic_vad", "eagerness": "eager"}),
                "invalid_value",
                "session.audio.input.turn_detection.eagerness",
            ),
            (
                "/audio/input/turn_detection",
                json!({"type": "semantic_vad", "threshold": 0.5}),
                "unknown_parameter",
                "session.audio.input.turn_detection.threshold",
            ),
            (
                "/audio/input/turn_detection",
                json!({"threshold": 0.5}),
                "missing_required_parameter",
                "session.audio.input.turn_detection.type",
            ),
            (
                "/max_output_tokens",
                json!(4097),
                "integer_above_max_value",
                "session.max_output_tokens",
            ),
            (
                "/max_output_tokens",
                json!(0),
                "integer_below_min_value",
                "session.max_output_tokens",
            ),
            (
                "/max_output_tokens",
                json!("unlimited"),
                "invalid_value",
                "session.max_output_tokens",
            ),
            (
                "/output_modalities",
                json!(["audio", "text"]),
                "invalid_value",
                "session.output_modalities",
            ),
            (
                "/output_modalities",
                json!(["video"]),
                "invalid_value",
                "session.output_modalities[0]",
            ),
            (
                "/tool_choice",
                json!("sometimes"),
                "invalid_value",
                "session.tool_choice",
            ),
            (
                "/tools",
                json!([{"type": "function", "name": "bad name"}]),
                "invalid_value",
                "session.tools[0].name",
            ),
            (
                "/tools",
                json!([{"type": "function", "name": "a", "strict": true}]),
                "unknown_parameter",
                "session.tools[0].strict",
            ),
            (
                "/reasoning",
                json!({"effort": "extreme"}),
                "invalid_value",
                "session.reasoning.effort",
            ),
            (
                "/truncation",
                json!({"type": "retention_ratio", "retention_ratio": 2.0}),
                "decimal_above_max_value",
                "session.truncation.retention_ratio",
            ),
            (
                "/instructions",
                json!(42),
                "invalid_type",
                "session.instructions",
            ),
            (
                "/model",
                json!("gpt-realtime"),
                "invalid_value",
                "session.model",
            ),
            (
                "/temperature",
                json!(0.8),
                "unknown_parameter",
                "session.temperature",
            ),
        ];
        for (pointer, value, code, param) in cases {
            let mut session = full_session();
            let (parent, key) = pointer.rsplit_once('/').unwrap();
            let parent = if parent.is_empty() {
                &mut session
            } else {
                session.pointer_mut(parent).unwrap()
            };
            parent[key] = value.clone();
            assert_eq!(
                session_error(session, "gpt-realtime-2.1"),
                Some((code.to_string(), Some(param.to_string()))),
                "{pointer} = {value}"
            );
        }
        assert_eq!(
            session_error(json!({"instructions": "x"}), "gpt-realtime"),
            Some((
                "missing_required_parameter".into(),
                Some("session.type".into())
            ))
        );
    }

    #[test]
    fn reasoning_only_for_models_that_take_it() {
        let with_reasoning = |model: &str| json!({"type": "realtime", "reasoning": {"effort": "low"}, "model": model});
        for model in [
            "gpt-realtime",
            "gpt-realtime-mini",
            "gpt-realtime-1.5",
            "gpt-realtime-2025-08-28",
        ] {
            assert_eq!(
                session_error(with_reasoning(model), model),
                Some((
                    "unsupported_parameter".into(),
                    Some("session.reasoning".into())
                )),
                "{model}"
            );
        }
        for model in [
            "gpt-realtime-2",
            "gpt-realtime-2.1",
            "gpt-realtime-2.1-mini",
        ] {
            assert_eq!(session_error(with_reasoning(model), model), None, "{model}");
        }
        assert_eq!(
            session_error(
                json!({"type": "realtime", "parallel_tool_calls": true}),
                "gpt-realtime"
            ),
            Some((
                "unsupported_parameter".into(),
                Some("session.parallel_tool_calls".into())
            ))
        );
    }

    #[test]
    fn reject_params_voice_lock_and_tracing_lock() {
        let reject = vec!["session.audio.input.noise_reduction".to_string()];
        let session = json!({"type": "realtime", "audio": {"input": {"noise_reduction": null}}});
        let err = check_session(&session, &ctx("gpt-realtime", &reject)).unwrap_err();
        assert_eq!(
            err.param.as_deref(),
            Some("session.audio.input.noise_reduction")
        );
        assert!(check_session(&json!({"type": "realtime"}), &ctx("gpt-realtime", &reject)).is_ok());

        let voice = json!("marin");
        let locked = Context {
            voice: &voice,
            audio_sent: true,
            ..ctx("gpt-realtime", &[])
        };
        let change = json!({"type": "realtime", "audio": {"output": {"voice": "cedar"}}});
        assert_eq!(
            check_session(&change, &locked).unwrap_err().code,
            "cannot_update_voice"
        );
        let same = json!({"type": "realtime", "audio": {"output": {"voice": "marin"}}});
        assert!(check_session(&same, &locked).is_ok());

        let tracing = json!("auto");
        let traced = Context {
            tracing: &tracing,
            ..ctx("gpt-realtime", &[])
        };
        let off = json!({"type": "realtime", "tracing": null});
        assert_eq!(
            check_session(&off, &traced).unwrap_err().param.as_deref(),
            Some("session.tracing")
        );
    }

    #[test]
    fn items_by_role_and_kind() {
        let ok = [
            json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}),
            json!({"type": "message", "role": "user", "content": [{"type": "input_audio", "audio": "//8="}]}),
            json!({"type": "message", "role": "system", "content": [{"type": "input_text", "text": "billing"}]}),
            json!({"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "ok"}]}),
            json!({"type": "function_call_output", "call_id": "call_known", "output": "{}"}),
            json!({"type": "function_call", "name": "f", "arguments": "{}", "call_id": "call_x"}),
        ];
        for item in ok {
            assert_eq!(check_item(&item, "item", &Convo), Ok(()), "{item}");
        }
        let bad = [
            (
                json!({"type": "message", "role": "assistant", "content": [{"type": "output_audio", "transcript": "x"}]}),
                "item.content[0].type",
            ),
            (
                json!({"type": "message", "role": "assistant", "content": [{"type": "input_text", "text": "x"}]}),
                "item.content[0].type",
            ),
            (
                json!({"type": "message", "role": "system", "content": [{"type": "input_audio", "audio": ""}]}),
                "item.content[0].type",
            ),
            (
                json!({"type": "message", "role": "user", "content": [{"type": "input_text"}]}),
                "item.content[0].text",
            ),
            (
                json!({"type": "message", "role": "tool", "content": []}),
                "item.role",
            ),
            (json!({"type": "message", "role": "user"}), "item.content"),
            (
                json!({"type": "function_call_output", "call_id": "call_other", "output": "{}"}),
                "item.call_id",
            ),
            (
                json!({"type": "function_call_output", "call_id": "call_known", "output": {"a": 1}}),
                "item.output",
            ),
            (
                json!({"type": "function_call_output", "call_id": "call_known"}),
                "item.output",
            ),
            (
                json!({"type": "message", "id": "item_known", "role": "user", "content": []}),
                "item.id",
            ),
            (json!({"type": "reasoning"}), "item.type"),
        ];
        for (item, param) in bad {
            let err = check_item(&item, "item", &Convo).unwrap_err();
            assert_eq!(err.param.as_deref(), Some(param), "{item}: {err:?}");
        }
    }

    #[test]
    fn response_params() {
        let c = ctx("gpt-realtime", &[]);
        assert_eq!(
            check_response(
                &json!({"instructions": "Greet.", "tool_choice": "none", "max_output_tokens": 200}),
                &c,
                &Convo
            ),
            Ok(())
        );
        let err = check_response(&json!({"temperature": 0.7}), &c, &Convo).unwrap_err();
        assert_eq!(err.param.as_deref(), Some("response.temperature"));
        let err = check_response(&json!({"reasoning": {"effort": "low"}}), &c, &Convo).unwrap_err();
        assert_eq!(err.param.as_deref(), Some("response.reasoning"));
        let err = check_response(
            &json!({"input": [{"type": "item_reference", "id": "item_gone"}]}),
            &c,
            &Convo,
        )
        .unwrap_err();
        assert_eq!(err.param.as_deref(), Some("response.input[0].id"));
        let err =
            check_response(&json!({"audio": {"output": {"speed": 1.0}}}), &c, &Convo).unwrap_err();
        assert_eq!(err.param.as_deref(), Some("response.audio.output.speed"));
    }

    #[test]
    fn envelope_keys() {
        let event = json!({"type": "response.cancel", "event_id": "e1", "response_id": "r"});
        assert_eq!(
            check_envelope(
                event.as_object().unwrap(),
                event_keys("response.cancel").unwrap()
            ),
            Ok(())
        );
        let event = json!({"type": "input_audio_buffer.commit", "audio": "x"});
        let err = check_envelope(
            event.as_object().unwrap(),
            event_keys("input_audio_buffer.commit").unwrap(),
        )
        .unwrap_err();
        assert_eq!(
            (err.code, err.param.as_deref()),
            ("unknown_parameter", Some("audio"))
        );
        let event = json!({"type": "input_audio_buffer.commit", "event_id": 7});
        let err = check_envelope(event.as_object().unwrap(), &[]).unwrap_err();
        assert_eq!(
            (err.code, err.param.as_deref()),
            ("invalid_type", Some("event_id"))
        );
        assert!(event_keys("output_audio_buffer.clear").is_none());
    }
}

//! A stand-in for OpenAI's Responses API (`POST /v1/responses`, not streamed), for the post-call
//! summary's tests and the demo.
//!
//! It is at least as strict as the live service where the summary depends on it: a Bearer key (the one
//! it was started with, if any), a JSON object body with only known parameters, `model` a non-empty
//! string, `input` present, and for `text.format.type == "json_schema"` a valid `name` and, with
//! `strict: true`, a schema that strict structured outputs take (every object with
//! `additionalProperties: false` and every property in `required`; only supported keywords). A refused
//! request gets `400` with an OpenAI-style `{"error": {"message", "type", "param", "code"}}`.
//!
//! It answers from a script, one [`Reply`] per request in order; once the script is used up it answers
//! [`Reply::Auto`] (a schema-valid answer made from the request's own schema). Every request is
//! recorded, accepted or not ([`ResponsesServer::requests`]), with the usage it was answered with.
//!
//! Built with `serde_json::Value` from the API's published shapes, never with the client's types.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use super::new_id;

/// One scripted answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// A completed response with a schema-valid answer made from the request's schema (the first
    /// disposition, `null` for nullable fields, a plain value of the right type for the others).
    Auto,
    /// A completed response whose text is this JSON (valid or not: it is not checked).
    Json(Value),
    /// A completed response with this text as it is (not JSON, say).
    Text(String),
    /// A completed response whose message is a refusal.
    Refusal(String),
    /// `status: "incomplete"` with this reason (`max_output_tokens`, `content_filter`).
    Incomplete(String),
    /// An HTTP error with an OpenAI-style body (`429`, `500`, `503`, …).
    Http(u16),
    /// The reply, after a pause.
    After(Duration, Box<Reply>),
}

/// One request the stand-in received.
#[derive(Debug, Clone)]
pub struct ReceivedRequest {
    pub method: String,
    pub path: String,
    /// The `Authorization` header, as sent.
    pub authorization: Option<String>,
    /// The body, when it was JSON.
    pub body: Option<Value>,
    /// The status it was answered with.
    pub status: u16,
    /// The usage it was answered with (completed, refused and incomplete answers).
    pub usage: Option<Value>,
}

struct Shared {
    key: Option<String>,
    script: Mutex<VecDeque<Reply>>,
    requests: Mutex<Vec<ReceivedRequest>>,
}

/// The running stand-in; it stops when dropped.
pub struct ResponsesServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl ResponsesServer {
    /// Starts on a free loopback port. With `key`, only `Authorization: Bearer <key>` is accepted;
    /// without, any non-empty Bearer key.
    ///
    /// # Panics
    /// If no loopback port can be bound (a test cannot go on without it).
    pub async fn start(key: Option<&str>) -> ResponsesServer {
        let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
            Ok(l) => l,
            Err(e) => panic!("the Responses stand-in cannot bind a loopback port: {e}"),
        };
        let addr = match listener.local_addr() {
            Ok(a) => a,
            Err(e) => panic!("the Responses stand-in has no local address: {e}"),
        };
        let shared = Arc::new(Shared {
            key: key.map(str::to_string),
            script: Mutex::default(),
            requests: Mutex::default(),
        });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        ResponsesServer { addr, shared, task }
    }

    /// The base URL to configure (`http://127.0.0.1:PORT`; the client appends `/v1/responses`).
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Adds replies to the end of the script.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        lock(&self.shared.script).extend(replies);
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<ReceivedRequest> {
        lock(&self.shared.requests).clone()
    }
}

impl Drop for ResponsesServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// An OpenAI-style error answer.
fn error(
    status: StatusCode,
    message: &str,
    kind: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> Response {
    (
        status,
        Json(json!({"error": {"message": message, "type": kind, "param": param, "code": code}})),
    )
        .into_response()
}

fn invalid(message: &str, param: Option<&str>) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        message,
        "invalid_request_error",
        param,
        None,
    )
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let method = request.method().to_string();
    let path = request.uri().path().to_string();
    let authorization = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let json_type = request
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"));
    let bytes = axum::body::to_bytes(request.into_body(), 4 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let body: Option<Value> = serde_json::from_slice(&bytes).ok();
    let (response, usage) = answer(
        &shared,
        &method,
        &path,
        authorization.as_deref(),
        json_type,
        body.as_ref(),
    )
    .await;
    lock(&shared.requests).push(ReceivedRequest {
        method,
        path,
        authorization,
        body,
        status: response.status().as_u16(),
        usage,
    });
    response
}

async fn answer(
    shared: &Shared,
    method: &str,
    path: &str,
    authorization: Option<&str>,
    json_type: bool,
    body: Option<&Value>,
) -> (Response, Option<Value>) {
    if path != "/v1/responses" {
        let message = format!("Invalid URL ({method} {path})");
        return (
            error(
                StatusCode::NOT_FOUND,
                &message,
                "invalid_request_error",
                None,
                None,
            ),
            None,
        );
    }
    let key = authorization
        .and_then(|a| a.strip_prefix("Bearer "))
        .filter(|k| !k.is_empty());
    match (key, &shared.key) {
        (None, _) => {
            let message = "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).";
            return (
                error(
                    StatusCode::UNAUTHORIZED,
                    message,
                    "invalid_request_error",
                    None,
                    None,
                ),
                None,
            );
        }
        (Some(given), Some(expected)) if given != expected => {
            let message = "Incorrect API key provided.";
            return (
                error(
                    StatusCode::UNAUTHORIZED,
                    message,
                    "invalid_request_error",
                    None,
                    Some("invalid_api_key"),
                ),
                None,
            );
        }
        _ => {}
    }
    if method != "POST" {
        let message = format!("Invalid URL ({method} {path})");
        return (
            error(
                StatusCode::METHOD_NOT_ALLOWED,
                &message,
                "invalid_request_error",
                None,
                None,
            ),
            None,
        );
    }
    let Some(Value::Object(body)) = body.filter(|_| json_type) else {
        return (invalid("We could not parse the JSON body of your request. The body must be a JSON object sent with Content-Type: application/json.", None), None);
    };
    if let Err((message, param)) = check_request(body) {
        return (invalid(&message, param.as_deref()), None);
    }
    let mut reply = lock(&shared.script).pop_front().unwrap_or(Reply::Auto);
    while let Reply::After(pause, next) = reply {
        tokio::time::sleep(pause).await;
        reply = *next;
    }
    respond(body, reply)
}

/// Top-level parameters the Responses API knows (others are refused, as the live API does).
const KNOWN_PARAMS: &[&str] = &[
    "model",
    "input",
    "instructions",
    "text",
    "store",
    "temperature",
    "top_p",
    "max_output_tokens",
    "metadata",
    "user",
    "reasoning",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "previous_response_id",
    "truncation",
    "include",
    "stream",
    "background",
    "service_tier",
    "prompt_cache_key",
    "safety_identifier",
    "max_tool_calls",
    "top_logprobs",
    "conversation",
    "prompt",
];

type Refusal = (String, Option<String>);

fn check_request(body: &Map<String, Value>) -> Result<(), Refusal> {
    if let Some(unknown) = body.keys().find(|k| !KNOWN_PARAMS.contains(&k.as_str())) {
        return Err((
            format!("Unknown parameter: '{unknown}'."),
            Some(unknown.clone()),
        ));
    }
    match body.get("model") {
        Some(Value::String(m)) if !m.is_empty() => {}
        _ => {
            return Err((
                "Missing required parameter: 'model'.".into(),
                Some("model".into()),
            ))
        }
    }
    match body.get("input") {
        Some(Value::String(_) | Value::Array(_)) => {}
        Some(_) => {
            return Err((
                "Invalid type for 'input': expected a string or an array.".into(),
                Some("input".into()),
            ))
        }
        None => {
            return Err((
                "Missing required parameter: 'input'.".into(),
                Some("input".into()),
            ))
        }
    }
    if let Some(i) = body.get("instructions") {
        if !i.is_string() && !i.is_null() {
            return Err((
                "Invalid type for 'instructions': expected a string.".into(),
                Some("instructions".into()),
            ));
        }
    }
    if let Some(s) = body.get("store") {
        if !s.is_boolean() {
            return Err((
                "Invalid type for 'store': expected a boolean.".into(),
                Some("store".into()),
            ));
        }
    }
    let Some(format) = body.get("text").and_then(|t| t.get("format")) else {
        return Ok(());
    };
    match format.get("type").and_then(Value::as_str) {
        Some("text" | "json_object") => Ok(()),
        Some("json_schema") => check_format(format),
        _ => Err((
            "Invalid value for 'text.format.type'.".into(),
            Some("text.format.type".into()),
        )),
    }
}

fn check_format(format: &Value) -> Result<(), Refusal> {
    let name_ok = format.get("name").and_then(Value::as_str).is_some_and(|n| {
        !n.is_empty()
            && n.len() <= 64
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    });
    if !name_ok {
        return Err((
            "Invalid 'text.format.name': 1–64 letters, digits, '_' or '-'.".into(),
            Some("text.format.name".into()),
        ));
    }
    let Some(schema) = format.get("schema").filter(|s| s.is_object()) else {
        return Err((
            "Missing required parameter: 'text.format.schema'.".into(),
            Some("text.format.schema".into()),
        ));
    };
    if format.get("strict") == Some(&Value::Bool(true)) {
        if schema.get("type") != Some(&json!("object")) {
            return Err(schema_error(
                "schema must be a JSON Schema of 'type: \"object\"'",
                "#",
            ));
        }
        check_strict(schema, "#")?;
    }
    Ok(())
}

fn schema_error(why: &str, at: &str) -> Refusal {
    (
        format!("Invalid schema for response_format 'call_summary': In context=('{at}'), {why}."),
        Some("text.format.schema".into()),
    )
}

/// Keywords strict structured outputs take.
const STRICT_KEYWORDS: &[&str] = &[
    "type",
    "properties",
    "required",
    "additionalProperties",
    "enum",
    "const",
    "anyOf",
    "items",
    "description",
    "title",
    "pattern",
    "format",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minItems",
    "maxItems",
    "$defs",
    "$ref",
];

fn check_strict(schema: &Value, at: &str) -> Result<(), Refusal> {
    let Some(obj) = schema.as_object() else {
        return Err(schema_error("a schema must be an object", at));
    };
    if let Some(k) = obj.keys().find(|k| !STRICT_KEYWORDS.contains(&k.as_str())) {
        return Err(schema_error(&format!("'{k}' is not permitted"), at));
    }
    let types: Vec<&str> = match obj.get("type") {
        None => vec![],
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        Some(_) => return Err(schema_error("'type' must be a string or an array", at)),
    };
    const TYPES: &[&str] = &[
        "string", "number", "integer", "boolean", "object", "array", "null",
    ];
    if let Some(t) = types.iter().find(|t| !TYPES.contains(t)) {
        return Err(schema_error(&format!("'{t}' is not a valid type"), at));
    }
    if types.contains(&"object") || obj.contains_key("properties") {
        if obj.get("additionalProperties") != Some(&Value::Bool(false)) {
            return Err(schema_error(
                "'additionalProperties' is required to be supplied and to be false",
                at,
            ));
        }
        let empty = Map::new();
        let props = obj
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let required: Vec<&str> = obj
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if let Some(missing) = props.keys().find(|k| !required.contains(&k.as_str())) {
            return Err(schema_error(&format!("'required' is required to be supplied and to be an array including every key in properties. Missing '{missing}'"), at));
        }
        if let Some(extra) = required.iter().find(|r| !props.contains_key(**r)) {
            return Err(schema_error(
                &format!("'required' names '{extra}', which is not in properties"),
                at,
            ));
        }
        for (name, sub) in props {
            check_strict(sub, &format!("{at}/properties/{name}"))?;
        }
    }
    if let Some(e) = obj.get("enum") {
        if e.as_array().is_none_or(|v| v.is_empty()) {
            return Err(schema_error("'enum' must be a non-empty array", at));
        }
    }
    if let Some(items) = obj.get("items") {
        check_strict(items, &format!("{at}/items"))?;
    }
    for key in ["anyOf"] {
        if let Some(Value::Array(subs)) = obj.get(key) {
            for (i, sub) in subs.iter().enumerate() {
                check_strict(sub, &format!("{at}/{key}/{i}"))?;
            }
        }
    }
    if let Some(Value::Object(defs)) = obj.get("$defs") {
        for (name, sub) in defs {
            check_strict(sub, &format!("{at}/$defs/{name}"))?;
        }
    }
    Ok(())
}

/// An answer made from the request's schema that follows it.
fn auto_answer(schema: &Value) -> Value {
    match schema.get("type") {
        Some(Value::Array(types)) if types.contains(&Value::Null) => Value::Null,
        _ => {
            if let Some(first) = schema
                .get("enum")
                .and_then(Value::as_array)
                .and_then(|e| e.first())
            {
                return first.clone();
            }
            match schema.get("type").and_then(Value::as_str) {
                Some("object") => Value::Object(
                    schema
                        .get("properties")
                        .and_then(Value::as_object)
                        .map(|props| {
                            props
                                .iter()
                                .map(|(k, v)| {
                                    let value = if k == "summary"
                                        && v.get("type") == Some(&json!("string"))
                                    {
                                        json!(
                                            "The caller talked with the agent (stand-in summary)."
                                        )
                                    } else {
                                        auto_answer(v)
                                    };
                                    (k.clone(), value)
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                ),
                Some("array") => json!([]),
                Some("string") => json!("stand-in"),
                Some("number" | "integer") => json!(0),
                Some("boolean") => json!(false),
                _ => Value::Null,
            }
        }
    }
}

fn usage(body: &Map<String, Value>, output: &str) -> Value {
    let chars = |k: &str| body.get(k).and_then(Value::as_str).map_or(0, str::len) as u64;
    let input = (chars("input") + chars("instructions")) / 4 + 12;
    let output = output.len() as u64 / 4 + 1;
    json!({
        "input_tokens": input,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input + output
    })
}

fn respond(body: &Map<String, Value>, reply: Reply) -> (Response, Option<Value>) {
    let part = match reply {
        Reply::Http(status) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let (kind, code, message) = if status == StatusCode::TOO_MANY_REQUESTS {
                (
                    "requests",
                    Some("rate_limit_exceeded"),
                    "Rate limit reached for requests.",
                )
            } else {
                (
                    "server_error",
                    None,
                    "The server had an error while processing your request.",
                )
            };
            return (error(status, message, kind, None, code), None);
        }
        Reply::After(_, next) => return respond(body, *next),
        Reply::Auto => {
            let schema = body
                .get("text")
                .and_then(|t| t.pointer("/format/schema"))
                .cloned()
                .unwrap_or(Value::Null);
            Ok(auto_answer(&schema).to_string())
        }
        Reply::Json(value) => Ok(value.to_string()),
        Reply::Text(text) => Ok(text),
        Reply::Refusal(words) => Err(words),
        Reply::Incomplete(reason) => {
            let usage = usage(body, "");
            let mut r = response_object(body, "incomplete", vec![], &usage);
            r["incomplete_details"] = json!({"reason": reason});
            return (Json(r).into_response(), Some(usage));
        }
    };
    let (content, said) = match part {
        Ok(text) => (
            json!({"type": "output_text", "text": text, "annotations": []}),
            text,
        ),
        Err(words) => (json!({"type": "refusal", "refusal": words}), words),
    };
    let usage = usage(body, &said);
    let message = json!({
        "type": "message",
        "id": new_id("msg_"),
        "status": "completed",
        "role": "assistant",
        "content": [content]
    });
    let r = response_object(body, "completed", vec![message], &usage);
    (Json(r).into_response(), Some(usage))
}

fn response_object(
    body: &Map<String, Value>,
    status: &str,
    output: Vec<Value>,
    usage: &Value,
) -> Value {
    let created_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    json!({
        "id": new_id("resp_"),
        "object": "response",
        "created_at": created_at,
        "status": status,
        "error": null,
        "incomplete_details": null,
        "instructions": body.get("instructions").cloned().unwrap_or(Value::Null),
        "model": body.get("model").cloned().unwrap_or(Value::Null),
        "output": output,
        "parallel_tool_calls": true,
        "store": body.get("store").cloned().unwrap_or(json!(true)),
        "text": body.get("text").cloned().unwrap_or(json!({"format": {"type": "text"}})),
        "tool_choice": "auto",
        "tools": [],
        "usage": usage
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn post(server: &ResponsesServer, key: Option<&str>, body: Value) -> (u16, Value) {
        let mut request = reqwest::Client::new()
            .post(format!("{}/v1/responses", server.base()))
            .json(&body);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.unwrap();
        (
            response.status().as_u16(),
            response.json().await.unwrap_or(Value::Null),
        )
    }

    fn strict(schema: Value) -> Value {
        json!({"model": "gpt-4.1-mini", "input": "hi",
            "text": {"format": {"type": "json_schema", "name": "call_summary", "strict": true, "schema": schema}}})
    }

    #[tokio::test]
    async fn it_refuses_what_the_live_service_refuses() {
        let server = ResponsesServer::start(Some("sk-right")).await;
        let ok = json!({"type": "object", "properties": {"a": {"type": ["string", "null"]}},
            "required": ["a"], "additionalProperties": false});
        assert_eq!(post(&server, None, strict(ok.clone())).await.0, 401);
        assert_eq!(
            post(&server, Some("sk-wrong"), strict(ok.clone())).await.0,
            401
        );
        let (status, body) = post(&server, Some("sk-right"), json!({"input": "x"})).await;
        assert_eq!(
            (status, body["error"]["param"].as_str()),
            (400, Some("model"))
        );
        assert_eq!(
            post(
                &server,
                Some("sk-right"),
                json!({"model": "m", "input": "x", "temprature": 1})
            )
            .await
            .0,
            400
        );
        for bad in [
            json!({"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": false}),
            json!({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}),
            json!({"type": "object", "properties": {"a": {"type": "string", "minLength": 1}}, "required": ["a"], "additionalProperties": false}),
            json!({"type": "object", "properties": {"o": {"type": "object", "properties": {}}}, "required": ["o"], "additionalProperties": false}),
            json!({"type": "array"}),
        ] {
            let (status, body) = post(&server, Some("sk-right"), strict(bad.clone())).await;
            assert_eq!(status, 400, "{bad}");
            assert_eq!(body["error"]["type"], "invalid_request_error");
            assert_eq!(body["error"]["param"], "text.format.schema");
        }
        let (status, body) = post(&server, Some("sk-right"), strict(ok)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["object"], "response");
        assert!(body["id"].as_str().unwrap().starts_with("resp_"));
        let text = body["output"][0]["content"][0]["text"].as_str().unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(text).unwrap(),
            json!({"a": null})
        );
        assert!(body["usage"]["input_tokens"].as_u64().unwrap() > 0);
        assert_eq!(server.requests().len(), 10);
    }

    #[tokio::test]
    async fn it_answers_from_its_script() {
        let server = ResponsesServer::start(None).await;
        server.script([
            Reply::Http(429),
            Reply::After(
                Duration::from_millis(10),
                Box::new(Reply::Refusal("No.".into())),
            ),
            Reply::Incomplete("max_output_tokens".into()),
            Reply::Text("not json".into()),
        ]);
        let body = json!({"model": "m", "input": "x"});
        assert_eq!(post(&server, Some("k"), body.clone()).await.0, 429);
        let (_, refused) = post(&server, Some("k"), body.clone()).await;
        assert_eq!(refused["output"][0]["content"][0]["refusal"], "No.");
        let (_, short) = post(&server, Some("k"), body.clone()).await;
        assert_eq!(short["status"], "incomplete");
        assert_eq!(short["incomplete_details"]["reason"], "max_output_tokens");
        let (_, text) = post(&server, Some("k"), body).await;
        assert_eq!(text["output"][0]["content"][0]["text"], "not json");
    }
}

//! A recording tap in front of the Twilio REST stand-in (Stoplight Prism serving Twilio's OpenAPI
//! description).
//!
//! Prism checks every request against Twilio's spec (auth, paths, required fields) and answers with
//! the spec's examples, but it cannot show a test what was sent. The tap forwards each request
//! unchanged and keeps a copy, so a test can read the inline TwiML of a created call and "answer" it
//! with the simulated callee, or check that a hang-up was sent.
//!
//! Three adjustments, all for Prism's sake and none visible to the client under test:
//! - Twilio takes list fields as repeated keys (`StatusCallbackEvent=ringing&StatusCallbackEvent=answered`,
//!   as Twilio's own libraries send them), but Prism only reads `key[]=` as an array
//!   (stoplightio/prism#2473). For the fields the spec declares as arrays, the tap renames the keys to
//!   `key[]` on the way to Prism; the recorded request keeps what the client sent.
//! - Some of the spec's own examples fail the spec's own schema (relative `uri` fields declared
//!   `format: uri`), and `prism --errors` turns that into a 500 about the *response*. When every
//!   violation Prism lists is in the response, the tap asks Prism again for a response generated from
//!   the schema (`Prefer: dynamic=true`). Request violations are passed through untouched.
//! - [`RestTap::fail_next`] answers the next matching request with a Twilio error body, for testing how
//!   Twilio's refusals reach the user.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::Value;

use super::SimError;

/// One request that went through the tap.
#[derive(Debug, Clone)]
pub struct TappedRequest {
    pub method: String,
    /// Path and query, as sent.
    pub path: String,
    /// Decoded form fields, in order (repeated keys kept).
    pub form: Vec<(String, String)>,
    pub had_basic_auth: bool,
    /// What Prism (or an injected failure) answered.
    pub status: u16,
}

impl TappedRequest {
    /// The first value of form field `name`.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of form field `name`.
    pub fn fields(&self, name: &str) -> Vec<&str> {
        self.form
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

struct Injected {
    path_contains: String,
    status: u16,
    body: Value,
}

#[derive(Default)]
struct Shared {
    requests: Vec<TappedRequest>,
    injected: Vec<Injected>,
    /// (path fragment, body) answered after Prism has validated the request.
    canned: Vec<(String, Value)>,
    /// (path fragment, content type, bytes) answered by the tap itself: media Twilio serves that the
    /// API description does not cover (a recording's `.wav`).
    media: Vec<(String, &'static str, Bytes)>,
}

struct TapState {
    upstream: String,
    /// Form fields the spec declares as arrays.
    array_fields: std::collections::HashSet<String>,
    http: reqwest::Client,
    shared: Mutex<Shared>,
}

/// The running tap. Point the Twilio client at [`RestTap::url`].
pub struct RestTap {
    addr: SocketAddr,
    state: Arc<TapState>,
    task: tokio::task::JoinHandle<()>,
}

impl RestTap {
    /// Starts a tap on a free loopback port forwarding to `upstream` (Prism serving `spec`, Twilio's
    /// OpenAPI description).
    pub async fn start(
        upstream: impl Into<String>,
        spec: &std::path::Path,
    ) -> Result<RestTap, SimError> {
        let array_fields = array_form_fields(spec)?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()?;
        let state = Arc::new(TapState {
            upstream: upstream.into().trim_end_matches('/').to_string(),
            array_fields,
            http,
            shared: Mutex::default(),
        });
        let app = Router::new().fallback(forward).with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(RestTap { addr, state, task })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<TappedRequest> {
        self.lock().requests.clone()
    }

    /// Waits until a request matching `pred` has gone through.
    pub async fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&TappedRequest) -> bool,
    ) -> Result<TappedRequest, SimError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(found) = self.lock().requests.iter().find(|r| pred(r)) {
                return Ok(found.clone());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(SimError::Timeout {
                    what: what.to_string(),
                    after: timeout,
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Answers the next request whose path contains `path_contains` with `status` and a Twilio error
    /// body (`code`, `message`, `more_info`, `status`), instead of forwarding it.
    pub fn fail_next(&self, path_contains: &str, status: u16, code: i64, message: &str) {
        self.lock().injected.push(Injected {
            path_contains: path_contains.to_string(),
            status,
            body: serde_json::json!({
                "code": code,
                "message": message,
                "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
                "status": status,
            }),
        });
    }

    /// From now on, requests whose path contains `path_contains` are still checked by Prism, but a
    /// Prism answer that passed (or failed only on its own example) is replaced by `body`: for lists
    /// whose content a test must know, such as the account's numbers.
    pub fn serve_json(&self, path_contains: &str, body: Value) {
        self.lock().canned.push((path_contains.to_string(), body));
    }

    /// Serves `bytes` for GETs whose path contains `path_contains`, as Twilio's media host does for a
    /// recording's `.wav` (the API description has no such path, so Prism cannot).
    pub fn serve_media(&self, path_contains: &str, content_type: &'static str, bytes: Vec<u8>) {
        self.lock()
            .media
            .push((path_contains.to_string(), content_type, Bytes::from(bytes)));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.state.shared.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for RestTap {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The names of array-typed fields in the spec's form bodies.
fn array_form_fields(
    spec: &std::path::Path,
) -> Result<std::collections::HashSet<String>, SimError> {
    let text = std::fs::read(spec)?;
    let spec: Value = serde_json::from_slice(&text).map_err(|e| SimError::Url {
        url: spec.display().to_string(),
        reason: format!("not an OpenAPI JSON document: {e}"),
    })?;
    let mut fields = std::collections::HashSet::new();
    for operations in spec["paths"]
        .as_object()
        .into_iter()
        .flat_map(|p| p.values())
    {
        for operation in operations.as_object().into_iter().flat_map(|o| o.values()) {
            let properties = operation
                .pointer(
                    "/requestBody/content/application~1x-www-form-urlencoded/schema/properties",
                )
                .and_then(Value::as_object);
            for (name, schema) in properties.into_iter().flatten() {
                if schema["type"] == "array" {
                    fields.insert(name.clone());
                }
            }
        }
    }
    Ok(fields)
}

/// The form as Prism reads arrays: `key[]=` for array fields.
fn prism_form(
    form: &[(String, String)],
    array_fields: &std::collections::HashSet<String>,
) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in form {
        if array_fields.contains(key) {
            out.append_pair(&format!("{key}[]"), value);
        } else {
            out.append_pair(key, value);
        }
    }
    out.finish()
}

/// A generated list response ends at its first page: its paging links are random strings, not
/// Twilio paths.
fn without_paging(body: Bytes) -> Bytes {
    match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(mut map)) if map.contains_key("next_page_uri") => {
            map.insert("next_page_uri".into(), Value::Null);
            Bytes::from(Value::Object(map).to_string())
        }
        _ => body,
    }
}

/// True when Prism's 500 is only about the spec's own example response.
fn only_response_violations(body: &[u8]) -> bool {
    let Ok(problem) = serde_json::from_slice::<Value>(body) else {
        return false;
    };
    let Some(violations) = problem.get("validation").and_then(Value::as_array) else {
        return false;
    };
    !violations.is_empty()
        && violations
            .iter()
            .all(|v| v.pointer("/location/0").and_then(Value::as_str) == Some("response"))
}

async fn forward(
    State(state): State<Arc<TapState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let upstream_body = if form.is_empty() {
        body.to_vec()
    } else {
        prism_form(&form, &state.array_fields).into_bytes()
    };
    let authorization = headers.get(axum::http::header::AUTHORIZATION).cloned();
    let mut record = TappedRequest {
        method: method.to_string(),
        path: path.clone(),
        form,
        had_basic_auth: authorization
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("Basic ")),
        status: 0,
    };
    let media = {
        let shared = state.shared.lock().unwrap_or_else(|p| p.into_inner());
        shared
            .media
            .iter()
            .find(|(fragment, _, _)| method == Method::GET && path.contains(fragment))
            .map(|(_, ct, bytes)| (*ct, bytes.clone()))
    };
    let (injected, canned) = {
        let mut shared = state.shared.lock().unwrap_or_else(|p| p.into_inner());
        let position = shared
            .injected
            .iter()
            .position(|i| path.contains(&i.path_contains));
        let canned = shared
            .canned
            .iter()
            .find(|(fragment, _)| path.contains(fragment))
            .map(|(_, body)| body.clone());
        (position.map(|i| shared.injected.remove(i)), canned)
    };
    let response = match (injected, media) {
        (None, Some((content_type, bytes))) => {
            record.status = 200;
            (
                StatusCode::OK,
                [(axum::http::header::CONTENT_TYPE, content_type)],
                bytes,
            )
                .into_response()
        }
        (injected, _) => match injected {
            Some(failure) => {
                record.status = failure.status;
                let status =
                    StatusCode::from_u16(failure.status).unwrap_or(StatusCode::BAD_REQUEST);
                (
                    status,
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    failure.body.to_string(),
                )
                    .into_response()
            }
            None => {
                let send = |dynamic: bool| {
                    let mut request = state
                        .http
                        .request(method.clone(), format!("{}{}", state.upstream, path))
                        .body(upstream_body.clone());
                    if let Some(ct) = headers.get(axum::http::header::CONTENT_TYPE) {
                        request = request.header(axum::http::header::CONTENT_TYPE, ct.clone());
                    }
                    if let Some(auth) = &authorization {
                        request = request.header(axum::http::header::AUTHORIZATION, auth.clone());
                    }
                    if dynamic {
                        request = request.header("Prefer", "dynamic=true");
                    }
                    async move {
                        let response = request.send().await?;
                        let status = response.status().as_u16();
                        let bytes = response.bytes().await?;
                        Ok::<_, reqwest::Error>((status, bytes))
                    }
                };
                let mut answer = send(false).await;
                let example_only_failed =
                    matches!(&answer, Ok((500, bytes)) if only_response_violations(bytes));
                match (&canned, example_only_failed) {
                    (Some(body), true) => answer = Ok((200, Bytes::from(body.to_string()))),
                    (Some(body), false) if matches!(&answer, Ok((s, _)) if (200..300).contains(s)) =>
                    {
                        answer = Ok((200, Bytes::from(body.to_string())));
                    }
                    (None, true) => {
                        answer = send(true)
                            .await
                            .map(|(status, bytes)| (status, without_paging(bytes)));
                    }
                    _ => {}
                }
                match answer {
                    Ok((status, bytes)) => {
                        record.status = status;
                        let status =
                            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
                        (
                            status,
                            [(axum::http::header::CONTENT_TYPE, "application/json")],
                            bytes,
                        )
                            .into_response()
                    }
                    Err(e) => {
                        record.status = 502;
                        (
                            StatusCode::BAD_GATEWAY,
                            format!("tap: upstream failed: {e}"),
                        )
                            .into_response()
                    }
                }
            }
        },
    };
    state
        .shared
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .requests
        .push(record);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_response_violations_are_retried() {
        let response_only =
            br#"{"status":500,"validation":[{"location":["response","body","uri"]}]}"#;
        let mixed = br#"{"validation":[{"location":["response","body"]},{"location":["body"]}]}"#;
        assert!(only_response_violations(response_only));
        assert!(!only_response_violations(mixed));
        assert!(!only_response_violations(b"{}"));
        assert!(!only_response_violations(b"not json"));
    }
}

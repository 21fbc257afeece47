//! The local HTTP API (`/api`): a thin door onto [`crate::services`], for integrations (a CRM's
//! click-to-call, scripts). Every route needs the API key; see [`crate::server::auth`].

use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use crate::realtime::session::SessionConfig;
use crate::server::auth::{key_matches, API_KEY_HEADER};
use crate::server::errors::ApiError;
use crate::services::Services;

/// Every `/api` route (method, path). The auth test walks this list; keep it in step with [`routes`].
pub const API_ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/calls/active"),
    ("GET", "/api/call/{sid}/status"),
    ("POST", "/api/call/{sid}/end"),
    ("GET", "/api/sessions"),
    ("GET", "/api/sessions/{id}/transcriptions"),
    ("GET", "/api/voices"),
    ("GET", "/api/models"),
    ("GET", "/api/tools"),
    ("GET", "/api/settings/session"),
    ("PUT", "/api/settings/session"),
    ("GET", "/api/events"),
    ("POST", "/api/call/outbound"),
    ("POST", "/api/call/{sid}/transfer"),
    ("GET", "/api/numbers"),
    ("GET", "/api/webhooks"),
    ("PUT", "/api/webhooks"),
    ("PUT", "/api/settings/public-url"),
    // Recordings (server/recordings_api.rs).
    ("GET", "/api/recordings"),
    ("GET", "/api/recording/{id}"),
    ("DELETE", "/api/recording/{id}"),
    ("GET", "/api/recording/{id}/audio"),
    ("GET", "/api/recording/{id}/peaks"),
    ("POST", "/api/recording/{id}/export"),
    ("GET", "/api/recording/{id}/export"),
    ("POST", "/api/recording/{id}/play"),
    ("GET", "/api/call/{sid}/recordings"),
    ("POST", "/api/call/{sid}/listen"),
    ("GET", "/api/playback"),
    ("POST", "/api/playback/pause"),
    ("POST", "/api/playback/seek"),
    ("POST", "/api/playback/channel"),
    ("POST", "/api/playback/stop"),
    ("POST", "/api/listen/mute"),
    ("POST", "/api/listen/stop"),
    ("GET", "/api/audio/devices"),
    ("POST", "/api/demo/call"),
    ("GET", "/api/settings/recording"),
    ("PUT", "/api/settings/recording"),
];

/// Largest request body `/api` accepts.
pub const API_BODY_LIMIT: usize = 64 * 1024;

type ApiResult<T> = Result<Json<T>, ApiError>;

/// Routes relative to `/api` (nested by [`crate::server::router`]).
pub fn routes() -> Router<Arc<Services>> {
    Router::new()
        .route("/calls/active", get(active_calls))
        .route("/call/{sid}/status", get(call_status))
        .route("/call/{sid}/end", post(end_call))
        .route("/sessions", get(sessions))
        .route("/sessions/{id}/transcriptions", get(transcriptions))
        .route("/voices", get(voices))
        .route("/models", get(models))
        .route("/tools", get(tools))
        .route("/settings/session", get(get_session).put(put_session))
        .route("/events", get(events))
        .route("/call/outbound", post(place_call))
        .route("/call/{sid}/transfer", post(transfer_call))
        .route("/numbers", get(numbers))
        .route("/webhooks", get(webhooks).put(choose_webhooks))
        .route("/settings/public-url", axum::routing::put(set_public_url))
        .merge(crate::server::recordings_api::routes())
        .route("/demo/call", post(demo_call))
        .fallback(not_found)
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such API route")
}

fn path(p: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(value) = p?;
    if value.is_empty()
        || value.len() > 64
        || !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_path",
            "ids are letters, digits, - and _",
        ));
    }
    Ok(value)
}

async fn active_calls(
    State(s): State<Arc<Services>>,
) -> ApiResult<Vec<crate::calls::registry::ActiveCall>> {
    Ok(Json(s.active_calls()))
}

async fn call_status(
    State(s): State<Arc<Services>>,
    sid: Result<Path<String>, PathRejection>,
) -> ApiResult<crate::services::CallStatus> {
    Ok(Json(s.call_status(&path(sid)?).await?))
}

async fn end_call(
    State(s): State<Arc<Services>>,
    sid: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    s.end_call(&path(sid)?).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({"status": "ending"})),
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Page {
    #[serde(default = "default_limit")]
    limit: u32,
    #[serde(default)]
    offset: u32,
}

fn default_limit() -> u32 {
    50
}

async fn sessions(
    State(s): State<Arc<Services>>,
    page: Result<Query<Page>, QueryRejection>,
) -> ApiResult<Vec<crate::store::CallRecord>> {
    let Query(page) = page?;
    Ok(Json(s.sessions(page.limit, page.offset).await?))
}

async fn transcriptions(
    State(s): State<Arc<Services>>,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult<Vec<crate::store::TranscriptRecord>> {
    Ok(Json(s.transcriptions(&path(id)?).await?))
}

async fn voices(State(s): State<Arc<Services>>) -> ApiResult<Vec<&'static str>> {
    Ok(Json(s.voices()))
}

async fn models(State(s): State<Arc<Services>>) -> ApiResult<Vec<&'static str>> {
    Ok(Json(s.models()))
}

async fn tools(State(s): State<Arc<Services>>) -> ApiResult<Vec<crate::services::ToolInfo>> {
    Ok(Json(s.tools()))
}

/// "Try a simulated call": the built-in simulators place one call through this core (202).
async fn demo_call(State(s): State<Arc<Services>>) -> Result<Response, ApiError> {
    let call = s.start_demo_call().await?;
    Ok((StatusCode::ACCEPTED, Json(call)).into_response())
}

async fn get_session(State(s): State<Arc<Services>>) -> ApiResult<SessionConfig> {
    Ok(Json(s.session_config()))
}

async fn put_session(
    State(s): State<Arc<Services>>,
    body: Result<Json<SessionConfig>, JsonRejection>,
) -> ApiResult<SessionConfig> {
    let Json(session) = body?;
    Ok(Json(s.update_session_config(session)?))
}

async fn place_call(
    State(s): State<Arc<Services>>,
    body: Result<Json<crate::services::outbound::OutboundRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(request) = body?;
    let placed = s.place_call(request).await?;
    Ok((StatusCode::CREATED, Json(placed)).into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TransferBody {
    #[serde(default)]
    to: Option<String>,
}

/// The body is optional (no body: the session's transfer number); a body that is there must be JSON
/// of the right shape, or the request fails instead of transferring to the wrong number.
async fn transfer_call(
    State(s): State<Arc<Services>>,
    sid: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    let sid = path(sid)?;
    let body = body.map_err(|r| {
        let status = r.status();
        let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "body_too_large"
        } else {
            "bad_request"
        };
        ApiError::new(status, code, r.body_text())
    })?;
    let to = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        if !is_json(&headers) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Expected request with `Content-Type: application/json`",
            ));
        }
        let Json(body) = Json::<TransferBody>::from_bytes(&body)?;
        body.to
    };
    let number = s.transfer_call(&sid, to.as_deref()).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({"status": "transferring", "to": number})),
    )
        .into_response())
}

/// `Content-Type: application/json` (parameters allowed) or a `+json` type, as axum's `Json` checks.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

async fn numbers(
    State(s): State<Arc<Services>>,
) -> ApiResult<Vec<crate::services::outbound::PhoneNumber>> {
    Ok(Json(s.phone_numbers().await?))
}

async fn webhooks(
    State(s): State<Arc<Services>>,
) -> ApiResult<crate::services::webhooks::WebhookSetup> {
    Ok(Json(s.webhook_setup().await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookChoice {
    /// `auto` or `manual`.
    mode: String,
    #[serde(default)]
    number_sid: Option<String>,
}

async fn choose_webhooks(
    State(s): State<Arc<Services>>,
    body: Result<Json<WebhookChoice>, JsonRejection>,
) -> ApiResult<crate::services::webhooks::WebhookSetup> {
    let Json(choice) = body?;
    let auto = match choice.mode.as_str() {
        "auto" => true,
        "manual" => false,
        other => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_value",
                format!("mode {other:?} is not \"auto\" or \"manual\""),
            ))
        }
    };
    Ok(Json(
        s.choose_webhook_mode(auto, choice.number_sid.as_deref())
            .await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PublicUrlBody {
    url: Option<String>,
}

async fn set_public_url(
    State(s): State<Arc<Services>>,
    body: Result<Json<PublicUrlBody>, JsonRejection>,
) -> ApiResult<serde_json::Value> {
    let Json(body) = body?;
    let url = s.set_public_url(body.url.as_deref())?;
    Ok(Json(serde_json::json!({"public_url": url})))
}

/// Live call events. Authenticated by the `X-API-Key` header, or by a first message
/// `{"type":"auth","api_key":"…"}` within 5 s (keeps the key out of URLs and logs).
async fn events(
    State(s): State<Arc<Services>>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let header_ok = headers
        .get(API_KEY_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|k| key_matches(s.config.api_key.expose(), k));
    upgrade
        .max_message_size(16 * 1024)
        .on_upgrade(move |socket| stream_events(s, socket, header_ok))
}

#[derive(Deserialize)]
struct AuthMessage {
    #[serde(rename = "type")]
    kind: String,
    api_key: String,
}

async fn stream_events(services: Arc<Services>, mut socket: WebSocket, mut authed: bool) {
    if !authed {
        let first = tokio::time::timeout(Duration::from_secs(5), socket.recv()).await;
        if let Ok(Some(Ok(Message::Text(text)))) = first {
            if let Ok(auth) = serde_json::from_str::<AuthMessage>(text.as_str()) {
                authed = auth.kind == "auth"
                    && key_matches(services.config.api_key.expose(), &auth.api_key);
            }
        }
    }
    if !authed {
        let _ = socket
            .send(Message::Close(Some(CloseFrame {
                code: 1008,
                reason: "invalid or missing API key".into(),
            })))
            .await;
        return;
    }
    let mut events = services.subscribe();
    if socket
        .send(Message::Text(r#"{"type":"ready"}"#.into()))
        .await
        .is_err()
    {
        return;
    }
    loop {
        tokio::select! {
            event = events.recv() => {
                let text = match event {
                    Ok(event) => serde_json::to_string(&event).unwrap_or_default(),
                    Err(RecvError::Lagged(n)) => serde_json::json!({"type": "lagged", "skipped": n}).to_string(),
                    Err(RecvError::Closed) => break,
                };
                if socket.send(Message::Text(text.into())).await.is_err() {
                    break;
                }
            }
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
        }
    }
}

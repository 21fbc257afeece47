//! The local HTTP API (`/api`): a thin door onto [`crate::services`], for integrations (a CRM's
//! click-to-call, scripts). Every route needs the API key; see [`crate::server::auth`].

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use crate::realtime::session::SessionConfig;
use crate::server::auth::{key_matches, API_KEY_HEADER};
use crate::server::errors::{ApiError, ApiResult};
use crate::server::extract::{ApiJson, ApiPath, ApiQuery, OptionalApiJson};
use crate::server::operator_api as op;
use crate::server::recordings_api as rec;
use crate::server::tools_api as tools;
use crate::services::{ServiceError, Services};
use crate::types::CallSid;

/// The one table of `/api` routes: `method "path" => handler`. It builds both [`routes`] and
/// [`API_ROUTES`], so the list the auth test walks cannot drift from the router.
macro_rules! api_routes {
    ($($method:ident $path:literal => $handler:path,)*) => {
        /// Every `/api` route (method, path), from the table that builds [`routes`].
        pub const API_ROUTES: &[(&str, &str)] = &[$((method_name!($method), concat!("/api", $path)),)*];

        fn table() -> Router<Arc<Services>> {
            Router::new()$(.route($path, axum::routing::$method($handler)))*
        }
    };
}

macro_rules! method_name {
    (get) => {
        "GET"
    };
    (post) => {
        "POST"
    };
    (put) => {
        "PUT"
    };
    (delete) => {
        "DELETE"
    };
}

api_routes! {
    get "/calls/active" => active_calls,
    get "/call/{sid}/status" => call_status,
    post "/call/{sid}/end" => end_call,
    get "/sessions" => sessions,
    get "/sessions/{id}/transcriptions" => transcriptions,
    get "/sessions/{id}/latency" => latency,
    get "/sessions/{id}/summary" => summary,
    post "/sessions/{id}/summary" => rerun_summary,
    get "/sessions/{id}/cost" => call_cost,
    get "/library/daily" => daily_stats,
    get "/prices" => get_prices,
    put "/prices" => put_prices,
    get "/budget" => get_budget,
    put "/budget" => put_budget,
    get "/metrics" => metrics,
    get "/voices" => voices,
    get "/models" => models,
    get "/tools" => tools,
    get "/settings/session" => get_session,
    put "/settings/session" => put_session,
    get "/events" => events,
    post "/call/outbound" => place_call,
    post "/call/{sid}/transfer" => transfer_call,
    get "/numbers" => numbers,
    get "/webhooks" => webhooks,
    put "/webhooks" => choose_webhooks,
    put "/settings/public-url" => set_public_url,
    post "/demo/call" => demo_call,
    // The operator in the loop (server/operator_api.rs).
    post "/call/{sid}/whisper" => op::whisper,
    post "/call/{sid}/takeover" => op::take_over,
    post "/call/{sid}/handback" => op::hand_back,
    get "/operator" => op::state,
    post "/operator/mute" => op::mute,
    get "/operator/microphone" => op::microphone,
    post "/operator/microphone" => op::prepare,
    delete "/operator/microphone" => op::close_microphone,
    get "/audio/inputs" => op::inputs,
    // Tools that do real work (server/tools_api.rs).
    post "/call/{sid}/tool/{call_id}/approve" => tools::approve,
    post "/call/{sid}/tool/{call_id}/decline" => tools::decline,
    get "/tools/pending" => tools::pending,
    get "/tools/{name}/secret" => tools::secret,
    get "/mcp/servers" => tools::mcp_servers,
    post "/mcp/servers/{name}/retry" => tools::mcp_retry,
    get "/sessions/{id}/tools" => tools::log,
    // Recordings (server/recordings_api.rs).
    get "/recordings" => rec::list,
    get "/recording/{id}" => rec::detail,
    delete "/recording/{id}" => rec::delete,
    get "/recording/{id}/audio" => rec::audio,
    get "/recording/{id}/peaks" => rec::peaks,
    post "/recording/{id}/export" => rec::export,
    get "/recording/{id}/export" => rec::suggested_export_path,
    post "/recording/{id}/play" => rec::play,
    get "/call/{sid}/recordings" => rec::for_call,
    post "/call/{sid}/listen" => rec::listen,
    get "/playback" => rec::playback,
    post "/playback/pause" => rec::pause,
    post "/playback/seek" => rec::seek,
    post "/playback/channel" => rec::channel,
    post "/playback/stop" => rec::stop,
    post "/listen/mute" => rec::mute,
    post "/listen/stop" => rec::listen_stop,
    get "/audio/devices" => rec::devices,
    get "/settings/recording" => rec::get_settings,
    put "/settings/recording" => rec::put_settings,
}

/// Largest request body `/api` accepts.
pub const API_BODY_LIMIT: usize = 64 * 1024;

/// Routes relative to `/api` (nested by [`crate::server::local_router`]).
pub fn routes() -> Router<Arc<Services>> {
    table().fallback(not_found)
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such API route")
}

async fn active_calls(
    State(s): State<Arc<Services>>,
) -> ApiResult<Vec<crate::calls::registry::ActiveCall>> {
    Ok(Json(s.active_calls()))
}

async fn call_status(
    State(s): State<Arc<Services>>,
    ApiPath(sid): ApiPath<CallSid>,
) -> ApiResult<crate::services::CallStatus> {
    Ok(Json(s.call_status(&sid).await?))
}

async fn end_call(
    State(s): State<Arc<Services>>,
    ApiPath(sid): ApiPath<CallSid>,
) -> Result<Response, ApiError> {
    s.end_call(&sid).await?;
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

/// A page's size when the query does not say.
pub(super) fn default_limit() -> u32 {
    50
}

async fn sessions(
    State(s): State<Arc<Services>>,
    ApiQuery(page): ApiQuery<Page>,
) -> ApiResult<Vec<crate::store::CallRecord>> {
    Ok(Json(s.sessions(page.limit, page.offset).await?))
}

async fn transcriptions(
    State(s): State<Arc<Services>>,
    ApiPath(sid): ApiPath<CallSid>,
) -> ApiResult<Vec<crate::store::TranscriptRecord>> {
    Ok(Json(s.transcriptions(&sid).await?))
}

/// `GET /api/metrics`: Prometheus text format (scrape with the API key in `X-API-Key`).
async fn metrics(State(s): State<Arc<Services>>) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics_text(),
    )
        .into_response()
}

async fn latency(
    State(s): State<Arc<Services>>,
    ApiPath(sid): ApiPath<CallSid>,
) -> ApiResult<crate::services::CallLatency> {
    Ok(Json(s.turn_latency(&sid).await?))
}

/// A call's post-call summary; 404 `not_found` when it has none (yet, or at all).
async fn summary(
    State(s): State<Arc<Services>>,
    ApiPath(sid): ApiPath<CallSid>,
) -> ApiResult<crate::store::summaries::SummaryRecord> {
    match s.call_summary(&sid).await? {
        Some(record) => Ok(Json(record)),
        None => Err(ServiceError::NoSummary(sid.to_string()).into()),
    }
}

/// Makes a call's summary again now; answers with the new one (whatever its status).
async fn rerun_summary(
    State(s): State<Arc<Services>>,
    ApiPath(sid): ApiPath<CallSid>,
) -> ApiResult<crate::store::summaries::SummaryRecord> {
    Ok(Json(s.rerun_summary(&sid).await?))
}

async fn call_cost(
    State(s): State<Arc<Services>>,
    ApiPath(sid): ApiPath<CallSid>,
) -> ApiResult<crate::store::costs::CallCostTotal> {
    Ok(Json(s.costs.call_cost(&sid).await?))
}

#[derive(serde::Deserialize)]
struct Days {
    #[serde(default = "fourteen")]
    days: u32,
}

fn fourteen() -> u32 {
    14
}

async fn daily_stats(
    State(s): State<Arc<Services>>,
    ApiQuery(q): ApiQuery<Days>,
) -> ApiResult<Vec<crate::store::costs::DayStats>> {
    Ok(Json(s.costs.daily(q.days).await?))
}

async fn get_prices(State(s): State<Arc<Services>>) -> ApiResult<crate::costs::prices::PriceTable> {
    Ok(Json(s.costs.prices()))
}

async fn put_prices(
    State(s): State<Arc<Services>>,
    ApiJson(table): ApiJson<crate::costs::prices::PriceTable>,
) -> ApiResult<crate::costs::prices::PriceTable> {
    Ok(Json(s.costs.set_prices(table).await?))
}

async fn get_budget(
    State(s): State<Arc<Services>>,
) -> ApiResult<crate::services::costs::BudgetView> {
    Ok(Json(s.costs.budget()))
}

async fn put_budget(
    State(s): State<Arc<Services>>,
    ApiJson(budget): ApiJson<crate::costs::budget::Budget>,
) -> ApiResult<crate::services::costs::BudgetView> {
    Ok(Json(s.costs.set_budget(budget).await?))
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
    ApiJson(session): ApiJson<SessionConfig>,
) -> ApiResult<SessionConfig> {
    Ok(Json(s.update_session_config(session)?))
}

async fn place_call(
    State(s): State<Arc<Services>>,
    ApiJson(request): ApiJson<crate::services::outbound::OutboundRequest>,
) -> Result<Response, ApiError> {
    let placed = s.outbound.place_call(request).await?;
    Ok((StatusCode::CREATED, Json(placed)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TransferBody {
    #[serde(default)]
    to: Option<String>,
}

/// The body is optional (no body: the session's transfer number); a body that is there must be JSON
/// of the right shape, or the request fails instead of transferring to the wrong number.
async fn transfer_call(
    State(s): State<Arc<Services>>,
    ApiPath(sid): ApiPath<CallSid>,
    OptionalApiJson(body): OptionalApiJson<TransferBody>,
) -> Result<Response, ApiError> {
    let to = body.and_then(|b| b.to);
    let number = s.outbound.transfer_call(&sid, to.as_deref()).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({"status": "transferring", "to": number})),
    )
        .into_response())
}

async fn numbers(
    State(s): State<Arc<Services>>,
) -> ApiResult<Vec<crate::services::outbound::PhoneNumber>> {
    Ok(Json(s.outbound.phone_numbers().await?))
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
    ApiJson(choice): ApiJson<WebhookChoice>,
) -> ApiResult<crate::services::webhooks::WebhookSetup> {
    let auto = match choice.mode.as_str() {
        "auto" => true,
        "manual" => false,
        other => {
            return Err(ServiceError::Invalid(format!(
                "mode {other:?} is not \"auto\" or \"manual\""
            ))
            .into())
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
    ApiJson(body): ApiJson<PublicUrlBody>,
) -> ApiResult<serde_json::Value> {
    let url = s.set_public_url(body.url.as_deref())?;
    Ok(Json(serde_json::json!({"public_url": url})))
}

/// The largest frame or message a client may send on `/api/events`.
const EVENTS_FRAME_LIMIT: usize = 4 * 1024;

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
    // Applied from the first frame, before the key is checked: a client only ever sends the auth message
    // (under 200 bytes with a 64-character key), pings and a close, so 4 KiB is a wide margin, and a
    // larger frame closes the socket as soon as its header announces it (tungstenite's default frame
    // limit, 16 MiB, would be reserved for anyone who connects).
    upgrade
        .read_buffer_size(EVENTS_FRAME_LIMIT)
        .max_message_size(EVENTS_FRAME_LIMIT)
        .max_frame_size(EVENTS_FRAME_LIMIT)
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

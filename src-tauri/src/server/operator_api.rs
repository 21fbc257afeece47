//! `/api` routes of the operator in the loop: whisper to the agent, take a call over with the
//! microphone, hand it back. Thin: everything is in [`crate::services::operator`].

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use crate::server::errors::{ApiError, ApiResult};
use crate::server::extract::{ApiJson, ApiPath, OptionalApiJson};
use crate::services::operator::{MicrophoneState, OperatorState};
use crate::services::Services;
use crate::types::CallSid;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WhisperBody {
    text: String,
    #[serde(default)]
    say_now: bool,
}

/// `POST /api/call/{sid}/whisper {"text", "say_now"}`: 202 once the call took it.
pub(super) async fn whisper(
    State(s): State<Arc<Services>>,
    ApiPath(sid): ApiPath<CallSid>,
    ApiJson(body): ApiJson<WhisperBody>,
) -> Result<Response, ApiError> {
    s.operator.whisper(&sid, &body.text, body.say_now).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({"status": "whispered"})),
    )
        .into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct TakeOverBody {
    #[serde(default)]
    device: Option<String>,
}

/// `POST /api/call/{sid}/takeover {"device": null}` (the body may be empty: the default microphone).
pub(super) async fn take_over(
    State(s): State<Arc<Services>>,
    ApiPath(sid): ApiPath<CallSid>,
    OptionalApiJson(body): OptionalApiJson<TakeOverBody>,
) -> ApiResult<OperatorState> {
    let device = body.unwrap_or_default().device;
    Ok(Json(s.operator.take_over(&sid, device.as_deref()).await?))
}

/// `POST /api/call/{sid}/handback`.
pub(super) async fn hand_back(
    State(s): State<Arc<Services>>,
    ApiPath(sid): ApiPath<CallSid>,
) -> Result<Response, ApiError> {
    s.operator.hand_back(&sid).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({"status": "handed_back"})),
    )
        .into_response())
}

/// `GET /api/operator`: the operator's hold (`null` when they hold no call).
pub(super) async fn state(State(s): State<Arc<Services>>) -> ApiResult<Option<OperatorState>> {
    Ok(Json(s.operator.state()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MuteBody {
    muted: bool,
}

/// `POST /api/operator/mute {"muted"}`: push-to-talk.
pub(super) async fn mute(
    State(s): State<Arc<Services>>,
    ApiJson(body): ApiJson<MuteBody>,
) -> ApiResult<OperatorState> {
    Ok(Json(s.operator.set_muted(body.muted)?))
}

/// `POST /api/operator/microphone {"device": null}`: opens the microphone ahead of a take-over (it
/// stays open two minutes), so taking over does not wait for the device.
pub(super) async fn prepare(
    State(s): State<Arc<Services>>,
    OptionalApiJson(body): OptionalApiJson<TakeOverBody>,
) -> ApiResult<MicrophoneState> {
    let device = body.unwrap_or_default().device;
    Ok(Json(s.operator.prepare(device.as_deref()).await?))
}

/// `GET /api/operator/microphone`: the open microphone (`null` when none is open).
pub(super) async fn microphone(
    State(s): State<Arc<Services>>,
) -> ApiResult<Option<MicrophoneState>> {
    Ok(Json(s.operator.microphone()))
}

/// `DELETE /api/operator/microphone`: closes it (not while a call is held).
pub(super) async fn close_microphone(State(s): State<Arc<Services>>) -> StatusCode {
    s.operator.close_microphone();
    StatusCode::NO_CONTENT
}

/// `GET /api/audio/inputs`: the microphones, default first.
pub(super) async fn inputs(State(s): State<Arc<Services>>) -> ApiResult<Vec<String>> {
    Ok(Json(s.operator.input_devices().await))
}

//! Twilio's recording-status callback (`POST /twilio/recording-status`): when a cloud recording of a
//! call (`Record=true`, `RecordingChannels=dual`) is ready, Twilio posts here; the signed request
//! starts the download into the library in the background and Twilio gets its answer at once.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use tracing::warn;

use crate::recording::library::RecordingStatus;
use crate::server::public_url;
use crate::server::twilio::{check_signature, Signed};
use crate::services::Services;

/// Give this (under the public URL) as `RecordingStatusCallback` when creating a call.
pub const PATH: &str = "/twilio/recording-status";

/// The `RecordingStatusCallback` for a public base URL (`https://public.host`, no trailing slash).
pub fn callback_url(public_base: &str) -> String {
    format!("{}{PATH}", public_base.trim_end_matches('/'))
}

pub async fn recording_status(
    State(services): State<Arc<Services>>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    // The live public URL (a tunnel's, or one set at run time), as every other Twilio route uses.
    let public = services.public_url();
    let url = public_url::webhook_url(public.as_deref(), &headers, &uri);
    let params: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    if let Err(reason) = check_signature(
        &services,
        &headers,
        &url,
        Signed::Form(&params),
        "recording status callback",
    ) {
        return crate::server::errors::ApiError::new(StatusCode::FORBIDDEN, "forbidden", reason)
            .into_response();
    }
    let map: serde_json::Map<String, serde_json::Value> = params
        .into_iter()
        .map(|(k, v)| (k, serde_json::Value::String(v)))
        .collect();
    let status: RecordingStatus = match serde_json::from_value(serde_json::Value::Object(map)) {
        Ok(s) => s,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("missing recording fields: {e}"),
            )
                .into_response()
        }
    };
    let library = services.recordings.clone();
    tokio::spawn(async move {
        let call_sid = status.call_sid.clone();
        if let Err(e) = library.twilio_recording_ready(status).await {
            warn!(%call_sid, "Twilio recording not saved: {e}");
        }
    });
    StatusCode::NO_CONTENT.into_response()
}

//! Twilio's recording-status callback (`POST /twilio/recording-status`): when a cloud recording of a
//! call (`Record=true`, `RecordingChannels=dual`) is ready, Twilio posts here; the signed request
//! starts the download into the library in the background and Twilio gets its answer at once.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use tracing::warn;

use crate::server::twilio::{bad_request, signed_form};
use crate::services::Services;
use crate::telephony::twilio::callbacks::RecordingStatusCallback;

pub async fn recording_status(
    State(services): State<Arc<Services>>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    // Checked against the live public URL (a tunnel's, or one set at run time), as every Twilio route is.
    let form = match signed_form(
        &services,
        &headers,
        &uri,
        &body,
        "recording status callback",
    ) {
        Ok(form) => form,
        Err(refusal) => return *refusal,
    };
    let status = match RecordingStatusCallback::from_form(&form) {
        Ok(callback) => crate::recording::library::RecordingStatus::from(callback),
        Err(e) => return bad_request(e),
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

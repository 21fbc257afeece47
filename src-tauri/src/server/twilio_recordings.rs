//! Twilio's recording-status callback (`POST /twilio/recording-status`): when a cloud recording of a
//! call (`Record=true`, `RecordingChannels=dual`) is ready, Twilio posts here; the signed request
//! starts the download into the library in the background and Twilio gets its answer at once.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tracing::warn;

use crate::recording::library::RecordingStatus;
use crate::server::twilio::Webhook;
use crate::services::Services;
use crate::telephony::twilio::callbacks::RecordingStatusCallback;

/// Checked against the live public URL (a tunnel's, or one set at run time), as every Twilio route is.
pub(super) async fn recording_status(
    State(services): State<Arc<Services>>,
    Webhook(callback): Webhook<RecordingStatusCallback>,
) -> Response {
    let status = RecordingStatus::from(callback);
    let library = services.recordings.clone();
    tokio::spawn(async move {
        let call_sid = status.call_sid.clone();
        if let Err(e) = library.twilio_recording_ready(status).await {
            warn!(%call_sid, "Twilio recording not saved: {e}");
        }
    });
    StatusCode::NO_CONTENT.into_response()
}

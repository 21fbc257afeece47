//! `/api` routes for recordings: the library, audio streaming with ranges, waveform, export, delete,
//! playback through the speakers and live listen-in. Thin: everything is in [`crate::recording::Library`].

use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::recording::library::{RecordingDetail, RecordingSettings};
use crate::recording::listen_in::ListenState;
use crate::recording::peaks::Peaks;
use crate::recording::playback::{ChannelChoice, PlaybackState};
use crate::recording::wav_writer::Side;
use crate::recording::LibraryError;
use crate::server::errors::ApiError;
use crate::server::range::{self, RangeRequest};
use crate::services::Services;
use crate::store::recordings::RecordingRecord;

type ApiResult<T> = Result<Json<T>, ApiError>;

pub fn routes() -> Router<Arc<Services>> {
    Router::new()
        .route("/recordings", get(list))
        .route("/recording/{id}", get(detail).delete(delete))
        .route("/recording/{id}/audio", get(audio))
        .route("/recording/{id}/peaks", get(peaks))
        .route(
            "/recording/{id}/export",
            post(export).get(suggested_export_path),
        )
        .route("/recording/{id}/play", post(play))
        .route("/call/{sid}/recordings", get(for_call))
        .route("/call/{sid}/listen", post(listen))
        .route("/playback", get(playback))
        .route("/playback/pause", post(pause))
        .route("/playback/seek", post(seek))
        .route("/playback/channel", post(channel))
        .route("/playback/stop", post(stop))
        .route("/listen/mute", post(mute))
        .route("/listen/stop", post(listen_stop))
        .route("/audio/devices", get(devices))
        .route("/settings/recording", get(get_settings).put(put_settings))
}

async fn get_settings(State(s): State<Arc<Services>>) -> ApiResult<RecordingSettings> {
    Ok(Json(s.recordings.settings()))
}

async fn put_settings(
    State(s): State<Arc<Services>>,
    body: Result<Json<RecordingSettings>, JsonRejection>,
) -> ApiResult<RecordingSettings> {
    let Json(body) = body?;
    Ok(Json(s.recordings.set_settings(body).await?))
}

impl From<LibraryError> for ApiError {
    fn from(e: LibraryError) -> Self {
        use crate::recording::listen_in::ListenError;
        use crate::recording::playback::PlaybackError;
        let (status, code) = match &e {
            LibraryError::NotFound(_) | LibraryError::UnknownCall(_) => {
                (StatusCode::NOT_FOUND, "not_found")
            }
            LibraryError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_value"),
            LibraryError::File(_) | LibraryError::Playback(PlaybackError::File(_)) => {
                (StatusCode::CONFLICT, "recording_unreadable")
            }
            LibraryError::Playback(PlaybackError::Speaker(_))
            | LibraryError::Listen(ListenError::Speaker(_)) => {
                (StatusCode::SERVICE_UNAVAILABLE, "no_audio_device")
            }
            LibraryError::Playback(PlaybackError::NotPlaying)
            | LibraryError::Listen(ListenError::NotListening) => (StatusCode::CONFLICT, "idle"),
            LibraryError::Listen(ListenError::NotLive(_)) => (StatusCode::CONFLICT, "not_live"),
            LibraryError::Cloud(_) => (StatusCode::BAD_GATEWAY, "twilio"),
            LibraryError::StillRecording(_) => (StatusCode::CONFLICT, "still_recording"),
            LibraryError::Export(_) => (StatusCode::CONFLICT, "file_error"),
            LibraryError::Store(_) => {
                tracing::error!("library error: {e}");
                return ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "the call library failed",
                );
            }
        };
        ApiError::new(status, code, e.to_string())
    }
}

fn id(p: Result<Path<String>, PathRejection>) -> Result<i64, ApiError> {
    let Path(value) = p?;
    value.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_path",
            "ids are positive numbers",
        )
    })
}

fn sid(p: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(value) = p?;
    if value.is_empty() || value.len() > 64 || !value.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_path",
            "SIDs are letters and digits",
        ));
    }
    Ok(value)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[serde(default = "default_limit")]
    limit: u32,
    #[serde(default)]
    offset: u32,
    /// Words the call's transcript must contain.
    #[serde(default)]
    q: Option<String>,
}

fn default_limit() -> u32 {
    50
}

async fn list(
    State(s): State<Arc<Services>>,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult<Vec<RecordingRecord>> {
    let Query(q) = q?;
    Ok(Json(s.recordings.list(q.q, q.limit, q.offset).await?))
}

async fn detail(
    State(s): State<Arc<Services>>,
    p: Result<Path<String>, PathRejection>,
) -> ApiResult<RecordingDetail> {
    Ok(Json(s.recordings.get(id(p)?).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteQuery {
    /// Also delete Twilio's copy.
    #[serde(default)]
    twilio: bool,
}

async fn delete(
    State(s): State<Arc<Services>>,
    p: Result<Path<String>, PathRejection>,
    q: Result<Query<DeleteQuery>, QueryRejection>,
) -> Result<StatusCode, ApiError> {
    let Query(q) = q?;
    s.recordings.delete(id(p)?, q.twilio).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The WAV, streamed; `Range: bytes=…` gets 206 with just that part.
async fn audio(
    State(s): State<Arc<Services>>,
    p: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (path, _) = s.recordings.audio_file(id(p)?).await?;
    let io_err = |e: std::io::Error| LibraryError::Export(e);
    let mut file = tokio::fs::File::open(&path).await.map_err(io_err)?;
    let size = file.metadata().await.map_err(io_err)?.len();
    let wanted = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let (status, start, len, content_range) = match range::parse(wanted, size) {
        RangeRequest::Full => (StatusCode::OK, 0, size, None),
        RangeRequest::Part(r) => (
            StatusCode::PARTIAL_CONTENT,
            r.start,
            r.byte_count(),
            Some(format!("bytes {}-{}/{size}", r.start, r.end)),
        ),
        RangeRequest::Unsatisfiable => {
            return Ok((
                StatusCode::RANGE_NOT_SATISFIABLE,
                [(header::CONTENT_RANGE, format!("bytes */{size}"))],
            )
                .into_response())
        }
    };
    file.seek(std::io::SeekFrom::Start(start))
        .await
        .map_err(io_err)?;
    let body = Body::from_stream(futures_util::stream::unfold(
        (file.take(len), vec![0u8; 64 * 1024]),
        |(mut reader, mut buf)| async move {
            match reader.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => Some((
                    Ok::<_, std::io::Error>(axum::body::Bytes::copy_from_slice(&buf[..n])),
                    (reader, buf),
                )),
                Err(e) => Some((Err(e), (reader, buf))),
            }
        },
    ));
    let mut response = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "audio/wav")
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CONTENT_LENGTH, len);
    if let Some(cr) = content_range {
        response = response.header(header::CONTENT_RANGE, cr);
    }
    response
        .body(body)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PeaksQuery {
    #[serde(default = "default_buckets")]
    buckets: u32,
}

fn default_buckets() -> u32 {
    500
}

async fn peaks(
    State(s): State<Arc<Services>>,
    p: Result<Path<String>, PathRejection>,
    q: Result<Query<PeaksQuery>, QueryRejection>,
) -> ApiResult<Peaks> {
    let Query(q) = q?;
    Ok(Json(s.recordings.peaks(id(p)?, q.buckets).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportBody {
    path: std::path::PathBuf,
}

async fn export(
    State(s): State<Arc<Services>>,
    p: Result<Path<String>, PathRejection>,
    body: Result<Json<ExportBody>, JsonRejection>,
) -> ApiResult<serde_json::Value> {
    let Json(body) = body?;
    let bytes = s.recordings.export(id(p)?, &body.path).await?;
    Ok(Json(serde_json::json!({"bytes": bytes})))
}

/// Where an export goes unless the user picks another place (`{"path": null}` without a home folder).
async fn suggested_export_path(
    State(s): State<Arc<Services>>,
    p: Result<Path<String>, PathRejection>,
) -> ApiResult<serde_json::Value> {
    let path = s.recordings.suggested_export_path(id(p)?).await?;
    Ok(Json(serde_json::json!({ "path": path })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PlayBody {
    #[serde(default)]
    device: Option<String>,
    #[serde(default)]
    channel: ChannelChoice,
}

async fn play(
    State(s): State<Arc<Services>>,
    p: Result<Path<String>, PathRejection>,
    body: Result<Json<PlayBody>, JsonRejection>,
) -> ApiResult<PlaybackState> {
    let Json(body) = body?;
    Ok(Json(
        s.recordings
            .play(id(p)?, body.device.as_deref(), body.channel)
            .await?,
    ))
}

async fn for_call(
    State(s): State<Arc<Services>>,
    p: Result<Path<String>, PathRejection>,
) -> ApiResult<Vec<RecordingRecord>> {
    Ok(Json(s.recordings.for_call(&sid(p)?).await?))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ListenBody {
    #[serde(default)]
    device: Option<String>,
}

async fn listen(
    State(s): State<Arc<Services>>,
    p: Result<Path<String>, PathRejection>,
    body: Result<Json<ListenBody>, JsonRejection>,
) -> ApiResult<ListenState> {
    let Json(body) = body?;
    Ok(Json(
        s.recordings
            .listen_in(&sid(p)?, body.device.as_deref())
            .await?,
    ))
}

async fn playback(State(s): State<Arc<Services>>) -> ApiResult<Option<PlaybackState>> {
    Ok(Json(s.recordings.playback()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PauseBody {
    paused: bool,
}

async fn pause(
    State(s): State<Arc<Services>>,
    body: Result<Json<PauseBody>, JsonRejection>,
) -> ApiResult<PlaybackState> {
    let Json(body) = body?;
    Ok(Json(s.recordings.pause(body.paused)?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeekBody {
    position_ms: u64,
}

async fn seek(
    State(s): State<Arc<Services>>,
    body: Result<Json<SeekBody>, JsonRejection>,
) -> ApiResult<PlaybackState> {
    let Json(body) = body?;
    Ok(Json(s.recordings.seek(body.position_ms)?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChannelBody {
    channel: ChannelChoice,
}

async fn channel(
    State(s): State<Arc<Services>>,
    body: Result<Json<ChannelBody>, JsonRejection>,
) -> ApiResult<PlaybackState> {
    let Json(body) = body?;
    Ok(Json(s.recordings.set_channel(body.channel)?))
}

async fn stop(State(s): State<Arc<Services>>) -> Result<StatusCode, ApiError> {
    s.recordings.stop().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum SideName {
    Caller,
    Agent,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MuteBody {
    side: SideName,
    muted: bool,
}

async fn mute(
    State(s): State<Arc<Services>>,
    body: Result<Json<MuteBody>, JsonRejection>,
) -> ApiResult<ListenState> {
    let Json(body) = body?;
    let side = match body.side {
        SideName::Caller => Side::Caller,
        SideName::Agent => Side::Agent,
    };
    Ok(Json(s.recordings.listen_mute(side, body.muted)?))
}

async fn listen_stop(State(s): State<Arc<Services>>) -> Result<StatusCode, ApiError> {
    s.recordings.listen_stop().await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn devices(State(s): State<Arc<Services>>) -> ApiResult<Vec<String>> {
    Ok(Json(s.recordings.output_devices().await?))
}

//! `/api` handlers for recordings (routed by [`crate::server::api`]'s table): the library, audio streaming
//! with ranges, waveform, export, delete,
//! playback through the speakers and live listen-in. Thin: everything is in [`crate::recording::Library`].

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::recording::library::{RecordingDetail, RecordingSettings};
use crate::recording::listen_in::ListenState;
use crate::recording::peaks::Peaks;
use crate::recording::playback::{ChannelChoice, PlaybackState};
use crate::recording::wav_writer::Side;
use crate::recording::LibraryError;
use crate::server::api::default_limit;
use crate::server::errors::{ApiError, ApiResult};
use crate::server::extract::{ApiJson, ApiPath, ApiQuery, RecordingId};
use crate::server::range::{self, RangeRequest};
use crate::services::{ErrorKind, Services};
use crate::store::recordings::RecordingRecord;
use crate::types::CallSid;

pub(super) async fn get_settings(State(s): State<Arc<Services>>) -> ApiResult<RecordingSettings> {
    Ok(Json(s.recordings.settings()))
}

pub(super) async fn put_settings(
    State(s): State<Arc<Services>>,
    ApiJson(body): ApiJson<RecordingSettings>,
) -> ApiResult<RecordingSettings> {
    Ok(Json(s.recordings.set_settings(body).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    #[serde(default = "default_limit")]
    limit: u32,
    #[serde(default)]
    offset: u32,
    /// Words the call's transcript must contain.
    #[serde(default)]
    q: Option<String>,
}

pub(super) async fn list(
    State(s): State<Arc<Services>>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Vec<crate::recording::library::RecordingItem>> {
    Ok(Json(s.recordings.list(q.q, q.limit, q.offset).await?))
}

pub(super) async fn detail(
    State(s): State<Arc<Services>>,
    ApiPath(RecordingId(id)): ApiPath<RecordingId>,
) -> ApiResult<RecordingDetail> {
    Ok(Json(s.recordings.get(id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DeleteQuery {
    /// Also delete Twilio's copy.
    #[serde(default)]
    twilio: bool,
}

pub(super) async fn delete(
    State(s): State<Arc<Services>>,
    ApiPath(RecordingId(id)): ApiPath<RecordingId>,
    ApiQuery(q): ApiQuery<DeleteQuery>,
) -> Result<StatusCode, ApiError> {
    s.recordings.delete(id, q.twilio).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The WAV, streamed; `Range: bytes=…` gets 206 with just that part.
pub(super) async fn audio(
    State(s): State<Arc<Services>>,
    ApiPath(RecordingId(id)): ApiPath<RecordingId>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (path, _) = s.recordings.audio_file(id).await?;
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
    response.body(body).map_err(|e| {
        let internal = ErrorKind::Internal;
        ApiError::new(internal.status(), internal.code(), e.to_string())
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PeaksQuery {
    #[serde(default = "default_buckets")]
    buckets: u32,
}

fn default_buckets() -> u32 {
    500
}

pub(super) async fn peaks(
    State(s): State<Arc<Services>>,
    ApiPath(RecordingId(id)): ApiPath<RecordingId>,
    ApiQuery(q): ApiQuery<PeaksQuery>,
) -> ApiResult<Peaks> {
    Ok(Json(s.recordings.peaks(id, q.buckets).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ExportBody {
    path: std::path::PathBuf,
}

pub(super) async fn export(
    State(s): State<Arc<Services>>,
    ApiPath(RecordingId(id)): ApiPath<RecordingId>,
    ApiJson(body): ApiJson<ExportBody>,
) -> ApiResult<serde_json::Value> {
    let bytes = s.recordings.export(id, &body.path).await?;
    Ok(Json(serde_json::json!({"bytes": bytes})))
}

/// Where an export goes unless the user picks another place (`{"path": null}` without a home folder).
pub(super) async fn suggested_export_path(
    State(s): State<Arc<Services>>,
    ApiPath(RecordingId(id)): ApiPath<RecordingId>,
) -> ApiResult<serde_json::Value> {
    let path = s.recordings.suggested_export_path(id).await?;
    Ok(Json(serde_json::json!({ "path": path })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct PlayBody {
    #[serde(default)]
    device: Option<String>,
    #[serde(default)]
    channel: ChannelChoice,
}

pub(super) async fn play(
    State(s): State<Arc<Services>>,
    ApiPath(RecordingId(id)): ApiPath<RecordingId>,
    ApiJson(body): ApiJson<PlayBody>,
) -> ApiResult<PlaybackState> {
    Ok(Json(
        s.recordings
            .play(id, body.device.as_deref(), body.channel)
            .await?,
    ))
}

pub(super) async fn for_call(
    State(s): State<Arc<Services>>,
    ApiPath(sid): ApiPath<CallSid>,
) -> ApiResult<Vec<RecordingRecord>> {
    Ok(Json(s.recordings.for_call(&sid).await?))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct ListenBody {
    #[serde(default)]
    device: Option<String>,
}

pub(super) async fn listen(
    State(s): State<Arc<Services>>,
    ApiPath(sid): ApiPath<CallSid>,
    ApiJson(body): ApiJson<ListenBody>,
) -> ApiResult<ListenState> {
    Ok(Json(
        s.recordings.listen_in(&sid, body.device.as_deref()).await?,
    ))
}

pub(super) async fn playback(State(s): State<Arc<Services>>) -> ApiResult<Option<PlaybackState>> {
    Ok(Json(s.recordings.playback()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PauseBody {
    paused: bool,
}

pub(super) async fn pause(
    State(s): State<Arc<Services>>,
    ApiJson(body): ApiJson<PauseBody>,
) -> ApiResult<PlaybackState> {
    Ok(Json(s.recordings.pause(body.paused)?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SeekBody {
    position_ms: u64,
}

pub(super) async fn seek(
    State(s): State<Arc<Services>>,
    ApiJson(body): ApiJson<SeekBody>,
) -> ApiResult<PlaybackState> {
    Ok(Json(s.recordings.seek(body.position_ms)?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ChannelBody {
    channel: ChannelChoice,
}

pub(super) async fn channel(
    State(s): State<Arc<Services>>,
    ApiJson(body): ApiJson<ChannelBody>,
) -> ApiResult<PlaybackState> {
    Ok(Json(s.recordings.set_channel(body.channel)?))
}

pub(super) async fn stop(State(s): State<Arc<Services>>) -> Result<StatusCode, ApiError> {
    s.recordings.stop().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum SideName {
    Caller,
    Agent,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MuteBody {
    side: SideName,
    muted: bool,
}

pub(super) async fn mute(
    State(s): State<Arc<Services>>,
    ApiJson(body): ApiJson<MuteBody>,
) -> ApiResult<ListenState> {
    let side = match body.side {
        SideName::Caller => Side::Caller,
        SideName::Agent => Side::Agent,
    };
    Ok(Json(s.recordings.listen_mute(side, body.muted)?))
}

pub(super) async fn listen_stop(State(s): State<Arc<Services>>) -> Result<StatusCode, ApiError> {
    s.recordings.listen_stop().await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn devices(State(s): State<Arc<Services>>) -> ApiResult<Vec<String>> {
    Ok(Json(s.recordings.output_devices().await?))
}

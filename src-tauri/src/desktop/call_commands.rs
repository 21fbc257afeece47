//! Tauri commands for placing calls (issue 4) and for the recordings library, playback and listen-in
//! (issue 5): one line each into [`Services`](crate::services::Services) and its
//! [`Library`](crate::recording::Library), the same services `/api` calls. No logic lives here.

use std::path::PathBuf;

use tauri::State;

use super::commands::Res;
use super::Core;
use crate::recording::library::RecordingDetail;
use crate::recording::listen_in::ListenState;
use crate::recording::peaks::Peaks;
use crate::recording::playback::{ChannelChoice, PlaybackState};
use crate::recording::wav_writer::Side;
use crate::services::outbound::{OutboundRequest, PhoneNumber, PlacedCall};
use crate::services::webhooks::WebhookSetup;
use crate::store::recordings::RecordingRecord;
use crate::types::CallSid;

// ---- Calls the app places -----------------------------------------------------------------

#[tauri::command]
pub async fn place_call(core: State<'_, Core>, request: OutboundRequest) -> Res<PlacedCall> {
    Ok(core.services().await?.outbound.place_call(request).await?)
}

#[tauri::command]
pub async fn phone_numbers(core: State<'_, Core>) -> Res<Vec<PhoneNumber>> {
    Ok(core.services().await?.outbound.phone_numbers().await?)
}

/// Hands a live call to a person (`to`, or the session's transfer number); returns the number dialled.
#[tauri::command]
pub async fn transfer_call(
    core: State<'_, Core>,
    call_sid: CallSid,
    to: Option<String>,
) -> Res<String> {
    Ok(core
        .services()
        .await?
        .outbound
        .transfer_call(&call_sid, to.as_deref())
        .await?)
}

#[tauri::command]
pub async fn webhook_setup(core: State<'_, Core>) -> Res<WebhookSetup> {
    Ok(core.services().await?.webhook_setup().await?)
}

/// The one-time question: point `number_sid` at the app now and on every start (`auto`), or not.
#[tauri::command]
pub async fn choose_webhook_mode(
    core: State<'_, Core>,
    auto: bool,
    number_sid: Option<String>,
) -> Res<WebhookSetup> {
    Ok(core
        .services()
        .await?
        .choose_webhook_mode(auto, number_sid.as_deref())
        .await?)
}

// ---- Recordings ----------------------------------------------------------------------------

#[tauri::command]
pub async fn recordings(
    core: State<'_, Core>,
    q: Option<String>,
    limit: u32,
    offset: u32,
) -> Res<Vec<crate::recording::library::RecordingItem>> {
    Ok(core
        .services()
        .await?
        .recordings
        .list(q, limit, offset)
        .await?)
}

#[tauri::command]
pub async fn recording(core: State<'_, Core>, id: i64) -> Res<RecordingDetail> {
    Ok(core.services().await?.recordings.get(id).await?)
}

#[tauri::command]
pub async fn call_recordings(
    core: State<'_, Core>,
    call_sid: CallSid,
) -> Res<Vec<RecordingRecord>> {
    Ok(core
        .services()
        .await?
        .recordings
        .for_call(&call_sid)
        .await?)
}

#[tauri::command]
pub async fn recording_peaks(core: State<'_, Core>, id: i64, buckets: u32) -> Res<Peaks> {
    Ok(core.services().await?.recordings.peaks(id, buckets).await?)
}

#[tauri::command]
pub async fn delete_recording(core: State<'_, Core>, id: i64, delete_twilio: bool) -> Res<()> {
    Ok(core
        .services()
        .await?
        .recordings
        .delete(id, delete_twilio)
        .await?)
}

/// Copies a recording to `path` (absolute, `.wav`); returns the bytes written.
#[tauri::command]
pub async fn export_recording(core: State<'_, Core>, id: i64, path: PathBuf) -> Res<u64> {
    Ok(core.services().await?.recordings.export(id, &path).await?)
}

/// Where an export goes unless the user picks another place (`None` without a home folder).
#[tauri::command]
pub async fn suggested_export_path(core: State<'_, Core>, id: i64) -> Res<Option<PathBuf>> {
    Ok(core
        .services()
        .await?
        .recordings
        .suggested_export_path(id)
        .await?)
}

// ---- Through the speakers ------------------------------------------------------------------

#[tauri::command]
pub async fn playback_play(
    core: State<'_, Core>,
    id: i64,
    channel: ChannelChoice,
    device: Option<String>,
) -> Res<PlaybackState> {
    Ok(core
        .services()
        .await?
        .recordings
        .play(id, device.as_deref(), channel)
        .await?)
}

#[tauri::command]
pub async fn playback_pause(core: State<'_, Core>, paused: bool) -> Res<PlaybackState> {
    Ok(core.services().await?.recordings.pause(paused)?)
}

#[tauri::command]
pub async fn playback_seek(core: State<'_, Core>, position_ms: u64) -> Res<PlaybackState> {
    Ok(core.services().await?.recordings.seek(position_ms)?)
}

#[tauri::command]
pub async fn playback_stop(core: State<'_, Core>) -> Res<()> {
    Ok(core.services().await?.recordings.stop().await?)
}

#[tauri::command]
pub async fn playback_state(core: State<'_, Core>) -> Res<Option<PlaybackState>> {
    Ok(core.services().await?.recordings.playback())
}

#[tauri::command]
pub async fn audio_devices(core: State<'_, Core>) -> Res<Vec<String>> {
    Ok(core.services().await?.recordings.output_devices().await?)
}

/// Starts listening to a live call on `device` (default output when `None`).
#[tauri::command]
pub async fn listen_in(
    core: State<'_, Core>,
    call_sid: CallSid,
    device: Option<String>,
) -> Res<ListenState> {
    Ok(core
        .services()
        .await?
        .recordings
        .listen_in(&call_sid, device.as_deref())
        .await?)
}

#[tauri::command]
pub async fn listen_mute(core: State<'_, Core>, side: Side, muted: bool) -> Res<ListenState> {
    Ok(core.services().await?.recordings.listen_mute(side, muted)?)
}

/// What listening in is doing now (its delay moves as audio flows), or `None` when it is off.
#[tauri::command]
pub async fn listen_state(core: State<'_, Core>) -> Res<Option<ListenState>> {
    Ok(core.services().await?.recordings.listening())
}

#[tauri::command]
pub async fn listen_stop(core: State<'_, Core>) -> Res<()> {
    Ok(core.services().await?.recordings.listen_stop().await?)
}

//! The recordings service: what the HTTP API and the desktop commands call for recordings.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::export;
use super::listen_in::{ListenError, ListenState, Monitor};
use super::peaks::{self, Peaks};
use super::playback::{ChannelChoice, PlaybackError, PlaybackEvent, PlaybackState, Player};
use super::recorder::Recorder;
use super::twilio_cloud::{self, CloudError};
use super::wav_reader::{self, WavReadError};
use super::wav_writer::Side;
use super::RecordingConfig;
use crate::store::recordings::{
    NewRecording, RecordingOutcome, RecordingRecord, STATUS_COMPLETE, STATUS_RECORDING,
};
use crate::store::{StoreError, StoreHandle, TranscriptRecord};
use crate::telephony::twilio::rest::{RestError, TwilioRest};

#[derive(Debug, thiserror::Error)]
pub enum LibraryError {
    #[error("no recording {0}")]
    NotFound(i64),
    #[error("no call {0}")]
    UnknownCall(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    File(#[from] WavReadError),
    #[error(transparent)]
    Playback(#[from] PlaybackError),
    #[error(transparent)]
    Listen(#[from] ListenError),
    #[error(transparent)]
    Cloud(#[from] CloudError),
    #[error("recording {0} is still being recorded (its call is live); export it once the call has ended")]
    StillRecording(i64),
    #[error("export failed: {0}")]
    Export(std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A recording with its call's transcript (offsets are into the recording).
#[derive(Debug, Clone, Serialize)]
pub struct RecordingDetail {
    #[serde(flatten)]
    pub recording: RecordingRecord,
    pub transcript: Vec<TranscriptRecord>,
    /// Where the operator held the call: their voice is on the agent channel in these stretches.
    pub operator_spans: Vec<crate::store::operator::OperatorSpan>,
    /// The call's post-call summary, if one was made.
    pub summary: Option<crate::store::summaries::SummaryRecord>,
}

/// A row of the library: the recording, with its call's cost and p95 turn latency when known.
#[derive(Debug, Clone, Serialize)]
pub struct RecordingItem {
    #[serde(flatten)]
    pub recording: RecordingRecord,
    pub cost_usd: Option<f64>,
    pub p95_ms: Option<u64>,
}

/// The recording switch the UI and the API change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordingSettings {
    pub enabled: bool,
}

/// Twilio's recording-status callback, as far as the library needs it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RecordingStatus {
    pub call_sid: String,
    pub recording_sid: String,
    pub recording_url: String,
    pub recording_status: String,
    #[serde(default)]
    pub recording_channels: Option<String>,
    /// When the recording started, RFC 2822 (`Tue, 10 Jun 2025 18:05:12 +0000`).
    #[serde(default)]
    pub recording_start_time: Option<String>,
}

pub struct Library {
    store: StoreHandle,
    recorder: Arc<Recorder>,
    config: RecordingConfig,
    /// The app's one Twilio REST client; `None` without credentials.
    twilio: Option<TwilioRest>,
    /// Shared with the blocking threads that open and close the speakers.
    player: Arc<Player>,
    monitor: Arc<Monitor>,
    /// Recent waveforms (a repeated request is answered without reading the file).
    peaks_cache: Arc<peaks::PeaksCache>,
    /// Orders concurrent changes of the switch, so the remembered choice is the one in effect.
    settings_lock: tokio::sync::Mutex<()>,
}

/// The `app_settings` key remembering the recording switch (`"true"` / `"false"`).
pub const RECORDING_ENABLED_KEY: &str = "recording.enabled";

/// Runs blocking speaker work (reading a file, opening or closing a device) off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, LibraryError> + Send + 'static,
) -> Result<T, LibraryError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| LibraryError::Invalid(format!("audio task failed: {e}")))?
}

fn valid_sid(sid: &str) -> bool {
    !sid.is_empty() && sid.len() <= 64 && sid.chars().all(|c| c.is_ascii_alphanumeric())
}

impl Library {
    fn twilio(&self) -> Result<&TwilioRest, CloudError> {
        self.twilio
            .as_ref()
            .ok_or(CloudError::Rest(RestError::NotConfigured))
    }

    /// Applies the recording switch remembered from the last run (see [`Library::set_settings`]):
    /// `VERBIO_RECORD=false` keeps recording off whatever was remembered; otherwise the remembered
    /// choice wins over the default. Call at start-up, before calls can start: it waits for one
    /// small read from the store (like [`StoreHandle::open`], it blocks briefly).
    pub fn new(
        store: StoreHandle,
        recorder: Arc<Recorder>,
        config: RecordingConfig,
        twilio: Option<TwilioRest>,
    ) -> Self {
        if config.enabled {
            // The store thread answers through a oneshot; `unconstrained` keeps tokio's task budget
            // from refusing the poll when this runs inside a task.
            let remembered = crate::store::block_on(tokio::task::unconstrained(
                store.setting(RECORDING_ENABLED_KEY),
            ));
            match remembered {
                Ok(Some(v)) => match v.as_str() {
                    "true" => recorder.set_enabled(true),
                    "false" => {
                        info!("recording is off (turned off in the app)");
                        recorder.set_enabled(false)
                    }
                    other => warn!("ignoring a remembered recording switch {other:?}"),
                },
                Ok(None) => {}
                Err(e) => warn!("could not read the remembered recording switch: {e}"),
            }
        }
        Library {
            store,
            recorder,
            config,
            twilio,
            player: Arc::default(),
            monitor: Arc::default(),
            peaks_cache: Arc::default(),
            settings_lock: tokio::sync::Mutex::new(()),
        }
    }

    pub fn recorder(&self) -> &Arc<Recorder> {
        &self.recorder
    }

    /// Whether calls that start from now on are recorded.
    pub fn settings(&self) -> RecordingSettings {
        RecordingSettings {
            enabled: self.recorder.enabled(),
        }
    }

    /// Turns recording on or off for calls that start from now on (calls in progress keep theirs)
    /// and remembers the choice for the next start. The switch takes effect at once; if it cannot
    /// be saved, the error says so (it then lasts until the app stops).
    pub async fn set_settings(
        &self,
        settings: RecordingSettings,
    ) -> Result<RecordingSettings, LibraryError> {
        let _order = self.settings_lock.lock().await;
        self.recorder.set_enabled(settings.enabled);
        self.store
            .set_setting(RECORDING_ENABLED_KEY, settings.enabled.to_string())
            .await?;
        info!(enabled = settings.enabled, "recording switch changed");
        Ok(self.settings())
    }

    fn path_of(&self, r: &RecordingRecord) -> PathBuf {
        // File names come from the app itself; never let one climb out of the folder.
        let name = Path::new(&r.file_name)
            .file_name()
            .map(PathBuf::from)
            .unwrap_or_default();
        self.recorder.dir().join(name)
    }

    async fn record(&self, id: i64) -> Result<RecordingRecord, LibraryError> {
        self.store
            .recording(id)
            .await?
            .ok_or(LibraryError::NotFound(id))
    }

    /// Newest first, optionally only calls whose transcript matches `search`.
    pub async fn list(
        &self,
        search: Option<String>,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<RecordingItem>, LibraryError> {
        if !(1..=500).contains(&limit) {
            return Err(LibraryError::Invalid(format!(
                "limit {limit} is outside 1–500"
            )));
        }
        let search = search.filter(|s| !s.trim().is_empty());
        if search.as_ref().is_some_and(|s| s.len() > 200) {
            return Err(LibraryError::Invalid(
                "search is longer than 200 characters".into(),
            ));
        }
        let rows = self.store.list_recordings(search, limit, offset).await?;
        let sids = rows.iter().map(|r| r.call_sid.clone()).collect();
        let figures = self.store.call_figures(sids).await?;
        Ok(rows
            .into_iter()
            .map(|recording| {
                let f = figures
                    .get(&recording.call_sid)
                    .copied()
                    .unwrap_or_default();
                RecordingItem {
                    recording,
                    cost_usd: f.cost_pico.map(crate::costs::pico_to_usd),
                    p95_ms: f.p95_ms,
                }
            })
            .collect())
    }

    pub async fn get(&self, id: i64) -> Result<RecordingDetail, LibraryError> {
        let recording = self.record(id).await?;
        let transcript = self.store.transcripts(&recording.call_sid).await?;
        let operator_spans = self.store.operator_spans(&recording.call_sid).await?;
        let summary = self.store.summary(&recording.call_sid).await?;
        Ok(RecordingDetail {
            recording,
            transcript,
            operator_spans,
            summary,
        })
    }

    pub async fn for_call(&self, call_sid: &str) -> Result<Vec<RecordingRecord>, LibraryError> {
        if self.store.call(call_sid).await?.is_none() {
            return Err(LibraryError::UnknownCall(call_sid.to_string()));
        }
        Ok(self.store.recordings_for_call(call_sid).await?)
    }

    /// The file to stream, checked to exist and be a WAV (a damaged one is an error, not bytes).
    pub async fn audio_file(&self, id: i64) -> Result<(PathBuf, RecordingRecord), LibraryError> {
        let r = self.record(id).await?;
        let path = self.path_of(&r);
        let check = path.clone();
        let live = r.status == STATUS_RECORDING;
        tokio::task::spawn_blocking(move || check_wav(&check, live))
            .await
            .map_err(|e| LibraryError::Invalid(format!("check failed: {e}")))??;
        Ok((path, r))
    }

    pub async fn peaks(&self, id: i64, buckets: u32) -> Result<Peaks, LibraryError> {
        if !(1..=peaks::MAX_BUCKETS).contains(&buckets) {
            return Err(LibraryError::Invalid(format!(
                "buckets must be 1–{}",
                peaks::MAX_BUCKETS
            )));
        }
        let path = self.path_of(&self.record(id).await?);
        // One streaming pass over the file on a blocking thread, or the cached answer.
        let cache = self.peaks_cache.clone();
        let peaks = tokio::task::spawn_blocking(move || cache.get_or_compute(id, &path, buckets))
            .await
            .map_err(|e| LibraryError::Invalid(format!("read failed: {e}")))??;
        Ok(Peaks::clone(&peaks))
    }

    /// Deletes the file and the row (stopping its playback first) and, if asked, Twilio's copy.
    pub async fn delete(&self, id: i64, at_twilio: bool) -> Result<(), LibraryError> {
        let r = self.record(id).await?;
        if r.status == STATUS_RECORDING {
            return Err(LibraryError::Invalid(
                "the call is still being recorded".into(),
            ));
        }
        if self.player.playing() == Some(id) {
            let player = self.player.clone();
            // Stopping joins the audio thread: not on this one.
            let _ = blocking(move || Ok(player.stop_if_playing(id))).await;
        }
        if at_twilio {
            if let Some(sid) = r.twilio_sid.as_deref() {
                let rest = self.twilio()?;
                twilio_cloud::delete(rest, &rest.recording_url(sid)).await?;
            }
        }
        match tokio::fs::remove_file(self.path_of(&r)).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(LibraryError::Export(e)),
        }
        self.store.delete_recording(id).await?;
        self.peaks_cache.forget(id);
        info!(recording_id = id, "recording deleted");
        Ok(())
    }

    /// Copies a finished recording to `dest`: an absolute `.wav` path on this computer without `..`,
    /// in an existing directory, that does not exist yet (never overwritten), and writes the call
    /// beside it as `<same name>.json` (its metadata, transcript and summary; see
    /// [`export::sidecar`]), under the same rules. A recording still being written (its call is live)
    /// is refused. Whatever stops a file from being created, the error is the same (it must not tell
    /// what exists on the disk); if either cannot be written, neither is left behind.
    pub async fn export(&self, id: i64, dest: &Path) -> Result<u64, LibraryError> {
        if let Some(why) = export::destination_problem(dest) {
            return Err(LibraryError::Invalid(format!("export path {why}")));
        }
        let r = self.record(id).await?;
        if r.status == STATUS_RECORDING {
            return Err(LibraryError::StillRecording(id));
        }
        let (path, _) = self.audio_file(id).await?;
        let call = self.store.call(&r.call_sid).await?;
        let transcript = self.store.transcripts(&r.call_sid).await?;
        let summary = self.store.summary(&r.call_sid).await?;
        let sidecar = export::sidecar(&r, call.as_ref(), &transcript, summary.as_ref());
        let sidecar = serde_json::to_vec_pretty(&sidecar)
            .map_err(|e| LibraryError::Invalid(format!("export failed: {e}")))?;
        let dest = dest.to_path_buf();
        tokio::task::spawn_blocking(move || -> Result<u64, LibraryError> {
            let json_dest = dest.with_extension("json");
            let unusable =
                || LibraryError::Invalid(format!("export path {}", export::UNUSABLE_DESTINATION));
            let mut from = std::fs::File::open(&path).map_err(LibraryError::Export)?;
            let mut to = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&dest)
                .map_err(|_| unusable())?;
            let mut json = match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&json_dest)
            {
                Ok(file) => file,
                Err(_) => {
                    drop(to);
                    // Ours, just created and still empty.
                    let _ = std::fs::remove_file(&dest);
                    return Err(unusable());
                }
            };
            let copied = std::io::copy(&mut from, &mut to)
                .and_then(|n| to.sync_all().map(|()| n))
                .and_then(|n| {
                    std::io::Write::write_all(&mut json, &sidecar)?;
                    json.sync_all().map(|()| n)
                });
            if copied.is_err() {
                // Ours, just created: a half-written copy must not look like an export.
                let _ = std::fs::remove_file(&dest);
                let _ = std::fs::remove_file(&json_dest);
            }
            copied.map_err(LibraryError::Export)
        })
        .await
        .map_err(|e| LibraryError::Invalid(format!("export failed: {e}")))?
    }

    /// Where the window suggests exporting a recording: a free, descriptive file name in the user's
    /// Downloads folder (else home). `None` when this system has no home folder.
    pub async fn suggested_export_path(&self, id: i64) -> Result<Option<PathBuf>, LibraryError> {
        let name = export::file_name(&self.record(id).await?);
        blocking(move || Ok(export::default_folder().map(|dir| export::free_path(&dir, &name))))
            .await
    }

    // ---- speakers -------------------------------------------------------------------------------

    /// Plays a recording through the speakers. Reading the file and opening the device (which can
    /// take up to 10 s) run on a blocking thread.
    pub async fn play(
        &self,
        id: i64,
        device: Option<&str>,
        channel: ChannelChoice,
    ) -> Result<PlaybackState, LibraryError> {
        let path = self.path_of(&self.record(id).await?);
        let player = self.player.clone();
        let device = device.map(str::to_string);
        blocking(move || Ok(player.play(id, &path, device.as_deref(), channel)?)).await
    }

    pub fn pause(&self, paused: bool) -> Result<PlaybackState, LibraryError> {
        Ok(self.player.pause(paused)?)
    }

    pub fn seek(&self, position_ms: u64) -> Result<PlaybackState, LibraryError> {
        Ok(self.player.seek(position_ms)?)
    }

    pub fn set_channel(&self, channel: ChannelChoice) -> Result<PlaybackState, LibraryError> {
        Ok(self.player.set_channel(channel)?)
    }

    /// Stops playback (closing the device joins its thread, so that runs on a blocking thread).
    pub async fn stop(&self) -> Result<(), LibraryError> {
        let player = self.player.clone();
        blocking(move || Ok(player.stop()?)).await
    }

    pub fn playback(&self) -> Option<PlaybackState> {
        self.player.state()
    }

    pub fn playback_events(&self) -> tokio::sync::broadcast::Receiver<PlaybackEvent> {
        self.player.subscribe()
    }

    /// The output devices, default first (the audio host may block while it looks: a blocking thread).
    pub async fn output_devices(&self) -> Result<Vec<String>, LibraryError> {
        blocking(|| Ok(super::speaker::output_devices())).await
    }

    /// Listens in on a live call. Opening the device (up to 10 s) and joining a previous monitor's
    /// audio thread run on a blocking thread.
    pub async fn listen_in(
        &self,
        call_sid: &str,
        device: Option<&str>,
    ) -> Result<ListenState, LibraryError> {
        let (monitor, recorder) = (self.monitor.clone(), self.recorder.clone());
        let (call_sid, device) = (call_sid.to_string(), device.map(str::to_string));
        blocking(move || Ok(monitor.start(recorder.live(), &call_sid, device.as_deref())?)).await
    }

    pub fn listen_mute(&self, side: Side, muted: bool) -> Result<ListenState, LibraryError> {
        Ok(self.monitor.mute(side, muted)?)
    }

    /// Stops listening in; closing the device (joining its audio thread) runs on a blocking thread.
    pub async fn listen_stop(&self) -> Result<(), LibraryError> {
        let monitor = self.monitor.clone();
        blocking(move || Ok(monitor.stop()?)).await
    }

    pub fn listening(&self) -> Option<ListenState> {
        self.monitor.state()
    }

    // ---- Twilio cloud recordings ---------------------------------------------------------------

    /// Handles Twilio's recording-status callback: a completed recording is downloaded next to the
    /// local one (and deleted at Twilio when configured). Returns the new recording's id; `None` when
    /// there is nothing to fetch, or when this RecordingSid was handled before (a replayed or repeated
    /// callback: nothing is downloaded again, and a recording the user deleted stays deleted).
    pub async fn twilio_recording_ready(
        &self,
        status: RecordingStatus,
    ) -> Result<Option<i64>, LibraryError> {
        if status.recording_status != "completed" {
            info!(call_sid = %status.call_sid, status = %status.recording_status, "Twilio recording not ready; nothing to fetch");
            return Ok(None);
        }
        if !valid_sid(&status.call_sid) || !valid_sid(&status.recording_sid) {
            return Err(LibraryError::Invalid("bad CallSid or RecordingSid".into()));
        }
        let claimed = self
            .store
            .claim_twilio_recording(
                &status.recording_sid,
                &status.call_sid,
                crate::types::now_ms(),
            )
            .await?;
        if !claimed {
            info!(call_sid = %status.call_sid, recording_sid = %status.recording_sid, "Twilio recording already handled; callback ignored");
            return Ok(None);
        }
        let (recording_sid, call_sid) = (status.recording_sid.clone(), status.call_sid.clone());
        let saved = self.save_twilio_recording(status).await;
        if let Err(e) = &saved {
            if e.row_not_added() {
                // Nothing was kept: Twilio's next attempt must not be taken for a replay.
                let release = self
                    .store
                    .release_twilio_recording(&recording_sid, &call_sid)
                    .await;
                if let Err(release) = release {
                    warn!(%recording_sid, "could not release the Twilio recording's claim: {release}");
                }
            }
        }
        Ok(Some(saved?))
    }

    /// Downloads a claimed Twilio recording into the library (see [`Library::twilio_recording_ready`]).
    async fn save_twilio_recording(&self, status: RecordingStatus) -> Result<i64, SaveError> {
        let started_at_ms = status
            .recording_start_time
            .as_deref()
            .and_then(twilio_cloud::parse_start_time_ms)
            .unwrap_or_else(crate::types::now_ms);
        let file_name = format!("{}-twilio-{}.wav", status.call_sid, status.recording_sid);
        let dest = self.recorder.dir().join(&file_name);
        tokio::fs::create_dir_all(self.recorder.dir())
            .await
            .map_err(|e| SaveError::Before(LibraryError::Export(e)))?;
        let twilio = self
            .twilio()
            .map_err(|e| SaveError::Before(LibraryError::Cloud(e)))?;
        let size = twilio_cloud::download(twilio, &status.recording_url, &dest)
            .await
            .map_err(|e| SaveError::Before(e.into()))?;
        // Checks the header and that every sample is there, without reading the samples.
        let check = dest.clone();
        let frames = tokio::task::spawn_blocking(move || wav_reader::check(&check))
            .await
            .map_err(|e| SaveError::Before(LibraryError::Invalid(format!("check failed: {e}"))))?;
        let (status_text, note, duration_ms) = match &frames {
            Ok(f) => (STATUS_COMPLETE, None, *f as i64 / 8),
            Err(e) => {
                warn!(call_sid = %status.call_sid, "Twilio recording is not readable: {e}");
                ("incomplete", Some(e.to_string()), 0)
            }
        };
        let channels = status
            .recording_channels
            .as_deref()
            .and_then(|c| c.parse().ok())
            .unwrap_or(2);
        // The download is complete: the row starts with its final status (never `recording`, which
        // start-up repair would take for a local recording cut off by a crash), and its sizes
        // follow in the same store job.
        let new = NewRecording {
            call_sid: status.call_sid.clone(),
            source: "twilio".into(),
            file_name,
            status: status_text.into(),
            started_at_ms,
            twilio_sid: Some(status.recording_sid.clone()),
        };
        let outcome = RecordingOutcome {
            status: status_text.into(),
            note,
            duration_ms,
            size_bytes: size as i64,
            channels,
            sample_rate: 8000,
        };
        let id = self
            .store
            .add_finished_recording(new, outcome)
            .await
            .map_err(|e| SaveError::Before(e.into()))?;
        info!(call_sid = %status.call_sid, recording_id = id, "Twilio recording saved in the library");
        if self.config.delete_twilio_copy && frames.is_ok() {
            twilio_cloud::delete(twilio, &status.recording_url)
                .await
                .map_err(|e| SaveError::After(e.into()))?;
        }
        Ok(id)
    }
}

/// A failed save of a Twilio recording: before its row was added (the claim is given back), or after.
#[derive(Debug, thiserror::Error)]
enum SaveError {
    #[error(transparent)]
    Before(LibraryError),
    #[error(transparent)]
    After(LibraryError),
}

impl SaveError {
    fn row_not_added(&self) -> bool {
        matches!(self, SaveError::Before(_))
    }
}

impl From<SaveError> for LibraryError {
    fn from(e: SaveError) -> Self {
        match e {
            SaveError::Before(e) | SaveError::After(e) => e,
        }
    }
}

/// A recording still being written is readable up to its header; others must parse fully.
fn check_wav(path: &Path, live: bool) -> Result<(), WavReadError> {
    if live {
        if !path.is_file() {
            return Err(WavReadError::Missing(path.to_path_buf()));
        }
        return Ok(());
    }
    hound::WavReader::open(path)
        .map(|_| ())
        .map_err(|e| match e {
            hound::Error::IoError(io) if io.kind() == std::io::ErrorKind::NotFound => {
                WavReadError::Missing(path.to_path_buf())
            }
            e => WavReadError::Damaged {
                path: path.to_path_buf(),
                reason: e.to_string(),
            },
        })
        .and_then(|_| {
            if path.is_file() {
                Ok(())
            } else {
                Err(WavReadError::Missing(path.to_path_buf()))
            }
        })
}

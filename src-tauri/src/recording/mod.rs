//! Call recordings: a live dual-channel WAV of every call, the local library, Twilio's cloud copies,
//! playback and live listen-in through the speakers.
//!
//! - [`wav_writer`]: the stereo 8 kHz WAV written by position (μ-law window, positioned writes).
//! - [`recorder`]: the per-call sink for the call's timeline (`calls::timeline`), copying into the call's
//!   bounded feed; `writer`: one thread doing the timeline work and writing every file, its
//!   recordings taking turns through its tick ([`staggered`]); `closer`: the thread that lists each
//!   recording in the library and, when it ends, syncs its file and saves its outcome, so neither a
//!   slow disk nor a busy library holds up the writer.
//! - [`repair`]: fixing recordings a crash left unfinished.
//! - [`wav_reader`], [`peaks`]: reading recordings back; the waveform.
//! - [`speaker`], [`playback`], [`listen_in`]: `cpal` output with `rubato` resampling.
//! - [`twilio_cloud`]: downloading (and deleting) Twilio's dual-channel recordings.
//! - [`export`]: export destinations: checks, suggested name and folder.
//! - [`library`]: the operations both doors call.

mod closer;
pub mod export;
pub mod library;
pub mod listen_in;
pub mod peaks;
pub mod playback;
pub mod recorder;
mod recorder_settings;
pub mod repair;
pub mod speaker;
pub mod staggered;
pub mod twilio_cloud;
pub mod wav_reader;
pub mod wav_writer;
mod writer;

use crate::store;
pub use library::{Library, LibraryError};
pub use recorder::{CallRecording, Recorder};
pub use recorder_settings::RecorderSettings;

/// The library's record of one of our timeline WAVs (stereo, 16-bit, 8 kHz) holding `frames` frames:
/// its length and size follow from the frames, whether the writer just finished it or start-up repair
/// rewrote its header.
fn wav_outcome(
    status: &str,
    note: Option<String>,
    frames: u64,
) -> store::recordings::RecordingOutcome {
    use wav_writer::{CHANNELS, FRAMES_PER_MS, FRAME_BYTES, HEADER_LEN, SAMPLE_RATE};
    store::recordings::RecordingOutcome {
        status: status.into(),
        note,
        duration_ms: (frames / FRAMES_PER_MS) as i64,
        size_bytes: (HEADER_LEN + frames * FRAME_BYTES) as i64,
        channels: CHANNELS.into(),
        sample_rate: SAMPLE_RATE.into(),
    }
}

/// Recording settings (part of the app's `Config`, which reads them from the file and the environment).
#[derive(Debug, Clone)]
pub struct RecordingConfig {
    /// Record every call (`VERBIO_RECORD=false` turns it off; a call can also opt out).
    pub enabled: bool,
    /// Delete Twilio's copy once it is in the library (`VERBIO_TWILIO_RECORDING_DELETE=true`).
    pub delete_twilio_copy: bool,
    /// Have Twilio record inbound calls too (two channels, started through the REST API once the
    /// media stream is up): `[recording] twilio_inbound = true`, `VERBIO_TWILIO_RECORDING_INBOUND=true`.
    pub twilio_inbound: bool,
    pub recorder: RecorderSettings,
}

impl Default for RecordingConfig {
    fn default() -> Self {
        RecordingConfig {
            enabled: true,
            delete_twilio_copy: false,
            twilio_inbound: false,
            recorder: RecorderSettings::default(),
        }
    }
}

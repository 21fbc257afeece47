//! Recording a call as it happens, off the hot path.
//!
//! The bridge holds a [`CallRecording`] per call: a sink for the call's timeline (`calls::timeline`),
//! which says where each piece of audio belongs. It gets caller frames and agent audio already placed
//! and copies their μ-law into the call's bounded feed (`writer::Feed`: a buffer reused for the whole
//! call, never waiting on the writer) and hands it to listen-in; the writer (`writer`) does the
//! timeline work and owns the files. If the feed is full (slow disk) the audio is dropped and the
//! recording is marked incomplete with the reason; if the disk fails, the writer stops writing and
//! marks it incomplete; the call goes on either way.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use base64::Engine;
use tracing::warn;

use super::listen_in::{LiveAudio, LiveTap, LiveTaps};
use super::recorder_settings::RecorderSettings;
use super::wav_writer::{Side, SAMPLE_RATE};
use super::writer::{Feed, WriterJob, WriterPool};
use crate::store::StoreHandle;
use crate::types::StreamUs;

/// Starts one recording per call. Shared by every call (one per running core).
pub struct Recorder {
    dir: PathBuf,
    enabled: AtomicBool,
    settings: RecorderSettings,
    live: LiveTaps,
    pool: WriterPool,
}

impl Recorder {
    pub fn new(
        dir: PathBuf,
        store: StoreHandle,
        enabled: bool,
        settings: RecorderSettings,
    ) -> Self {
        Recorder {
            pool: WriterPool::new(store, settings.clone()),
            dir,
            enabled: AtomicBool::new(enabled),
            settings,
            live: LiveTaps::default(),
        }
    }

    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// Turns recording of calls that start from now on on or off.
    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::Relaxed);
    }

    /// Live audio of active calls, for listen-in.
    pub fn live(&self) -> &LiveTaps {
        &self.live
    }

    /// Called by the bridge when a stream starts. `record` is the per-call choice; the file is only
    /// written when both it and the global switch are on. Listen-in works either way.
    pub fn start_call(&self, call_sid: &str, started_at_ms: i64, record: bool) -> CallRecording {
        let writer = (record && self.enabled())
            .then(|| self.spawn_writer(call_sid, started_at_ms))
            .flatten();
        CallRecording {
            writer,
            live: self.live.open(call_sid),
        }
    }

    fn spawn_writer(&self, call_sid: &str, started_at_ms: i64) -> Option<WriterLink> {
        let feed = Feed::new(self.settings.queue_len);
        let job = WriterJob {
            path: self.dir.join(file_name(call_sid, started_at_ms)),
            call_sid: call_sid.to_string(),
            started_at_ms,
            feed: feed.clone(),
        };
        match self.pool.add(job) {
            Ok(()) => Some(WriterLink { feed }),
            Err(e) => {
                warn!(%call_sid, "recording not started: {e}");
                None
            }
        }
    }
}

/// `CA…-<ms>.wav`: unique per call start, safe as a file name (SIDs are letters and digits).
pub fn file_name(call_sid: &str, started_at_ms: i64) -> String {
    let safe: String = call_sid
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(64)
        .collect();
    format!("{safe}-{started_at_ms}.wav")
}

/// The tap's end of a call's feed; dropping it (the call ended) tells the writer to finish the file.
struct WriterLink {
    feed: Arc<Feed>,
}

impl Drop for WriterLink {
    fn drop(&mut self) {
        self.feed.close();
    }
}

/// A call's recording and listen-in feed: a sink for the call's timeline. Every method is cheap and
/// never blocks.
pub struct CallRecording {
    writer: Option<WriterLink>,
    live: Arc<LiveTap>,
}

/// The μ-law in a Twilio `media` payload; `None` when it is not base64 (the bridge reports that).
pub fn decode_payload(payload: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(payload)
        .ok()
}

fn us_to_frame(us: StreamUs) -> u64 {
    us * SAMPLE_RATE as u64 / 1_000_000
}

impl CallRecording {
    /// True when a file is being written (not just listen-in).
    pub fn is_recording(&self) -> bool {
        self.writer.is_some()
    }

    /// True when someone is listening in now.
    pub fn has_listeners(&self) -> bool {
        self.live.has_listeners()
    }

    /// A copy of `mulaw` of `side` from `start_us` into the feed (no allocation once it is warm).
    fn queue(&self, side: Side, start_us: StreamUs, mulaw: &[u8]) {
        if let Some(w) = &self.writer {
            w.feed.push(side, us_to_frame(start_us), mulaw);
        }
    }

    fn publish(&self, audio: LiveAudio) {
        self.live.send(audio);
    }

    /// A caller frame starting at `start_us`: to the file and to listeners.
    pub fn caller(&self, start_us: StreamUs, mulaw: &[u8]) {
        self.publish_caller(start_us, mulaw);
        self.queue(Side::Caller, start_us, mulaw);
    }

    fn publish_caller(&self, start_us: StreamUs, mulaw: &[u8]) {
        if self.has_listeners() {
            self.publish(LiveAudio::Audio {
                side: Side::Caller,
                start_us,
                mulaw: mulaw.into(),
            });
        }
    }

    /// Agent audio handed to Twilio that will play at `plays_at`: to listeners now (listen-in plays
    /// what the caller is about to hear; the file waits until it has played).
    pub fn agent_queued(&self, plays_at: StreamUs, mulaw: &[u8]) {
        if !self.has_listeners() {
            return;
        }
        self.publish(LiveAudio::Audio {
            side: Side::Agent,
            start_us: plays_at,
            mulaw: mulaw.into(),
        });
    }

    /// Agent audio that played from `start_us`: to the file.
    pub fn agent_played(&self, start_us: StreamUs, mulaw: &[u8]) {
        self.queue(Side::Agent, start_us, mulaw);
    }

    /// The operator's microphone audio that plays from `start_us` (they hold the call): to the file,
    /// on the agent's channel, where the caller heard it. Not to listen-in: the operator listening in
    /// would hear themselves, late.
    pub fn operator(&self, start_us: StreamUs, mulaw: &[u8]) {
        self.queue(Side::Agent, start_us, mulaw);
    }

    /// Queued agent audio was stopped at `at_us` (barge-in): listeners drop what they hold after it.
    pub fn cleared(&self, at_us: StreamUs) {
        self.publish(LiveAudio::Clear { at_us });
    }
}

//! Recording a call as it happens, off the hot path.
//!
//! The bridge holds a [`CallRecording`] per call and feeds it caller frames, agent chunks, mark echoes
//! and clears. Those calls only place audio on the timeline ([`super::timeline`]) and hand it to a
//! bounded queue (`try_send`, never waiting); the writer ([`super::writer`]) owns the files. If the queue is
//! full (slow disk) the audio is dropped and the recording is marked incomplete with the reason; if the
//! disk fails, the writer stops writing and marks it incomplete; the call goes on either way.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::error::TrySendError;

use base64::Engine;
use tracing::warn;

use super::listen_in::{LiveAudio, LiveTaps};
use super::timeline::{AgentTrack, Placed, StreamClock, StreamUs};
use super::wav_writer::{Side, SAMPLE_RATE};
use super::writer::{WriterJob, WriterPool};
use crate::store::StoreHandle;

/// Knobs; tests shrink the queue to provoke overflow.
#[derive(Debug, Clone)]
pub struct RecorderSettings {
    /// Audio pieces queued per call before new ones are dropped (≈ 3 s of audio; the writer drains
    /// every 100 ms). Slots are allocated as the queue fills, so an idle queue stays small.
    pub queue_len: usize,
    /// Frames this far behind the newest audio go to disk (late agent audio lands in memory).
    pub commit_lag: Duration,
    /// The header is rewritten at least this often (bounds what a crash can lose).
    pub header_every: Duration,
}

impl Default for RecorderSettings {
    fn default() -> Self {
        RecorderSettings {
            queue_len: 256,
            commit_lag: Duration::from_millis(300),
            header_every: Duration::from_millis(500),
        }
    }
}

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
    pub fn start_call(
        &self,
        call_sid: &str,
        started_at_ms: i64,
        record: bool,
        origin: Instant,
    ) -> CallRecording {
        let writer = (record && self.enabled())
            .then(|| self.spawn_writer(call_sid, started_at_ms))
            .flatten();
        CallRecording {
            writer,
            clock: StreamClock::new(origin),
            agent: AgentTrack::new(),
            live: self.live.open(call_sid),
            live_agent_end_us: 0,
        }
    }

    fn spawn_writer(&self, call_sid: &str, started_at_ms: i64) -> Option<WriterLink> {
        // tokio's bounded channel allocates its slots in blocks of 32 as they fill, so an idle queue
        // costs one block instead of `queue_len` slots per call.
        let (tx, rx) = tokio::sync::mpsc::channel(self.settings.queue_len);
        let dropped = Arc::new(AtomicU64::new(0));
        let job = WriterJob {
            path: self.dir.join(file_name(call_sid, started_at_ms)),
            call_sid: call_sid.to_string(),
            started_at_ms,
            dropped: dropped.clone(),
            rx,
        };
        match self.pool.add(job) {
            Ok(()) => Some(WriterLink { tx, dropped }),
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

/// A piece of audio at its place on the timeline, for the writer.
pub(super) enum Op {
    Audio {
        side: Side,
        start: u64,
        mulaw: Vec<u8>,
    },
}

struct WriterLink {
    tx: tokio::sync::mpsc::Sender<Op>,
    dropped: Arc<AtomicU64>,
}

/// A call's recording as the bridge sees it. Every method is cheap and never blocks.
pub struct CallRecording {
    writer: Option<WriterLink>,
    clock: StreamClock,
    agent: AgentTrack,
    live: tokio::sync::broadcast::Sender<LiveAudio>,
    /// Where the agent audio queued at Twilio ends, for listen-in: chunks arrive faster than real
    /// time and play back to back, so each is placed after the previous one.
    live_agent_end_us: StreamUs,
}

fn decode_b64(payload: &str) -> Option<Vec<u8>> {
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

    fn queue(&mut self, side: Side, start: u64, mulaw: Vec<u8>) {
        let Some(w) = &self.writer else { return };
        match w.tx.try_send(Op::Audio { side, start, mulaw }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Closed(_)) => {
                w.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn publish(&self, audio: LiveAudio) {
        if self.live.receiver_count() > 0 {
            let _ = self.live.send(audio);
        }
    }

    /// A caller frame; `timestamp_ms` is Twilio's media timestamp (None if it sent none).
    pub fn caller_audio(&mut self, timestamp_ms: Option<u64>, payload_b64: &str) {
        let start_us = self.clock.on_frame(timestamp_ms, Instant::now());
        let Some(bytes) = decode_b64(payload_b64) else {
            return;
        };
        if self.live.receiver_count() > 0 {
            self.publish(LiveAudio::Audio {
                side: Side::Caller,
                start_us,
                mulaw: bytes.clone().into(),
            });
        }
        self.queue(Side::Caller, us_to_frame(start_us), bytes);
    }

    /// An agent chunk went to Twilio, followed by `mark`.
    pub fn agent_sent(&mut self, mark: &str, payload_b64: &str) {
        let Some(bytes) = decode_b64(payload_b64) else {
            return;
        };
        let now_us = self.clock.now_us(Instant::now());
        let live_start = now_us.max(self.live_agent_end_us);
        self.live_agent_end_us = live_start + bytes.len() as u64 * 125;
        if self.live.receiver_count() > 0 {
            self.publish(LiveAudio::Audio {
                side: Side::Agent,
                start_us: live_start,
                mulaw: bytes.clone().into(),
            });
        }
        if self.writer.is_some() {
            self.agent.on_sent(mark, bytes, now_us);
        }
    }

    /// Twilio echoed a mark: that agent audio has played.
    pub fn mark(&mut self, name: &str) {
        let now_us = self.clock.now_us(Instant::now());
        for placed in self.agent.on_mark(name, now_us) {
            self.place(placed);
        }
    }

    /// The bridge sent `clear`: queued agent audio was never heard.
    pub fn clear(&mut self) {
        let now_us = self.clock.now_us(Instant::now());
        self.live_agent_end_us = now_us;
        self.publish(LiveAudio::Clear { at_us: now_us });
        for placed in self.agent.on_clear(now_us) {
            self.place(placed);
        }
    }

    fn place(&mut self, placed: Placed) {
        self.queue(Side::Agent, us_to_frame(placed.start_us), placed.audio);
    }
}

impl Drop for CallRecording {
    /// The call ended: the chunk playing at hang-up was heard up to now.
    fn drop(&mut self) {
        self.clear();
    }
}

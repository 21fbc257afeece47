//! Recording a call as it happens, off the hot path.
//!
//! The bridge holds a [`CallRecording`] per call and feeds it caller frames, agent chunks, mark echoes
//! and clears. Those calls only place audio on the timeline ([`super::timeline`]) and hand it to a
//! bounded queue (`try_send`, never waiting); a writer thread per call owns the file. If the queue is
//! full (slow disk) the audio is dropped and the recording is marked incomplete with the reason; if the
//! disk fails, the writer stops writing and marks it incomplete; the call goes on either way.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use tracing::{info, warn};

use super::listen_in::{LiveAudio, LiveTaps};
use super::timeline::{AgentTrack, Placed, StreamClock, StreamUs};
use super::wav_writer::{Side, TimelineWav, FRAMES_PER_MS, FRAME_BYTES, HEADER_LEN, SAMPLE_RATE};
use crate::audio::mulaw;
use crate::store::recordings::{
    NewRecording, RecordingOutcome, STATUS_COMPLETE, STATUS_INCOMPLETE, STATUS_RECORDING,
};
use crate::store::StoreHandle;

/// Knobs; tests shrink the queue to provoke overflow.
#[derive(Debug, Clone)]
pub struct RecorderSettings {
    /// Audio pieces queued per call before new ones are dropped (≈ 10 s of audio).
    pub queue_len: usize,
    /// Frames this far behind the newest audio go to disk (late agent audio lands in memory).
    pub commit_lag: Duration,
    /// The header is rewritten at least this often (bounds what a crash can lose).
    pub header_every: Duration,
}

impl Default for RecorderSettings {
    fn default() -> Self {
        RecorderSettings {
            queue_len: 1000,
            commit_lag: Duration::from_millis(300),
            header_every: Duration::from_millis(500),
        }
    }
}

/// Starts one recording per call. Shared by every call (one per running core).
pub struct Recorder {
    dir: PathBuf,
    store: StoreHandle,
    enabled: AtomicBool,
    settings: RecorderSettings,
    live: LiveTaps,
}

impl Recorder {
    pub fn new(
        dir: PathBuf,
        store: StoreHandle,
        enabled: bool,
        settings: RecorderSettings,
    ) -> Self {
        Recorder {
            dir,
            store,
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
        let (tx, rx) = mpsc::sync_channel(self.settings.queue_len);
        let dropped = Arc::new(AtomicU64::new(0));
        let job = WriterJob {
            path: self.dir.join(file_name(call_sid, started_at_ms)),
            call_sid: call_sid.to_string(),
            started_at_ms,
            store: self.store.clone(),
            runtime: tokio::runtime::Handle::try_current().ok(),
            settings: self.settings.clone(),
            dropped: dropped.clone(),
        };
        let spawned = std::thread::Builder::new()
            .name("verbio-recorder".into())
            .spawn(move || job.run(rx));
        match spawned {
            Ok(_) => Some(WriterLink { tx, dropped }),
            Err(e) => {
                warn!(%call_sid, "recording not started: cannot start its writer thread: {e}");
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

enum Op {
    Audio {
        side: Side,
        start: u64,
        mulaw: Vec<u8>,
    },
}

struct WriterLink {
    tx: SyncSender<Op>,
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
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
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
        let now = Instant::now();
        let start_us = match timestamp_ms {
            Some(ts) => {
                self.clock.on_media(ts, now);
                ts * 1000
            }
            None => self.clock.now_us(now),
        };
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
        if let Some(placed) = self.agent.on_clear(now_us) {
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

struct WriterJob {
    path: PathBuf,
    call_sid: String,
    started_at_ms: i64,
    store: StoreHandle,
    runtime: Option<tokio::runtime::Handle>,
    settings: RecorderSettings,
    dropped: Arc<AtomicU64>,
}

impl WriterJob {
    fn block_on<F: std::future::Future>(&self, f: F) -> Option<F::Output> {
        self.runtime.as_ref().map(|rt| rt.block_on(f))
    }

    fn run(self, rx: mpsc::Receiver<Op>) {
        let file_name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let created = std::fs::create_dir_all(self.path.parent().unwrap_or(&self.path))
            .map_err(|e| e.to_string())
            .and_then(|_| TimelineWav::create(&self.path).map_err(|e| e.to_string()));
        let id = self.block_on(self.store.add_recording(NewRecording {
            call_sid: self.call_sid.clone(),
            source: "local".into(),
            file_name,
            status: STATUS_RECORDING.into(),
            started_at_ms: self.started_at_ms,
            twilio_sid: None,
        }));
        let id = match id {
            Some(Ok(id)) => Some(id),
            Some(Err(e)) => {
                warn!(call_sid = %self.call_sid, "recording not listed in the library: {e}");
                None
            }
            None => None,
        };
        let (frames, failure) = match created {
            Ok(wav) => self.write(wav, &rx),
            Err(e) => {
                warn!(call_sid = %self.call_sid, "recording not started: {e}");
                (0, Some(format!("could not create the file: {e}")))
            }
        };
        let dropped = self.dropped.load(Ordering::Relaxed);
        let note = match (failure, dropped) {
            (Some(f), _) => Some(f),
            (None, 0) => None,
            (None, n) => Some(format!(
                "{n} pieces of audio were dropped because the disk could not keep up"
            )),
        };
        let outcome = RecordingOutcome {
            status: if note.is_some() {
                STATUS_INCOMPLETE
            } else {
                STATUS_COMPLETE
            }
            .into(),
            note,
            duration_ms: (frames / FRAMES_PER_MS) as i64,
            size_bytes: (HEADER_LEN + frames * FRAME_BYTES) as i64,
            channels: 2,
            sample_rate: SAMPLE_RATE as i64,
        };
        info!(call_sid = %self.call_sid, status = %outcome.status, duration_ms = outcome.duration_ms, "recording finished");
        if let Some(id) = id {
            if let Some(Err(e)) = self.block_on(self.store.set_recording_outcome(id, outcome)) {
                warn!(call_sid = %self.call_sid, "recording outcome not saved: {e}");
            }
        }
    }

    /// Writes until the call's side hangs up; returns the frames on disk and why it stopped early.
    fn write(&self, mut wav: TimelineWav, rx: &mpsc::Receiver<Op>) -> (u64, Option<String>) {
        let lag = self.settings.commit_lag.as_millis() as u64 * FRAMES_PER_MS;
        let mut newest = 0u64;
        let mut last_header = Instant::now();
        let mut failure: Option<String> = None;
        loop {
            let op = rx.recv_timeout(Duration::from_millis(100));
            let done = matches!(op, Err(RecvTimeoutError::Disconnected));
            if failure.is_some() {
                if done {
                    break;
                }
                continue; // keep draining so the bridge never sees a full queue for nothing
            }
            let step = (|| {
                if let Ok(Op::Audio { side, start, mulaw }) = op {
                    let samples = mulaw::decode_all(&mulaw);
                    match wav.put(side, start, &samples) {
                        // One bogus timestamp must not end the recording: drop that piece only.
                        Err(e @ super::wav_writer::WavError::Jump { .. }) => {
                            warn!(call_sid = %self.call_sid, "audio not recorded: {e}");
                        }
                        other => {
                            other?;
                            newest = newest.max(start + samples.len() as u64);
                        }
                    }
                }
                wav.commit_until(newest.saturating_sub(lag))?;
                if last_header.elapsed() >= self.settings.header_every {
                    wav.refresh_header()?;
                    last_header = Instant::now();
                }
                Ok::<(), super::wav_writer::WavError>(())
            })();
            if let Err(e) = step {
                warn!(call_sid = %self.call_sid, "recording stopped: {e}");
                let _ = wav.refresh_header();
                failure = Some(e.to_string());
            }
            if done {
                break;
            }
        }
        if failure.is_some() {
            return (wav.committed_frames(), failure);
        }
        match wav.finish() {
            Ok(frames) => (frames, None),
            Err(e) => (0, Some(e.to_string())),
        }
    }
}

//! The recording writer: one thread for every recording of the running app.
//!
//! Each call's tap fills its own bounded queue; this thread wakes every [`TICK`] and drains all of
//! them, so a call costs no thread, no per-frame wake-up and one batch of writes per tick (a thread per
//! call woke 50 times a second per call and doubled the bridge's CPU in the benchmark). Per tick and
//! file: place the queued audio, commit frames older than the commit lag, refresh the header every
//! `header_every`. A file's error ends only that recording (marked incomplete); the others go on.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::recorder_settings::RecorderSettings;
use super::wav_writer::{
    Side, TimelineWav, WavError, FRAMES_PER_MS, FRAME_BYTES, HEADER_LEN, SAMPLE_RATE,
};
use crate::audio::mulaw;
use crate::store::recordings::{
    NewRecording, RecordingOutcome, STATUS_COMPLETE, STATUS_INCOMPLETE, STATUS_RECORDING,
};
use crate::store::StoreHandle;

/// A piece of audio at its place on the timeline, for the writer.
pub(super) enum Op {
    Audio {
        side: Side,
        start: u64,
        mulaw: Vec<u8>,
    },
}

/// How often queued audio is written. The queues hold far more than this (≈ 10 s).
const TICK: Duration = Duration::from_millis(100);

/// A recording to start, handed over by the recorder.
pub(super) struct WriterJob {
    pub path: PathBuf,
    pub call_sid: String,
    pub started_at_ms: i64,
    /// Audio the tap had to drop (queue full).
    pub dropped: Arc<AtomicU64>,
    pub rx: tokio::sync::mpsc::Receiver<Op>,
}

#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error("the recording writer has stopped")]
    Stopped,
    #[error("cannot start the recording writer: {0}")]
    Spawn(std::io::Error),
}

/// The handle to the writer thread (started on first use).
pub(super) struct WriterPool {
    jobs: std::sync::Mutex<Option<mpsc::Sender<WriterJob>>>,
    store: StoreHandle,
    settings: RecorderSettings,
}

impl WriterPool {
    pub fn new(store: StoreHandle, settings: RecorderSettings) -> Self {
        WriterPool {
            jobs: std::sync::Mutex::new(None),
            store,
            settings,
        }
    }

    pub fn add(&self, job: WriterJob) -> Result<(), PoolError> {
        let mut jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        if jobs.is_none() {
            let (tx, rx) = mpsc::channel();
            let store = self.store.clone();
            let settings = self.settings.clone();
            std::thread::Builder::new()
                .name("verbio-recorder".into())
                .spawn(move || run(rx, store, settings))
                .map_err(PoolError::Spawn)?;
            *jobs = Some(tx);
        }
        let sender = jobs.as_ref().ok_or(PoolError::Stopped)?;
        sender.send(job).map_err(|_| PoolError::Stopped)
    }
}

/// One recording being written.
struct Slot {
    job: WriterJob,
    id: Option<i64>,
    wav: Option<TimelineWav>,
    newest: u64,
    last_header: Instant,
    failure: Option<String>,
}

fn run(jobs: Receiver<WriterJob>, store: StoreHandle, settings: RecorderSettings) {
    let lag = settings.commit_lag.as_millis() as u64 * FRAMES_PER_MS;
    let mut slots: Vec<Slot> = Vec::new();
    let mut open = true;
    while open || !slots.is_empty() {
        // New recordings (wait for one when idle, so an idle app costs nothing).
        loop {
            let next = if slots.is_empty() && open {
                jobs.recv().map_err(|_| TryRecvError::Disconnected)
            } else {
                jobs.try_recv()
            };
            match next {
                Ok(job) => slots.push(start(job, &store)),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    open = false;
                    break;
                }
            }
        }
        let mut i = 0;
        while i < slots.len() {
            if step(&mut slots[i], lag, &settings) {
                let slot = slots.swap_remove(i);
                finish(slot, &store);
            } else {
                i += 1;
            }
        }
        if !slots.is_empty() {
            std::thread::sleep(TICK);
        }
    }
}

fn start(job: WriterJob, store: &StoreHandle) -> Slot {
    let file_name = job
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let created = match job.path.parent() {
        Some(dir) => std::fs::create_dir_all(dir).map_err(|e| e.to_string()),
        None => Ok(()),
    }
    .and_then(|_| TimelineWav::create(&job.path).map_err(|e| e.to_string()));
    let insert = store.add_recording(NewRecording {
        call_sid: job.call_sid.clone(),
        source: "local".into(),
        file_name,
        status: STATUS_RECORDING.into(),
        started_at_ms: job.started_at_ms,
        twilio_sid: None,
    });
    let id = match crate::store::block_on(insert) {
        Ok(id) => Some(id),
        Err(e) => {
            warn!(call_sid = %job.call_sid, "recording not listed in the library: {e}");
            None
        }
    };
    let (wav, failure) = match created {
        Ok(wav) => (Some(wav), None),
        Err(e) => {
            warn!(call_sid = %job.call_sid, "recording not started: {e}");
            (None, Some(format!("could not create the file: {e}")))
        }
    };
    Slot {
        job,
        id,
        wav,
        newest: 0,
        last_header: Instant::now(),
        failure,
    }
}

/// Drains a recording's queue and writes; true once its call has ended and everything is written.
fn step(slot: &mut Slot, lag: u64, settings: &RecorderSettings) -> bool {
    let mut ended = false;
    let mut ops = Vec::new();
    loop {
        match slot.job.rx.try_recv() {
            Ok(op) => ops.push(op),
            Err(tokio::sync::mpsc::error::TryRecvError::Empty) => break,
            Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => {
                ended = true;
                break;
            }
        }
    }
    let (Some(wav), None) = (slot.wav.as_mut(), slot.failure.as_ref()) else {
        return ended; // failed: keep draining so the tap never sees a full queue for nothing
    };
    let result = (|| {
        for Op::Audio { side, start, mulaw } in ops {
            let samples = mulaw::decode_all(&mulaw);
            match wav.put(side, start, &samples) {
                // One bogus timestamp must not end the recording: drop that piece only.
                Err(e @ WavError::Jump { .. }) => {
                    warn!(call_sid = %slot.job.call_sid, "audio not recorded: {e}");
                }
                other => {
                    other?;
                    slot.newest = slot.newest.max(start + samples.len() as u64);
                }
            }
        }
        wav.commit_until(slot.newest.saturating_sub(lag))?;
        if slot.last_header.elapsed() >= settings.header_every {
            wav.refresh_header()?;
            slot.last_header = Instant::now();
        }
        Ok::<(), WavError>(())
    })();
    if let Err(e) = result {
        warn!(call_sid = %slot.job.call_sid, "recording stopped: {e}");
        let _ = wav.refresh_header();
        slot.failure = Some(e.to_string());
    }
    ended
}

fn finish(mut slot: Slot, store: &StoreHandle) {
    let frames = match (slot.wav.take(), &slot.failure) {
        (Some(wav), None) => match wav.finish() {
            Ok(frames) => frames,
            Err(e) => {
                slot.failure = Some(e.to_string());
                0
            }
        },
        (Some(wav), Some(_)) => wav.committed_frames(),
        (None, _) => 0,
    };
    let dropped = slot.job.dropped.load(Ordering::Relaxed);
    let note = match (slot.failure.take(), dropped) {
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
    info!(call_sid = %slot.job.call_sid, status = %outcome.status, duration_ms = outcome.duration_ms, "recording finished");
    if let Some(id) = slot.id {
        if let Err(e) = crate::store::block_on(store.set_recording_outcome(id, outcome)) {
            warn!(call_sid = %slot.job.call_sid, "recording outcome not saved: {e}");
        }
    }
}

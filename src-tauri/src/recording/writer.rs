//! The recording writer: one thread for every recording of the running app.
//!
//! Each call's tap appends its audio to the call's [`Feed`] (a copy into a buffer that keeps its
//! capacity: no allocation, no wake-up, no syscall per frame); this thread visits each recording once
//! every [`TICK`] (at most a tenth of them at a time, spread over the tick: `staggered`),
//! swaps its feed's buffer for an empty one and does the timeline work: places the audio in the
//! recording's μ-law window, and writes out what is settled in large positioned writes. So a call
//! costs no thread, and its file about 2–3 writes a second.
//!
//! **What is settled.** The caller's audio arrives in real time and is the recording's clock; agent
//! audio arrives after it played (its mark echoed) or, cut by a barge-in, when it was cut, so it is
//! late by up to a chunk. Frames more than `commit_lag` behind the newest caller audio are settled;
//! they are written once at least `commit_every` of them are waiting. Agent audio placed ahead of the
//! caller only lengthens the window (bounded by [`MAX_WINDOW`]); audio later than the lag is patched
//! on disk (positioned read-modify-write; rare).
//!
//! **What a crash can lose.** Frames not yet on disk: at most `commit_lag + commit_every` plus one
//! tick behind the newest caller audio (0.3 + 0.4 + 0.1 s = 0.8 s with the defaults), and less than
//! [`MAX_WINDOW`] when agent audio runs ahead of the caller. The header is refreshed every
//! `header_every` (5 s); a crashed file's header may lag its data by that much, which the start-up
//! repair (`repair`) fixes from the file length, so only the unwritten window is lost.
//!
//! **Never waiting.** The library and `fsync` can each take seconds; this thread does neither. It
//! hands each recording's row, and at its end the sealed file and outcome, to `closer`.
//!
//! A file's error ends only that recording (marked incomplete); the others go on.

use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tracing::warn;

use super::closer::{CloseJob, Closer, RecordingKey};
use super::recorder_settings::RecorderSettings;
use super::staggered::{Staggered, GROUPS, GROUP_FILL};
use super::wav_writer::{Side, TimelineWav, WavError, FRAMES_PER_MS};
use crate::store::recordings::{NewRecording, STATUS_RECORDING};
use crate::store::StoreHandle;

/// How often the feeds are drained.
const TICK: Duration = Duration::from_millis(100);

/// Agent audio ahead of the caller's clock (or a call whose caller audio stopped) is held at most
/// this long before it is written anyway.
pub(super) const MAX_WINDOW: Duration = Duration::from_secs(5);

/// One piece of audio in a feed: `len` μ-law bytes of `side` from frame `start`, stored right after
/// the previous piece's bytes.
#[derive(Debug, Clone, Copy)]
struct Piece {
    side: Side,
    start: u64,
    len: u32,
}

/// Audio handed over by a tap and not yet taken by the writer.
#[derive(Default)]
struct Pending {
    pieces: Vec<Piece>,
    audio: Vec<u8>,
    /// Pieces refused because the feed was full (the writer fell behind).
    dropped: u64,
    /// The call has ended: nothing more will come.
    closed: bool,
}

/// A call's hand-over buffer between its tap (the bridge) and the writer thread. The tap copies each
/// piece in under an uncontended lock; the writer swaps the buffers out once a tick, so both sides
/// reuse the same two allocations for the whole call.
pub(super) struct Feed {
    pending: Mutex<Pending>,
    max_pieces: usize,
}

impl Feed {
    /// A feed that holds at most `max_pieces` pieces between two drains (more are dropped, counted).
    pub fn new(max_pieces: usize) -> Arc<Feed> {
        Arc::new(Feed {
            pending: Mutex::new(Pending {
                pieces: Vec::with_capacity(max_pieces.min(16)),
                // About a tick of both sides' audio.
                audio: Vec::with_capacity(2048),
                ..Pending::default()
            }),
            max_pieces: max_pieces.max(1),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds `mulaw`, a piece of `side` from frame `start` (an empty one is skipped). Never blocks on
    /// the writer: it holds the lock for a swap only.
    pub fn push(&self, side: Side, start: u64, mulaw: &[u8]) {
        let len = match u32::try_from(mulaw.len()) {
            Ok(0) | Err(_) => return,
            Ok(len) => len,
        };
        let mut p = self.lock();
        if p.pieces.len() >= self.max_pieces {
            p.dropped += 1;
            return;
        }
        // Grown by what the piece needs, not doubled: the call keeps both of its buffers for its
        // whole life, and one tick a little busier than the rest (two agent chunks heard in it)
        // doubled them for good (~3 KiB a call, heaptrack, issue 16). A tick's size soon stops
        // growing, so this reallocates a few times a call (never when the piece fits).
        p.audio.reserve_exact(mulaw.len());
        p.audio.extend_from_slice(mulaw);
        p.pieces.push(Piece { side, start, len });
    }

    /// The call ended: the writer finishes the file once it has taken what is left.
    pub fn close(&self) {
        self.lock().closed = true;
    }

    /// Swaps the pending audio into `batch` (which must be empty); true once the call has ended.
    fn take(&self, batch: &mut Pending) -> bool {
        let mut p = self.lock();
        std::mem::swap(&mut p.pieces, &mut batch.pieces);
        std::mem::swap(&mut p.audio, &mut batch.audio);
        p.closed
    }

    fn dropped(&self) -> u64 {
        self.lock().dropped
    }
}

/// A recording to start, handed over by the recorder.
pub(super) struct WriterJob {
    pub path: PathBuf,
    pub call_sid: String,
    pub started_at_ms: i64,
    pub feed: Arc<Feed>,
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
            let closer = Closer::spawn(self.store.clone()).map_err(PoolError::Spawn)?;
            let settings = self.settings.clone();
            std::thread::Builder::new()
                .name("verbio-recorder".into())
                .spawn(move || {
                    crate::thread_sched::background();
                    run(rx, closer, settings)
                })
                .map_err(PoolError::Spawn)?;
            *jobs = Some(tx);
        }
        let sender = jobs.as_ref().ok_or(PoolError::Stopped)?;
        sender.send(job).map_err(|_| PoolError::Stopped)
    }
}

/// When a recording's window is written out (all in frames).
#[derive(Debug, Clone, Copy)]
struct CommitPolicy {
    lag: u64,
    every: u64,
    max_window: u64,
}

impl CommitPolicy {
    fn new(settings: &RecorderSettings) -> Self {
        let frames = |d: Duration| d.as_millis() as u64 * FRAMES_PER_MS;
        CommitPolicy {
            lag: frames(settings.commit_lag),
            every: frames(settings.commit_every).max(1),
            max_window: frames(MAX_WINDOW.max(settings.commit_lag + settings.commit_every)),
        }
    }

    /// Frames the window holds in steady writing: the lag, a commit's worth, and a tick's arrivals.
    fn steady_window(&self) -> u64 {
        self.lag + self.every + TICK.as_millis() as u64 * FRAMES_PER_MS
    }

    /// The frame to write up to, or `None` while fewer than `every` frames are settled. `caller_end`
    /// is the end of the newest caller audio (the clock), `newest` the end of any audio.
    fn commit_to(&self, committed: u64, caller_end: u64, newest: u64) -> Option<u64> {
        let clock = caller_end.max(newest.saturating_sub(self.max_window));
        let settled = clock.saturating_sub(self.lag);
        (settled >= committed + self.every).then_some(settled)
    }
}

/// One recording being written.
struct Slot {
    job: WriterJob,
    key: RecordingKey,
    wav: Option<TimelineWav>,
    /// The feed's other buffer: empty between ticks, this tick's audio during one.
    batch: Pending,
    /// End of the newest caller audio (the recording's clock), and of any audio.
    caller_end: u64,
    newest: u64,
    last_header: Instant,
    failure: Option<String>,
}

fn run(jobs: Receiver<WriterJob>, closer: Closer, settings: RecorderSettings) {
    let policy = CommitPolicy::new(&settings);
    let mut started: RecordingKey = 0;
    // Each recording is visited once a tick, a group per slice of it (see `staggered`).
    let mut slots: Staggered<Slot> = Staggered::new(GROUPS, GROUP_FILL);
    let slice = TICK / GROUPS as u32;
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
                Ok(job) => {
                    started += 1;
                    slots.add(start(job, started, &closer, policy));
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    open = false;
                    break;
                }
            }
        }
        let (group, wait) = slots.turn();
        let mut i = 0;
        while i < group.len() {
            if step(&mut group[i], policy, &settings) {
                let slot = group.swap_remove(i);
                finish(slot, &closer);
            } else {
                i += 1;
            }
        }
        if !slots.is_empty() {
            std::thread::sleep(slice * wait);
        }
    }
}

fn start(job: WriterJob, key: RecordingKey, closer: &Closer, policy: CommitPolicy) -> Slot {
    let file_name = job
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let created = match job.path.parent() {
        Some(dir) => std::fs::create_dir_all(dir).map_err(|e| e.to_string()),
        None => Ok(()),
    }
    .and_then(|_| TimelineWav::create(&job.path).map_err(|e| e.to_string()))
    .map(|mut wav| {
        wav.reserve_window(policy.steady_window() as usize);
        wav
    });
    closer.send(CloseJob::List {
        key,
        row: NewRecording {
            call_sid: job.call_sid.clone(),
            source: "local".into(),
            file_name,
            status: STATUS_RECORDING.into(),
            started_at_ms: job.started_at_ms,
            twilio_sid: None,
        },
    });
    let (wav, failure) = match created {
        Ok(wav) => (Some(wav), None),
        Err(e) => {
            warn!(call_sid = %job.call_sid, "recording not started: {e}");
            (None, Some(format!("could not create the file: {e}")))
        }
    };
    Slot {
        job,
        key,
        wav,
        batch: Pending::default(),
        caller_end: 0,
        newest: 0,
        last_header: Instant::now(),
        failure,
    }
}

/// Takes a recording's audio and writes what is settled; true once its call has ended and
/// everything is written.
fn step(slot: &mut Slot, policy: CommitPolicy, settings: &RecorderSettings) -> bool {
    let ended = slot.job.feed.take(&mut slot.batch);
    let result = match (slot.wav.as_mut(), slot.failure.as_ref()) {
        // Failed: keep draining so the tap never sees a full feed for nothing.
        (Some(wav), None) => {
            let audio = SlotAudio {
                call_sid: &slot.job.call_sid,
                batch: &slot.batch,
                caller_end: &mut slot.caller_end,
                newest: &mut slot.newest,
                last_header: &mut slot.last_header,
            };
            place_and_commit(audio, wav, policy, settings)
        }
        _ => Ok(()),
    };
    slot.batch.pieces.clear();
    slot.batch.audio.clear();
    if let Err(e) = result {
        warn!(call_sid = %slot.job.call_sid, "recording stopped: {e}");
        if let Some(wav) = slot.wav.as_mut() {
            let _ = wav.refresh_header();
        }
        slot.failure = Some(e.to_string());
    }
    ended
}

/// The parts of a slot the placing needs, borrowed apart from its file.
struct SlotAudio<'a> {
    call_sid: &'a str,
    batch: &'a Pending,
    caller_end: &'a mut u64,
    newest: &'a mut u64,
    last_header: &'a mut Instant,
}

fn place_and_commit(
    s: SlotAudio<'_>,
    wav: &mut TimelineWav,
    policy: CommitPolicy,
    settings: &RecorderSettings,
) -> Result<(), WavError> {
    let mut at = 0;
    for piece in &s.batch.pieces {
        let audio = &s.batch.audio[at..at + piece.len as usize];
        at += piece.len as usize;
        let end = piece.start + audio.len() as u64;
        match wav.put(piece.side, piece.start, audio) {
            // One bogus timestamp must not end the recording: drop that piece only.
            Err(e @ WavError::Jump { .. }) => {
                warn!(call_sid = %s.call_sid, "audio not recorded: {e}");
            }
            other => {
                other?;
                *s.newest = (*s.newest).max(end);
                if piece.side == Side::Caller {
                    *s.caller_end = (*s.caller_end).max(end);
                }
            }
        }
    }
    if let Some(to) = policy.commit_to(wav.committed_frames(), *s.caller_end, *s.newest) {
        wav.commit_until(to)?;
    }
    if s.last_header.elapsed() >= settings.header_every {
        wav.refresh_header()?;
        *s.last_header = Instant::now();
    }
    Ok(())
}

fn finish(mut slot: Slot, closer: &Closer) {
    let patched_ms = slot
        .wav
        .as_ref()
        .map_or(0, |w| w.patched_frames() / FRAMES_PER_MS);
    // Sealed here (its last writes, no waiting for the disk); the closer syncs it.
    let (file, frames) = match (slot.wav.take(), &slot.failure) {
        (Some(wav), None) => match wav.seal() {
            Ok(sealed) => {
                let frames = sealed.frames();
                (Some(sealed), frames)
            }
            Err(e) => {
                slot.failure = Some(e.to_string());
                (None, 0)
            }
        },
        (Some(wav), Some(_)) => (None, wav.committed_frames()),
        (None, _) => (None, 0),
    };
    let dropped = slot.job.feed.dropped();
    let note = match (slot.failure.take(), dropped) {
        (Some(f), _) => Some(f),
        (None, 0) => None,
        (None, n) => Some(format!(
            "{n} pieces of audio were dropped because the disk could not keep up"
        )),
    };
    closer.send(CloseJob::Close {
        key: slot.key,
        call_sid: slot.job.call_sid,
        file,
        frames,
        note,
        patched_ms,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::mulaw;

    fn settings() -> RecorderSettings {
        RecorderSettings::default()
    }

    #[test]
    fn a_feed_hands_over_pieces_in_order_and_reuses_its_buffers() {
        let feed = Feed::new(3);
        feed.push(Side::Caller, 0, &[1, 2]);
        // Nothing to add: no piece.
        feed.push(Side::Caller, 2, &[]);
        feed.push(Side::Agent, 5, &[3]);
        let mut batch = Pending::default();
        assert!(!feed.take(&mut batch));
        let got: Vec<(Side, u64, u32)> = batch
            .pieces
            .iter()
            .map(|p| (p.side, p.start, p.len))
            .collect();
        assert_eq!(got, vec![(Side::Caller, 0, 2), (Side::Agent, 5, 1)]);
        assert_eq!(batch.audio, vec![1, 2, 3]);
        // The writer clears its batch and hands it back at the next swap: two allocations in turn.
        let mine = batch.audio.as_ptr();
        batch.pieces.clear();
        batch.audio.clear();
        feed.push(Side::Caller, 8, &[4]);
        assert!(!feed.take(&mut batch));
        batch.pieces.clear();
        batch.audio.clear();
        feed.push(Side::Caller, 9, &[5]);
        assert_eq!(
            feed.lock().audio.as_ptr(),
            mine,
            "the first buffer is back in use"
        );
        assert!(!feed.take(&mut batch));
        assert_eq!(batch.audio, vec![5]);
    }

    #[test]
    fn a_busier_tick_grows_a_feed_to_its_size_not_to_twice_it() {
        let feed = Feed::new(256);
        let mut batch = Pending::default();
        // Ticks of caller frames and agent chunks (1.6 KB), and every fifth one a chunk more.
        for tick in 0..50u64 {
            let chunks = if tick % 5 == 4 { 3 } else { 1 };
            for i in 0..5 {
                feed.push(Side::Caller, tick * 800 + i * 160, &[0x55; 160]);
            }
            for i in 0..chunks {
                feed.push(Side::Agent, tick * 800 + i * 800, &[0x66; 800]);
            }
            assert!(!feed.take(&mut batch));
            assert_eq!(batch.audio.len(), 800 + chunks as usize * 800);
            // The busiest tick is 3,200 bytes; doubling from 2,048 made both buffers 4,096.
            assert!(batch.audio.capacity() <= 3200, "{}", batch.audio.capacity());
            batch.pieces.clear();
            batch.audio.clear();
        }
    }

    #[test]
    fn a_full_feed_drops_and_counts_and_a_closed_one_says_so() {
        let feed = Feed::new(2);
        for i in 0..5 {
            feed.push(Side::Caller, i * 160, &[0x55; 160]);
        }
        assert_eq!(feed.dropped(), 3);
        let mut batch = Pending::default();
        assert!(!feed.take(&mut batch));
        assert_eq!(batch.pieces.len(), 2);
        feed.close();
        batch.pieces.clear();
        batch.audio.clear();
        assert!(feed.take(&mut batch));
        assert!(batch.pieces.is_empty());
    }

    #[test]
    fn the_commit_point_follows_the_caller_clock_in_large_steps() {
        let p = CommitPolicy::new(&settings());
        let (lag, every) = (300 * FRAMES_PER_MS, 400 * FRAMES_PER_MS);
        assert_eq!((p.lag, p.every), (lag, every));
        // Not enough settled yet.
        assert_eq!(p.commit_to(0, lag + every - 1, 0), None);
        assert_eq!(p.commit_to(0, lag + every, 0), Some(every));
        // Agent audio ahead of the caller does not move the clock (it waits in memory)...
        assert_eq!(p.commit_to(0, 1000, 40_000), None);
        // ...unless it runs further ahead than the window may hold, or the caller went quiet.
        let max = MAX_WINDOW.as_millis() as u64 * FRAMES_PER_MS;
        assert_eq!(
            p.commit_to(0, 0, max + lag + every),
            Some(every),
            "a call without caller audio still gets written"
        );
        assert_eq!(p.commit_to(10_000, 12_000, 12_000), None);
    }

    /// A recording driven like the writer does: the test is the bridge's tap and the clock.
    struct Rig {
        feed: Arc<Feed>,
        batch: Pending,
        caller_end: u64,
        newest: u64,
        last_header: Instant,
        wav: TimelineWav,
        policy: CommitPolicy,
        settings: RecorderSettings,
        writes: usize,
    }

    impl Rig {
        fn new(path: &std::path::Path) -> Rig {
            let settings = settings();
            Rig {
                feed: Feed::new(settings.queue_len),
                batch: Pending::default(),
                caller_end: 0,
                newest: 0,
                last_header: Instant::now(),
                wav: TimelineWav::create(path).unwrap(),
                policy: CommitPolicy::new(&settings),
                settings,
                writes: 0,
            }
        }

        fn push(&self, side: Side, start: u64, audio: &[u8]) {
            self.feed.push(side, start, audio);
        }

        fn tick(&mut self) {
            let before = self.wav.committed_frames();
            self.feed.take(&mut self.batch);
            let s = SlotAudio {
                call_sid: "CAtest",
                batch: &self.batch,
                caller_end: &mut self.caller_end,
                newest: &mut self.newest,
                last_header: &mut self.last_header,
            };
            place_and_commit(s, &mut self.wav, self.policy, &self.settings).unwrap();
            self.batch.pieces.clear();
            self.batch.audio.clear();
            if self.wav.committed_frames() != before {
                self.writes += 1;
            }
        }
    }

    /// μ-law of a recognisable, non-silent value for frame `f` of a side.
    fn caller_byte(f: u64) -> u8 {
        (f % 100) as u8
    }
    fn agent_byte(f: u64) -> u8 {
        0x80 | (f % 100) as u8
    }

    #[test]
    fn a_call_with_early_late_cut_and_missing_audio_is_exact_and_never_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("call.wav");
        let mut rig = Rig::new(&path);
        // 6 s of call in 100 ms ticks; caller frames of 20 ms (160 frames) at their positions, with
        // 200 ms missing (Twilio sent nothing: silence on the caller's side).
        let frame = 160u64;
        let mut expect = vec![[0i16; 2]; 6 * 8000];
        let gap = 2000 * FRAMES_PER_MS..2200 * FRAMES_PER_MS;
        for t in 0..60u64 {
            for f in 0..5 {
                let start = (t * 5 + f) * frame;
                if gap.contains(&start) {
                    continue;
                }
                let audio: Vec<u8> = (start..start + frame).map(caller_byte).collect();
                rig.push(Side::Caller, start, &audio);
                for i in start..start + frame {
                    expect[i as usize][0] = mulaw::decode(caller_byte(i));
                }
            }
            let agent = |rig: &Rig, expect: &mut [[i16; 2]], from: u64, to: u64| {
                let audio: Vec<u8> = (from..to).map(agent_byte).collect();
                rig.push(Side::Agent, from, &audio);
                for i in from..to {
                    expect[i as usize][1] = mulaw::decode(agent_byte(i));
                }
            };
            match t {
                // Agent chunks of 100 ms echoed after they played: placed 100–250 ms in the past.
                10..=19 => {
                    let from = t * 800 - 1200;
                    agent(&rig, &mut expect, from, from + 800);
                }
                // Audio placed ahead of the caller's clock (operator audio scheduled to play).
                30 => agent(&rig, &mut expect, 31 * 800, 34 * 800),
                // A barge-in: the heard part of the chunk that was cut, placed where it started.
                40 => agent(&rig, &mut expect, 39 * 800 + 100, 39 * 800 + 500),
                _ => {}
            }
            rig.tick();
            // Between commits the file only ever holds what is settled.
            assert!(
                rig.wav.committed_frames() + rig.policy.lag <= rig.caller_end.max(rig.policy.lag)
            );
        }
        assert_eq!(
            rig.wav.patched_frames(),
            0,
            "nothing arrived for frames on disk"
        );
        // 6 s of audio in writes of at least 400 ms: at most 15 (one every 0.4 s of call).
        assert!(rig.writes <= 15, "{} writes", rig.writes);
        assert!(rig.writes >= 10, "{} writes", rig.writes);
        let Rig { wav, .. } = rig;
        assert_eq!(wav.finish().unwrap(), 6 * 8000);
        let mut r = hound::WavReader::open(&path).unwrap();
        let s: Vec<i16> = r.samples::<i16>().map(|s| s.unwrap()).collect();
        let got: Vec<[i16; 2]> = s.chunks(2).map(|c| [c[0], c[1]]).collect();
        for (i, (g, e)) in got.iter().zip(&expect).enumerate() {
            assert_eq!(g, e, "frame {i}");
        }
        assert_eq!(got.len(), expect.len());
    }

    #[test]
    fn audio_later_than_the_lag_is_patched_on_disk_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("late.wav");
        let mut rig = Rig::new(&path);
        for t in 0..20u64 {
            let audio: Vec<u8> = (t * 800..(t + 1) * 800).map(caller_byte).collect();
            rig.push(Side::Caller, t * 800, &audio);
            rig.tick();
        }
        assert!(rig.wav.committed_frames() >= 800);
        // A second late: frames 0..400 are long on disk.
        rig.push(Side::Agent, 0, &[0x90; 400]);
        rig.tick();
        assert_eq!(rig.wav.patched_frames(), 400);
        let Rig { wav, .. } = rig;
        wav.finish().unwrap();
        let mut r = hound::WavReader::open(&path).unwrap();
        let s: Vec<i16> = r.samples::<i16>().map(|s| s.unwrap()).collect();
        for (i, c) in s.chunks(2).enumerate() {
            let agent = if i < 400 { mulaw::decode(0x90) } else { 0 };
            assert_eq!(
                [c[0], c[1]],
                [mulaw::decode(caller_byte(i as u64)), agent],
                "frame {i}"
            );
        }
    }

    /// Polls `done` until it holds or `within` passes; true if it held.
    fn eventually(within: Duration, mut done: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if done() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        done()
    }

    /// The writer never waits for the library or the disk. With the library locked by another
    /// connection (as a backup tool, or a long checkpoint, holds it) while one recording starts and
    /// another ends, a live recording's feed is still drained every tick; once the library is free,
    /// every row is there with its outcome. When the writer listed and closed recordings itself, one
    /// such wait stalled every live recording until their feeds overflowed (issue 16).
    #[test]
    fn a_locked_library_never_stops_the_writer_draining_live_recordings() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("verbio.sqlite3");
        let store = StoreHandle::open(&db).unwrap();
        let settings = RecorderSettings {
            queue_len: 8,
            ..settings()
        };
        let pool = WriterPool::new(store.clone(), settings.clone());
        let job = |sid: &str| {
            let feed = Feed::new(settings.queue_len);
            let job = WriterJob {
                path: dir.path().join(format!("{sid}.wav")),
                call_sid: sid.into(),
                started_at_ms: 1,
                feed: feed.clone(),
            };
            (job, feed)
        };
        let rows = |sid: &str| crate::store::block_on(store.recordings_for_call(sid)).unwrap();
        let (live_job, live) = job("CAlive");
        let (ending_job, ending) = job("CAending");
        pool.add(live_job).unwrap();
        pool.add(ending_job).unwrap();
        assert!(eventually(Duration::from_secs(10), || rows("CAending")
            .len()
            == 1));

        let lock = rusqlite::Connection::open(&db).unwrap();
        lock.execute_batch("BEGIN IMMEDIATE").unwrap();
        let (starting_job, _starting) = job("CAstarting");
        pool.add(starting_job).unwrap();
        ending.close();
        // Ten ticks' worth, each drained before the next (the library's busy timeout is 5 s).
        for i in 0..10u64 {
            live.push(Side::Caller, i * 160, &[0x55; 160]);
            assert!(
                eventually(Duration::from_secs(2), || live.lock().pieces.is_empty()),
                "piece {i} not taken while the library was locked"
            );
        }
        lock.execute_batch("COMMIT").unwrap();
        drop(lock);
        live.close();

        let finished = |sid: &str| {
            let r = rows(sid);
            (r.len() == 1 && r[0].status != STATUS_RECORDING).then(|| r[0].clone())
        };
        assert!(eventually(Duration::from_secs(10), || {
            finished("CAlive").is_some() && finished("CAending").is_some()
        }));
        let live_row = finished("CAlive").unwrap();
        assert_eq!(
            (
                live_row.status.as_str(),
                live_row.duration_ms,
                live_row.note
            ),
            ("complete", 200, None),
            "every piece written, none dropped"
        );
        assert_eq!(finished("CAending").unwrap().status, "complete");
        let starting = rows("CAstarting");
        assert_eq!(starting.len(), 1, "listed once the library was free");
        assert_eq!(starting[0].status, STATUS_RECORDING, "its call goes on");
    }
}

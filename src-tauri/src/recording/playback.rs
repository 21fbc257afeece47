//! Playing a recording through the speakers: play, pause, seek, stop, channel choice, position events.
//!
//! One playback at a time (a desktop app has one pair of speakers). The file is checked with `hound`
//! (header, format, every announced sample present) before anything opens the device, so a damaged
//! file is a clear error, not a noise burst. It is then streamed: a reader thread keeps a 4 s ring
//! filled ahead of the playhead, so an hour-long recording costs 128 KiB, not 115 MB.

use std::path::Path;
use std::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tracing::warn;

use super::speaker::{self, Source, Speaker, SpeakerError};
use super::wav_reader::{self, StereoReader, WavReadError};
use super::wav_writer::FRAMES_PER_MS;

/// Which side(s) to hear.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelChoice {
    #[default]
    Both,
    Caller,
    Agent,
}

/// What the UI hears about playback.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PlaybackEvent {
    Position {
        recording_id: i64,
        position_ms: u64,
        duration_ms: u64,
        paused: bool,
    },
    Finished {
        recording_id: i64,
    },
    Stopped {
        recording_id: i64,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum PlaybackError {
    #[error(transparent)]
    File(#[from] WavReadError),
    #[error(transparent)]
    Speaker(#[from] SpeakerError),
    #[error("nothing is playing")]
    NotPlaying,
}

/// Frames the ring holds around the playhead (2^15 ≈ 4.1 s, 128 KiB): all of a recording that is in
/// memory at once, however long the file.
const RING_FRAMES: u64 = 1 << 15;
/// The reader tops the ring up once this much has room (0.5 s per read).
const REFILL_FRAMES: u64 = wav_reader::BLOCK_FRAMES as u64;
/// How long the reader thread naps with a full ring (a seek wakes it at once).
const IDLE: Duration = Duration::from_millis(50);

/// A single-producer single-consumer window of the file, lock-free: file frame `f` lives in slot
/// `f % RING_FRAMES` (both sides packed in a `u32`). The reader thread writes; the audio callback
/// only loads atomics, so it never waits for the disk or a lock.
///
/// Frames `start..end` are valid. Going forward the reader raises `start` (before it overwrites
/// the slots of older frames), then publishes the new frames by raising `end`; a seek outside the
/// window restarts it at the new playhead and bumps `epoch`. The callback checks, after reading,
/// that neither happened to what it read (the seqlock pattern), and plays silence otherwise.
struct Ring {
    slots: Box<[AtomicU32]>,
    start: AtomicU64,
    end: AtomicU64,
    epoch: AtomicU64,
}

impl Ring {
    fn new() -> Self {
        Ring {
            slots: (0..RING_FRAMES).map(|_| AtomicU32::new(0)).collect(),
            start: AtomicU64::new(0),
            end: AtomicU64::new(0),
            epoch: AtomicU64::new(0),
        }
    }

    fn slot(&self, frame: u64) -> &AtomicU32 {
        &self.slots[(frame % RING_FRAMES) as usize]
    }
}

fn pack([l, r]: [i16; 2]) -> u32 {
    (l as u16 as u32) | ((r as u16 as u32) << 16)
}

fn unpack(v: u32) -> [i16; 2] {
    [v as u16 as i16, (v >> 16) as u16 as i16]
}

/// The state the audio thread, the reader thread and the controls share (lock-free).
struct Shared {
    /// The file's length in frames.
    frames: u64,
    /// The next frame to play.
    pos: AtomicU64,
    /// Where playing ends: `frames`, or where reading the file failed (reset by a seek).
    playable: AtomicU64,
    paused: AtomicBool,
    channel: AtomicU8,
    done: AtomicBool,
    ring: Ring,
    /// Audio callbacks that found the ring behind the playhead (silence instead of audio).
    underruns: AtomicU64,
    stop: AtomicBool,
}

impl Shared {
    fn new(frames: u64, channel: ChannelChoice) -> Self {
        Shared {
            frames,
            pos: AtomicU64::new(0),
            playable: AtomicU64::new(frames),
            paused: AtomicBool::new(false),
            channel: AtomicU8::new(channel_code(channel)),
            done: AtomicBool::new(false),
            ring: Ring::new(),
            underruns: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        }
    }

    fn channel(&self) -> ChannelChoice {
        match self.channel.load(Ordering::Relaxed) {
            1 => ChannelChoice::Caller,
            2 => ChannelChoice::Agent,
            _ => ChannelChoice::Both,
        }
    }
}

fn channel_code(c: ChannelChoice) -> u8 {
    match c {
        ChannelChoice::Both => 0,
        ChannelChoice::Caller => 1,
        ChannelChoice::Agent => 2,
    }
}

/// One output sample of a frame for the chosen side(s).
fn mix([l, r]: [i16; 2], channel: ChannelChoice) -> f32 {
    let (l, r) = (l as f32 / 32768.0, r as f32 / 32768.0);
    match channel {
        ChannelChoice::Both => l + r,
        ChannelChoice::Caller => l,
        ChannelChoice::Agent => r,
    }
}

/// The audio callback's side: plays what the ring holds at the playhead, silence where it holds
/// nothing yet (the playhead then waits for the reader instead of skipping audio).
struct FileSource(Arc<Shared>);

impl Source for FileSource {
    fn fill(&mut self, out: &mut [f32]) {
        let s = &self.0;
        if s.paused.load(Ordering::Relaxed) || s.done.load(Ordering::Relaxed) {
            out.fill(0.0);
            return;
        }
        let channel = s.channel();
        let ring = &s.ring;
        let from = s.pos.load(Ordering::Acquire);
        let playable = s.playable.load(Ordering::Acquire);
        let epoch = ring.epoch.load(Ordering::Acquire);
        let start = ring.start.load(Ordering::Acquire);
        let end = ring.end.load(Ordering::Acquire).min(playable);
        let ready = if (start..end).contains(&from) {
            (end - from).min(out.len() as u64) as usize
        } else {
            0
        };
        for (k, slot) in out[..ready].iter_mut().enumerate() {
            *slot = mix(
                unpack(ring.slot(from + k as u64).load(Ordering::Relaxed)),
                channel,
            );
        }
        // Still valid if the reader neither restarted the window nor overwrote what was read.
        fence(Ordering::Acquire);
        let valid = ring.epoch.load(Ordering::Relaxed) == epoch
            && ring.start.load(Ordering::Relaxed) <= from;
        let played = if valid { ready } else { 0 };
        out[played..].fill(0.0);
        if from >= playable {
            s.done.store(true, Ordering::Relaxed);
            return;
        }
        if played < out.len() && from + (played as u64) < playable {
            s.underruns.fetch_add(1, Ordering::Relaxed);
        }
        let to = from + played as u64;
        // A seek meanwhile wins over this advance.
        if played > 0
            && s.pos
                .compare_exchange(from, to, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            && to >= playable
        {
            s.done.store(true, Ordering::Relaxed);
        }
    }
}

/// What one step of the reader did.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// Read or re-aimed: there may be more to do at once.
    Worked,
    /// The ring is full enough (or reading failed until the next seek): nap.
    Idle,
}

/// The reader thread's side: keeps the ring filled ahead of the playhead from the open file.
struct Feeder {
    shared: Arc<Shared>,
    reader: StereoReader,
    block: Vec<[i16; 2]>,
    /// A read failed: nothing more is read until a seek (which resets `playable`).
    failed: bool,
    /// The file position is not known (after a failed read): the next read seeks first.
    reseek: bool,
}

impl Feeder {
    fn new(shared: Arc<Shared>, reader: StereoReader) -> Self {
        Feeder {
            shared,
            reader,
            block: vec![[0; 2]; REFILL_FRAMES as usize],
            failed: false,
            reseek: false,
        }
    }

    fn step(&mut self) -> Step {
        let s = self.shared.clone();
        let ring = &s.ring;
        if self.failed {
            if s.playable.load(Ordering::Acquire) < s.frames {
                return Step::Idle;
            }
            self.failed = false;
        }
        // After `playable`: a seek stores the playhead first.
        let pos = s.pos.load(Ordering::Acquire).min(s.frames);
        // Only this thread stores these.
        let (start, end) = (
            ring.start.load(Ordering::Relaxed),
            ring.end.load(Ordering::Relaxed),
        );
        if !(start..=end).contains(&pos) {
            // A seek outside the window: start again at the playhead.
            ring.start.store(pos, Ordering::Relaxed);
            ring.end.store(pos, Ordering::Relaxed);
            ring.epoch.fetch_add(1, Ordering::Release);
            fence(Ordering::Release);
            return Step::Worked;
        }
        let limit = (pos + RING_FRAMES).min(s.frames);
        let room = limit.saturating_sub(end);
        if room == 0 || (room < REFILL_FRAMES && limit < s.frames) {
            return Step::Idle;
        }
        let n = room.min(REFILL_FRAMES) as usize;
        let read = if self.reseek || self.reader.position() != end {
            self.reader.seek(end)
        } else {
            Ok(())
        }
        .and_then(|()| self.reader.read(&mut self.block[..n]));
        let got = match read {
            Ok(got) if got > 0 => got as u64,
            other => {
                if let Err(e) = other {
                    warn!("playback stops early: {e}");
                }
                // Play what the ring holds, then end there (a seek tries again).
                self.failed = true;
                self.reseek = true;
                s.playable.store(end, Ordering::Release);
                return Step::Idle;
            }
        };
        self.reseek = false;
        let new_end = end + got;
        let new_start = start.max(new_end.saturating_sub(RING_FRAMES));
        if new_start != start {
            // Published before the slots of frames older than `new_start` are overwritten.
            ring.start.store(new_start, Ordering::Relaxed);
            fence(Ordering::Release);
        }
        for (k, frame) in self.block[..got as usize].iter().enumerate() {
            ring.slot(end + k as u64)
                .store(pack(*frame), Ordering::Relaxed);
        }
        ring.end.store(new_end, Ordering::Release);
        Step::Worked
    }

    /// Steps until the ring is full (or reading failed).
    fn fill_up(&mut self) {
        while self.step() == Step::Worked {}
    }
}

/// The reader thread; stops (and closes the file) when dropped.
struct FeederThread {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FeederThread {
    fn spawn(mut feeder: Feeder) -> Result<Self, PlaybackError> {
        let shared = feeder.shared.clone();
        let thread = std::thread::Builder::new()
            .name("verbio-playback-reader".into())
            .spawn(move || {
                while !feeder.shared.stop.load(Ordering::Relaxed) {
                    if feeder.step() == Step::Idle {
                        std::thread::park_timeout(IDLE);
                    }
                }
            })
            .map_err(|e| {
                SpeakerError::Unusable(format!("cannot start the playback reader thread: {e}"))
            })?;
        Ok(FeederThread {
            shared,
            thread: Some(thread),
        })
    }

    fn wake(&self) {
        if let Some(t) = &self.thread {
            t.thread().unpark();
        }
    }
}

impl Drop for FeederThread {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

struct Active {
    recording_id: i64,
    shared: Arc<Shared>,
    _speaker: Speaker,
    ticker: tokio::task::JoinHandle<()>,
    /// Dropped after the speaker: the reader thread stops and the file closes.
    feeder: FeederThread,
}

/// The app's one player.
pub struct Player {
    active: Mutex<Option<Active>>,
    events: broadcast::Sender<PlaybackEvent>,
}

impl Default for Player {
    fn default() -> Self {
        Player {
            active: Mutex::new(None),
            events: broadcast::channel(256).0,
        }
    }
}

/// Where playback stands.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlaybackState {
    pub recording_id: i64,
    pub position_ms: u64,
    pub duration_ms: u64,
    pub paused: bool,
    pub channel: ChannelChoice,
}

impl Player {
    pub fn subscribe(&self) -> broadcast::Receiver<PlaybackEvent> {
        self.events.subscribe()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Active>> {
        self.active.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts playing `path` (stopping whatever played before). Needs a tokio runtime for the
    /// position events. Blocks: checks the file and reads its first seconds, opens the device (up
    /// to 10 s) and joins the previous output's thread, so async code calls it on a blocking thread
    /// (as the library does). The file stays open and is read ahead of the playhead on a reader
    /// thread into a ring of `RING_FRAMES` frames; the audio callback only reads the ring.
    pub fn play(
        &self,
        recording_id: i64,
        path: &Path,
        device: Option<&str>,
        channel: ChannelChoice,
    ) -> Result<PlaybackState, PlaybackError> {
        let reader = StereoReader::open(path)?;
        self.stop_active();
        let shared = Arc::new(Shared::new(reader.frames(), channel));
        let mut feeder = Feeder::new(shared.clone(), reader);
        // The first seconds are there before the device asks for them.
        feeder.fill_up();
        let feeder = FeederThread::spawn(feeder)?;
        let speaker = speaker::open(device, Box::new(FileSource(shared.clone())))?;
        let ticker = tokio::spawn(tick_positions(
            recording_id,
            shared.clone(),
            self.events.clone(),
        ));
        let state = state_of(recording_id, &shared);
        *self.lock() = Some(Active {
            recording_id,
            shared,
            _speaker: speaker,
            ticker,
            feeder,
        });
        Ok(state)
    }

    fn with_active<T>(&self, f: impl FnOnce(&Active) -> T) -> Result<T, PlaybackError> {
        self.lock().as_ref().map(f).ok_or(PlaybackError::NotPlaying)
    }

    pub fn pause(&self, paused: bool) -> Result<PlaybackState, PlaybackError> {
        self.with_active(|a| {
            a.shared.paused.store(paused, Ordering::Relaxed);
            state_of(a.recording_id, &a.shared)
        })
    }

    pub fn seek(&self, position_ms: u64) -> Result<PlaybackState, PlaybackError> {
        self.with_active(|a| {
            seek_to(&a.shared, position_ms);
            a.feeder.wake();
            state_of(a.recording_id, &a.shared)
        })
    }

    pub fn set_channel(&self, channel: ChannelChoice) -> Result<PlaybackState, PlaybackError> {
        self.with_active(|a| {
            a.shared
                .channel
                .store(channel_code(channel), Ordering::Relaxed);
            state_of(a.recording_id, &a.shared)
        })
    }

    pub fn state(&self) -> Option<PlaybackState> {
        self.lock()
            .as_ref()
            .map(|a| state_of(a.recording_id, &a.shared))
    }

    /// The recording playing now, if any.
    pub fn playing(&self) -> Option<i64> {
        self.lock().as_ref().map(|a| a.recording_id)
    }

    /// Stops playback; closes the device (blocks while its thread is joined).
    pub fn stop(&self) -> Result<(), PlaybackError> {
        if self.stop_active() {
            Ok(())
        } else {
            Err(PlaybackError::NotPlaying)
        }
    }

    /// Stops playback if `recording_id` is what plays (blocks like [`Player::stop`]); true if it did.
    pub fn stop_if_playing(&self, recording_id: i64) -> bool {
        let active = {
            let mut guard = self.lock();
            match guard.as_ref() {
                Some(a) if a.recording_id == recording_id => guard.take(),
                _ => None,
            }
        };
        self.end(active)
    }

    fn stop_active(&self) -> bool {
        let active = self.lock().take();
        self.end(active)
    }

    /// Ends a taken playback outside the lock: the ticker stops, the device closes.
    fn end(&self, active: Option<Active>) -> bool {
        match active {
            Some(a) => {
                a.ticker.abort();
                let _ = self.events.send(PlaybackEvent::Stopped {
                    recording_id: a.recording_id,
                });
                true
            }
            None => false,
        }
    }
}

/// Moves the playhead; a seek before the end after `Finished` plays again (the ticker reports it).
fn seek_to(s: &Shared, position_ms: u64) {
    let frame = position_ms.saturating_mul(FRAMES_PER_MS).min(s.frames);
    s.pos.store(frame, Ordering::Release);
    // A failed read ended playback early; a seek tries again (the reader re-opens its window).
    s.playable.store(s.frames, Ordering::Release);
    s.done.store(frame >= s.frames, Ordering::Relaxed);
}

/// Position events every 100 ms from play until stop (which aborts this task). Reaching the end
/// sends `Finished` once; a seek back afterwards resumes playback and the positions keep coming, and
/// reaching the end again sends another `Finished`.
async fn tick_positions(
    recording_id: i64,
    shared: Arc<Shared>,
    events: broadcast::Sender<PlaybackEvent>,
) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut finished = false;
    loop {
        tick.tick().await;
        let s = &shared;
        let done = s.done.load(Ordering::Relaxed);
        let _ = events.send(PlaybackEvent::Position {
            recording_id,
            position_ms: s.pos.load(Ordering::Relaxed) / FRAMES_PER_MS,
            duration_ms: s.frames / FRAMES_PER_MS,
            paused: s.paused.load(Ordering::Relaxed),
        });
        if done && !finished {
            let _ = events.send(PlaybackEvent::Finished { recording_id });
        }
        finished = done;
    }
}

fn state_of(recording_id: i64, s: &Shared) -> PlaybackState {
    PlaybackState {
        recording_id,
        position_ms: s.pos.load(Ordering::Relaxed) / FRAMES_PER_MS,
        duration_ms: s.frames / FRAMES_PER_MS,
        paused: s.paused.load(Ordering::Relaxed),
        channel: s.channel(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::wav_reader::tests::{read_whole, write_test_wav};

    /// A playback of a generated WAV (its reader not on a thread: the tests step it).
    struct Setup {
        _dir: tempfile::TempDir,
        path: std::path::PathBuf,
        shared: Arc<Shared>,
        feeder: Feeder,
        /// The frames the file holds.
        whole: Vec<[i16; 2]>,
    }

    fn setup(frames: u32, channel: ChannelChoice) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.wav");
        write_test_wav(&path, 2, frames);
        let whole = read_whole(&path).unwrap();
        let reader = StereoReader::open(&path).unwrap();
        let shared = Arc::new(Shared::new(reader.frames(), channel));
        let feeder = Feeder::new(shared.clone(), reader);
        Setup {
            _dir: dir,
            path,
            shared,
            feeder,
            whole,
        }
    }

    fn shared(frames: u32) -> (Arc<Shared>, Feeder) {
        let mut t = setup(frames, ChannelChoice::Both);
        t.feeder.fill_up();
        (t.shared, t.feeder)
    }

    fn mixed(frames: &[[i16; 2]], channel: ChannelChoice) -> Vec<f32> {
        frames.iter().map(|f| mix(*f, channel)).collect()
    }

    /// One audio callback of `n` samples: what it played (the playhead's advance) and the rest.
    fn callback(source: &mut FileSource, n: usize) -> (Vec<f32>, Vec<f32>) {
        let before = source.0.pos.load(Ordering::Relaxed);
        let mut out = vec![f32::NAN; n];
        source.fill(&mut out);
        let played = (source.0.pos.load(Ordering::Relaxed) - before) as usize;
        let rest = out.split_off(played);
        (out, rest)
    }

    #[test]
    fn streamed_output_is_the_file_sample_for_sample_on_each_channel() {
        for channel in [
            ChannelChoice::Both,
            ChannelChoice::Caller,
            ChannelChoice::Agent,
        ] {
            // Three rings long, and not a whole number of reads.
            let t = setup(3 * RING_FRAMES as u32 + 1234, channel);
            let expected = mixed(&t.whole, channel);
            // The reader on its own thread, the callback as fast as it can go (much faster than
            // real time, so it also runs into the reader and gets silence without advancing).
            let mut feeder = t.feeder;
            feeder.fill_up();
            let thread = FeederThread::spawn(feeder).unwrap();
            let mut source = FileSource(t.shared.clone());
            let mut heard = Vec::with_capacity(expected.len());
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            while !t.shared.done.load(Ordering::Relaxed) {
                assert!(std::time::Instant::now() < deadline, "playback never ended");
                let (played, rest) = callback(&mut source, 80);
                assert!(
                    rest.iter().all(|s| *s == 0.0),
                    "silence where nothing was ready"
                );
                if played.len() < 80 {
                    // Caught up with the reader: no need to wait for its nap to end.
                    thread.wake();
                }
                heard.extend(played);
                std::thread::yield_now();
            }
            drop(thread);
            assert_eq!(heard.len(), expected.len(), "{channel:?}");
            assert!(heard == expected, "{channel:?}: streamed samples differ");
        }
    }

    #[test]
    fn seeks_land_on_the_frame_inside_and_outside_the_ring_and_channels_switch() {
        let mut t = setup(100_000, ChannelChoice::Both);
        t.feeder.fill_up();
        let s = t.shared.clone();
        let mut source = FileSource(s.clone());
        let both = |from: usize, n: usize| mixed(&t.whole[from..from + n], ChannelChoice::Both);
        // Inside what the ring holds: plays at once from the exact frame.
        seek_to(&s, 1234);
        assert_eq!(callback(&mut source, 3), (both(9872, 3), vec![]));
        // Far ahead: silence (the playhead waits) until the reader has been there.
        seek_to(&s, 10_001);
        let (played, rest) = callback(&mut source, 80);
        assert!(played.is_empty() && rest.iter().all(|x| *x == 0.0));
        assert_eq!(s.pos.load(Ordering::Relaxed), 80_008);
        assert!(s.underruns.load(Ordering::Relaxed) > 0);
        t.feeder.fill_up();
        assert_eq!(callback(&mut source, 80), (both(80_008, 80), vec![]));
        // Back to the start (outside the window again), then each side alone.
        seek_to(&s, 0);
        t.feeder.fill_up();
        assert_eq!(callback(&mut source, 5), (both(0, 5), vec![]));
        s.channel
            .store(channel_code(ChannelChoice::Agent), Ordering::Relaxed);
        assert_eq!(
            callback(&mut source, 5).0,
            mixed(&t.whole[5..10], ChannelChoice::Agent)
        );
        s.channel
            .store(channel_code(ChannelChoice::Caller), Ordering::Relaxed);
        assert_eq!(
            callback(&mut source, 5).0,
            mixed(&t.whole[10..15], ChannelChoice::Caller)
        );
        // Paused: silence, the playhead stays.
        s.paused.store(true, Ordering::Relaxed);
        let mut out = [1f32; 8];
        source.fill(&mut out);
        assert_eq!((out, s.pos.load(Ordering::Relaxed)), ([0f32; 8], 15));
        s.paused.store(false, Ordering::Relaxed);
        s.channel
            .store(channel_code(ChannelChoice::Both), Ordering::Relaxed);
        // The last frames, then done.
        seek_to(&s, 12_499);
        t.feeder.fill_up();
        let (played, rest) = callback(&mut source, 10);
        assert_eq!(played, both(99_992, 8));
        assert_eq!(rest, vec![0.0; 2]);
        assert!(s.done.load(Ordering::Relaxed));
    }

    #[test]
    fn a_file_cut_while_playing_plays_what_was_read_then_finishes() {
        let mut t = setup(100_000, ChannelChoice::Caller);
        t.feeder.fill_up();
        // Cut to 50 000 frames (44-byte header) after the first 4 s were read.
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&t.path)
            .unwrap();
        file.set_len(44 + 50_000 * 4).unwrap();
        let s = t.shared.clone();
        let mut source = FileSource(s.clone());
        let mut heard = Vec::new();
        for _ in 0..10_000 {
            if s.done.load(Ordering::Relaxed) {
                break;
            }
            t.feeder.fill_up();
            heard.extend(callback(&mut source, 80).0);
        }
        assert!(
            s.done.load(Ordering::Relaxed),
            "finished instead of waiting forever"
        );
        // Every whole read before the cut was played, and nothing else.
        assert!(
            (RING_FRAMES as usize..=50_000).contains(&heard.len()),
            "{}",
            heard.len()
        );
        assert_eq!(heard, mixed(&t.whole[..heard.len()], ChannelChoice::Caller));
        // A seek tries again: what is there plays.
        seek_to(&s, 1000);
        t.feeder.fill_up();
        assert_eq!(
            callback(&mut source, 4).0,
            mixed(&t.whole[8000..8004], ChannelChoice::Caller)
        );
    }

    /// The next event (the ticker runs on this test's one thread, only while the test awaits).
    async fn next(rx: &mut broadcast::Receiver<PlaybackEvent>) -> PlaybackEvent {
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("an event within 5 s")
            .expect("event")
    }

    /// Plays the source to its end the way the audio thread would (device-free), the reader
    /// keeping up between callbacks.
    fn play_out(s: &Arc<Shared>, feeder: &mut Feeder) {
        let mut source = FileSource(s.clone());
        let mut buf = [0f32; 80];
        while !s.done.load(Ordering::Relaxed) {
            feeder.fill_up();
            source.fill(&mut buf);
        }
    }

    #[tokio::test]
    async fn seeking_after_finished_keeps_position_events_coming() {
        let (s, mut feeder) = shared(8 * 500); // 500 ms
        let (events, mut rx) = broadcast::channel(64);
        let ticker = tokio::spawn(tick_positions(7, s.clone(), events));
        assert!(matches!(
            next(&mut rx).await,
            PlaybackEvent::Position {
                position_ms: 0,
                duration_ms: 500,
                ..
            }
        ));
        play_out(&s, &mut feeder);
        // Finished once, then positions at the end (the ticker did not exit).
        let mut finished = 0;
        for _ in 0..6 {
            match next(&mut rx).await {
                PlaybackEvent::Finished { recording_id: 7 } => finished += 1,
                PlaybackEvent::Position { position_ms, .. } => {
                    assert_eq!(position_ms, 500)
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(finished, 1, "one Finished per end reached");
        // Seek back: playback resumes and position events report it.
        seek_to(&s, 100);
        assert!(
            !s.done.load(Ordering::Relaxed),
            "playing again after the seek"
        );
        let mut source = FileSource(s.clone());
        feeder.fill_up();
        source.fill(&mut [0f32; 8 * 50]);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let positions: Vec<u64> = loop {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no position events after seeking back"
            );
            let mut seen = Vec::new();
            while let Ok(e) = rx.try_recv() {
                if let PlaybackEvent::Position { position_ms, .. } = e {
                    seen.push(position_ms);
                }
            }
            if let Some(&p) = seen.last() {
                if p < 500 {
                    break seen;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(positions.last(), Some(&150), "{positions:?}");
        // Reaching the end again is reported again.
        play_out(&s, &mut feeder);
        let mut again = false;
        for _ in 0..4 {
            if matches!(next(&mut rx).await, PlaybackEvent::Finished { .. }) {
                again = true;
                break;
            }
        }
        assert!(again, "Finished after playing to the end a second time");
        // A seek to the very end counts as finished, not as playing.
        seek_to(&s, 10_000);
        assert!(s.done.load(Ordering::Relaxed));
        ticker.abort();
    }
}

/// Time and peak memory for a one-hour recording (BENCHMARKS.md), one case per process:
/// `VERBIO_MEASURE=old-peaks|peaks|old-play|play cargo test --release --no-default-features --lib
/// measure_one_hour -- --ignored --nocapture`.
#[cfg(test)]
mod measure {
    use super::*;
    use crate::recording::{peaks, wav_reader::tests::read_whole};
    use std::io::Write;

    fn peak_rss_kib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    #[test]
    #[ignore]
    fn measure_one_hour() {
        let path = std::env::temp_dir().join("verbio-one-hour.wav");
        let frames: u32 = 8000 * 3600;
        if std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0) != 44 + frames as u64 * 4 {
            let spec = hound::WavSpec {
                channels: 2,
                sample_rate: 8000,
                bits_per_sample: 16,
                sample_format: hound::SampleFormat::Int,
            };
            let w = hound::WavWriter::create(&path, spec).unwrap();
            w.finalize().unwrap();
            // Header for `frames` frames, then the samples in one buffered pass.
            let mut bytes = std::fs::read(&path).unwrap();
            let data = frames * 4;
            bytes[4..8].copy_from_slice(&(36 + data).to_le_bytes());
            bytes[40..44].copy_from_slice(&data.to_le_bytes());
            let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
            f.write_all(&bytes).unwrap();
            for i in 0..frames {
                let v = ((i as f32 * 0.01).sin() * 12000.0) as i16;
                f.write_all(&v.to_le_bytes()).unwrap();
                f.write_all(&(-v).to_le_bytes()).unwrap();
            }
            f.flush().unwrap();
        }
        let base = peak_rss_kib();
        let t = std::time::Instant::now();
        let case = std::env::var("VERBIO_MEASURE").unwrap_or_default();
        match case.as_str() {
            "old-peaks" => {
                let all = read_whole(&path).unwrap();
                assert_eq!(peaks::compute(&all, 2000).buckets.len(), 2000);
            }
            "peaks" => {
                assert_eq!(peaks::from_file(&path, 2000).unwrap().buckets.len(), 2000);
            }
            "cached-peaks" => {
                let cache = peaks::PeaksCache::default();
                cache.get_or_compute(1, &path, 2000).unwrap();
                let t = std::time::Instant::now();
                cache.get_or_compute(1, &path, 2000).unwrap();
                eprintln!("repeat from the cache: {:?}", t.elapsed());
            }
            "old-play" => {
                // What play() did before the device opened: the whole file in memory.
                let all = read_whole(&path).unwrap();
                assert_eq!(all.len(), frames as usize);
            }
            "play" => {
                // What play() does before the device opens, then a seek to 59:00 and its first audio.
                let reader = StereoReader::open(&path).unwrap();
                let shared = Arc::new(Shared::new(reader.frames(), ChannelChoice::Both));
                let mut feeder = Feeder::new(shared.clone(), reader);
                feeder.fill_up();
                eprintln!("ready to open the device: {:?}", t.elapsed());
                let thread = FeederThread::spawn(feeder).unwrap();
                let mut source = FileSource(shared.clone());
                let s = std::time::Instant::now();
                seek_to(&shared, 59 * 60_000);
                thread.wake();
                let mut out = [0f32; 80];
                while shared.pos.load(Ordering::Relaxed) == 59 * 60 * 8000 {
                    source.fill(&mut out);
                }
                eprintln!("seek to 59:00 to first audio: {:?}", s.elapsed());
            }
            other => panic!("VERBIO_MEASURE={other:?}"),
        }
        eprintln!(
            "{case}: {:?}, peak RSS +{} KiB (harness {base} KiB)",
            t.elapsed(),
            peak_rss_kib().saturating_sub(base)
        );
    }
}

//! Playing a recording through the speakers: play, pause, seek, stop, channel choice, position events.
//!
//! One playback at a time (a desktop app has one pair of speakers). The file is read and checked with
//! `hound` before anything opens the device, so a damaged file is a clear error, not a noise burst.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use super::speaker::{self, Source, Speaker, SpeakerError};
use super::wav_reader::{self, WavReadError};
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

/// The state the audio thread and the controls share (lock-free).
struct Shared {
    frames: Vec<[i16; 2]>,
    pos: AtomicU64,
    paused: AtomicBool,
    channel: AtomicU8,
    done: AtomicBool,
}

impl Shared {
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

struct FileSource(Arc<Shared>);

impl Source for FileSource {
    fn fill(&mut self, out: &mut [f32]) {
        let s = &self.0;
        if s.paused.load(Ordering::Relaxed) || s.done.load(Ordering::Relaxed) {
            out.fill(0.0);
            return;
        }
        let channel = s.channel();
        let mut pos = s.pos.load(Ordering::Relaxed) as usize;
        for slot in out.iter_mut() {
            *slot = match s.frames.get(pos) {
                Some([l, r]) => {
                    let (l, r) = (*l as f32 / 32768.0, *r as f32 / 32768.0);
                    match channel {
                        ChannelChoice::Both => l + r,
                        ChannelChoice::Caller => l,
                        ChannelChoice::Agent => r,
                    }
                }
                None => 0.0,
            };
            pos += 1;
        }
        // A seek meanwhile wins over this advance.
        let _ = s.pos.compare_exchange(
            (pos - out.len()) as u64,
            pos as u64,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
        if pos >= s.frames.len() {
            s.done.store(true, Ordering::Relaxed);
        }
    }
}

struct Active {
    recording_id: i64,
    shared: Arc<Shared>,
    _speaker: Speaker,
    ticker: tokio::task::JoinHandle<()>,
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
    /// position events. Blocks: reads the whole file, opens the device (up to 10 s) and joins the
    /// previous output's thread, so async code calls it on a blocking thread (as the library does).
    pub fn play(
        &self,
        recording_id: i64,
        path: &Path,
        device: Option<&str>,
        channel: ChannelChoice,
    ) -> Result<PlaybackState, PlaybackError> {
        let frames = wav_reader::read_stereo(path)?;
        self.stop_active();
        let shared = Arc::new(Shared {
            frames,
            pos: AtomicU64::new(0),
            paused: AtomicBool::new(false),
            channel: AtomicU8::new(channel_code(channel)),
            done: AtomicBool::new(false),
        });
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
    let frame = position_ms
        .saturating_mul(FRAMES_PER_MS)
        .min(s.frames.len() as u64);
    s.pos.store(frame, Ordering::Relaxed);
    s.done
        .store(frame >= s.frames.len() as u64, Ordering::Relaxed);
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
            duration_ms: s.frames.len() as u64 / FRAMES_PER_MS,
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
        duration_ms: s.frames.len() as u64 / FRAMES_PER_MS,
        paused: s.paused.load(Ordering::Relaxed),
        channel: s.channel(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(frames: usize) -> Arc<Shared> {
        Arc::new(Shared {
            frames: vec![[1000, -1000]; frames],
            pos: AtomicU64::new(0),
            paused: AtomicBool::new(false),
            channel: AtomicU8::new(0),
            done: AtomicBool::new(false),
        })
    }

    /// The next event (the ticker runs on this test's one thread, only while the test awaits).
    async fn next(rx: &mut broadcast::Receiver<PlaybackEvent>) -> PlaybackEvent {
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("an event within 5 s")
            .expect("event")
    }

    /// Plays the source to its end the way the audio thread would (device-free).
    fn play_out(s: &Arc<Shared>) {
        let mut source = FileSource(s.clone());
        let mut buf = [0f32; 80];
        while !s.done.load(Ordering::Relaxed) {
            source.fill(&mut buf);
        }
    }

    #[tokio::test]
    async fn seeking_after_finished_keeps_position_events_coming() {
        let s = shared(8 * 500); // 500 ms
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
        play_out(&s);
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
        play_out(&s);
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

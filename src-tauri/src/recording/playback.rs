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
    /// position events.
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
        let events = self.events.clone();
        let ticker_shared = shared.clone();
        let ticker = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                tick.tick().await;
                let s = &ticker_shared;
                let _ = events.send(PlaybackEvent::Position {
                    recording_id,
                    position_ms: s.pos.load(Ordering::Relaxed) / FRAMES_PER_MS,
                    duration_ms: s.frames.len() as u64 / FRAMES_PER_MS,
                    paused: s.paused.load(Ordering::Relaxed),
                });
                if s.done.load(Ordering::Relaxed) {
                    let _ = events.send(PlaybackEvent::Finished { recording_id });
                    break;
                }
            }
        });
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
            let frame = (position_ms * FRAMES_PER_MS).min(a.shared.frames.len() as u64);
            a.shared.pos.store(frame, Ordering::Relaxed);
            a.shared.done.store(false, Ordering::Relaxed);
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

    /// Stops playback; closes the device.
    pub fn stop(&self) -> Result<(), PlaybackError> {
        if self.stop_active() {
            Ok(())
        } else {
            Err(PlaybackError::NotPlaying)
        }
    }

    fn stop_active(&self) -> bool {
        let active = self.lock().take();
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

fn state_of(recording_id: i64, s: &Shared) -> PlaybackState {
    PlaybackState {
        recording_id,
        position_ms: s.pos.load(Ordering::Relaxed) / FRAMES_PER_MS,
        duration_ms: s.frames.len() as u64 / FRAMES_PER_MS,
        paused: s.paused.load(Ordering::Relaxed),
        channel: s.channel(),
    }
}

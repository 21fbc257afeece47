//! Listening in on a live call through the speakers.
//!
//! The bridge publishes each call's audio on a small `broadcast` channel (nothing is published while
//! nobody listens). The monitor reads it from the audio thread with `try_recv`: it never waits and
//! can never slow the call; when it falls behind, the channel drops the oldest audio (`Lagged`) and the
//! mixer jumps ahead. Audio carries its stream position, so both sides line up; the mixer plays
//! [`PREBUFFER_MS`] behind the newest audio and skips ahead if it drifts past [`MAX_DELAY_MS`].

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use serde::Serialize;
use tokio::sync::broadcast::{self, error::TryRecvError};

use super::speaker::{self, Source, Speaker, SpeakerError};
use super::wav_writer::Side;
use crate::audio::mulaw;

/// Pieces of audio buffered per listener before the oldest are dropped (≈ 1 s of caller frames).
pub const LIVE_CAPACITY: usize = 64;
/// Playback starts this far behind the first audio, to absorb network jitter.
pub const PREBUFFER_MS: u64 = 40;
/// Never lag further behind the newest audio than this: with the device's own buffer (40–70 ms
/// through PulseAudio) the speakers stay within the 150 ms the monitor is allowed.
pub const MAX_DELAY_MS: u64 = 80;
const FRAMES_PER_MS: u64 = 8;

/// One piece of live audio at its stream position.
#[derive(Debug, Clone)]
pub enum LiveAudio {
    Audio {
        side: Side,
        start_us: u64,
        mulaw: Arc<[u8]>,
    },
    /// Agent audio from here on was cleared (barge-in).
    Clear { at_us: u64 },
}

/// One call's live feed. Its channel is made by the first listener: a `broadcast` channel keeps its
/// [`LIVE_CAPACITY`] slots from the start (3.5 KiB), and most calls are never listened to.
#[derive(Default)]
pub struct LiveTap {
    tx: OnceLock<broadcast::Sender<LiveAudio>>,
}

impl LiveTap {
    /// True when someone is listening now.
    pub fn has_listeners(&self) -> bool {
        self.tx.get().is_some_and(|tx| tx.receiver_count() > 0)
    }

    /// Hands `audio` to the listeners; false when there are none.
    pub fn send(&self, audio: LiveAudio) -> bool {
        self.tx.get().is_some_and(|tx| tx.send(audio).is_ok())
    }

    fn subscribe(&self) -> broadcast::Receiver<LiveAudio> {
        self.tx
            .get_or_init(|| broadcast::channel(LIVE_CAPACITY).0)
            .subscribe()
    }
}

/// The live feeds of active calls.
#[derive(Default)]
pub struct LiveTaps {
    calls: Mutex<HashMap<String, Arc<LiveTap>>>,
}

impl LiveTaps {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<LiveTap>>> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The bridge's side of a call's feed (replaces a stale one with the same SID). The call is live
    /// while the bridge holds it.
    pub fn open(&self, call_sid: &str) -> Arc<LiveTap> {
        let tap = Arc::new(LiveTap::default());
        let mut calls = self.lock();
        calls.retain(|_, tap| Arc::strong_count(tap) > 1 || tap.has_listeners());
        calls.insert(call_sid.to_string(), tap.clone());
        tap
    }

    /// A listener for a live call, if it is live.
    pub fn subscribe(&self, call_sid: &str) -> Option<broadcast::Receiver<LiveAudio>> {
        let calls = self.lock();
        let tap = calls.get(call_sid)?;
        // Only the registry's own reference left: the call is over.
        (Arc::strong_count(tap) > 1).then(|| tap.subscribe())
    }
}

/// Per-side mute, shared with the UI's controls.
#[derive(Debug, Default)]
pub struct Mutes {
    pub caller: AtomicBool,
    pub agent: AtomicBool,
}

/// Mixes a call's two sides in stream order. Pure apart from the channel; unit-tested.
pub struct LiveMixer {
    rx: broadcast::Receiver<LiveAudio>,
    mutes: Arc<Mutes>,
    /// Stream frame of `buf[0]`; None until the first audio.
    head: Option<u64>,
    buf: VecDeque<[f32; 2]>,
    /// Newest stream frame seen.
    newest: u64,
    pub dropped: u64,
    /// The delay behind the live call (µs), for the UI and the tests.
    delay_us: Arc<std::sync::atomic::AtomicU64>,
}

impl LiveMixer {
    pub fn new(rx: broadcast::Receiver<LiveAudio>, mutes: Arc<Mutes>) -> Self {
        LiveMixer {
            rx,
            mutes,
            head: None,
            buf: VecDeque::new(),
            newest: 0,
            dropped: 0,
            delay_us: Arc::default(),
        }
    }

    /// Shared view of [`LiveMixer::delay_ms`] for whoever controls the monitor.
    pub fn delay_handle(&self) -> Arc<std::sync::atomic::AtomicU64> {
        self.delay_us.clone()
    }

    /// Frames between the playhead and the newest audio (the monitor's delay), in ms.
    pub fn delay_ms(&self) -> u64 {
        self.head
            .map_or(0, |h| self.newest.saturating_sub(h) / FRAMES_PER_MS)
    }

    fn take(&mut self) {
        loop {
            match self.rx.try_recv() {
                Ok(LiveAudio::Audio {
                    side,
                    start_us,
                    mulaw: audio,
                }) => self.place(side, start_us * FRAMES_PER_MS / 1000, &audio),
                Ok(LiveAudio::Clear { at_us }) => {
                    if let Some(head) = self.head {
                        let from = (at_us * FRAMES_PER_MS / 1000).saturating_sub(head) as usize;
                        for f in self.buf.iter_mut().skip(from) {
                            f[1] = 0.0;
                        }
                    }
                }
                Err(TryRecvError::Lagged(n)) => self.dropped += n,
                Err(TryRecvError::Empty) | Err(TryRecvError::Closed) => break,
            }
        }
        // Too far behind the live audio: skip ahead (drop) rather than grow the delay.
        if let Some(head) = self.head {
            let max = MAX_DELAY_MS * FRAMES_PER_MS;
            if self.newest > head + max {
                let skip = (self.newest - head - PREBUFFER_MS * FRAMES_PER_MS) as usize;
                let drained = skip.min(self.buf.len());
                self.buf.drain(..drained);
                self.head = Some(head + skip as u64);
            }
        }
    }

    fn place(&mut self, side: Side, start: u64, audio: &[u8]) {
        let end = start + audio.len() as u64;
        // Caller frames arrive in real time and set the clock; agent audio is queued ahead (the model
        // streams faster than playback) and waits in the buffer until its time comes.
        let head = match (self.head, side) {
            (Some(head), _) => head,
            (None, Side::Caller) => *self
                .head
                .get_or_insert(start.saturating_sub(PREBUFFER_MS * FRAMES_PER_MS)),
            (None, Side::Agent) => return,
        };
        if side == Side::Caller {
            self.newest = self.newest.max(end);
        }
        if end <= head {
            return; // already played
        }
        let skip = head.saturating_sub(start) as usize;
        let offset = start.saturating_sub(head) as usize;
        let needed = offset + audio.len() - skip;
        if self.buf.len() < needed {
            self.buf.resize(needed, [0.0; 2]);
        }
        for (i, b) in audio[skip..].iter().enumerate() {
            self.buf[offset + i][side as usize] = mulaw::decode(*b) as f32 / 32768.0;
        }
    }
}

impl Source for LiveMixer {
    fn fill(&mut self, out: &mut [f32]) {
        self.take();
        let caller_on = !self.mutes.caller.load(Ordering::Relaxed);
        let agent_on = !self.mutes.agent.load(Ordering::Relaxed);
        let mut played = 0u64;
        for slot in out.iter_mut() {
            // Starved (audio late): play silence and hold the playhead, so the late audio still
            // plays when it comes instead of landing behind the playhead and being thrown away.
            let Some([c, a]) = self.buf.pop_front() else {
                *slot = 0.0;
                continue;
            };
            played += 1;
            *slot = if caller_on { c } else { 0.0 } + if agent_on { a } else { 0.0 };
        }
        if let Some(head) = self.head.as_mut() {
            *head += played;
        }
        let delay = self
            .head
            .map_or(0, |h| self.newest.saturating_sub(h) * 1000 / FRAMES_PER_MS);
        self.delay_us.store(delay, Ordering::Relaxed);
    }
}

/// What the UI sees of listen-in.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListenState {
    pub call_sid: String,
    pub device: String,
    pub caller_muted: bool,
    pub agent_muted: bool,
    /// How far the speakers are behind the call: the monitor's buffer plus the device's own delay.
    pub delay_ms: u64,
}

struct Listening {
    call_sid: String,
    mutes: Arc<Mutes>,
    delay_us: Arc<std::sync::atomic::AtomicU64>,
    speaker: Speaker,
}

#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("call {0} is not live")]
    NotLive(String),
    #[error(transparent)]
    Speaker(#[from] SpeakerError),
    #[error("not listening to any call")]
    NotListening,
}

/// The app's one monitor (one pair of speakers).
#[derive(Default)]
pub struct Monitor {
    active: Mutex<Option<Listening>>,
}

impl Monitor {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Listening>> {
        self.active.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn start(
        &self,
        taps: &LiveTaps,
        call_sid: &str,
        device: Option<&str>,
    ) -> Result<ListenState, ListenError> {
        let rx = taps
            .subscribe(call_sid)
            .ok_or_else(|| ListenError::NotLive(call_sid.to_string()))?;
        self.lock().take();
        let mutes = Arc::new(Mutes::default());
        let mixer = LiveMixer::new(rx, mutes.clone());
        let delay_us = mixer.delay_handle();
        let speaker = speaker::open(device, Box::new(mixer))?;
        let listening = Listening {
            call_sid: call_sid.to_string(),
            mutes,
            delay_us,
            speaker,
        };
        let state = state_of(&listening);
        *self.lock() = Some(listening);
        Ok(state)
    }

    pub fn mute(&self, side: Side, muted: bool) -> Result<ListenState, ListenError> {
        let guard = self.lock();
        let l = guard.as_ref().ok_or(ListenError::NotListening)?;
        match side {
            Side::Caller => l.mutes.caller.store(muted, Ordering::Relaxed),
            Side::Agent => l.mutes.agent.store(muted, Ordering::Relaxed),
        }
        Ok(state_of(l))
    }

    pub fn stop(&self) -> Result<(), ListenError> {
        self.lock()
            .take()
            .map(|_| ())
            .ok_or(ListenError::NotListening)
    }

    pub fn state(&self) -> Option<ListenState> {
        self.lock().as_ref().map(state_of)
    }
}

fn state_of(l: &Listening) -> ListenState {
    ListenState {
        call_sid: l.call_sid.clone(),
        device: l.speaker.device.clone(),
        caller_muted: l.mutes.caller.load(Ordering::Relaxed),
        agent_muted: l.mutes.agent.load(Ordering::Relaxed),
        delay_ms: (l.delay_us.load(Ordering::Relaxed) / 1000)
            + l.speaker.latency().as_millis() as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn audio(side: Side, start_ms: u64, ms: u64, byte: u8) -> LiveAudio {
        LiveAudio::Audio {
            side,
            start_us: start_ms * 1000,
            mulaw: vec![byte; (ms * 8) as usize].into(),
        }
    }

    #[test]
    fn mixes_by_position_mutes_and_stays_within_the_delay() {
        let taps = LiveTaps::default();
        assert!(taps.subscribe("CA1").is_none());
        let tx = taps.open("CA1");
        assert!(
            !tx.send(audio(Side::Caller, 0, 20, 0x80)),
            "no channel before a listener"
        );
        assert!(tx.tx.get().is_none());
        let mutes = Arc::new(Mutes::default());
        let mut mixer = LiveMixer::new(taps.subscribe("CA1").unwrap(), mutes.clone());
        // 0x80 decodes to a loud positive sample, 0xFF to silence.
        assert!(tx.send(audio(Side::Caller, 1000, 20, 0x80)));
        assert!(tx.send(audio(Side::Agent, 1010, 20, 0x80)));
        let mut out = vec![0f32; (8 * PREBUFFER_MS) as usize];
        mixer.fill(&mut out);
        // The prebuffer's silence first.
        assert!(out.iter().all(|s| *s == 0.0));
        let mut out = vec![0f32; 8 * 30];
        mixer.fill(&mut out);
        let loud = -(mulaw::decode(0x80) as f32) / 32768.0;
        assert!((out[0].abs() - loud.abs()).abs() < 1e-6, "caller alone");
        assert!(
            (out[8 * 15].abs() - 2.0 * loud.abs()).abs() < 1e-6,
            "both sides"
        );
        mutes.caller.store(true, Ordering::Relaxed);
        assert!(tx.send(audio(Side::Caller, 1030, 20, 0x80)));
        let mut out = vec![0f32; 8 * 20];
        mixer.fill(&mut out);
        assert!(out.iter().all(|s| *s == 0.0), "caller muted");

        // Agent audio queued seconds ahead (streamed faster than real time) waits for its turn.
        assert!(tx.send(audio(Side::Agent, 1100, 2000, 0x80)));
        mixer.fill(&mut [0f32; 8]);
        assert!(mixer.delay_ms() <= MAX_DELAY_MS);
        assert!(mixer.buf.len() >= 8 * 2000, "queued agent audio kept");
        // A burst of caller frames far ahead of the playhead (the monitor stalled) is caught up.
        for i in 0..40 {
            assert!(tx.send(audio(Side::Caller, 1100 + i * 20, 20, 0x80)));
        }
        mixer.fill(&mut [0f32; 8]);
        assert!(mixer.delay_ms() <= MAX_DELAY_MS, "{}", mixer.delay_ms());
        // More than the channel holds: the oldest are dropped, never blocking the sender.
        for i in 0..(LIVE_CAPACITY as u64 * 2) {
            assert!(tx.send(audio(Side::Caller, 2000 + i * 20, 20, 0xFF)));
        }
        mixer.fill(&mut [0f32; 8]);
        assert!(mixer.dropped > 0);
        assert!(mixer.delay_ms() <= MAX_DELAY_MS);
        drop(tx);
        assert!(taps.subscribe("CA1").is_none(), "ended calls are not live");
    }

    #[test]
    fn late_audio_still_plays_after_a_stall() {
        let taps = LiveTaps::default();
        let tx = taps.open("CA2");
        let mut mixer = LiveMixer::new(taps.subscribe("CA2").unwrap(), Arc::new(Mutes::default()));
        assert!(tx.send(audio(Side::Caller, 0, 20, 0x80)));
        // The device asks for far more than has arrived.
        mixer.fill(&mut vec![0f32; 8 * 200]);
        // The next frame arrives late: it is played, not dropped as already past.
        assert!(tx.send(audio(Side::Caller, 20, 20, 0x80)));
        let mut out = vec![0f32; 8 * 20];
        mixer.fill(&mut out);
        assert!(out.iter().all(|s| s.abs() > 0.5), "late frame played");
        assert_eq!(mixer.delay_ms(), 0);
    }
}

//! One call's timeline, owned by the call's task: the stream clock and the playout model. Every position
//! the call hands out — where a caller frame starts, where agent audio plays, what the caller heard at a
//! barge-in, the transcript's offsets — comes from here. The recording and listen-in are sinks for what
//! it emits ([`crate::recording::CallRecording`]); they keep no clock of their own.
//!
//! - [`StreamClock`] maps "now" to stream time. Twilio's media `timestamp` is the stream clock; the
//!   estimate is `now + max(timestamp − arrival)`, so a late (jittered) frame never pulls it back.
//! - [`SessionAudio`] maps a model session's audio positions (`speech_started.audio_start_ms`) to stream
//!   time.
//! - [`Playout`] places the agent's audio (see [`super::playout`]).

use std::collections::VecDeque;

use tokio::time::Instant;

use super::playout::{MarkOutcome, Placed, Playout, Truncation};
use crate::types::StreamUs;

/// Stream time `bytes` of μ-law take to play (8 bytes per ms).
fn bytes_us(bytes: usize) -> u64 {
    bytes as u64 * 125
}

#[derive(Debug, Clone)]
pub struct StreamClock {
    origin: Instant,
    /// max(timestamp − arrival) in µs, relative to `origin`; 0 until the first frame.
    offset_us: i64,
    seen_media: bool,
}

impl StreamClock {
    /// `origin` is when the stream started (its `start` message).
    pub fn new(origin: Instant) -> Self {
        StreamClock {
            origin,
            offset_us: 0,
            seen_media: false,
        }
    }

    /// A media frame with `timestamp_ms` arrived at `now`.
    pub fn on_media(&mut self, timestamp_ms: u64, now: Instant) {
        let arrival = now.saturating_duration_since(self.origin).as_micros() as i64;
        let offset = (timestamp_ms as i64) * 1000 - arrival;
        if !self.seen_media || offset > self.offset_us {
            self.offset_us = offset;
            self.seen_media = true;
        }
    }

    /// A caller frame arrived at `now`: moves the clock with its timestamp (if Twilio sent one) and
    /// returns where the frame starts on the stream.
    pub fn on_frame(&mut self, timestamp_ms: Option<u64>, now: Instant) -> StreamUs {
        match timestamp_ms {
            Some(ts) => {
                self.on_media(ts, now);
                ts * 1000
            }
            None => self.now_us(now),
        }
    }

    pub fn now_us(&self, now: Instant) -> StreamUs {
        let elapsed = now.saturating_duration_since(self.origin).as_micros() as i64;
        (elapsed + self.offset_us).max(0) as u64
    }
}

/// Caller audio sent to one model session, on the stream's timeline.
///
/// The model counts the audio it has received since its session began (`speech_started.audio_start_ms`);
/// this maps that count back to stream time. A fresh session (reconnect, rollover) counts from zero again,
/// so each session gets its own. Audio is contiguous except where the stream jumped (a gap in Twilio's
/// timestamps) or audio was dropped: each such place starts a new anchor.
#[derive(Debug, Clone, Default)]
pub struct SessionAudio {
    /// μ-law bytes sent so far.
    bytes: u64,
    /// `(bytes sent before it, stream time)` of each contiguous run, oldest first.
    anchors: VecDeque<(u64, StreamUs)>,
}

/// Runs remembered per session; speech positions the model reports are recent.
const MAX_ANCHORS: usize = 64;
/// A frame further than this from where its run says it belongs starts a new run.
const JUMP_US: u64 = 10_000;

impl SessionAudio {
    pub fn new() -> Self {
        Self::default()
    }

    /// `len` μ-law bytes starting at stream time `start_us` were sent to the session.
    pub fn on_sent(&mut self, start_us: StreamUs, len: usize) {
        let expected = self
            .anchors
            .back()
            .map(|&(bytes, us)| us + bytes_us((self.bytes - bytes) as usize));
        if expected.is_none_or(|e| e.abs_diff(start_us) > JUMP_US) {
            if self.anchors.len() == MAX_ANCHORS {
                self.anchors.pop_front();
            }
            self.anchors.push_back((self.bytes, start_us));
        }
        self.bytes += len as u64;
    }

    /// Stream time of `audio_ms` into the audio the session received; `None` before any was sent.
    pub fn stream_us(&self, audio_ms: u64) -> Option<StreamUs> {
        let pos = audio_ms.saturating_mul(8);
        let &(bytes, us) = self
            .anchors
            .iter()
            .rev()
            .find(|(bytes, _)| *bytes <= pos)
            .or(self.anchors.front())?;
        let delta = (pos as i64 - bytes as i64).saturating_mul(125);
        Some((us as i64).saturating_add(delta).max(0) as u64)
    }
}

/// Agent audio handed to Twilio.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentQueued {
    /// The mark to send after the audio.
    pub mark: String,
    /// Where it will play: after the agent audio queued before it.
    pub plays_at: StreamUs,
}

/// Queued agent audio stopped (a barge-in, a voicemail, the call's end).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cut {
    pub at: StreamUs,
    /// Where to truncate each item the caller did not hear in full.
    pub truncations: Vec<Truncation>,
    /// The agent audio that was heard, placed (for the recording).
    pub heard: Vec<Placed>,
}

/// The clock and the playout of one call.
#[derive(Debug)]
pub struct CallTimeline {
    clock: StreamClock,
    playout: Playout,
}

impl CallTimeline {
    /// `origin` is when the stream started (its `start` message).
    pub fn new(origin: Instant) -> Self {
        CallTimeline {
            clock: StreamClock::new(origin),
            playout: Playout::new(),
        }
    }

    pub fn now_us(&self, now: Instant) -> StreamUs {
        self.clock.now_us(now)
    }

    /// A caller frame arrived at `now`; returns where it starts on the stream.
    pub fn caller_frame(&mut self, timestamp_ms: Option<u64>, now: Instant) -> StreamUs {
        self.clock.on_frame(timestamp_ms, now)
    }

    /// `bytes` of `item_id` went to Twilio at `now`. `audio` (the μ-law) is kept for the recording,
    /// which gets it back placed once it has played.
    pub fn agent_sent(
        &mut self,
        item_id: &str,
        bytes: usize,
        audio: Option<Vec<u8>>,
        now: Instant,
    ) -> AgentQueued {
        let now_us = self.clock.now_us(now);
        let plays_at = self.playout.play_start(now_us);
        let mark = self.playout.on_sent(item_id, bytes, audio, now_us);
        AgentQueued { mark, plays_at }
    }

    /// Twilio echoed mark `name` at `now`; returns the agent audio it confirmed, placed.
    pub fn mark(&mut self, name: &str, now: Instant) -> (MarkOutcome, Vec<Placed>) {
        let now_us = self.clock.now_us(now);
        self.playout.on_mark(name, now_us)
    }

    /// Where the chunk before mark `name` started playing (once echoed).
    pub fn chunk_started(&self, name: &str) -> Option<StreamUs> {
        self.playout.started_at(name)
    }

    /// Queued agent audio stops at `now`. `response_active`: the model may still be adding to the
    /// newest item, so it is cut even if all of it that was sent has played.
    pub fn cut(&mut self, now: Instant, response_active: bool) -> Cut {
        let at = self.clock.now_us(now);
        let (truncations, heard) = self.playout.interrupt(at, response_active);
        Cut {
            at,
            truncations,
            heard,
        }
    }

    /// Where agent audio sent at `now` would start to play, in ms of stream time (the transcript
    /// places an agent turn there).
    pub fn play_start_ms(&self, now: Instant) -> u64 {
        self.playout.play_start(self.clock.now_us(now)) / 1000
    }

    /// True when every agent chunk sent has been confirmed played.
    pub fn is_drained(&self) -> bool {
        self.playout.is_drained()
    }

    /// A new model session took over: items of the old one are never truncated in it.
    pub fn new_session(&mut self) {
        self.playout.new_session();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn clock_follows_timestamps_and_ignores_late_frames() {
        let t0 = Instant::now();
        let mut c = StreamClock::new(t0);
        assert_eq!(c.now_us(t0 + Duration::from_millis(5)), 5_000);
        // The first frame says stream time 0 arrived 30 ms after start: the stream started late.
        c.on_media(0, t0 + Duration::from_millis(30));
        assert_eq!(c.now_us(t0 + Duration::from_millis(50)), 20_000);
        // A frame delayed in the network does not move the clock back.
        c.on_media(20, t0 + Duration::from_millis(90));
        assert_eq!(c.now_us(t0 + Duration::from_millis(100)), 70_000);
        // A timestamp jump (lost packets) moves it forward.
        c.on_media(500, t0 + Duration::from_millis(110));
        assert_eq!(c.now_us(t0 + Duration::from_millis(110)), 500_000);
    }

    #[test]
    fn session_audio_maps_the_model_position_to_stream_time_across_gaps() {
        let mut a = SessionAudio::new();
        assert_eq!(a.stream_us(0), None);
        // The session opened 2 s into the stream (a reconnect): its position 0 is stream time 2 s.
        for i in 0..10 {
            a.on_sent(2_000_000 + i * 20_000, 160);
        }
        assert_eq!(a.stream_us(0), Some(2_000_000));
        assert_eq!(a.stream_us(150), Some(2_150_000));
        // 100 ms of stream with no audio (timestamps jumped), then audio again.
        for i in 0..5 {
            a.on_sent(2_300_000 + i * 20_000, 160);
        }
        assert_eq!(a.stream_us(190), Some(2_190_000));
        assert_eq!(a.stream_us(200), Some(2_300_000));
        assert_eq!(a.stream_us(250), Some(2_350_000));
        // Frames a little off their slot (no timestamp, clock jitter) stay on the run.
        a.on_sent(2_405_000, 160);
        assert_eq!(a.stream_us(300), Some(2_400_000));
    }

    #[test]
    fn the_timeline_places_agent_audio_on_the_stream_clock() {
        let t0 = Instant::now();
        let mut t = CallTimeline::new(t0);
        // Twilio's first frame says the stream is 40 ms further than our clock.
        assert_eq!(
            t.caller_frame(Some(60), t0 + Duration::from_millis(20)),
            60_000
        );
        let sent = t.agent_sent(
            "item",
            800,
            Some(vec![7; 800]),
            t0 + Duration::from_millis(20),
        );
        assert_eq!((sent.mark.as_str(), sent.plays_at), ("v1", 60_000));
        // Queued behind the first chunk: plays when it ends.
        assert_eq!(t.play_start_ms(t0 + Duration::from_millis(30)), 160);
        // Barged in 30 ms into it: the item is cut there and the heard audio is placed.
        let cut = t.cut(t0 + Duration::from_millis(50), true);
        assert_eq!(cut.at, 90_000);
        assert_eq!(cut.truncations[0].audio_end_ms, 30);
        assert_eq!(
            cut.heard,
            [Placed {
                start_us: 60_000,
                audio: vec![7; 240]
            }]
        );
        assert!(t.is_drained());
    }
}

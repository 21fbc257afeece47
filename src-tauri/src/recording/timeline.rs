//! Where on the stream's timeline each piece of audio belongs. Pure: the clock is passed in.
//!
//! - [`StreamClock`] maps "now" to stream time. Twilio's media `timestamp` is the stream clock; the
//!   estimate is `now + max(timestamp − arrival)`, so a late (jittered) frame never pulls it back.
//! - [`AgentTrack`] keeps the agent chunks sent to Twilio until their mark echoes. An echo means the
//!   chunk finished playing at that moment, so it is placed to end there. On `clear`, only the part of
//!   the playing chunk heard before the clear is kept; queued chunks were never heard and are dropped.

use std::collections::VecDeque;
use std::time::Instant;

/// Stream time in microseconds.
pub type StreamUs = u64;

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

/// Agent audio that played, at its place on the timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    pub start_us: StreamUs,
    /// μ-law bytes (8 per ms).
    pub audio: Vec<u8>,
}

#[derive(Debug, Clone)]
struct Sent {
    mark: String,
    audio: Vec<u8>,
    sent_us: StreamUs,
}

/// Agent chunks between "sent to Twilio" and "heard" (or cleared).
#[derive(Debug, Default)]
pub struct AgentTrack {
    pending: VecDeque<Sent>,
    /// End of the last placed audio: the next chunk cannot play before it.
    last_end_us: StreamUs,
}

fn bytes_us(bytes: usize) -> u64 {
    bytes as u64 * 125 // 8 bytes per ms
}

impl AgentTrack {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn on_sent(&mut self, mark: &str, audio: Vec<u8>, now_us: StreamUs) {
        self.pending.push_back(Sent {
            mark: mark.to_string(),
            audio,
            sent_us: now_us,
        });
    }

    /// Chunks waiting for their echo.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Twilio echoed `mark` at `now_us`: it and every chunk before it have played. Returns them placed,
    /// contiguous, the last one ending at `now_us` (never overlapping earlier agent audio).
    pub fn on_mark(&mut self, mark: &str, now_us: StreamUs) -> Vec<Placed> {
        let Some(pos) = self.pending.iter().position(|s| s.mark == mark) else {
            return Vec::new(); // cleared or unknown: nothing was heard beyond what is placed
        };
        let done: Vec<Sent> = self.pending.drain(..=pos).collect();
        let total: u64 = done.iter().map(|s| bytes_us(s.audio.len())).sum();
        let first_sent = done.first().map_or(now_us, |s| s.sent_us);
        // Audio already queued at Twilio when the previous agent audio ended plays right after it:
        // Twilio plays its queue back to back, so only an echo's network jitter could suggest a gap
        // (and a gap of a few ms is a click in the file). Audio sent after that (the queue ran dry)
        // played back to back and finished now, but not before it was sent.
        let mut at = if self.last_end_us > 0 && first_sent <= self.last_end_us {
            self.last_end_us
        } else {
            now_us
                .saturating_sub(total)
                .max(self.last_end_us)
                .max(first_sent)
        };
        let mut placed = Vec::with_capacity(done.len());
        for s in done {
            let len = bytes_us(s.audio.len());
            placed.push(Placed {
                start_us: at,
                audio: s.audio,
            });
            at += len;
        }
        self.last_end_us = at;
        placed
    }

    /// Twilio was told to `clear` at `now_us`: what played until now was heard, the rest never.
    ///
    /// Chunks play back to back from the later of their send time and the end of the previous agent
    /// audio, so the heard part can reach past the first chunk whose echo was still on its way.
    pub fn on_clear(&mut self, now_us: StreamUs) -> Vec<Placed> {
        let mut at = self.last_end_us;
        let mut placed = Vec::new();
        for mut s in std::mem::take(&mut self.pending) {
            at = at.max(s.sent_us);
            let heard_bytes = (now_us.saturating_sub(at) / 125) as usize;
            s.audio.truncate(heard_bytes.min(s.audio.len()));
            if s.audio.is_empty() {
                break;
            }
            let start_us = at;
            at += bytes_us(s.audio.len());
            placed.push(Placed {
                start_us,
                audio: s.audio,
            });
        }
        if let Some(last) = placed.last() {
            self.last_end_us = last.start_us + bytes_us(last.audio.len());
        }
        placed
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
    fn echoed_chunks_end_at_the_echo() {
        let mut a = AgentTrack::new();
        a.on_sent("v1", vec![1; 800], 1_000_000); // 100 ms
        a.on_sent("v2", vec![2; 800], 1_000_000);
        let p = a.on_mark("v1", 1_130_000);
        assert_eq!(p[0].start_us, 1_030_000);
        // The second finished 100 ms later.
        let p = a.on_mark("v2", 1_230_000);
        assert_eq!(p[0].start_us, 1_130_000);
        // A late echo that would overlap the previous chunk is pushed after it.
        a.on_sent("v3", vec![3; 800], 1_150_000);
        let p = a.on_mark("v3", 1_300_000);
        assert_eq!(p[0].start_us, 1_230_000);
        assert!(a.on_mark("v3", 1_400_000).is_empty());
    }

    #[test]
    fn a_lost_echo_is_covered_by_the_next() {
        let mut a = AgentTrack::new();
        a.on_sent("v1", vec![1; 160], 0);
        a.on_sent("v2", vec![2; 160], 0);
        let p = a.on_mark("v2", 100_000);
        assert_eq!(
            p.iter().map(|p| p.start_us).collect::<Vec<_>>(),
            [60_000, 80_000]
        );
    }

    #[test]
    fn clear_keeps_only_what_was_heard() {
        let mut a = AgentTrack::new();
        a.on_sent("v1", vec![1; 800], 0);
        a.on_mark("v1", 100_000);
        a.on_sent("v2", vec![2; 800], 20_000);
        a.on_sent("v3", vec![3; 800], 20_000);
        // Clear 40 ms into v2 (which started when v1 ended).
        let p = a.on_clear(140_000);
        assert_eq!(p.len(), 1);
        assert_eq!((p[0].start_us, p[0].audio.len()), (100_000, 320));
        assert_eq!(a.pending(), 0);
        // The cleared marks echo afterwards and add nothing.
        assert!(a.on_mark("v2", 150_000).is_empty());
        assert!(a.on_clear(200_000).is_empty());
    }

    #[test]
    fn clear_keeps_what_was_heard_past_a_chunk_whose_echo_is_late() {
        let mut a = AgentTrack::new();
        a.on_sent("v1", vec![1; 800], 0); // 100 ms
        a.on_sent("v2", vec![2; 800], 0);
        a.on_sent("v3", vec![3; 800], 0);
        // Cleared 150 ms in, before v1's echo arrived: all of v1 and half of v2 were heard.
        let p = a.on_clear(150_000);
        let got: Vec<_> = p.iter().map(|p| (p.start_us, p.audio.len())).collect();
        assert_eq!(got, [(0, 800), (100_000, 400)]);
        assert_eq!(a.pending(), 0);
        // Later agent audio follows what was kept.
        a.on_sent("v4", vec![4; 80], 140_000);
        assert_eq!(a.on_mark("v4", 160_000)[0].start_us, 150_000);
    }

    #[test]
    fn queued_chunks_are_placed_back_to_back_whatever_the_echo_jitter() {
        let mut t = AgentTrack::new();
        // Two 100 ms chunks sent together at 1 s; the second echo comes 7 ms late.
        t.on_sent("a", vec![1; 800], 1_000_000);
        t.on_sent("b", vec![2; 800], 1_000_000);
        let first = t.on_mark("a", 1_100_000);
        assert_eq!(first[0].start_us, 1_000_000);
        let second = t.on_mark("b", 1_207_000);
        assert_eq!(second[0].start_us, 1_100_000, "no gap, no click");
        // After the queue ran dry, a chunk sent later starts no earlier than it was sent.
        t.on_sent("c", vec![3; 800], 2_000_000);
        let third = t.on_mark("c", 2_100_000);
        assert_eq!(third[0].start_us, 2_000_000);
    }
}

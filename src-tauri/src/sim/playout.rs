//! Twilio's side of outbound audio: a playout queue drained by a 20 ms clock.
//!
//! Marks sit in the queue at a byte position and are echoed only once all audio before them has *finished*
//! playing (the tick after their last frame), or at once when `clear` drops them. A `clear` also cuts the
//! frame that is playing at that instant, so "played" is exact to the byte, not rounded up to a frame. That is
//! what a bridge's truncation math must agree with, so it is modelled exactly and kept pure for unit tests.

use std::collections::VecDeque;
use std::time::Instant;

/// One contiguous stretch of agent audio the caller heard.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeardSegment {
    /// Stream time (ms since the stream started) when its first frame began to play.
    pub start_ms: u64,
    /// Stream time when its last frame finished playing.
    pub end_ms: u64,
    /// The audio (empty when the caller does not record audio).
    pub bytes: Vec<u8>,
}

/// What one clock tick did.
#[derive(Debug, Default)]
pub(crate) struct Tick {
    /// Marks whose audio has finished playing: echo them now.
    pub echoes: Vec<String>,
    /// Bytes played in this tick.
    pub played: usize,
}

#[derive(Debug)]
pub(crate) struct Playout {
    audio: VecDeque<u8>,
    /// Byte positions in the queue's lifetime: everything enqueued, everything played or dropped.
    enqueued: u64,
    consumed: u64,
    marks: VecDeque<(u64, String)>,
    /// Bytes of the current utterance played so far, the frame now playing included (`None`: silence).
    utterance: Option<u64>,
    /// The frame now playing: when it started (wall clock and stream ms) and its length.
    playing: Option<(Instant, u64, usize)>,
    total_played: u64,
    record_audio: bool,
    pub heard: Vec<u8>,
    pub segments: Vec<HeardSegment>,
    /// The jitter buffer: a stretch of audio starts playing this long after its first bytes arrived.
    start_delay: std::time::Duration,
    /// When the first bytes of the stretch waiting to start arrived.
    waiting_since: Option<Instant>,
}

impl Playout {
    pub(crate) fn new(record_audio: bool) -> Self {
        Self {
            audio: VecDeque::new(),
            enqueued: 0,
            consumed: 0,
            marks: VecDeque::new(),
            utterance: None,
            playing: None,
            total_played: 0,
            record_audio,
            heard: Vec::new(),
            segments: Vec::new(),
            start_delay: std::time::Duration::ZERO,
            waiting_since: None,
        }
    }

    /// Holds each stretch of audio back `delay` before it starts playing (Twilio's jitter buffer).
    pub(crate) fn with_start_delay(mut self, delay: std::time::Duration) -> Self {
        self.start_delay = delay;
        self
    }

    pub(crate) fn enqueue_audio(&mut self, bytes: &[u8]) {
        if self.audio.is_empty() && self.utterance.is_none() && !bytes.is_empty() {
            self.waiting_since = Some(Instant::now());
        }
        self.audio.extend(bytes);
        self.enqueued += bytes.len() as u64;
    }

    pub(crate) fn enqueue_mark(&mut self, name: String) {
        self.marks.push_back((self.enqueued, name));
    }

    /// Total agent audio played so far, in ms (as of the last tick: the frame it started counts in full).
    pub(crate) fn total_played_ms(&self) -> u64 {
        self.total_played / 8
    }

    /// Ms of the current utterance played so far (0 when none is playing).
    pub(crate) fn utterance_played_ms(&self) -> u64 {
        self.utterance.unwrap_or(0) / 8
    }

    /// Drops all queued audio and the unplayed rest of the frame playing at `at`; returns the marks to echo
    /// now and the ms of the current utterance that had played.
    pub(crate) fn clear(&mut self, at: Instant) -> (Vec<String>, u64) {
        if let Some((started, start_ms, len)) = self.playing.take() {
            let elapsed_us = at.saturating_duration_since(started).as_micros();
            let heard = (elapsed_us * 8 / 1000).min(len as u128) as usize;
            let unplayed = len - heard;
            self.total_played -= unplayed as u64;
            self.utterance = self.utterance.map(|played| played - unplayed as u64);
            if let Some(segment) = self.segments.last_mut() {
                segment.end_ms = start_ms + (heard as u64).div_ceil(8);
                segment
                    .bytes
                    .truncate(segment.bytes.len().saturating_sub(unplayed));
            }
            if self.record_audio {
                self.heard
                    .truncate(self.heard.len().saturating_sub(unplayed));
            }
        }
        let played_ms = self.utterance_played_ms();
        self.waiting_since = None;
        self.audio.clear();
        self.consumed = self.enqueued;
        self.utterance = None;
        (
            self.marks.drain(..).map(|(_, name)| name).collect(),
            played_ms,
        )
    }

    /// One 20 ms tick at stream time `now_ms` (wall clock `at`): echo the marks whose audio has finished,
    /// then start playing up to 160 bytes.
    pub(crate) fn tick(&mut self, now_ms: u64, at: Instant) -> Tick {
        self.playing = None;
        let mut tick = Tick::default();
        while self
            .marks
            .front()
            .is_some_and(|(pos, _)| *pos <= self.consumed)
        {
            if let Some((_, name)) = self.marks.pop_front() {
                tick.echoes.push(name);
            }
        }
        let until_mark = self
            .marks
            .front()
            .map_or(u64::MAX, |(pos, _)| pos - self.consumed);
        if self.utterance.is_none() {
            if let Some(since) = self.waiting_since {
                if at < since + self.start_delay {
                    return tick;
                }
            }
        }
        let n = 160usize.min(self.audio.len()).min(until_mark as usize);
        if n == 0 {
            self.utterance = None;
            return tick;
        }
        self.waiting_since = None;
        if self.utterance.is_none() {
            self.utterance = Some(0);
            self.segments.push(HeardSegment {
                start_ms: now_ms,
                end_ms: now_ms,
                bytes: Vec::new(),
            });
        }
        let frame: Vec<u8> = self.audio.drain(..n).collect();
        self.playing = Some((at, now_ms, n));
        self.consumed += n as u64;
        self.total_played += n as u64;
        self.utterance = self.utterance.map(|played| played + n as u64);
        if let Some(segment) = self.segments.last_mut() {
            segment.end_ms = now_ms + (n as u64).div_ceil(8);
            if self.record_audio {
                segment.bytes.extend_from_slice(&frame);
            }
        }
        if self.record_audio {
            self.heard.extend_from_slice(&frame);
        }
        tick.played = n;
        tick
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    #[test]
    fn a_jitter_buffer_holds_each_stretch_back() {
        let mut p = Playout::new(false).with_start_delay(Duration::from_millis(100));
        p.enqueue_audio(&[1u8; 320]); // 40 ms
        p.enqueue_mark("m".into());
        let t0 = Instant::now();
        let mut started = None;
        let mut echoed = None;
        for t in 0..20u64 {
            let tick = p.tick(t * 20, at(t0, t * 20));
            if tick.played > 0 && started.is_none() {
                started = Some(t * 20);
            }
            if !tick.echoes.is_empty() {
                echoed = Some(t * 20);
                break;
            }
        }
        assert_eq!(started, Some(100));
        assert_eq!(echoed, Some(140));
    }

    #[test]
    fn mark_is_echoed_the_tick_after_its_audio_finished() {
        let mut p = Playout::new(true);
        p.enqueue_audio(&[1u8; 480]); // 60 ms
        p.enqueue_mark("m".into());
        let mut echoed_at = None;
        let t0 = Instant::now();
        for t in 0..10u64 {
            if !p.tick(t * 20, at(t0, t * 20)).echoes.is_empty() {
                echoed_at = Some(t * 20);
                break;
            }
        }
        assert_eq!(echoed_at, Some(60));
        assert_eq!(p.heard.len(), 480);
        assert_eq!(
            p.segments,
            vec![HeardSegment {
                start_ms: 0,
                end_ms: 60,
                bytes: vec![1u8; 480]
            }]
        );
    }

    #[test]
    fn a_frame_never_plays_past_a_mark() {
        let mut p = Playout::new(false);
        p.enqueue_audio(&[1u8; 100]);
        p.enqueue_mark("a".into());
        p.enqueue_audio(&[2u8; 100]);
        let t0 = Instant::now();
        assert_eq!(p.tick(0, t0).played, 100);
        let t = p.tick(20, at(t0, 20));
        assert_eq!((t.echoes, t.played), (vec!["a".to_string()], 100));
    }

    #[test]
    fn clear_drops_audio_echoes_marks_and_reports_played_ms() {
        let mut p = Playout::new(true);
        p.enqueue_audio(&[1u8; 1600]);
        p.enqueue_mark("a".into());
        p.enqueue_audio(&[1u8; 1600]);
        p.enqueue_mark("b".into());
        let t0 = Instant::now();
        for t in 0..3 {
            p.tick(t * 20, at(t0, t * 20));
        }
        // The third frame started at 40 ms; a clear at 50 ms cuts it after 10 ms.
        let (echoes, played_ms) = p.clear(at(t0, 50));
        assert_eq!(echoes, vec!["a".to_string(), "b".to_string()]);
        assert_eq!(played_ms, 50);
        assert_eq!(p.heard.len(), 400);
        assert_eq!(p.segments[0].end_ms, 50);
        assert_eq!(p.tick(60, at(t0, 60)).played, 0);
        assert_eq!(p.total_played_ms(), 50);
        // New audio after a clear starts a new utterance/segment.
        p.enqueue_audio(&[3u8; 160]);
        p.tick(80, at(t0, 80));
        assert_eq!(p.segments.len(), 2);
        assert_eq!(p.segments[1].start_ms, 80);
    }
}

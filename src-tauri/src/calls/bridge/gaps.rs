//! Silence for the holes in Twilio's media.
//!
//! Twilio does not always send silence: frames can go missing and the next `timestamp` jumps. The
//! model's VAD and its `audio_start_ms`/`audio_end_ms` count the audio it *received*, so without
//! padding a gap can keep the VAD "in speech" (no answer) and shifts every position after it off the
//! stream's timeline. The bridge fills each gap with μ-law silence before the frame that follows it.

/// Longest gap filled at once; a longer one (a stalled stream) is filled up to this much.
pub const MAX_PAD_MS: u64 = 5_000;
/// A jump shorter than this is jitter in Twilio's timestamps, not missing audio.
const TOLERANCE_MS: u64 = 10;

/// Tracks where the next caller frame should start on the stream's timeline.
#[derive(Debug, Default)]
pub struct GapFiller {
    next_ms: Option<u64>,
}

impl GapFiller {
    pub fn new() -> Self {
        Self::default()
    }

    /// A frame of `frame_ms` starting at Twilio `timestamp_ms` arrived: returns how many ms of
    /// silence to send before it. Frames without a timestamp, or going back in time, get none.
    pub fn on_frame(&mut self, timestamp_ms: Option<u64>, frame_ms: u64) -> u64 {
        let Some(ts) = timestamp_ms else {
            if let Some(next) = self.next_ms.as_mut() {
                *next += frame_ms;
            }
            return 0;
        };
        let pad = match self.next_ms {
            Some(next) if ts > next + TOLERANCE_MS => (ts - next).min(MAX_PAD_MS),
            _ => 0,
        };
        let end = ts + frame_ms;
        self.next_ms = Some(self.next_ms.map_or(end, |n| n.max(end)));
        pad
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_jumps_and_ignores_jitter_and_reordering() {
        let mut g = GapFiller::new();
        assert_eq!(g.on_frame(Some(0), 20), 0);
        assert_eq!(g.on_frame(Some(20), 20), 0);
        // 5 ms of jitter.
        assert_eq!(g.on_frame(Some(45), 20), 0);
        // 300 ms of frames missing.
        assert_eq!(g.on_frame(Some(365), 20), 300);
        // A late frame from before: nothing.
        assert_eq!(g.on_frame(Some(100), 20), 0);
        assert_eq!(g.on_frame(Some(385), 20), 0);
        // A stalled stream is filled up to the cap.
        assert_eq!(g.on_frame(Some(60_000), 20), MAX_PAD_MS);
        assert_eq!(g.on_frame(None, 20), 0);
    }
}

//! A synthetic operator microphone: μ-law frames of a known signal, paced like a device (one 20 ms frame
//! every 20 ms), for tests and benchmarks of taking a call over without a sound card.
//!
//! ```no_run
//! # async fn demo(services: &verbio::services::Services, call_sid: &str) {
//! use verbio::sim::microphone::{Segment, ToneMicrophone};
//! // One second of a 1 kHz "voice", then quiet, for as long as the call holds it.
//! let (mic, frames) = ToneMicrophone::start(vec![Segment::tone(1000.0, 1000)], false);
//! services.operator.take_over_with(call_sid, Box::new(mic), frames).await.unwrap();
//! # }
//! ```

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::audio::microphone::{MicFrame, FRAME_BYTES};
use crate::audio::mulaw;
use crate::services::operator::MicControls;

/// A stretch of the synthetic signal.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Segment {
    /// `None`: quiet.
    pub tone_hz: Option<f64>,
    pub ms: u32,
}

impl Segment {
    pub fn tone(tone_hz: f64, ms: u32) -> Self {
        Segment {
            tone_hz: Some(tone_hz),
            ms,
        }
    }

    pub fn quiet(ms: u32) -> Self {
        Segment { tone_hz: None, ms }
    }
}

struct Shared {
    muted: AtomicBool,
    level: AtomicU32,
    frames: AtomicU64,
    stop: AtomicBool,
}

/// See the module docs. Dropping it stops the frames (the channel closes, as when a device goes away).
pub struct ToneMicrophone {
    shared: Arc<Shared>,
}

impl ToneMicrophone {
    /// Starts producing `segments` (then quiet, or the segments again with `repeat`) on a paced task.
    pub fn start(segments: Vec<Segment>, repeat: bool) -> (Self, mpsc::Receiver<MicFrame>) {
        let (tx, rx) = mpsc::channel(10);
        let shared = Arc::new(Shared {
            muted: AtomicBool::new(false),
            level: AtomicU32::new((-60.0f32).to_bits()),
            frames: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        tokio::spawn(produce(segments, repeat, tx, shared.clone()));
        (ToneMicrophone { shared }, rx)
    }

    /// Frames produced so far.
    pub fn frames(&self) -> u64 {
        self.shared.frames.load(Ordering::Relaxed)
    }
}

impl Drop for ToneMicrophone {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
    }
}

/// The signal's frames, 20 ms each: the tone of each segment in turn (amplitude 0.5), quiet after.
fn signal(segments: &[Segment]) -> Vec<[u8; FRAME_BYTES]> {
    let mut frames = Vec::new();
    for segment in segments {
        let audio = match segment.tone_hz {
            Some(hz) => mulaw::tone(hz, segment.ms, 0.5),
            None => vec![0xFF; segment.ms as usize * 8],
        };
        for chunk in audio.chunks(FRAME_BYTES) {
            let mut frame = [0xFF; FRAME_BYTES];
            frame[..chunk.len()].copy_from_slice(chunk);
            frames.push(frame);
        }
    }
    frames
}

async fn produce(
    segments: Vec<Segment>,
    repeat: bool,
    tx: mpsc::Sender<MicFrame>,
    shared: Arc<Shared>,
) {
    let frames = signal(&segments);
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut n = 0usize;
    while !shared.stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let index = if repeat && !frames.is_empty() {
            n % frames.len()
        } else {
            n
        };
        let mut frame = frames.get(index).copied().unwrap_or([0xFF; FRAME_BYTES]);
        n += 1;
        let peak = frame
            .iter()
            .map(|&b| i32::from(mulaw::decode(b)).abs())
            .max()
            .unwrap_or(0);
        let db = if peak == 0 {
            -60.0
        } else {
            (20.0 * (peak as f32 / 32768.0).log10()).max(-60.0)
        };
        shared.level.store(db.to_bits(), Ordering::Relaxed);
        if shared.muted.load(Ordering::Relaxed) {
            frame = [0xFF; FRAME_BYTES];
        }
        let sent = tx.try_send(MicFrame {
            mulaw: frame,
            captured_at: std::time::Instant::now(),
        });
        if let Err(mpsc::error::TrySendError::Closed(_)) = sent {
            return;
        }
        shared.frames.fetch_add(1, Ordering::Relaxed);
    }
}

impl MicControls for ToneMicrophone {
    fn device(&self) -> String {
        "Synthetic microphone".into()
    }
    fn level_db(&self) -> f32 {
        f32::from_bits(self.shared.level.load(Ordering::Relaxed))
    }
    fn set_muted(&self, muted: bool) {
        self.shared.muted.store(muted, Ordering::Relaxed);
    }
    fn muted(&self) -> bool {
        self.shared.muted.load(Ordering::Relaxed)
    }
    fn device_latency(&self) -> Option<Duration> {
        Some(Duration::ZERO)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_follow_the_segments_then_quiet() {
        let (mic, mut rx) = ToneMicrophone::start(vec![Segment::tone(1000.0, 60)], false);
        let mut frames = Vec::new();
        for _ in 0..5 {
            frames.push(rx.recv().await.expect("a frame"));
        }
        assert!(frames[..3].iter().all(|f| mulaw::rms(&f.mulaw) > 1000.0));
        assert!(frames[3..].iter().all(|f| f.mulaw == [0xFF; FRAME_BYTES]));
        mic.set_muted(true);
        assert!(mic.muted());
        drop(mic);
        // The producer stops: the channel ends.
        while rx.recv().await.is_some() {}
    }
}

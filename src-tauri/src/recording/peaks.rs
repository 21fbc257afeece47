//! The waveform the library draws: per bucket, the loudest sample of each side (0–1).

use serde::Serialize;

use super::wav_writer::FRAMES_PER_MS;

pub const MAX_BUCKETS: u32 = 10_000;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Peaks {
    pub duration_ms: u64,
    /// `[caller, agent]` per bucket.
    pub buckets: Vec<[f32; 2]>,
}

/// Splits `frames` into `buckets` equal stretches (fewer if the recording is shorter).
pub fn compute(frames: &[[i16; 2]], buckets: u32) -> Peaks {
    let n = (buckets.clamp(1, MAX_BUCKETS) as usize).min(frames.len().max(1));
    let mut out = vec![[0f32; 2]; if frames.is_empty() { 0 } else { n }];
    for (i, bucket) in out.iter_mut().enumerate() {
        let from = i * frames.len() / n;
        let to = (i + 1) * frames.len() / n;
        for [l, r] in &frames[from..to] {
            bucket[0] = bucket[0].max(l.unsigned_abs() as f32 / 32768.0);
            bucket[1] = bucket[1].max(r.unsigned_abs() as f32 / 32768.0);
        }
    }
    Peaks {
        duration_ms: frames.len() as u64 / FRAMES_PER_MS,
        buckets: out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loud_parts_show_on_their_side() {
        let mut frames = vec![[0i16, 0i16]; 8000];
        frames[100] = [16384, 0];
        frames[7000] = [0, -32768];
        let p = compute(&frames, 4);
        assert_eq!(p.duration_ms, 1000);
        assert_eq!(
            p.buckets,
            vec![[0.5, 0.0], [0.0, 0.0], [0.0, 0.0], [0.0, 1.0]]
        );
        assert_eq!(compute(&frames[..3], 100).buckets.len(), 3);
        assert!(compute(&[], 10).buckets.is_empty());
    }
}

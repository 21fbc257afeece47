//! The microphone's signal path without the device: interleaved samples at the device's rate →
//! mono → 8 kHz (rubato) → μ-law → 160-byte frames, plus a peak meter.
//!
//! Pure and allocation-free after [`Encoder::new`], so it runs inside the audio callback and the
//! tests drive it with synthetic audio. Every frame is stamped with when its last sample entered the
//! device, worked back from the time the caller gives for the last sample of each buffer.

use std::time::{Duration, Instant};

use rubato::{
    Resampler, SincFixedIn, SincInterpolationParameters, SincInterpolationType, WindowFunction,
};

use super::microphone::{MicFrame, FRAME_BYTES};
use super::mulaw;

/// Twilio's rate.
pub const TARGET_RATE: u32 = 8000;
/// The meter's floor and what silence reads as, in dBFS.
pub const LEVEL_FLOOR_DB: f32 = -60.0;
/// Input taps of the anti-aliasing filter (about 1.3 ms of delay at 48 kHz); a polynomial
/// resampler would fold everything above 4 kHz into the call.
const SINC_LEN: usize = 128;

/// Turns device audio into Twilio frames. One per stream; feed it every callback's buffer in order.
pub struct Encoder {
    channels: usize,
    rate: u32,
    resampler: SincFixedIn<f32>,
    /// Mono input waiting for a full resampler chunk (10 ms: small, so little is held back).
    input: Vec<Vec<f32>>,
    filled: usize,
    output: Vec<Vec<f32>>,
    /// The resampler's delay in 8 kHz samples, taken off the timestamps.
    delay_out: usize,
    frame: [u8; FRAME_BYTES],
    framed: usize,
    /// 8 kHz samples per resampler chunk when that is a whole number, for aligning frames.
    per_chunk: Option<usize>,
    started: bool,
    peak: f32,
    peak_seen: usize,
    peak_window: usize,
    level_db: f32,
}

impl Encoder {
    /// An encoder for `channels`-channel audio at `device_rate` Hz.
    pub fn new(device_rate: u32, channels: u16) -> Result<Self, String> {
        if device_rate == 0 || channels == 0 {
            return Err(format!(
                "unusable input format: {channels} channel(s) at {device_rate} Hz"
            ));
        }
        let chunk = (device_rate as usize / 100).max(1);
        let resampler = SincFixedIn::<f32>::new(
            TARGET_RATE as f64 / device_rate as f64,
            1.0,
            SincInterpolationParameters {
                sinc_len: SINC_LEN,
                f_cutoff: 0.92,
                oversampling_factor: 128,
                interpolation: SincInterpolationType::Linear,
                window: WindowFunction::BlackmanHarris2,
            },
            chunk,
            1,
        )
        .map_err(|e| format!("resampler: {e}"))?;
        let output = vec![vec![0.0; resampler.output_frames_max()]];
        let delay_out = resampler.output_delay();
        Ok(Encoder {
            channels: channels as usize,
            rate: device_rate,
            resampler,
            input: vec![vec![0.0; chunk]],
            filled: 0,
            output,
            delay_out,
            frame: [mulaw::SILENCE; FRAME_BYTES],
            framed: 0,
            per_chunk: (chunk * TARGET_RATE as usize)
                .is_multiple_of(device_rate as usize)
                .then(|| chunk * TARGET_RATE as usize / device_rate as usize),
            started: false,
            peak: 0.0,
            peak_seen: 0,
            peak_window: (device_rate as usize / 10).max(1),
            level_db: LEVEL_FLOOR_DB,
        })
    }

    /// Feeds one callback's interleaved samples; `last_at` is when the last of them entered the
    /// device. Calls `emit` for every frame completed, with μ-law silence in it when `muted`.
    pub fn push<T: Copy>(
        &mut self,
        data: &[T],
        to_f32: impl Fn(T) -> f32,
        last_at: Instant,
        muted: bool,
        mut emit: impl FnMut(MicFrame),
    ) {
        let frames = data.len() / self.channels;
        let chunk = self.input[0].len();
        for (i, samples) in data.chunks_exact(self.channels).enumerate() {
            let sum: f32 = samples.iter().map(|&s| to_f32(s)).sum();
            let mono = sum / self.channels as f32;
            self.meter(mono);
            self.input[0][self.filled] = mono;
            self.filled += 1;
            if self.filled < chunk {
                continue;
            }
            self.filled = 0;
            let chunk_end = back(last_at, frames - 1 - i, self.rate);
            let Ok((_, produced)) =
                self.resampler
                    .process_into_buffer(&self.input, &mut self.output, None)
            else {
                continue;
            };
            if !self.started {
                self.started = true;
                // The filter makes the first chunk short. Starting the first frame with that much
                // silence makes every frame end with a chunk, so none waits for most of the next.
                if let Some(per) = self.per_chunk.filter(|p| *p > 0) {
                    self.framed = (per - produced % per) % per % FRAME_BYTES;
                }
            }
            for j in 0..produced {
                let s = (self.output[0][j].clamp(-1.0, 1.0) * 32767.0) as i16;
                self.frame[self.framed] = mulaw::encode(s);
                self.framed += 1;
                if self.framed == FRAME_BYTES {
                    self.framed = 0;
                    let mulaw = if muted {
                        [mulaw::SILENCE; FRAME_BYTES]
                    } else {
                        self.frame
                    };
                    // Output j is the filter's delay behind the chunk's last input sample.
                    let captured_at =
                        back(chunk_end, produced - 1 - j + self.delay_out, TARGET_RATE);
                    emit(MicFrame { mulaw, captured_at });
                }
            }
        }
    }

    /// Peak level of the last completed ~100 ms window, in dBFS (at least [`LEVEL_FLOOR_DB`]).
    /// Measured before muting: the operator sees their microphone work while muted too.
    pub fn level_db(&self) -> f32 {
        self.level_db
    }

    /// What is held back right now: input waiting for a resampler chunk, the filter's delay and a
    /// partly filled frame.
    pub fn held(&self) -> Duration {
        Duration::from_secs_f64(
            self.filled as f64 / self.rate as f64
                + (self.delay_out + self.framed) as f64 / TARGET_RATE as f64,
        )
    }

    fn meter(&mut self, mono: f32) {
        self.peak = self.peak.max(mono.abs());
        self.peak_seen += 1;
        if self.peak_seen >= self.peak_window {
            self.level_db = peak_db(self.peak);
            self.peak = 0.0;
            self.peak_seen = 0;
        }
    }
}

/// `peak` (full scale 1.0) in dBFS, floored.
pub fn peak_db(peak: f32) -> f32 {
    if peak <= 0.0 || !peak.is_finite() {
        return LEVEL_FLOOR_DB;
    }
    (20.0 * peak.log10()).clamp(LEVEL_FLOOR_DB, 0.0)
}

/// `samples` samples at `rate` before `at` (`at` itself if that cannot be represented).
fn back(at: Instant, samples: usize, rate: u32) -> Instant {
    at.checked_sub(Duration::from_secs_f64(samples as f64 / rate as f64))
        .unwrap_or(at)
}

/// How long sound spends inside the pipeline, measured by pushing clicks through it at every
/// position in a frame (in 1-sample callbacks, so the callback size adds nothing).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PipelineDelay {
    /// From a click entering [`Encoder::push`] to the frame carrying it being emitted, on average
    /// over where in the frame it falls (a frame can only leave once its last sample is in).
    pub mean: Duration,
    /// The same, worst case (a click at a frame's first sample).
    pub max: Duration,
    /// Largest error of a frame's `captured_at` against when its last sample really entered.
    pub stamp_error: Duration,
}

/// Measures [`PipelineDelay`] for a stereo device at `device_rate` (for `verbio bench`).
pub fn pipeline_delay(device_rate: u32) -> Result<PipelineDelay, String> {
    let base = Instant::now();
    let at = |index: usize| base + Duration::from_secs_f64(index as f64 / device_rate as f64);
    let (mut sum, mut max, mut stamp_error) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    // Clicks spread over 20 ms (a frame) in 40 steps, each in a fresh encoder after 100 ms of lead-in.
    let trials = 40;
    for t in 0..trials {
        let mut enc = Encoder::new(device_rate, 2)?;
        let click = device_rate as usize / 10 + t * device_rate as usize / 50 / trials;
        let total = click + device_rate as usize / 20;
        let mut frames: Vec<(usize, MicFrame)> = Vec::new();
        for index in 0..total {
            let s = if index == click { 0.9 } else { 0.0 };
            enc.push(
                &[s, s],
                |x: f32| x,
                at(index),
                false,
                |f| frames.push((index, f)),
            );
        }
        // The frame with the click's (filtered) peak and where in it the peak is.
        let (emitted, frame, pos) = frames
            .iter()
            .filter_map(|(index, f)| {
                let (pos, peak) = f
                    .mulaw
                    .iter()
                    .map(|&b| mulaw::decode(b).unsigned_abs())
                    .enumerate()
                    .max_by_key(|(_, v)| *v)?;
                Some((*index, f, pos, peak))
            })
            .max_by_key(|(_, _, _, peak)| *peak)
            .map(|(index, f, pos, _)| (index, f.clone(), pos))
            .ok_or("no frame came out")?;
        let delay = at(emitted).saturating_duration_since(at(click));
        sum += delay;
        max = max.max(delay);
        let last_sample = at(click)
            + Duration::from_secs_f64((FRAME_BYTES - 1 - pos) as f64 / TARGET_RATE as f64);
        let error = if frame.captured_at > last_sample {
            frame.captured_at - last_sample
        } else {
            last_sample - frame.captured_at
        };
        stamp_error = stamp_error.max(error);
    }
    Ok(PipelineDelay {
        mean: sum / trials as u32,
        max,
        stamp_error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Power of `freq` in 8 kHz PCM (Goertzel), normalised by length.
    fn power(samples: &[i16], freq: f64) -> f64 {
        let w = std::f64::consts::TAU * freq / TARGET_RATE as f64;
        let coeff = 2.0 * w.cos();
        let (mut s1, mut s2) = (0.0, 0.0);
        for x in samples {
            let s0 = *x as f64 + coeff * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        (s1 * s1 + s2 * s2 - coeff * s1 * s2) / (samples.len().max(1) as f64).powi(2)
    }

    /// One second of a 440 Hz sine (0.5 full scale) at `rate` in `channels` channels, fed in
    /// callbacks of odd sizes; returns the frames.
    fn sine_second(rate: u32, channels: u16, muted: bool) -> (Encoder, Vec<MicFrame>) {
        let mut enc = Encoder::new(rate, channels).expect("encoder");
        let n = rate as usize;
        let ch = channels as usize;
        let mut data = Vec::with_capacity(n * ch);
        for i in 0..n {
            let s = (std::f64::consts::TAU * 440.0 * i as f64 / rate as f64).sin() as f32 * 0.5;
            data.extend(std::iter::repeat_n(s, ch));
        }
        let base = Instant::now();
        let mut frames = Vec::new();
        let sizes = [37usize, 441, 1000, 113, 512, 7, 960];
        let mut at = 0;
        for size in sizes.iter().cycle() {
            if at >= n {
                break;
            }
            let end = (at + size).min(n);
            let last = base + Duration::from_secs_f64((end - 1) as f64 / rate as f64);
            enc.push(
                &data[at * ch..end * ch],
                |x| x,
                last,
                muted,
                |f| frames.push(f),
            );
            at = end;
        }
        (enc, frames)
    }

    fn check_tone(rate: u32, channels: u16) {
        let (enc, frames) = sine_second(rate, channels, false);
        // 50 frames a second (the filter's delay may hold the last one back).
        assert!((49..=50).contains(&frames.len()), "{} frames", frames.len());
        let pcm: Vec<i16> = frames
            .iter()
            .skip(1) // the filter's run-in
            .flat_map(|f| f.mulaw.iter().map(|&b| mulaw::decode(b)))
            .collect();
        let p440 = power(&pcm, 440.0);
        for other in [300.0, 600.0, 1000.0, 2000.0, 3000.0] {
            let p = power(&pcm, other);
            assert!(p440 > 100.0 * p, "440 Hz {p440:.0} vs {other} Hz {p:.0}");
        }
        // 0.5 full scale peak ≈ -6 dBFS.
        assert!(
            (enc.level_db() + 6.0).abs() < 0.5,
            "level {}",
            enc.level_db()
        );
        // Stamps advance 20 ms per frame.
        for w in frames.windows(2) {
            let step = w[1].captured_at - w[0].captured_at;
            assert!(
                step.abs_diff(Duration::from_millis(20)) < Duration::from_micros(200),
                "step {step:?}"
            );
        }
    }

    #[test]
    fn a_48_khz_stereo_sine_becomes_440_hz_frames() {
        check_tone(48_000, 2);
    }

    #[test]
    fn a_44_1_khz_stereo_sine_becomes_440_hz_frames() {
        check_tone(44_100, 2);
    }

    #[test]
    fn mono_at_16_khz_works_too() {
        check_tone(16_000, 1);
    }

    #[test]
    fn muted_frames_are_silence_and_keep_coming() {
        let (enc, frames) = sine_second(48_000, 2, true);
        assert!((49..=50).contains(&frames.len()), "{} frames", frames.len());
        assert!(frames
            .iter()
            .all(|f| f.mulaw == [mulaw::SILENCE; FRAME_BYTES]));
        // The meter still shows the microphone.
        assert!(enc.level_db() > -10.0);
    }

    #[test]
    fn silence_reads_as_the_floor() {
        let mut enc = Encoder::new(48_000, 1).expect("encoder");
        enc.push(&[0.0f32; 9600], |x| x, Instant::now(), false, |_| {});
        assert_eq!(enc.level_db(), LEVEL_FLOOR_DB);
        assert_eq!(peak_db(1.0), 0.0);
        assert!((peak_db(0.1) + 20.0).abs() < 0.01);
    }

    #[test]
    fn integer_samples_convert() {
        let mut enc = Encoder::new(8000, 1).expect("encoder");
        let data: Vec<i16> = (0..1600)
            .map(|i| ((std::f64::consts::TAU * 440.0 * i as f64 / 8000.0).sin() * 16000.0) as i16)
            .collect();
        let mut frames = Vec::new();
        enc.push(
            &data,
            |s: i16| s as f32 / 32768.0,
            Instant::now(),
            false,
            |f| frames.push(f),
        );
        assert!((9..=10).contains(&frames.len()));
        let pcm: Vec<i16> = frames
            .iter()
            .flat_map(|f| f.mulaw.iter().map(|&b| mulaw::decode(b)))
            .collect();
        assert!(power(&pcm, 440.0) > 100.0 * power(&pcm, 1000.0));
    }

    #[test]
    fn bad_formats_are_errors() {
        assert!(Encoder::new(0, 2).is_err());
        assert!(Encoder::new(48_000, 0).is_err());
    }

    #[test]
    fn the_pipeline_adds_little_delay_and_stamps_frames_right() {
        for rate in [48_000, 44_100] {
            let d = pipeline_delay(rate).expect("measured");
            eprintln!("{rate} Hz: {d:?}");
            // A frame (20 ms) plus the filter: frames end with resampler chunks.
            assert!(d.max <= Duration::from_millis(25), "{rate} Hz: {d:?}");
            assert!(
                d.stamp_error <= Duration::from_millis(1),
                "{rate} Hz: {d:?}"
            );
        }
        // What is held at any moment stays under a frame plus a chunk.
        let (enc, _) = sine_second(48_000, 2, false);
        assert!(enc.held() <= Duration::from_millis(30), "{:?}", enc.held());
    }
}

//! The operator's microphone: a `cpal` input stream turned into Twilio media frames (8 kHz μ-law,
//! 20 ms = 160 bytes), so an operator can take over a call with their own voice.
//!
//! The device's audio is downmixed, resampled and cut into frames inside the audio callback
//! ([`mic_pipeline::Encoder`](super::mic_pipeline::Encoder)), and each frame goes out with
//! `try_send`: the audio thread must never block, or the device overruns and drops audio, so a
//! frame the consumer has no room for is counted in [`Microphone::dropped`] instead. Frames have
//! Twilio's size so the bridge forwards them as they are.
//!
//! Like the speakers (`recording::speaker`), each microphone lives on its own thread until dropped,
//! a device that hangs while opening costs [`open`] at most 10 s, and a missing or broken device is
//! a clear [`MicrophoneError`], never a panic.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};

use super::devices::{self, Direction, StreamThread};
pub use super::mic_pipeline::{pipeline_delay, PipelineDelay};
use super::mic_pipeline::{Encoder, LEVEL_FLOOR_DB};

/// Bytes in a Twilio media frame: 20 ms of 8 kHz μ-law.
pub const FRAME_BYTES: usize = 160;

/// 20 ms of the operator's voice, ready for Twilio.
#[derive(Debug, Clone)]
pub struct MicFrame {
    pub mulaw: [u8; FRAME_BYTES],
    /// When the frame's last sample entered the device (best estimate: the callback's time, moved
    /// back by the capture delay the driver reports).
    pub captured_at: Instant,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MicrophoneError {
    #[error("no microphone (audio input device){}", .0.as_ref().map(|n| format!(" named {n:?}")).unwrap_or_default())]
    NoInputDevice(Option<String>),
    #[error("the microphone cannot be used: {0}")]
    Unusable(String),
}

impl MicrophoneError {
    /// A stable code for the UI and the API.
    pub fn code(&self) -> &'static str {
        match self {
            MicrophoneError::NoInputDevice(_) => "no_input_device",
            MicrophoneError::Unusable(_) => "input_device_unusable",
        }
    }
}

/// The input devices' names, default first: what [`open`] takes.
pub fn input_devices() -> Vec<String> {
    inputs(&cpal::default_host())
        .map(|named| named.into_iter().map(|(name, _)| name).collect())
        .unwrap_or_default()
}

fn inputs(host: &cpal::Host) -> Result<Vec<(String, cpal::Device)>, cpal::Error> {
    devices::named(host, Direction::Input)
}

fn description(device: &cpal::Device) -> String {
    devices::description(device, Direction::Input)
}

/// Written by the audio callback, read by [`Microphone`]'s getters.
struct Shared {
    /// f32 bits of the peak level in dBFS.
    level: AtomicU32,
    /// Capture → callback delay in µs; `u64::MAX` until the driver reports one.
    latency_us: AtomicU64,
    /// Frames per channel in the first callback; 0 until then.
    buffer_frames: AtomicU32,
    dropped: AtomicU64,
    muted: AtomicBool,
}

/// An open microphone. Dropping it stops capture (the frame channel then closes) and joins its
/// thread.
pub struct Microphone {
    /// Dropped last: stops the device and joins its thread.
    _stream: StreamThread,
    pub device: String,
    /// The device's rate, before resampling to 8 kHz.
    pub rate: u32,
    shared: Arc<Shared>,
}

impl Microphone {
    /// Peak level of the last ~100 ms in dBFS, -60 at most quiet. Shows the microphone even while
    /// muted, so push-to-talk users can see it works.
    pub fn level_db(&self) -> f32 {
        f32::from_bits(self.shared.level.load(Ordering::Relaxed))
    }

    /// How long sound waits in the device and driver before the callback sees it, as the driver
    /// last reported it (`None` if it reports nothing).
    pub fn device_latency(&self) -> Option<Duration> {
        match self.shared.latency_us.load(Ordering::Relaxed) {
            u64::MAX => None,
            us => Some(Duration::from_micros(us)),
        }
    }

    /// Frames per channel the device delivers per callback (from the first one; `None` before it).
    pub fn buffer_frames(&self) -> Option<u32> {
        match self.shared.buffer_frames.load(Ordering::Relaxed) {
            0 => None,
            n => Some(n),
        }
    }

    /// Frames lost because the consumer's channel was full (or closed).
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// While muted, frames keep coming on time but carry μ-law silence, so the call's timeline
    /// stays continuous (push-to-talk).
    pub fn set_muted(&self, muted: bool) {
        self.shared.muted.store(muted, Ordering::Relaxed);
    }

    pub fn muted(&self) -> bool {
        self.shared.muted.load(Ordering::Relaxed)
    }
}

/// Opens `device` (or the default input) and starts sending its frames to `frames`.
pub fn open(
    device: Option<&str>,
    frames: tokio::sync::mpsc::Sender<MicFrame>,
) -> Result<Microphone, MicrophoneError> {
    let wanted = device.map(str::to_string);
    let shared = Arc::new(Shared {
        level: AtomicU32::new(LEVEL_FLOOR_DB.to_bits()),
        latency_us: AtomicU64::new(u64::MAX),
        buffer_frames: AtomicU32::new(0),
        dropped: AtomicU64::new(0),
        muted: AtomicBool::new(false),
    });
    let state = shared.clone();
    let (stream, device, rate) = devices::spawn_stream(
        "verbio-microphone",
        move || build(wanted.as_deref(), frames, state),
        MicrophoneError::Unusable,
    )?;
    Ok(Microphone {
        _stream: stream,
        device,
        rate,
        shared,
    })
}

fn build(
    wanted: Option<&str>,
    frames: tokio::sync::mpsc::Sender<MicFrame>,
    shared: Arc<Shared>,
) -> Result<(cpal::Stream, String, u32), MicrophoneError> {
    let unusable = |e: cpal::Error| MicrophoneError::Unusable(e.to_string());
    let host = cpal::default_host();
    let (name, device) = match wanted {
        Some(wanted) => inputs(&host)
            .map_err(unusable)?
            .into_iter()
            .find(|(name, _)| name == wanted)
            .ok_or_else(|| MicrophoneError::NoInputDevice(Some(wanted.to_string())))?,
        None => {
            let device = host
                .default_input_device()
                .ok_or(MicrophoneError::NoInputDevice(None))?;
            (description(&device), device)
        }
    };
    let supported = device.default_input_config().map_err(unusable)?;
    let rate = supported.sample_rate();
    let config = supported.config();
    let encoder = Encoder::new(rate, config.channels).map_err(MicrophoneError::Unusable)?;
    let capture = Capture {
        encoder,
        channels: config.channels as usize,
        rate,
        frames,
        shared,
    };
    // Whatever the device prefers, converted to f32 in the callback.
    let stream = match supported.sample_format() {
        cpal::SampleFormat::F32 => input::<f32>(&device, config, capture),
        cpal::SampleFormat::F64 => input::<f64>(&device, config, capture),
        cpal::SampleFormat::I32 => input::<i32>(&device, config, capture),
        cpal::SampleFormat::I24 => input::<cpal::I24>(&device, config, capture),
        cpal::SampleFormat::I16 => input::<i16>(&device, config, capture),
        cpal::SampleFormat::I8 => input::<i8>(&device, config, capture),
        cpal::SampleFormat::U32 => input::<u32>(&device, config, capture),
        cpal::SampleFormat::U16 => input::<u16>(&device, config, capture),
        cpal::SampleFormat::U8 => input::<u8>(&device, config, capture),
        other => {
            return Err(MicrophoneError::Unusable(format!(
                "sample format {other} is not supported"
            )))
        }
    }
    .map_err(unusable)?;
    // cpal returns streams paused.
    stream.play().map_err(unusable)?;
    Ok((stream, name, rate))
}

/// Everything the audio callback owns.
struct Capture {
    encoder: Encoder,
    channels: usize,
    rate: u32,
    frames: tokio::sync::mpsc::Sender<MicFrame>,
    shared: Arc<Shared>,
}

impl Capture {
    fn on_data<T: Copy>(
        &mut self,
        data: &[T],
        info: &cpal::InputCallbackInfo,
        to_f32: impl Fn(T) -> f32,
    ) {
        let now = Instant::now();
        let n = data.len() / self.channels.max(1);
        if n == 0 {
            return;
        }
        let shared = &self.shared;
        if shared.buffer_frames.load(Ordering::Relaxed) == 0 {
            shared.buffer_frames.store(n as u32, Ordering::Relaxed);
        }
        let ts = info.timestamp();
        // Zero means the host reported no delay (or none it could measure).
        let lag = ts
            .callback
            .checked_duration_since(ts.capture)
            .filter(|d| !d.is_zero());
        if let Some(lag) = lag {
            shared
                .latency_us
                .store(lag.as_micros() as u64, Ordering::Relaxed);
        }
        let last_at = last_sample_at(now, lag, n, self.rate);
        let muted = shared.muted.load(Ordering::Relaxed);
        let frames = &self.frames;
        self.encoder.push(data, to_f32, last_at, muted, |frame| {
            if frames.try_send(frame).is_err() {
                shared.dropped.fetch_add(1, Ordering::Relaxed);
            }
        });
        shared
            .level
            .store(self.encoder.level_db().to_bits(), Ordering::Relaxed);
    }
}

/// When the last of `n` samples entered the device. cpal's `capture` instant is the buffer's first
/// sample, `lag` before the callback; without it, the callback's own time.
fn last_sample_at(now: Instant, lag: Option<Duration>, n: usize, rate: u32) -> Instant {
    let Some(lag) = lag else { return now };
    let span = Duration::from_secs_f64(n.saturating_sub(1) as f64 / rate.max(1) as f64);
    // Never later than now (a driver whose delay is shorter than its buffer).
    now.checked_sub(lag.saturating_sub(span)).unwrap_or(now)
}

/// An input stream of samples of type `T` feeding `capture`.
fn input<T>(
    device: &cpal::Device,
    config: cpal::StreamConfig,
    mut capture: Capture,
) -> Result<cpal::Stream, cpal::Error>
where
    T: cpal::SizedSample,
    f32: cpal::FromSample<T>,
{
    device.build_input_stream(
        config,
        move |data: &[T], info: &cpal::InputCallbackInfo| {
            capture.on_data(data, info, |s: T| cpal::Sample::to_sample::<f32>(s))
        },
        |e: cpal::Error| tracing::warn!("audio input error: {e}"),
        None,
    )
}

/// An open microphone as the operator's desk uses it: the device, or a synthetic one in tests
/// (`sim::microphone`).
pub trait MicControls: Send {
    fn device(&self) -> String;
    fn level_db(&self) -> f32;
    fn set_muted(&self, muted: bool);
    fn muted(&self) -> bool;
    fn device_latency(&self) -> Option<Duration>;
    /// Frames per callback at the device's rate, once known.
    fn buffer_frames(&self) -> Option<u32> {
        None
    }
}

impl MicControls for Microphone {
    fn device(&self) -> String {
        self.device.clone()
    }
    fn level_db(&self) -> f32 {
        Microphone::level_db(self)
    }
    fn set_muted(&self, muted: bool) {
        Microphone::set_muted(self, muted)
    }
    fn muted(&self) -> bool {
        Microphone::muted(self)
    }
    fn device_latency(&self) -> Option<Duration> {
        Microphone::device_latency(self)
    }
    fn buffer_frames(&self) -> Option<u32> {
        Microphone::buffer_frames(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_have_codes_and_clear_messages() {
        let named = MicrophoneError::NoInputDevice(Some("USB mic".into()));
        assert_eq!(named.code(), "no_input_device");
        assert_eq!(
            named.to_string(),
            "no microphone (audio input device) named \"USB mic\""
        );
        assert_eq!(
            MicrophoneError::NoInputDevice(None).to_string(),
            "no microphone (audio input device)"
        );
        let broken = MicrophoneError::Unusable("busy".into());
        assert_eq!(broken.code(), "input_device_unusable");
        assert!(broken.to_string().contains("busy"));
    }

    #[test]
    fn the_last_sample_is_back_dated_by_the_capture_delay() {
        let now = Instant::now();
        let ms = Duration::from_millis;
        // No reported delay: the callback's time.
        assert_eq!(last_sample_at(now, None, 480, 48_000), now);
        // 30 ms delay for the first of 10 ms: the last came in 20 ms ago (within rounding).
        let at = last_sample_at(now, Some(ms(30)), 481, 48_000);
        assert_eq!(now - at, ms(20));
        // A delay shorter than the buffer cannot put samples in the future.
        assert_eq!(last_sample_at(now, Some(ms(5)), 480, 48_000), now);
    }
}

//! The speakers: a `cpal` output stream fed from an 8 kHz mono source, resampled to the device's rate
//! with `rubato` and copied to every device channel.
//!
//! Each output lives on its own thread until told to stop, so a device that hangs while opening costs
//! the caller at most [`open`]'s 10 s. Opening fails with a clear [`SpeakerError`] when there is no
//! usable device (no sound server, unplugged card), never with a panic.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use rubato::{FastFixedIn, PolynomialDegree, Resampler};

use crate::audio::devices::{self, Direction, StreamThread};

/// Source rate: everything here is telephone audio.
pub const SOURCE_RATE: u32 = 8000;
/// Source frames per resampler step (10 ms).
const CHUNK: usize = 80;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpeakerError {
    #[error("no audio output device{}", .0.as_ref().map(|n| format!(" named {n:?}")).unwrap_or_default())]
    NoDevice(Option<String>),
    #[error("the audio output device cannot be used: {0}")]
    Unusable(String),
}

/// Produces mono 8 kHz samples in [-1, 1]; called from the audio thread, so it must not block.
pub trait Source: Send + 'static {
    fn fill(&mut self, out: &mut [f32]);
}

/// The output devices' names, default first: what [`open`] takes.
pub fn output_devices() -> Vec<String> {
    outputs(&cpal::default_host())
        .map(|named| named.into_iter().map(|(name, _)| name).collect())
        .unwrap_or_default()
}

fn outputs(host: &cpal::Host) -> Result<Vec<(String, cpal::Device)>, cpal::Error> {
    devices::named(host, Direction::Output)
}

fn description(device: &cpal::Device) -> String {
    devices::description(device, Direction::Output)
}

/// An open output. Dropping it stops the sound and joins its thread.
pub struct Speaker {
    /// Dropped last: stops the device and joins its thread.
    _stream: StreamThread,
    pub device: String,
    pub rate: u32,
    latency_us: Arc<AtomicU64>,
}

impl Speaker {
    /// The device's own delay (callback → sound), as its driver last reported it.
    pub fn latency(&self) -> Duration {
        Duration::from_micros(self.latency_us.load(Ordering::Relaxed))
    }
}

/// Opens `device` (or the default output) and starts playing `source`.
pub fn open(device: Option<&str>, source: Box<dyn Source>) -> Result<Speaker, SpeakerError> {
    let wanted = device.map(str::to_string);
    let latency_us = Arc::new(AtomicU64::new(0));
    let latency = latency_us.clone();
    let (stream, device, rate) = devices::spawn_stream(
        "verbio-speaker",
        move || build(wanted.as_deref(), source, latency),
        SpeakerError::Unusable,
    )?;
    Ok(Speaker {
        _stream: stream,
        device,
        rate,
        latency_us,
    })
}

fn build(
    wanted: Option<&str>,
    source: Box<dyn Source>,
    latency: Arc<AtomicU64>,
) -> Result<(cpal::Stream, String, u32), SpeakerError> {
    let host = cpal::default_host();
    let (name, device) = match wanted {
        Some(wanted) => outputs(&host)
            .map_err(|e| SpeakerError::Unusable(e.to_string()))?
            .into_iter()
            .find(|(name, _)| name == wanted)
            .ok_or_else(|| SpeakerError::NoDevice(Some(wanted.to_string())))?,
        None => {
            let device = host
                .default_output_device()
                .ok_or(SpeakerError::NoDevice(None))?;
            (description(&device), device)
        }
    };
    let supported = device
        .default_output_config()
        .map_err(|e| SpeakerError::Unusable(e.to_string()))?;
    let rate = supported.sample_rate();
    let config = supported.config();
    let feed = Feed::new(source, rate)?;
    // The device's preferred format (cpal ranks F32, then F64, then integers by width).
    let stream = match supported.sample_format() {
        cpal::SampleFormat::F32 => output::<f32>(&device, config, feed, latency),
        cpal::SampleFormat::F64 => output::<f64>(&device, config, feed, latency),
        cpal::SampleFormat::I32 => output::<i32>(&device, config, feed, latency),
        cpal::SampleFormat::I24 => output::<cpal::I24>(&device, config, feed, latency),
        cpal::SampleFormat::I16 => output::<i16>(&device, config, feed, latency),
        cpal::SampleFormat::I8 => output::<i8>(&device, config, feed, latency),
        cpal::SampleFormat::U32 => output::<u32>(&device, config, feed, latency),
        cpal::SampleFormat::U16 => output::<u16>(&device, config, feed, latency),
        cpal::SampleFormat::U8 => output::<u8>(&device, config, feed, latency),
        other => {
            return Err(SpeakerError::Unusable(format!(
                "sample format {other} is not supported"
            )))
        }
    }
    .map_err(|e| SpeakerError::Unusable(e.to_string()))?;
    // cpal returns streams paused.
    stream
        .play()
        .map_err(|e| SpeakerError::Unusable(e.to_string()))?;
    Ok((stream, name, rate))
}

/// An output stream of samples of type `T`, fed by `feed`.
fn output<T: cpal::SizedSample + cpal::FromSample<f32>>(
    device: &cpal::Device,
    config: cpal::StreamConfig,
    mut feed: Feed,
    latency: Arc<AtomicU64>,
) -> Result<cpal::Stream, cpal::Error> {
    let channels = config.channels as usize;
    device.build_output_stream(
        config,
        move |out: &mut [T], info: &cpal::OutputCallbackInfo| {
            note_latency(&latency, info);
            feed.write(out, channels, T::from_sample)
        },
        |e: cpal::Error| tracing::warn!("audio output error: {e}"),
        None,
    )
}

fn note_latency(latency: &AtomicU64, info: &cpal::OutputCallbackInfo) {
    let ts = info.timestamp();
    if let Some(d) = ts.playback.checked_duration_since(ts.callback) {
        latency.store(d.as_micros() as u64, Ordering::Relaxed);
    }
}

/// Pulls 8 kHz chunks from the source and resamples them to the device rate.
struct Feed {
    source: Box<dyn Source>,
    resampler: FastFixedIn<f32>,
    input: Vec<Vec<f32>>,
    output: Vec<Vec<f32>>,
    ready: std::collections::VecDeque<f32>,
}

impl Feed {
    fn new(source: Box<dyn Source>, rate: u32) -> Result<Self, SpeakerError> {
        let resampler = FastFixedIn::<f32>::new(
            rate as f64 / SOURCE_RATE as f64,
            1.0,
            PolynomialDegree::Cubic,
            CHUNK,
            1,
        )
        .map_err(|e| SpeakerError::Unusable(format!("resampler: {e}")))?;
        let output = vec![vec![0.0; resampler.output_frames_max()]];
        Ok(Feed {
            source,
            resampler,
            input: vec![vec![0.0; CHUNK]],
            output,
            ready: std::collections::VecDeque::new(),
        })
    }

    fn write<T: Copy>(&mut self, out: &mut [T], channels: usize, convert: impl Fn(f32) -> T) {
        let frames = out.len() / channels.max(1);
        while self.ready.len() < frames {
            self.source.fill(&mut self.input[0]);
            match self
                .resampler
                .process_into_buffer(&self.input, &mut self.output, None)
            {
                Ok((_, produced)) => self.ready.extend(&self.output[0][..produced]),
                Err(_) => break,
            }
        }
        for frame in out.chunks_mut(channels.max(1)) {
            let s = self.ready.pop_front().unwrap_or(0.0).clamp(-1.0, 1.0);
            for slot in frame {
                *slot = convert(s);
            }
        }
    }
}

//! Helpers for the real-audio-device tests: is a device expected, capture the null sink's monitor
//! with `parec`, find a tone (Goertzel).
//!
//! `scripts/test.sh` starts PulseAudio with a null sink and sets `VERBIO_AUDIO_DEVICE_TESTS=1`; then a
//! missing device is a failure. Without that variable (a plain `cargo test` on a laptop) the device
//! tests say they are skipped and return. Each device test is its own test binary (process): two in
//! one process took turns badly on the shared sink here (the second capture came back empty).
#![allow(dead_code)]

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

pub fn device_expected() -> bool {
    if std::env::var("VERBIO_AUDIO_DEVICE_TESTS").is_ok_and(|v| v == "1") {
        return true;
    }
    eprintln!("SKIPPED: no test audio device (scripts/test.sh starts one and sets VERBIO_AUDIO_DEVICE_TESTS=1)");
    false
}

/// Captures the null sink's monitor while it runs (read continuously: a full pipe would stall parec).
pub struct Capture {
    rate: u32,
    child: std::process::Child,
    reader: std::thread::JoinHandle<Vec<u8>>,
}

impl Capture {
    pub async fn start() -> Capture {
        let sink = std::env::var("VERBIO_TEST_SINK").unwrap_or_else(|_| "test_null".into());
        // Record at the sink's own rate: PulseAudio switches an idle sink between 44.1 and 48 kHz to
        // suit the last stream, and a monitor recorded at the other rate came back empty.
        let sinks = Command::new("pactl")
            .args(["list", "short", "sinks"])
            .output()
            .expect("pactl runs (pulseaudio-utils)");
        let rate = String::from_utf8_lossy(&sinks.stdout)
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(sink.as_str()))
            .and_then(|l| {
                l.split_whitespace()
                    .find_map(|w| w.strip_suffix("Hz")?.parse().ok())
            })
            .expect("the test sink is loaded");
        // Right after another capture, a fresh parec sometimes received nothing at all; a capture
        // only counts once data flows, else parec is started again.
        for _ in 0..5 {
            let mut child = Command::new("parec")
                .args([
                    "-d",
                    &format!("{sink}.monitor"),
                    &format!("--rate={rate}"),
                    "--channels=1",
                    "--format=s16le",
                    // 20 ms lost whole stretches on a loaded 2-core machine; 100 ms was reliable.
                    "--latency-msec=100",
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("parec runs (pulseaudio-utils)");
            let mut out = child.stdout.take().expect("parec stdout");
            let flowing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let seen = flowing.clone();
            let reader = std::thread::spawn(move || {
                let mut raw = Vec::new();
                let mut buf = [0u8; 4096];
                while let Ok(n) = out.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    seen.store(true, std::sync::atomic::Ordering::Relaxed);
                    raw.extend_from_slice(&buf[..n]);
                }
                raw
            });
            for _ in 0..30 {
                if flowing.load(std::sync::atomic::Ordering::Relaxed) {
                    return Capture {
                        rate,
                        child,
                        reader,
                    };
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let _ = child.kill();
            let _ = child.wait();
            let _ = reader.join();
            eprintln!("parec delivered nothing in 1.5 s; starting it again");
        }
        panic!("parec never delivered audio from {sink}.monitor");
    }

    /// The captured samples and their rate.
    pub fn stop(mut self) -> (Vec<i16>, u32) {
        // SIGINT, so parec writes out what it holds before it exits.
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        let raw = self.reader.join().unwrap_or_default();
        let samples = raw
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect();
        (samples, self.rate)
    }
}

/// Power of `freq` in `samples` (Goertzel), normalised by length.
pub fn power((samples, rate): &(Vec<i16>, u32), freq: f64) -> f64 {
    let w = std::f64::consts::TAU * freq / *rate as f64;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for x in samples {
        let s0 = *x as f64 + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    (s1 * s1 + s2 * s2 - coeff * s1 * s2) / (samples.len().max(1) as f64).powi(2)
}

pub fn rms((samples, _): &(Vec<i16>, u32)) -> f64 {
    (samples.iter().map(|s| (*s as f64).powi(2)).sum::<f64>() / samples.len().max(1) as f64).sqrt()
}

/// The loudest `ms`-long stretch of a capture (captures start and end with silence of varying length).
pub fn loudest((samples, rate): &(Vec<i16>, u32), ms: u32) -> (Vec<i16>, u32) {
    let len = (*rate as usize * ms as usize / 1000).max(1);
    if samples.len() <= len {
        return (samples.clone(), *rate);
    }
    let step = len / 4;
    let energy = |from: usize| -> f64 {
        samples[from..from + len]
            .iter()
            .map(|s| (*s as f64).powi(2))
            .sum()
    };
    let best = (0..=samples.len() - len)
        .step_by(step.max(1))
        .max_by(|a, b| energy(*a).total_cmp(&energy(*b)))
        .unwrap_or(0);
    (samples[best..best + len].to_vec(), *rate)
}

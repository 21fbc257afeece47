//! The session's audio formats: how many bytes make a millisecond, how loud a frame is, and how the scripted
//! tone is encoded. The simulator reads and writes audio in the format the session is *actually* on, so a
//! rejected `session.update` (the session stays on `audio/pcm` 24 kHz) turns μ-law into noise, as it does live.

use serde_json::{json, Value};

use crate::audio::mulaw;

/// One of the three GA formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AudioFormat {
    /// `audio/pcm`: 16-bit little-endian PCM at 24 kHz (the GA default).
    Pcm24k,
    /// `audio/pcmu`: G.711 μ-law at 8 kHz.
    Pcmu,
    /// `audio/pcma`: G.711 A-law at 8 kHz.
    Pcma,
}

impl AudioFormat {
    /// Reads a `{"type": …}` format object; anything unexpected counts as the default.
    pub(crate) fn from_json(format: Option<&Value>) -> Self {
        match format.and_then(|f| f.get("type")).and_then(Value::as_str) {
            Some("audio/pcmu") => AudioFormat::Pcmu,
            Some("audio/pcma") => AudioFormat::Pcma,
            _ => AudioFormat::Pcm24k,
        }
    }

    pub(crate) fn to_json(self) -> Value {
        match self {
            AudioFormat::Pcm24k => json!({"type": "audio/pcm", "rate": 24000}),
            AudioFormat::Pcmu => json!({"type": "audio/pcmu"}),
            AudioFormat::Pcma => json!({"type": "audio/pcma"}),
        }
    }

    pub(crate) fn bytes_per_ms(self) -> u64 {
        match self {
            AudioFormat::Pcm24k => 48,
            AudioFormat::Pcmu | AudioFormat::Pcma => 8,
        }
    }

    /// Bytes in one 20 ms VAD frame.
    pub(crate) fn frame_bytes(self) -> usize {
        self.bytes_per_ms() as usize * 20
    }

    /// RMS level in linear PCM units, the audio read as this format.
    pub(crate) fn rms(self, bytes: &[u8]) -> f64 {
        match self {
            AudioFormat::Pcmu => mulaw::rms(bytes),
            AudioFormat::Pcma => rms_of(bytes.iter().map(|&b| alaw_decode(b))),
            AudioFormat::Pcm24k => rms_of(
                bytes
                    .chunks_exact(2)
                    .map(|pair| i16::from_le_bytes([pair[0], pair[1]])),
            ),
        }
    }

    /// A sine tone `millis` long in this format.
    pub(crate) fn tone(self, freq: f64, millis: u32, amplitude: f64) -> Vec<u8> {
        let rate = match self {
            AudioFormat::Pcm24k => 24_000.0,
            _ => 8_000.0,
        };
        let samples = (millis as f64 * rate / 1000.0) as usize;
        let sample = |i: usize| {
            let t = i as f64 / rate;
            ((2.0 * std::f64::consts::PI * freq * t).sin() * amplitude * 32767.0) as i16
        };
        match self {
            AudioFormat::Pcmu => mulaw::tone(freq, millis, amplitude),
            AudioFormat::Pcma => (0..samples).map(|i| alaw_encode(sample(i))).collect(),
            AudioFormat::Pcm24k => (0..samples).flat_map(|i| sample(i).to_le_bytes()).collect(),
        }
    }
}

fn rms_of(samples: impl Iterator<Item = i16>) -> f64 {
    let (sum, n) = samples.fold((0.0f64, 0usize), |(sum, n), s| {
        (sum + (s as f64) * (s as f64), n + 1)
    });
    if n == 0 {
        0.0
    } else {
        (sum / n as f64).sqrt()
    }
}

/// G.711 A-law to linear PCM (the Sun `g711.c` reference).
pub(crate) fn alaw_decode(byte: u8) -> i16 {
    let a = byte ^ 0x55;
    let mut t = ((a & 0x0F) as i16) << 4;
    let segment = (a & 0x70) >> 4;
    match segment {
        0 => t += 8,
        1 => t += 0x108,
        _ => {
            t += 0x108;
            t <<= segment - 1;
        }
    }
    if a & 0x80 != 0 {
        t
    } else {
        -t
    }
}

/// Linear PCM to G.711 A-law (the Sun `g711.c` reference).
pub(crate) fn alaw_encode(sample: i16) -> u8 {
    const SEGMENT_ENDS: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];
    let mut pcm = (sample as i32) >> 3;
    let mask: u8 = if pcm >= 0 {
        0xD5
    } else {
        pcm = -pcm - 1;
        0x55
    };
    let Some(segment) = SEGMENT_ENDS.iter().position(|&end| pcm <= end) else {
        return 0x7F ^ mask;
    };
    let mantissa = if segment < 2 {
        (pcm >> 1) & 0x0F
    } else {
        (pcm >> segment) & 0x0F
    };
    (((segment as i32) << 4) as u8 | mantissa as u8) ^ mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alaw_round_trips_within_its_step() {
        for sample in [-32000i16, -1000, -9, 0, 9, 1000, 20000, 32767] {
            let back = alaw_decode(alaw_encode(sample)) as i32;
            let step = (sample as i32).abs() / 16 + 16;
            assert!((back - sample as i32).abs() <= step, "{sample} -> {back}");
        }
        assert_eq!(alaw_encode(0), 0xD5);
    }

    #[test]
    fn formats_measure_time_and_loudness() {
        for format in [AudioFormat::Pcm24k, AudioFormat::Pcmu, AudioFormat::Pcma] {
            let tone = format.tone(440.0, 100, 0.5);
            assert_eq!(tone.len() as u64, 100 * format.bytes_per_ms());
            assert!(format.rms(&tone) > 10_000.0, "{format:?}");
            assert_eq!(AudioFormat::from_json(Some(&format.to_json())), format);
        }
        // μ-law silence read as PCM16 is still quiet; a μ-law tone read as PCM16 is loud noise.
        assert!(AudioFormat::Pcm24k.rms(&[mulaw::SILENCE; 960]) < 10.0);
        assert!(AudioFormat::Pcm24k.rms(&mulaw::tone(300.0, 20, 0.5)) > 1000.0);
    }
}

//! G.711 μ-law (as Twilio sends it: 8 kHz, one byte per sample).
//!
//! Follows the Sun/CCITT `g711.c` reference (bias 0x84, 14-bit clip 8159), so it agrees with
//! CPython's `audioop` and sox (checked against `tests/fixtures/specs/g711-ulaw-table.json`).

const BIAS: i32 = 0x84;

/// μ-law byte for silence; Twilio pads with it.
pub const SILENCE: u8 = 0xFF;

/// Decodes one μ-law byte to 16-bit linear PCM.
///
/// ```
/// assert_eq!(verbio::audio::mulaw::decode(0xFF), 0);
/// assert_eq!(verbio::audio::mulaw::decode(0x00), -32124);
/// ```
pub const fn decode(byte: u8) -> i16 {
    DECODE_TABLE[byte as usize]
}

/// Encodes one 16-bit linear PCM sample to μ-law.
///
/// ```
/// use verbio::audio::mulaw::{decode, encode};
/// assert_eq!(encode(0), 0xFF);
/// assert_eq!(decode(encode(1000)), 988);
/// ```
pub fn encode(sample: i16) -> u8 {
    // The reference works on 14-bit magnitudes: an arithmetic shift first (floor for negatives),
    // then sign/magnitude, clip, bias and segment search.
    let mut pcm = (sample >> 2) as i32;
    let mask: u8 = if pcm < 0 {
        pcm = -pcm;
        0x7F
    } else {
        0xFF
    };
    pcm = pcm.min(CLIP_14) + (BIAS >> 2);
    // Segment = index of the first segment end (0x3F, 0x7F, … 0x1FFF) not below the value.
    let segment = SEGMENT_ENDS.iter().position(|&end| pcm <= end).unwrap_or(8) as i32;
    if segment >= 8 {
        return 0x7F ^ mask;
    }
    let uval = ((segment << 4) | ((pcm >> (segment + 1)) & 0x0F)) as u8;
    uval ^ mask
}

const CLIP_14: i32 = 8159;
const SEGMENT_ENDS: [i32; 8] = [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF];

/// Decodes a μ-law buffer into linear PCM.
pub fn decode_all(bytes: &[u8]) -> Vec<i16> {
    bytes.iter().map(|&b| decode(b)).collect()
}

/// Encodes linear PCM into μ-law.
pub fn encode_all(samples: &[i16]) -> Vec<u8> {
    samples.iter().map(|&s| encode(s)).collect()
}

/// Root-mean-square level of a μ-law buffer in linear PCM units (0 for an empty buffer).
pub fn rms(bytes: &[u8]) -> f64 {
    if bytes.is_empty() {
        return 0.0;
    }
    let sum: f64 = bytes
        .iter()
        .map(|&b| {
            let s = decode(b) as f64;
            s * s
        })
        .sum();
    (sum / bytes.len() as f64).sqrt()
}

/// A sine tone as μ-law at 8 kHz: `millis` long, `freq` Hz, peak `amplitude` (0..=1).
pub fn tone(freq: f64, millis: u32, amplitude: f64) -> Vec<u8> {
    let n = (millis as usize) * 8;
    (0..n)
        .map(|i| {
            let t = i as f64 / 8000.0;
            let v = (2.0 * std::f64::consts::PI * freq * t).sin() * amplitude * 32767.0;
            encode(v as i16)
        })
        .collect()
}

const fn decode_one(byte: u8) -> i16 {
    let u = !byte;
    let sign = u & 0x80;
    let exponent = ((u >> 4) & 0x07) as i32;
    let mantissa = (u & 0x0F) as i32;
    let magnitude = (((mantissa << 3) + BIAS) << exponent) - BIAS;
    if sign != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

const DECODE_TABLE: [i16; 256] = {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = decode_one(i as u8);
        i += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    fn reference() -> serde_json::Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/specs/g711-ulaw-table.json"
        );
        let text = std::fs::read_to_string(path)
            .expect("tests/fixtures/specs/g711-ulaw-table.json in the repository");
        serde_json::from_str(&text).expect("valid reference JSON")
    }

    #[test]
    fn decode_matches_reference_table_for_all_256_bytes() {
        let table = reference();
        let decode_ref = table["decode"].as_array().expect("decode array");
        assert_eq!(decode_ref.len(), 256);
        for (byte, want) in decode_ref.iter().enumerate() {
            assert_eq!(
                decode(byte as u8) as i64,
                want.as_i64().unwrap(),
                "byte {byte:#04x}"
            );
        }
    }

    #[test]
    fn encode_matches_reference_values() {
        let table = reference();
        let pairs: Vec<(i64, i64)> = table["encode"]
            .as_array()
            .expect("encode array")
            .iter()
            .map(|p| (p["pcm"].as_i64().unwrap(), p["ulaw"].as_i64().unwrap()))
            .collect();
        assert!(
            pairs.len() >= 100,
            "reference has {} encode cases",
            pairs.len()
        );
        for (pcm, want) in pairs {
            assert_eq!(encode(pcm as i16) as i64, want, "pcm {pcm}");
        }
    }

    #[test]
    fn tone_has_expected_level() {
        let t = tone(440.0, 100, 0.5);
        assert_eq!(t.len(), 800);
        let level = rms(&t);
        // A sine at half scale has RMS ≈ 0.5 * 32767 / √2 ≈ 11585.
        assert!((level - 11585.0).abs() < 300.0, "rms {level}");
        assert_eq!(rms(&[SILENCE; 160]), 0.0);
    }
}

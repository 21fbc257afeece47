//! Sequence tags hidden in μ-law frames, so the benchmark can match a frame the caller sent with the same
//! frame arriving at the model (the bridge passes μ-law through untouched).
//!
//! A tag is 14 bytes at the start of a frame: a 4-byte magic, the sequence number as 8 nibbles, and two
//! check nibbles. Every byte is a μ-law code of magnitude ≤ 120 (codes `0x70..=0x7F` and `0xF0..=0xFF`), so a
//! tagged silence frame stays far below any speech threshold and a tagged speech frame stays speech.

/// Length of a tag in bytes.
pub const TAG_LEN: usize = 14;

/// ±8 in linear PCM, alternating in sign: a pattern a band-limited signal does not produce.
const MAGIC: [u8; 4] = [0x7E, 0xFE, 0x7E, 0xFE];

fn nibbles(seq: u32) -> [u8; 8] {
    let mut out = [0u8; 8];
    for (i, n) in out.iter_mut().enumerate() {
        *n = ((seq >> (28 - 4 * i)) & 0x0F) as u8;
    }
    out
}

fn check(nibbles: &[u8; 8]) -> (u8, u8) {
    let xor = nibbles.iter().fold(0x5u8, |acc, n| acc ^ n);
    let sum = nibbles.iter().fold(0x9u8, |acc, n| acc.wrapping_add(*n)) & 0x0F;
    (xor, sum)
}

/// Writes the tag for `seq` into the first [`TAG_LEN`] bytes of `frame`.
pub fn tag_frame(frame: &mut [u8; 160], seq: u32) {
    let n = nibbles(seq);
    let (xor, sum) = check(&n);
    frame[..4].copy_from_slice(&MAGIC);
    for (i, nibble) in n.iter().enumerate() {
        frame[4 + i] = 0xF0 | nibble;
    }
    frame[12] = 0xF0 | xor;
    frame[13] = 0xF0 | sum;
}

/// Reads the tag at the start of `frame`, if there is a valid one.
pub fn read_tag(frame: &[u8]) -> Option<u32> {
    let tag = frame.get(..TAG_LEN)?;
    if tag[..4] != MAGIC || tag[4..].iter().any(|b| b & 0xF0 != 0xF0) {
        return None;
    }
    let mut n = [0u8; 8];
    for (i, nibble) in n.iter_mut().enumerate() {
        *nibble = tag[4 + i] & 0x0F;
    }
    let (xor, sum) = check(&n);
    if tag[12] & 0x0F != xor || tag[13] & 0x0F != sum {
        return None;
    }
    Some(
        n.iter()
            .fold(0u32, |acc, nibble| (acc << 4) | *nibble as u32),
    )
}

/// Every tag in a stretch of audio, as `(byte offset, seq)`, whatever the bridge's chunking.
pub fn find_tags(audio: &[u8]) -> Vec<(usize, u32)> {
    let mut found = Vec::new();
    let mut i = 0;
    while i + TAG_LEN <= audio.len() {
        if audio[i] == MAGIC[0] {
            if let Some(seq) = read_tag(&audio[i..]) {
                found.push((i, seq));
                i += TAG_LEN;
                continue;
            }
        }
        i += 1;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::mulaw;

    #[test]
    fn round_trips_and_rejects_damage() {
        for seq in [0u32, 1, 42, 0xABCD_1234, u32::MAX] {
            let mut frame = [mulaw::SILENCE; 160];
            tag_frame(&mut frame, seq);
            assert_eq!(read_tag(&frame), Some(seq));
            frame[7] ^= 0x01;
            assert_eq!(
                read_tag(&frame),
                None,
                "a flipped nibble must fail the check"
            );
        }
        assert_eq!(read_tag(&[mulaw::SILENCE; 160]), None);
        assert_eq!(read_tag(&[0x7E, 0xFE]), None);
    }

    #[test]
    fn tags_keep_silence_quiet_and_speech_loud() {
        let mut silence = [mulaw::SILENCE; 160];
        tag_frame(&mut silence, u32::MAX);
        assert!(mulaw::rms(&silence) < 50.0, "rms {}", mulaw::rms(&silence));
        let tone = mulaw::tone(440.0, 20, 0.5);
        let mut speech = [0u8; 160];
        speech.copy_from_slice(&tone);
        tag_frame(&mut speech, 7);
        assert!(mulaw::rms(&speech) > 10_000.0);
    }

    #[test]
    fn finds_tags_in_a_stream_and_not_in_tones() {
        let mut audio = mulaw::tone(300.0, 1000, 0.5);
        assert!(find_tags(&audio).is_empty());
        for (k, chunk) in audio.chunks_exact_mut(160).enumerate().skip(3).take(2) {
            let frame: &mut [u8; 160] = chunk.try_into().unwrap();
            tag_frame(frame, k as u32);
        }
        assert_eq!(find_tags(&audio[5..]), vec![(475, 3), (635, 4)]);
    }
}

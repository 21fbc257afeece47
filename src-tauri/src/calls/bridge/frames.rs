//! Agent audio to Twilio in whole 20 ms frames.
//!
//! The Realtime service sends audio deltas of any size (tens to hundreds of ms, rarely a multiple of
//! 160 bytes). Twilio plays μ-law in 20 ms frames, and how it plays a partial frame before a mark is not
//! documented (a Twilio-compatible provider documents gaps for payloads that are not multiples of 160
//! bytes). So each item's audio goes out in multiples of 160 bytes: the remainder of a delta waits for
//! the item's next delta, and goes out on its own only when the item ends. A delta that is already whole
//! frames, with nothing waiting, is forwarded untouched (no decode). Bytes sent to Twilio never exceed
//! bytes received from the model, so a truncation never points past what the model sent.

use base64::Engine;

use crate::telephony::twilio::media::FRAME_BYTES;

/// Audio ready for Twilio: base64 μ-law, its length in bytes, and the μ-law itself (it was decoded to
/// be cut, so the recording takes it as is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub item_id: String,
    pub payload: String,
    pub bytes: usize,
    pub mulaw: Vec<u8>,
}

/// This delta's share of what to send now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ready {
    /// Nothing (it all waits for the item's next delta).
    Nothing,
    /// The delta itself, untouched: whole frames and nothing waiting before it.
    AsIs,
    /// Re-cut audio.
    Chunk(Chunk),
}

/// Keeps the partial frame at the end of the current item.
#[derive(Debug, Default)]
pub struct FrameAligner {
    item_id: Option<String>,
    carry: Vec<u8>,
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

impl FrameAligner {
    pub fn new() -> Self {
        Self::default()
    }

    /// A delta of `bytes` decoded bytes for `item_id`, and its μ-law if the caller decoded it already
    /// (else it is decoded here when it must be cut). Returns what to send now: first the previous
    /// item's leftover (if the item changed), then this item's whole frames.
    pub fn push(
        &mut self,
        item_id: &str,
        delta_b64: &str,
        bytes: usize,
        decoded: Option<&[u8]>,
    ) -> Result<(Option<Chunk>, Ready), base64::DecodeError> {
        let previous = if self.item_id.as_deref() != Some(item_id) {
            let left = self.flush();
            self.item_id = Some(item_id.to_string());
            left
        } else {
            None
        };
        if self.carry.is_empty() && bytes.is_multiple_of(FRAME_BYTES) {
            let now = if bytes > 0 {
                Ready::AsIs
            } else {
                Ready::Nothing
            };
            return Ok((previous, now));
        }
        let mut audio = std::mem::take(&mut self.carry);
        match decoded {
            Some(mulaw) => audio.extend_from_slice(mulaw),
            None => b64().decode_vec(delta_b64, &mut audio)?,
        }
        let whole = audio.len() / FRAME_BYTES * FRAME_BYTES;
        self.carry = audio.split_off(whole);
        let now = if whole > 0 {
            Ready::Chunk(Chunk {
                item_id: item_id.to_string(),
                payload: b64().encode(&audio),
                bytes: whole,
                mulaw: audio,
            })
        } else {
            Ready::Nothing
        };
        Ok((previous, now))
    }

    /// The item ended: its last partial frame, if any.
    pub fn flush(&mut self) -> Option<Chunk> {
        let item_id = self.item_id.take()?;
        if self.carry.is_empty() {
            return None;
        }
        let audio = std::mem::take(&mut self.carry);
        Some(Chunk {
            item_id,
            payload: b64().encode(&audio),
            bytes: audio.len(),
            mulaw: audio,
        })
    }

    /// A barge-in: the leftover is never played.
    pub fn discard(&mut self) {
        self.item_id = None;
        self.carry.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delta(bytes: &[u8]) -> (String, usize) {
        (b64().encode(bytes), bytes.len())
    }

    fn decode(chunk: &Chunk) -> Vec<u8> {
        b64().decode(&chunk.payload).unwrap()
    }

    #[test]
    fn deltas_go_out_as_whole_frames_and_the_rest_at_the_end_of_the_item() {
        let mut a = FrameAligner::new();
        let audio: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        let (d1, n1) = delta(&audio[..300]);
        let (prev, now) = a.push("i1", &d1, n1, None).unwrap();
        assert!(prev.is_none());
        let Ready::Chunk(now) = now else { panic!() };
        assert_eq!(now.bytes, 160);
        assert_eq!(decode(&now), audio[..160]);
        assert_eq!(now.mulaw, audio[..160]);
        let (d2, n2) = delta(&audio[300..1000]);
        let (_, now) = a.push("i1", &d2, n2, None).unwrap();
        let Ready::Chunk(now) = now else { panic!() };
        assert_eq!(now.bytes, 800);
        assert_eq!(decode(&now), audio[160..960]);
        // The next item starts: the old item's last 40 bytes go first.
        let (d3, n3) = delta(&audio[..320]);
        let (prev, now) = a.push("i2", &d3, n3, None).unwrap();
        let prev = prev.unwrap();
        assert_eq!((prev.item_id.as_str(), prev.bytes), ("i1", 40));
        assert_eq!(decode(&prev), audio[960..1000]);
        assert_eq!(prev.mulaw, audio[960..1000]);
        // Whole frames with nothing waiting pass through untouched.
        assert_eq!(now, Ready::AsIs);
        assert!(a.flush().is_none());
    }

    #[test]
    fn a_delta_smaller_than_a_frame_waits_and_discard_drops_it() {
        let mut a = FrameAligner::new();
        let (d, n) = delta(&[1u8; 100]);
        assert_eq!(a.push("i1", &d, n, None).unwrap(), (None, Ready::Nothing));
        a.discard();
        assert!(a.flush().is_none());
        assert!(a.push("i1", "%%%", 3, None).is_err());
    }

    #[test]
    fn audio_the_caller_decoded_is_cut_as_given_without_decoding_again() {
        let audio: Vec<u8> = (0..300u32).map(|i| (i % 253) as u8).collect();
        let (d, n) = delta(&audio);
        let mut decoding = FrameAligner::new();
        let mut given = FrameAligner::new();
        let by_decoding = decoding.push("i1", &d, n, None).unwrap();
        // The base64 is not read when the μ-law comes with it.
        let by_given = given.push("i1", "not base64", n, Some(&audio)).unwrap();
        assert_eq!(by_decoding, by_given);
        assert_eq!(decoding.flush(), given.flush());
    }
}

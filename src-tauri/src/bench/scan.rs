//! The lean load generator's wire helpers: a borrowed scan of a JSON object (no `serde_json::Value`), base64
//! tag patching of pre-encoded frames, and integer formatting into a reused buffer.
//!
//! The scan walks the object's keys at one level at a time, skipping nested values (strings, objects,
//! arrays) without building anything, so `"type"` inside a nested object is never mistaken for the
//! top-level one. It returns a string's raw content; a string with escapes is returned as is (the fields
//! the generator reads — event names, ids, base64 — never carry any).

use base64::Engine;

use crate::sim::frame_tag::{tag_frame, TAG_LEN};

/// Bytes of a frame that the base64 tag patch covers: the tag plus one byte, five whole 3-byte groups.
pub const TAG_GROUP_BYTES: usize = 15;
/// The base64 characters those bytes encode to.
pub const TAG_GROUP_CHARS: usize = 20;

/// The string value at `path` (object keys, outermost first), borrowed from `json`.
pub fn find_str<'a>(json: &'a str, path: &[&str]) -> Option<&'a str> {
    let bytes = json.as_bytes();
    let mut i = skip_ws(bytes, 0);
    for (depth, key) in path.iter().enumerate() {
        if bytes.get(i) != Some(&b'{') {
            return None;
        }
        i += 1;
        loop {
            i = skip_ws(bytes, i);
            match bytes.get(i) {
                Some(b'"') => {}
                _ => return None, // `}` (not found) or malformed
            }
            let (name_start, name_end) = string_span(bytes, i)?;
            i = skip_ws(bytes, name_end + 1);
            if bytes.get(i) != Some(&b':') {
                return None;
            }
            i = skip_ws(bytes, i + 1);
            if &json[name_start..name_end] == *key {
                if depth + 1 == path.len() {
                    if bytes.get(i) != Some(&b'"') {
                        return None;
                    }
                    let (start, end) = string_span(bytes, i)?;
                    return Some(&json[start..end]);
                }
                break; // descend into this value
            }
            i = skip_value(bytes, i)?;
            i = skip_ws(bytes, i);
            match bytes.get(i) {
                Some(b',') => i += 1,
                _ => return None,
            }
        }
    }
    None
}

/// The integer value of a top-level `key` (a JSON number), if there is one.
pub fn find_u64(json: &str, key: &str) -> Option<u64> {
    let bytes = json.as_bytes();
    let mut i = skip_ws(bytes, 0);
    if bytes.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    loop {
        i = skip_ws(bytes, i);
        if bytes.get(i) != Some(&b'"') {
            return None;
        }
        let (name_start, name_end) = string_span(bytes, i)?;
        i = skip_ws(bytes, name_end + 1);
        if bytes.get(i) != Some(&b':') {
            return None;
        }
        i = skip_ws(bytes, i + 1);
        let value_end = skip_value(bytes, i)?;
        if &json[name_start..name_end] == key {
            return json[i..value_end].trim().parse().ok();
        }
        i = skip_ws(bytes, value_end);
        match bytes.get(i) {
            Some(b',') => i += 1,
            _ => return None,
        }
    }
}

fn skip_ws(bytes: &[u8], mut i: usize) -> usize {
    while matches!(bytes.get(i), Some(b' ' | b'\n' | b'\r' | b'\t')) {
        i += 1;
    }
    i
}

/// The content span (without quotes) of the string starting at `bytes[i] == '"'`.
fn string_span(bytes: &[u8], i: usize) -> Option<(usize, usize)> {
    let start = i + 1;
    let mut j = start;
    loop {
        match bytes.get(j)? {
            b'"' => return Some((start, j)),
            b'\\' => j += 2,
            _ => j += 1,
        }
    }
}

/// The index just past the value starting at `i`.
fn skip_value(bytes: &[u8], i: usize) -> Option<usize> {
    match bytes.get(i)? {
        b'"' => string_span(bytes, i).map(|(_, end)| end + 1),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                match bytes.get(j)? {
                    b'"' => {
                        j = string_span(bytes, j)?.1 + 1;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        _ => {
            let mut j = i;
            while let Some(b) = bytes.get(j) {
                if matches!(b, b',' | b'}' | b']') {
                    break;
                }
                j += 1;
            }
            Some(j)
        }
    }
}

/// Appends `n` in decimal.
pub fn push_u64(out: &mut String, n: u64) {
    let mut digits = [0u8; 20];
    out.push_str(crate::wire::decimal::decimal(n, &mut digits));
}

/// A 160-byte μ-law frame pre-encoded in base64, whose first [`TAG_GROUP_BYTES`] bytes are re-encoded per
/// send with the tag: the other 196 characters are never touched again.
#[derive(Clone)]
pub struct EncodedFrame {
    /// The frame's bytes (the tag's 14 bytes are overwritten per send).
    pub raw: [u8; 160],
    /// `base64(raw)`; the first [`TAG_GROUP_CHARS`] are patched per send.
    pub base64: String,
}

impl EncodedFrame {
    pub fn new(raw: [u8; 160]) -> Self {
        Self {
            raw,
            base64: base64::engine::general_purpose::STANDARD.encode(raw),
        }
    }

    /// The base64 of the frame's first [`TAG_GROUP_BYTES`] bytes with `tag` written over the first
    /// [`TAG_LEN`]: what replaces the first [`TAG_GROUP_CHARS`] characters of [`Self::base64`].
    pub fn tag_chars(&self, tag: u32) -> [u8; TAG_GROUP_CHARS] {
        let mut frame = self.raw;
        tag_frame(&mut frame, tag);
        const { assert!(TAG_LEN < TAG_GROUP_BYTES) };
        let mut chars = [0u8; TAG_GROUP_CHARS];
        let written = base64::engine::general_purpose::STANDARD
            .encode_slice(&frame[..TAG_GROUP_BYTES], &mut chars)
            .unwrap_or(0);
        debug_assert_eq!(written, TAG_GROUP_CHARS);
        chars
    }

    /// Appends the tagged frame's base64 to `out`.
    pub fn push_tagged(&self, out: &mut String, tag: u32) {
        let chars = self.tag_chars(tag);
        // base64 output is ASCII.
        out.push_str(std::str::from_utf8(&chars).unwrap_or(""));
        out.push_str(&self.base64[TAG_GROUP_CHARS..]);
    }
}

/// Patches a tag into a longer pre-encoded payload whose first 15 bytes are `first` (any multiple-of-3
/// aligned payload works: the first five groups are independent of the rest).
pub fn push_tagged_payload(out: &mut String, first: &[u8; 160], base64_rest: &str, tag: u32) {
    let frame = EncodedFrame {
        raw: *first,
        base64: String::new(),
    };
    let chars = frame.tag_chars(tag);
    out.push_str(std::str::from_utf8(&chars).unwrap_or(""));
    out.push_str(base64_rest);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::mulaw;
    use crate::sim::frame_tag::read_tag;

    #[test]
    fn finds_fields_at_the_right_level() {
        let msg = r#"{"event_id":"e1","session":{"type":"realtime","audio":{"x":[1,{"type":"no"}]}},"type":"session.update"}"#;
        assert_eq!(find_str(msg, &["type"]), Some("session.update"));
        assert_eq!(find_str(msg, &["session", "type"]), Some("realtime"));
        assert_eq!(find_str(msg, &["event_id"]), Some("e1"));
        assert_eq!(find_str(msg, &["missing"]), None);
        assert_eq!(find_str(msg, &["session", "audio"]), None, "not a string");
        let media = r#"{ "event" : "media", "streamSid":"MZ1","media":{"payload":"AAEC","track":"outbound"}}"#;
        assert_eq!(find_str(media, &["event"]), Some("media"));
        assert_eq!(find_str(media, &["media", "payload"]), Some("AAEC"));
        let escaped = r#"{"a":"x\"y","b":"z"}"#;
        assert_eq!(find_str(escaped, &["a"]), Some(r#"x\"y"#));
        assert_eq!(find_str(escaped, &["b"]), Some("z"));
        assert_eq!(find_str("not json", &["a"]), None);
        assert_eq!(find_str(r#"{"a":"unterminated"#, &["a"]), None);
        assert_eq!(find_str(r#"{"n":12,"a":"b"}"#, &["a"]), Some("b"));
    }

    #[test]
    fn reads_top_level_integers() {
        let msg = r#"{"type":"conversation.item.truncate","item_id":"i","content_index":0,"audio_end_ms":1234}"#;
        assert_eq!(find_u64(msg, "audio_end_ms"), Some(1234));
        assert_eq!(find_u64(msg, "content_index"), Some(0));
        assert_eq!(find_u64(msg, "item_id"), None);
        assert_eq!(find_u64(msg, "nope"), None);
    }

    #[test]
    fn agrees_with_serde_on_the_bridges_messages() {
        let msgs = [
            r#"{"event":"mark","streamSid":"MZabc","mark":{"name":"m-17"}}"#,
            r#"{"event":"clear","streamSid":"MZabc"}"#,
            r#"{"type":"input_audio_buffer.append","event_id":"evt_9","audio":"/////w=="}"#,
        ];
        for msg in msgs {
            let value: serde_json::Value = serde_json::from_str(msg).unwrap();
            for path in [
                &["event"][..],
                &["streamSid"],
                &["mark", "name"],
                &["type"],
                &["audio"],
            ] {
                let pointer = format!("/{}", path.join("/"));
                assert_eq!(
                    find_str(msg, path),
                    value.pointer(&pointer).and_then(|v| v.as_str()),
                    "{msg} {pointer}"
                );
            }
        }
    }

    #[test]
    fn formats_integers() {
        for n in [0u64, 7, 10, 99, 100, 123_456_789, u64::MAX] {
            let mut s = String::from("x");
            push_u64(&mut s, n);
            assert_eq!(s, format!("x{n}"));
        }
    }

    #[test]
    fn a_patched_tag_is_the_tagged_frame_in_base64() {
        let tone = mulaw::tone(440.0, 20, 0.5);
        let mut raw = [0u8; 160];
        raw.copy_from_slice(&tone);
        let frame = EncodedFrame::new(raw);
        for tag in [1u32, 0x0010_0001, 0xDEAD_BEEF] {
            let mut out = String::new();
            frame.push_tagged(&mut out, tag);
            let mut expected = raw;
            tag_frame(&mut expected, tag);
            assert_eq!(
                out,
                base64::engine::general_purpose::STANDARD.encode(expected)
            );
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(&out)
                .unwrap();
            assert_eq!(read_tag(&decoded), Some(tag));
        }
        // A longer payload (an 800-byte delta) patched the same way.
        let delta = mulaw::tone(880.0, 100, 0.5);
        let encoded = base64::engine::general_purpose::STANDARD.encode(&delta);
        let mut first = [0u8; 160];
        first.copy_from_slice(&delta[..160]);
        let mut out = String::new();
        push_tagged_payload(&mut out, &first, &encoded[TAG_GROUP_CHARS..], 0x8000_0042);
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(&out)
            .unwrap();
        assert_eq!(decoded.len(), 800);
        assert_eq!(read_tag(&decoded), Some(0x8000_0042));
        assert_eq!(&decoded[TAG_LEN..], &delta[TAG_LEN..]);
    }
}

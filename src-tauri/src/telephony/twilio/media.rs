//! Twilio Media Streams wire types (bidirectional `<Connect><Stream>`).
//!
//! Pure parsing and formatting, no I/O. Inbound parsing borrows the base64 payload so the hot path can
//! move it into the model's `input_audio_buffer.append` without decoding or copying it twice.

use std::borrow::Cow;
use std::collections::HashMap;

use base64::Engine as _;
use serde::Deserialize;

use crate::wire::json_scan::{Field, Scan, Value};

/// Bytes of μ-law per millisecond at 8 kHz.
pub const BYTES_PER_MS: u64 = 8;
/// One 20 ms frame.
pub const FRAME_BYTES: usize = 160;
/// Largest text frame accepted from Twilio (a media frame is ~400 bytes; `start` a few KiB).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// A message Twilio sends on the media socket.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum Inbound<'a> {
    Connected {
        #[serde(default)]
        protocol: Option<String>,
    },
    Start {
        /// The top-level `streamSid`, else `start.streamSid` (Twilio sends both; [`parse`] refuses a
        /// `start` with neither, so this is never empty).
        #[serde(rename = "streamSid", default, deserialize_with = "null_as_empty")]
        stream_sid: String,
        start: StartMeta,
    },
    Media {
        #[serde(borrow)]
        media: MediaChunk<'a>,
    },
    Dtmf {
        dtmf: Dtmf,
    },
    Mark {
        mark: MarkName,
    },
    Stop {
        #[serde(default)]
        stop: Option<StopMeta>,
    },
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartMeta {
    #[serde(default)]
    pub account_sid: String,
    /// The stream's SID as repeated inside `start` (the fallback for a missing top-level one).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub stream_sid: String,
    pub call_sid: String,
    #[serde(default)]
    pub tracks: Vec<String>,
    #[serde(default)]
    pub custom_parameters: HashMap<String, String>,
    #[serde(default)]
    pub media_format: Option<MediaFormat>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaFormat {
    pub encoding: String,
    pub sample_rate: u32,
    pub channels: u32,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct MediaChunk<'a> {
    #[serde(default, borrow)]
    pub track: Cow<'a, str>,
    /// Milliseconds since the stream started, as a decimal string (empty if absent). Plain `Cow`
    /// fields, not `Option<Cow>`, so serde borrows instead of allocating per frame.
    #[serde(default, borrow)]
    pub timestamp: Cow<'a, str>,
    #[serde(borrow)]
    pub payload: Cow<'a, str>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Dtmf {
    pub digit: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct MarkName {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StopMeta {
    #[serde(default)]
    pub call_sid: Option<String>,
}

/// Why a Twilio message was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MediaError {
    #[error("message of {0} bytes exceeds the {MAX_MESSAGE_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("malformed or unknown Twilio message: {0}")]
    Malformed(String),
    #[error("media payload is not valid base64")]
    BadBase64,
    #[error("media timestamp {0:?} is not a number of milliseconds")]
    BadTimestamp(String),
    #[error("start event without a stream SID (neither streamSid nor start.streamSid)")]
    StartWithoutStreamSid,
}

/// A string field that may be absent or `null`: both read as empty.
fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

/// Parses one text frame from Twilio.
///
/// ```
/// use verbio::telephony::twilio::media::{parse, Inbound};
/// let m = parse(r#"{"event":"mark","sequenceNumber":"4","streamSid":"MZ1","mark":{"name":"a3"}}"#).unwrap();
/// assert!(matches!(m, Inbound::Mark { mark } if mark.name == "a3"));
/// ```
pub fn parse(text: &str) -> Result<Inbound<'_>, MediaError> {
    if text.len() > MAX_MESSAGE_BYTES {
        return Err(MediaError::TooLarge(text.len()));
    }
    if let Some(message) = scan(text) {
        return Ok(message);
    }
    parse_tagged(text)
}

/// The fast path for the frequent messages (`media` 50 times a second, `mark` with every chunk of agent
/// audio): a borrowed scan that reads the fields the bridge uses and steps over the rest in one pass,
/// where the internally tagged [`Inbound`] first buffers the whole message (every key and value) to find
/// its tag. Anything it does not take (another event, an escape, a field of an unexpected type, a
/// repeated field) goes to the full parse, so both paths accept and refuse the same messages.
fn scan(text: &str) -> Option<Inbound<'_>> {
    let (mut event, mut media, mut mark) = (None, None, None);
    let (mut track, mut timestamp, mut payload, mut name) = (None, None, None, None);
    Scan::object(text, |Field { parent, key, value }| match (parent, key) {
        (None, "event") => once_str(&mut event, value),
        (None, "media") => once_object(&mut media, value),
        (None, "mark") => once_object(&mut mark, value),
        (Some("media"), "track") => once_str(&mut track, value),
        (Some("media"), "timestamp") => once_str(&mut timestamp, value),
        (Some("media"), "payload") => once_str(&mut payload, value),
        (Some("mark"), "name") => once_str(&mut name, value),
        _ => Some(()),
    })?;
    match event? {
        "media" => {
            media?;
            Some(Inbound::Media {
                media: MediaChunk {
                    track: Cow::Borrowed(track.unwrap_or_default()),
                    timestamp: Cow::Borrowed(timestamp.unwrap_or_default()),
                    payload: Cow::Borrowed(payload?),
                },
            })
        }
        "mark" => {
            mark?;
            Some(Inbound::Mark {
                mark: MarkName {
                    name: name?.to_string(),
                },
            })
        }
        _ => None,
    }
}

/// A field serde reads as a string, seen once (serde refuses a repeated field).
fn once_str<'a>(slot: &mut Option<&'a str>, value: Value<'a>) -> Option<()> {
    match (slot.is_none(), value) {
        (true, Value::Str(s)) => {
            *slot = Some(s);
            Some(())
        }
        _ => None,
    }
}

/// A field serde reads as an object, seen once.
fn once_object<'a>(slot: &mut Option<&'a str>, value: Value<'a>) -> Option<()> {
    match (slot.is_none(), value) {
        (true, Value::Object(o)) => {
            *slot = Some(o);
            Some(())
        }
        _ => None,
    }
}

/// The full parse of any Twilio message (after the size check).
fn parse_tagged(text: &str) -> Result<Inbound<'_>, MediaError> {
    let mut message: Inbound<'_> =
        serde_json::from_str(text).map_err(|e| MediaError::Malformed(short(&e.to_string())))?;
    if let Inbound::Start { stream_sid, start } = &mut message {
        if stream_sid.is_empty() {
            if start.stream_sid.is_empty() {
                return Err(MediaError::StartWithoutStreamSid);
            }
            stream_sid.clone_from(&start.stream_sid);
        }
    }
    Ok(message)
}

fn short(s: &str) -> String {
    s.chars().take(160).collect()
}

impl MediaChunk<'_> {
    /// The chunk's position on the stream timeline in ms, if Twilio sent one.
    pub fn timestamp_ms(&self) -> Result<Option<u64>, MediaError> {
        if self.timestamp.is_empty() {
            return Ok(None);
        }
        self.timestamp
            .parse::<u64>()
            .map(Some)
            .map_err(|_| MediaError::BadTimestamp(short(&self.timestamp)))
    }
}

/// Checks that `payload` is canonical padded base64 and returns how many bytes it decodes to,
/// without decoding it (the payload is forwarded as it is). Accepts exactly what [`decode_base64`]
/// accepts, so a frame is refused or taken the same way whether or not the call is recorded.
pub fn base64_decoded_len(payload: &str) -> Result<usize, MediaError> {
    let b = payload.as_bytes();
    if !b.len().is_multiple_of(4) {
        return Err(MediaError::BadBase64);
    }
    let pad = b.iter().rev().take_while(|&&c| c == b'=').count();
    if pad > 2 {
        return Err(MediaError::BadBase64);
    }
    let body = &b[..b.len() - pad];
    // One pass without early exit, so the loop stays branch-free.
    let bad = body.iter().fold(false, |bad, &c| {
        bad | !(c.is_ascii_alphanumeric() || c == b'+' || c == b'/')
    });
    // Canonical: the bits the padding leaves over in the last character are zero.
    let spare_bits = match (pad, body.last()) {
        (1, Some(&c)) => sextet(c) & 0b11,
        (2, Some(&c)) => sextet(c) & 0b1111,
        _ => 0,
    };
    if bad || spare_bits != 0 {
        return Err(MediaError::BadBase64);
    }
    Ok(b.len() / 4 * 3 - pad)
}

/// A base64 character's six bits (0 for a character that is not one; those are refused elsewhere).
fn sextet(c: u8) -> u8 {
    match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => 0,
    }
}

/// Decodes a canonical padded base64 `payload` into `out` (cleared first, its capacity reused: one
/// buffer per call, no allocation per frame). Refuses what [`base64_decoded_len`] refuses.
pub fn decode_base64<'b>(payload: &str, out: &'b mut Vec<u8>) -> Result<&'b [u8], MediaError> {
    // Decoded in place: the buffer is only zero-filled where it grows (by a byte or two for frames of
    // one size), where `decode_vec` would zero the whole frame first.
    out.resize(base64::decoded_len_estimate(payload.len()), 0);
    match base64::engine::general_purpose::STANDARD.decode_slice(payload, out) {
        Ok(n) => {
            out.truncate(n);
            Ok(out)
        }
        Err(_) => {
            out.clear();
            Err(MediaError::BadBase64)
        }
    }
}

/// `media` message carrying base64 μ-law to play to the caller.
pub fn media_message(stream_sid: &str, payload_b64: &str) -> String {
    media_message_parts(&json_escaped(stream_sid), payload_b64).concat()
}

/// [`media_message`] as the pieces of its text, for a socket that frames them without building the
/// string first; `stream_sid_json` is the SID as [`json_escaped`] gives it.
pub fn media_message_parts<'a>(stream_sid_json: &'a str, payload_b64: &'a str) -> [&'a str; 5] {
    [
        r#"{"event":"media","streamSid":""#,
        stream_sid_json,
        r#"","media":{"payload":""#,
        payload_b64,
        r#""}}"#,
    ]
}

/// `mark` message: Twilio echoes it once the audio sent before it has played (or `clear` dropped it).
pub fn mark_message(stream_sid: &str, name: &str) -> String {
    mark_message_parts(&json_escaped(stream_sid), &json_escaped(name)).concat()
}

/// [`mark_message`] as the pieces of its text; both values as [`json_escaped`] gives them.
pub fn mark_message_parts<'a>(stream_sid_json: &'a str, name_json: &'a str) -> [&'a str; 5] {
    [
        r#"{"event":"mark","streamSid":""#,
        stream_sid_json,
        r#"","mark":{"name":""#,
        name_json,
        r#""}}"#,
    ]
}

/// `clear` message: drops every buffered byte of agent audio at Twilio.
pub fn clear_message(stream_sid: &str) -> String {
    let mut s = String::with_capacity(48);
    s.push_str(r#"{"event":"clear","streamSid":""#);
    s.push_str(&json_escaped(stream_sid));
    s.push_str(r#""}"#);
    s
}

/// `value` JSON-escaped, without quotes: as it is when it needs nothing (stream SIDs and mark names are
/// ASCII in practice), escaped otherwise, so a hostile value cannot break the frame.
pub fn json_escaped(value: &str) -> Cow<'_, str> {
    if value
        .bytes()
        .all(|c| c >= 0x20 && c != b'"' && c != b'\\' && c < 0x7f)
    {
        Cow::Borrowed(value)
    } else {
        let quoted = serde_json::Value::String(value.to_string()).to_string();
        Cow::Owned(quoted[1..quoted.len() - 1].to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Messages near the fast path's edge, and random corruptions of them: whatever the scan takes, the
    /// full parse reads the same way.
    #[test]
    fn the_fast_path_agrees_with_the_full_parse() {
        let seeds = [
            r#"{"event":"media","sequenceNumber":"3","media":{"track":"inbound","chunk":"1","timestamp":"5","payload":"//8A/w=="},"streamSid":"MZ1"}"#,
            r#"{"event":"mark","sequenceNumber":"4","streamSid":"MZ1","mark":{"name":"a3"}}"#,
            r#" {"media" : {"payload":"AAAA"} , "event" : "media"} "#,
            r#"{"event":"media","media":{"payload":"AAAA","payload":"BBBB"}}"#,
            r#"{"event":"media","media":{"payload":"AAAA","track":null}}"#,
            r#"{"event":"mark","mark":{"name":"a\"b"}}"#,
            r#"{"event":"mark","mark":{"name":"x"},"media":{"payload":5}}"#,
            r#"{"event":"dtmf","dtmf":{"digit":"1"}}"#,
            r#"{"event":"stop","stop":{"callSid":"CA1"}}"#,
            r#"{"event":"media","sequenceNumber":"3","streamSid":"MZ18","media":{"track":"inbound","chunk":"2","timestamp":"5120","payload":"/////w=="}}"#,
            r#"{"media":{"payload":"AAAA","timestamp":"20"},"streamSid":"MZ","event":"media"}"#,
            r#"{"event":"media","media":{"payload":"AA\/A"}}"#,
            r#"{"event":"media","media":{"track":"inbound"}}"#,
            r#"{"event":"media"}"#,
            r#"{"event":"media","media":null}"#,
            r#"{"event":"media","media":{"payload":7}}"#,
            r#"{"event":"media","event":"mark","media":{"payload":"AAAA"}}"#,
            r#"{"event":"mark","media":{"payload":"AAAA"},"mark":{"name":"a1"}}"#,
            r#"{"event":"Media","media":{"payload":"AAAA"}}"#,
            r#"{"event":"media","media":{"payload":"AAAA"}} trailing"#,
            r#"{"event":"media","media":{"payload":"AAAA","timestamp":5}}"#,
            r#"["media"]"#,
        ];
        let taken = crate::wire::json_scan::each_corruption(&seeds, 2000, |text| {
            let fast = scan(text)?;
            assert_eq!(Ok(fast), parse_tagged(text), "{text}");
            Some(())
        });
        assert!(taken > 500, "the fast path took only {taken}");
    }

    #[test]
    fn parses_every_twilio_event() {
        let start = r#"{"event":"start","sequenceNumber":"1","streamSid":"MZ18","start":{"accountSid":"AC1","streamSid":"MZ18","callSid":"CA9","tracks":["inbound"],"customParameters":{"token":"t1"},"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}}}"#;
        match parse(start).unwrap() {
            Inbound::Start { stream_sid, start } => {
                assert_eq!(stream_sid, "MZ18");
                assert_eq!(start.call_sid, "CA9");
                assert_eq!(start.custom_parameters["token"], "t1");
                assert_eq!(start.media_format.unwrap().sample_rate, 8000);
            }
            other => panic!("{other:?}"),
        }
        let media = r#"{"event":"media","sequenceNumber":"3","streamSid":"MZ18","media":{"track":"inbound","chunk":"2","timestamp":"5120","payload":"/////w=="}}"#;
        match parse(media).unwrap() {
            Inbound::Media { media } => {
                assert!(
                    matches!(media.payload, Cow::Borrowed(_)),
                    "payload is borrowed"
                );
                assert_eq!(media.timestamp_ms().unwrap(), Some(5120));
                assert_eq!(base64_decoded_len(&media.payload).unwrap(), 4);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse(r#"{"event":"dtmf","streamSid":"MZ","sequenceNumber":"5","dtmf":{"track":"inbound_track","digit":"5"}}"#).unwrap(),
            Inbound::Dtmf { dtmf } if dtmf.digit == "5"
        ));
        assert!(matches!(
            parse(r#"{"event":"stop","sequenceNumber":"9","streamSid":"MZ","stop":{"accountSid":"AC","callSid":"CA9"}}"#).unwrap(),
            Inbound::Stop { .. }
        ));
        assert!(matches!(
            parse(r#"{"event":"connected","protocol":"Call","version":"1.0.0"}"#).unwrap(),
            Inbound::Connected { .. }
        ));
    }

    #[test]
    fn start_stream_sid_falls_back_to_the_one_inside_start() {
        let stream_sid = |text: &str| match parse(text) {
            Ok(Inbound::Start { stream_sid, .. }) => Ok(stream_sid),
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err(e),
        };
        // Only inside `start` (top level absent, null or empty): that one is used.
        for top in ["", r#""streamSid":null,"#, r#""streamSid":"","#] {
            let text = format!(
                r#"{{"event":"start","sequenceNumber":"1",{top}"start":{{"streamSid":"MZ77","callSid":"CA9"}}}}"#
            );
            assert_eq!(stream_sid(&text).as_deref(), Ok("MZ77"), "{text}");
        }
        // Only at the top level, as before.
        assert_eq!(
            stream_sid(r#"{"event":"start","streamSid":"MZ1","start":{"callSid":"CA9"}}"#)
                .as_deref(),
            Ok("MZ1")
        );
        // Both: the top-level one.
        assert_eq!(
            stream_sid(
                r#"{"event":"start","streamSid":"MZ1","start":{"streamSid":"MZ2","callSid":"CA9"}}"#
            )
            .as_deref(),
            Ok("MZ1")
        );
        // Neither: a clear error, not a stream with no SID to answer on.
        for text in [
            r#"{"event":"start","start":{"callSid":"CA9"}}"#,
            r#"{"event":"start","streamSid":"","start":{"streamSid":null,"callSid":"CA9"}}"#,
        ] {
            let err = stream_sid(text).unwrap_err();
            assert_eq!(err, MediaError::StartWithoutStreamSid, "{text}");
            assert!(err.to_string().contains("start.streamSid"), "{err}");
        }
    }

    #[test]
    fn bad_input_is_a_clear_error() {
        assert!(matches!(parse("{not json"), Err(MediaError::Malformed(_))));
        assert!(matches!(
            parse(r#"{"event":"party"}"#),
            Err(MediaError::Malformed(_))
        ));
        assert!(matches!(
            parse(r#"{"event":"media","media":{}}"#),
            Err(MediaError::Malformed(_))
        ));
        let huge = format!(
            r#"{{"event":"media","x":"{}"}}"#,
            "a".repeat(MAX_MESSAGE_BYTES)
        );
        assert!(matches!(parse(&huge), Err(MediaError::TooLarge(_))));
        let mut out = Vec::new();
        for bad in [
            "abc", "ab!d", "a===", "@@@@", "AB==", "ABC=", "A=BC", "AAA=AAAA",
        ] {
            assert_eq!(base64_decoded_len(bad), Err(MediaError::BadBase64), "{bad}");
            assert_eq!(
                decode_base64(bad, &mut out),
                Err(MediaError::BadBase64),
                "{bad}"
            );
        }
        for good in ["", "AA==", "AAE=", "//8A/w==", "+/+/"] {
            let len = base64_decoded_len(good).unwrap();
            assert_eq!(decode_base64(good, &mut out).unwrap().len(), len, "{good}");
        }
        assert_eq!(base64_decoded_len("").unwrap(), 0);
        let chunk = MediaChunk {
            track: "".into(),
            timestamp: "12a".into(),
            payload: "".into(),
        };
        assert!(chunk.timestamp_ms().is_err());
    }

    #[test]
    fn outbound_messages_are_valid_json() {
        let m: serde_json::Value = serde_json::from_str(&media_message("MZ1", "AAAA")).unwrap();
        assert_eq!(m["event"], "media");
        assert_eq!(m["media"]["payload"], "AAAA");
        let k: serde_json::Value = serde_json::from_str(&mark_message("MZ1", "m\"7")).unwrap();
        assert_eq!(k["mark"]["name"], "m\"7");
        let c: serde_json::Value = serde_json::from_str(&clear_message("MZ1")).unwrap();
        assert_eq!(c, serde_json::json!({"event":"clear","streamSid":"MZ1"}));
    }
}

//! A borrowed, validating scan of one JSON object, for the two messages that arrive 50 times a second
//! per call (Twilio's `media`, the model's audio delta), where serde's derive spends most of its time
//! matching and skipping keys the bridge does not read.
//!
//! It is a fast path only: it accepts a subset of JSON (no backslash anywhere, nesting at most
//! [`MAX_DEPTH`] deep) and answers `None` for anything else, so the caller falls back to its full serde
//! parse. Whatever it accepts is valid JSON with the same meaning serde would give it, so both paths
//! accept and refuse the same messages.
//!
//! Fields of objects nested one level down are handed over too (with their parent's key), in the
//! same pass, so reading `media.payload` does not walk the payload twice.
//!
//! ```
//! use verbio::wire::json_scan::{Field, Scan, Value};
//! let mut seen = Vec::new();
//! Scan::object(r#"{"event":"media","n":1.5e3,"media":{"payload":"//8="}}"#, |f: Field| {
//!     seen.push((f.parent, f.key, matches!(f.value, Value::Str(_))));
//!     Some(())
//! })
//! .unwrap();
//! assert_eq!(
//!     seen,
//!     [
//!         (None, "event", true),
//!         (None, "n", false),
//!         (Some("media"), "payload", true),
//!         (None, "media", false),
//!     ]
//! );
//! ```

/// How deep an unread value may nest before the scan gives up (serde's own limit is 128).
pub const MAX_DEPTH: usize = 8;

/// One top-level value as the scan hands it over.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    /// A string without escapes: its text, borrowed.
    Str(&'a str),
    /// An object, its text. A top-level object's own fields came just before it (as [`Field`]s
    /// with this key as their parent); a deeper one's were only checked.
    Object(&'a str),
    /// Anything else, validated: a number, `true`, `false`, `null` or an array.
    Other,
}

/// One key and its value, and the key of the object holding it unless that is the message itself.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Field<'a> {
    pub parent: Option<&'a str>,
    pub key: &'a str,
    pub value: Value<'a>,
}

/// The scanner's position in one message.
pub struct Scan<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Scan<'a> {
    /// Scans `text`, which must be exactly one object (whitespace around it allowed), calling `field`
    /// for each key and value in order, those of objects one level down included. `None` if the text
    /// is outside the accepted subset or `field` said `None` (say, a key it refuses to see twice).
    pub fn object(text: &'a str, mut field: impl FnMut(Field<'a>) -> Option<()>) -> Option<()> {
        let mut scan = Scan { text, at: 0 };
        scan.space();
        scan.fields(0, None, &mut field)?;
        scan.space();
        (scan.at == text.len()).then_some(())
    }

    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes().get(self.at).copied()
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    fn space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// `{ "key": value, … }` at the cursor, each pair handed to `field`; at the top (`depth` 0) the
    /// pairs of object values too.
    fn fields(
        &mut self,
        depth: usize,
        parent: Option<&'a str>,
        field: &mut impl FnMut(Field<'a>) -> Option<()>,
    ) -> Option<()> {
        self.eat(b'{')?;
        self.space();
        if self.eat(b'}').is_some() {
            return Some(());
        }
        loop {
            self.space();
            let key = self.string()?;
            self.space();
            self.eat(b':')?;
            self.space();
            let value = match self.peek()? {
                b'"' => Value::Str(self.string()?),
                b'{' => {
                    let start = self.at;
                    match depth {
                        0 => self.fields(1, Some(key), field)?,
                        _ => self.skip_value(depth + 1)?,
                    }
                    Value::Object(self.text.get(start..self.at)?)
                }
                _ => {
                    self.skip_value(depth + 1)?;
                    Value::Other
                }
            };
            field(Field { parent, key, value })?;
            self.space();
            match self.peek()? {
                b',' => self.at += 1,
                b'}' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// A string without escapes or control characters; its text between the quotes.
    fn string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.at;
        let rest = self.bytes().get(start..)?;
        // The first quote or backslash (SIMD), then the control characters before it in one pass
        // that vectorises: a backslash or a control character leaves the message to serde.
        let len = memchr::memchr2(b'"', b'\\', rest)?;
        let controls = rest[..len].iter().fold(0u8, |n, &c| n | u8::from(c < 0x20));
        if rest[len] != b'"' || controls != 0 {
            return None;
        }
        self.at = start + len + 1;
        // Quotes are ASCII, so both ends are character boundaries of the (already UTF-8) text.
        self.text.get(start..start + len)
    }

    /// Any value, checked and stepped over.
    fn skip_value(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'{' => self.fields(depth, None, &mut |_| Some(())),
            b'[' => {
                self.at += 1;
                self.space();
                if self.eat(b']').is_some() {
                    return Some(());
                }
                loop {
                    self.space();
                    self.skip_value(depth + 1)?;
                    self.space();
                    match self.peek()? {
                        b',' => self.at += 1,
                        b']' => {
                            self.at += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => self.number(),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.at + word.len();
        (self.bytes().get(self.at..end)? == word).then(|| self.at = end)
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`, as JSON has it.
    fn number(&mut self) -> Option<()> {
        let _ = self.eat(b'-');
        match self.peek()? {
            b'0' => self.at += 1,
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.eat(b'.').is_some() {
            self.peek().filter(u8::is_ascii_digit)?;
            self.digits();
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            self.peek().filter(u8::is_ascii_digit)?;
            self.digits();
        }
        Some(())
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.at += 1;
        }
    }
}

/// Test support for the fast paths built on the scan: each of `seeds`, then `rounds - 1` random
/// corruptions of each (bytes replaced with JSON's own characters, dropped, doubled, spaces put in),
/// handed to `check` while still UTF-8. Counts the texts `check` took (`Some`), so a test can tell it
/// exercised its fast path. Seeded: the same texts every run.
#[cfg(test)]
pub(crate) fn each_corruption(
    seeds: &[&str],
    rounds: usize,
    mut check: impl FnMut(&str) -> Option<()>,
) -> usize {
    use rand::{Rng, SeedableRng};
    const ALPHABET: &[u8] = b"\"\\{}[],:0123456789aeE+-. \tnulltrue";
    let mut rng = rand::rngs::StdRng::seed_from_u64(16);
    let mut taken = 0;
    for seed in seeds {
        for round in 0..rounds {
            let mut bytes = seed.as_bytes().to_vec();
            if round > 0 {
                for _ in 0..rng.random_range(1..4) {
                    let at = rng.random_range(0..bytes.len());
                    match rng.random_range(0..4) {
                        0 => bytes[at] = ALPHABET[rng.random_range(0..ALPHABET.len())],
                        1 => drop(bytes.remove(at)),
                        2 => bytes.insert(at, bytes[at]),
                        _ => bytes.insert(at, b' '),
                    }
                }
            }
            if let Ok(text) = std::str::from_utf8(&bytes) {
                taken += usize::from(check(text).is_some());
            }
        }
    }
    taken
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(text: &str) -> Option<Vec<(String, String)>> {
        let mut out = Vec::new();
        Scan::object(text, |Field { parent, key, value }| {
            out.push((
                match parent {
                    Some(p) => format!("{p}.{key}"),
                    None => key.to_string(),
                },
                match value {
                    Value::Str(s) => format!("s:{s}"),
                    Value::Object(o) => format!("o:{o}"),
                    Value::Other => "other".into(),
                },
            ));
            Some(())
        })?;
        Some(out)
    }

    #[test]
    fn accepts_what_json_accepts_and_hands_over_strings_and_objects() {
        let got = fields(
            " {\"a\" : \"x y\",\"b\":{\"c\":[1,-2.5e-3,true,false,null,{}],\"d\":\"\"} ,\"e\":0}\n",
        )
        .unwrap();
        assert_eq!(
            got,
            [
                ("a".into(), "s:x y".into()),
                ("b.c".into(), "other".into()),
                ("b.d".into(), "s:".into()),
                (
                    "b".into(),
                    "o:{\"c\":[1,-2.5e-3,true,false,null,{}],\"d\":\"\"}".into()
                ),
                ("e".into(), "other".into()),
            ]
        );
        assert_eq!(fields("{}").unwrap(), []);
        let long = format!("{{\"p\":\"{}\"}}", "ab+/".repeat(300));
        assert_eq!(fields(&long).unwrap()[0].1.len(), 2 + 1200);
        assert_eq!(fields("{\"é\":\"ü€😀\"}").unwrap()[0].1, "s:ü€😀");
    }

    #[test]
    fn refuses_all_that_serde_refuses_and_what_it_leaves_to_serde() {
        for bad in [
            "",
            "[]",
            "{",
            "{\"a\":1,}",
            "{\"a\" 1}",
            "{a:1}",
            "{\"a\":01}",
            "{\"a\":1.}",
            "{\"a\":.5}",
            "{\"a\":1e}",
            "{\"a\":-}",
            "{\"a\":+1}",
            "{\"a\":tru}",
            "{\"a\":nul}",
            "{\"a\":[1,]}",
            "{\"a\":[1 2]}",
            "{\"a\":\"x\"} x",
            "{\"a\":\"x\"}{}",
            "{\"a\":\"unterminated}",
            "{\"a\":\"tab\there\"}",
            "{\"a\":\"line\nbreak\"}",
            // Escapes are valid JSON, but left to serde (which unescapes them).
            "{\"a\":\"q\\\"\"}",
            "{\"a\\u0062\":1}",
        ] {
            assert!(fields(bad).is_none(), "{bad:?} was accepted");
            if !bad.contains('\\') {
                assert!(
                    serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(bad)
                        .is_err(),
                    "{bad:?} is a valid JSON object"
                );
            }
        }
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(12), "]".repeat(12));
        assert!(fields(&deep).is_none(), "too deep for the fast path");
        let deep = format!(
            "{{\"a\":{}1{}}}",
            "{\"a\":".repeat(20_000),
            "}".repeat(20_000)
        );
        assert!(fields(&deep).is_none(), "nested objects count too");
        let ok = format!(
            "{{\"a\":{}1{}}}",
            "{\"a\":".repeat(MAX_DEPTH - 1),
            "}".repeat(MAX_DEPTH - 1)
        );
        assert!(fields(&ok).is_some());
        assert!(Scan::object("{\"a\":1}", |_| None).is_none());
    }

    #[test]
    fn a_backslash_or_control_character_anywhere_in_a_string_is_left_to_serde() {
        for special in ['\\', '\u{0}', '\u{1f}', '\n'] {
            for at in 0..40 {
                let mut value: Vec<char> =
                    "abcdefghijklmnopqrstuvwxyz0123456789+/==".chars().collect();
                value[at] = special;
                let value: String = value.into_iter().collect();
                for text in [
                    format!("{{\"a\":\"{value}\"}}"),
                    format!("{{\"{value}\":1}}"),
                ] {
                    assert!(fields(&text).is_none(), "{text:?}");
                }
            }
        }
    }
}

//! Just enough TwiML reading for a `<Connect><Stream>` answer: the stream URL and its `<Parameter>`s.
//!
//! String scanning rather than an XML parser: the simulator should accept whatever a real Twilio would, and
//! Twilio's answers here are tiny and flat.

/// What the caller needs from the TwiML answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StreamTwiml {
    pub url: String,
    pub parameters: Vec<(String, String)>,
}

/// Finds `<Stream url="…">` (inside `<Connect>` or not) and the `<Parameter name value/>` tags after it.
pub(crate) fn parse(twiml: &str) -> Result<StreamTwiml, String> {
    let (stream_attrs, rest) = find_tag(twiml, "Stream").ok_or("no <Stream> element")?;
    let url = attr(stream_attrs, "url").ok_or("<Stream> has no url attribute")?;
    let body_end = rest.find("</Stream>").unwrap_or(rest.len());
    let mut body = &rest[..body_end];
    let mut parameters = Vec::new();
    while let Some((attrs, after)) = find_tag(body, "Parameter") {
        let name = attr(attrs, "name").ok_or("<Parameter> has no name")?;
        parameters.push((name, attr(attrs, "value").unwrap_or_default()));
        body = after;
    }
    Ok(StreamTwiml { url, parameters })
}

/// The attribute text of the first `<name …>` tag, and what follows the tag.
fn find_tag<'a>(text: &'a str, name: &str) -> Option<(&'a str, &'a str)> {
    let open = format!("<{name}");
    let mut from = 0;
    while let Some(pos) = text[from..].find(&open) {
        let start = from + pos + open.len();
        let next = text[start..].chars().next()?;
        if next.is_whitespace() || next == '>' || next == '/' {
            let end = start + text[start..].find('>')?;
            let attrs = text[start..end].trim_end_matches('/');
            return Some((attrs, &text[end + 1..]));
        }
        from = start;
    }
    None
}

/// The unescaped value of `name="…"` (or single-quoted) in a tag's attribute text.
fn attr(attrs: &str, name: &str) -> Option<String> {
    let mut rest = attrs;
    loop {
        let eq = rest.find('=')?;
        let key = rest[..eq].split_whitespace().last().unwrap_or("");
        let after = rest[eq + 1..].trim_start();
        let quote = after.chars().next()?;
        if quote != '"' && quote != '\'' {
            return None;
        }
        let close = after[1..].find(quote)?;
        let value = &after[1..1 + close];
        if key == name {
            return Some(unescape(value));
        }
        rest = &after[close + 2..];
    }
}

/// XML entity unescaping: the five named entities and numeric references.
pub(crate) fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let tail = &rest[amp..];
        let Some(semi) = tail.find(';').filter(|&s| s <= 10) else {
            out.push('&');
            rest = &tail[1..];
            continue;
        };
        let entity = &tail[1..semi];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|dec| dec.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &tail[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_stream_url_and_parameters() {
        let twiml = r#"<?xml version="1.0" encoding="UTF-8"?>
<Response><Connect><Stream url="wss://example.com/media-stream?a=1&amp;b=2">
  <Parameter name="token" value="t&lt;1&gt;&quot;&apos;&#65;&#x42;"/>
  <Parameter name='other' value='x' />
</Stream></Connect><Parameter name="outside" value="no"/></Response>"#;
        let parsed = parse(twiml).unwrap();
        assert_eq!(parsed.url, "wss://example.com/media-stream?a=1&b=2");
        assert_eq!(
            parsed.parameters,
            vec![
                ("token".into(), "t<1>\"'AB".into()),
                ("other".into(), "x".into())
            ]
        );
    }

    #[test]
    fn stream_without_parameters_and_missing_stream() {
        let parsed =
            parse(r#"<Response><Connect><Stream url="ws://h/m"/></Connect></Response>"#).unwrap();
        assert_eq!(parsed.url, "ws://h/m");
        assert!(parsed.parameters.is_empty());
        assert!(parse("<Response><Say>Sorry</Say></Response>").is_err());
        assert!(parse("<Response><Streams url=\"x\"/></Response>").is_err());
        assert_eq!(unescape("a & b &bogus; &amp;"), "a & b &bogus; &");
    }
}

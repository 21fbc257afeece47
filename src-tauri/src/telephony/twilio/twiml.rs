//! A small TwiML builder for the few verbs Verbio answers with.
//!
//! The output is byte-for-byte what Twilio's Python library writes (checked against
//! `tests/fixtures/specs/twiml-examples.json`): an XML declaration, no whitespace between elements,
//! attributes sorted by name, empty elements as `<Tag />`, `& < >` escaped in text and
//! `& < > "` (plus CR, LF, tab) in attributes. Matching it exactly keeps our TwiML comparable
//! with Twilio's docs and lets tests pin it down.
//!
//! ```
//! use verbio::telephony::twilio::twiml::{Response, Stream};
//! let xml = Response::new()
//!     .connect_stream(Stream::new("wss://h.example/media-stream").parameter("token", "t1"))
//!     .to_xml();
//! assert_eq!(
//!     xml,
//!     "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Connect>\
//!      <Stream url=\"wss://h.example/media-stream\"><Parameter name=\"token\" value=\"t1\" />\
//!      </Stream></Connect></Response>"
//! );
//! ```

const DECLARATION: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;

/// A `<Response>` document, built verb by verb.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response {
    verbs: Vec<Element>,
}

/// `<Connect><Stream>`: a bidirectional Media Stream to `url` (a `wss://` URL).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stream {
    pub url: String,
    /// `<Parameter name value>` children; they arrive in the stream's `start.customParameters`.
    pub parameters: Vec<(String, String)>,
    pub status_callback: Option<String>,
    pub status_callback_method: Option<String>,
}

impl Stream {
    pub fn new(url: impl Into<String>) -> Self {
        Stream {
            url: url.into(),
            ..Stream::default()
        }
    }

    pub fn parameter(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.parameters.push((name.into(), value.into()));
        self
    }
}

/// Attributes of `<Say>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SayOptions {
    /// e.g. `Polly.Joanna`.
    pub voice: Option<String>,
    /// e.g. `en-US`.
    pub language: Option<String>,
}

/// `<Dial><Number>`: transfer the call to a phone number.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dial {
    pub number: String,
    pub caller_id: Option<String>,
    /// Seconds to let the number ring.
    pub timeout: Option<u32>,
}

impl Response {
    pub fn new() -> Self {
        Response::default()
    }

    pub fn connect_stream(mut self, stream: Stream) -> Self {
        let mut el = Element::new("Stream")
            .attr("url", Some(stream.url))
            .attr("statusCallback", stream.status_callback)
            .attr("statusCallbackMethod", stream.status_callback_method);
        for (name, value) in stream.parameters {
            el.children.push(
                Element::new("Parameter")
                    .attr("name", Some(name))
                    .attr("value", Some(value)),
            );
        }
        let mut connect = Element::new("Connect");
        connect.children.push(el);
        self.verbs.push(connect);
        self
    }

    pub fn say(mut self, text: impl Into<String>, options: SayOptions) -> Self {
        let mut el = Element::new("Say")
            .attr("voice", options.voice)
            .attr("language", options.language);
        el.text = text.into();
        self.verbs.push(el);
        self
    }

    pub fn pause(mut self, seconds: u32) -> Self {
        self.verbs
            .push(Element::new("Pause").attr("length", Some(seconds.to_string())));
        self
    }

    pub fn hangup(mut self) -> Self {
        self.verbs.push(Element::new("Hangup"));
        self
    }

    pub fn dial(mut self, dial: Dial) -> Self {
        let mut el = Element::new("Dial")
            .attr("callerId", dial.caller_id)
            .attr("timeout", dial.timeout.map(|t| t.to_string()));
        let mut number = Element::new("Number");
        number.text = dial.number;
        el.children.push(number);
        self.verbs.push(el);
        self
    }

    /// The document, with its XML declaration.
    pub fn to_xml(&self) -> String {
        let mut out = String::from(DECLARATION);
        let root = Element {
            name: "Response",
            attrs: Vec::new(),
            text: String::new(),
            children: self.verbs.clone(),
        };
        root.write(&mut out);
        out
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Element {
    name: &'static str,
    attrs: Vec<(&'static str, String)>,
    text: String,
    children: Vec<Element>,
}

impl Element {
    fn new(name: &'static str) -> Self {
        Element {
            name,
            attrs: Vec::new(),
            text: String::new(),
            children: Vec::new(),
        }
    }

    /// Adds the attribute when it has a value (Twilio's library drops `None` the same way).
    fn attr(mut self, name: &'static str, value: Option<String>) -> Self {
        if let Some(value) = value {
            self.attrs.push((name, value));
        }
        self
    }

    fn write(&self, out: &mut String) {
        out.push('<');
        out.push_str(self.name);
        let mut attrs: Vec<&(&str, String)> = self.attrs.iter().collect();
        attrs.sort_by(|a, b| a.0.cmp(b.0));
        for (name, value) in attrs {
            out.push(' ');
            out.push_str(name);
            out.push_str("=\"");
            escape_into(out, value, true);
            out.push('"');
        }
        if self.text.is_empty() && self.children.is_empty() {
            out.push_str(" />");
            return;
        }
        out.push('>');
        escape_into(out, &self.text, false);
        for child in &self.children {
            child.write(out);
        }
        out.push_str("</");
        out.push_str(self.name);
        out.push('>');
    }
}

/// Escapes as Python's ElementTree does. Characters XML 1.0 forbids outright (other control
/// characters, U+FFFE, U+FFFF) are dropped rather than written: Twilio would reject the document.
fn escape_into(out: &mut String, text: &str, attribute: bool) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attribute => out.push_str("&quot;"),
            '\r' if attribute => out.push_str("&#13;"),
            '\n' if attribute => out.push_str("&#10;"),
            '\t' if attribute => out.push_str("&#09;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLES: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/specs/twiml-examples.json"
    ));

    /// Builds the document each reference example describes.
    fn build(description: &str) -> Response {
        match description {
            "bidirectional stream with parameters" => Response::new().connect_stream(
                Stream::new("wss://abc123.ngrok.app/media-stream")
                    .parameter("token", "tok_9f8e7d")
                    .parameter("direction", "inbound"),
            ),
            "stream with status callback" => Response::new().connect_stream(Stream {
                url: "wss://abc123.ngrok.app/media-stream".into(),
                parameters: vec![],
                status_callback: Some("https://abc123.ngrok.app/stream-status".into()),
                status_callback_method: Some("POST".into()),
            }),
            "fallback message then hang up" => Response::new()
                .say(
                    "Sorry, the agent is unavailable. Please call again later.",
                    SayOptions {
                        voice: Some("Polly.Joanna".into()),
                        language: None,
                    },
                )
                .hangup(),
            "transfer to a human" => Response::new().dial(Dial {
                number: "+14155550123".into(),
                caller_id: Some("+14155550100".into()),
                timeout: Some(20),
            }),
            "escaping in Say" => Response::new().pause(1).say(
                "Hello & welcome <caller>",
                SayOptions {
                    voice: None,
                    language: Some("en-US".into()),
                },
            ),
            other => panic!("no builder for reference example {other:?}"),
        }
    }

    #[test]
    fn every_reference_example_is_reproduced_exactly() {
        let doc: serde_json::Value = serde_json::from_str(EXAMPLES).unwrap();
        let examples = doc["examples"].as_array().unwrap();
        assert_eq!(examples.len(), 5);
        for example in examples {
            let description = example["description"].as_str().unwrap();
            let expected = example["xml"].as_str().unwrap();
            assert_eq!(build(description).to_xml(), expected, "{description}");
        }
    }

    #[test]
    fn attributes_are_escaped_and_sorted() {
        let xml = Response::new()
            .connect_stream(
                Stream::new("wss://h/x?a=1&b=\"2\"").parameter("greeting", "<hi>\n\t\r"),
            )
            .to_xml();
        assert_eq!(
            xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Connect>\
             <Stream url=\"wss://h/x?a=1&amp;b=&quot;2&quot;\">\
             <Parameter name=\"greeting\" value=\"&lt;hi&gt;&#10;&#09;&#13;\" />\
             </Stream></Connect></Response>"
        );
        // Uppercase names sort before lowercase ones, as in Python.
        let mut el = Element::new("X")
            .attr("b", Some("1".into()))
            .attr("Z", Some("2".into()))
            .attr("a", Some("3".into()));
        el.text = "t".into();
        let mut out = String::new();
        el.write(&mut out);
        assert_eq!(out, r#"<X Z="2" a="3" b="1">t</X>"#);
    }

    #[test]
    fn text_keeps_quotes_and_drops_forbidden_characters() {
        let xml = Response::new()
            .say("\"it's\"\u{0}\u{7}\nok", SayOptions::default())
            .to_xml();
        assert!(
            xml.ends_with("<Response><Say>\"it's\"\nok</Say></Response>"),
            "{xml}"
        );
    }

    #[test]
    fn empty_elements_self_close() {
        assert_eq!(
            Response::new().to_xml(),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response />"
        );
        assert!(Response::new()
            .say("", SayOptions::default())
            .to_xml()
            .ends_with("<Response><Say /></Response>"));
    }
}

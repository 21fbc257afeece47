//! Every URL Verbio gives Twilio, built in one place from the public base URL in use, and the paths
//! the router serves them at (the same constants, so the two cannot drift apart).

/// The voice webhook (a number's "A call comes in"): answers with `<Connect><Stream>`.
pub const VOICE_PATH: &str = "/twiml";
/// The Media Streams socket.
pub const MEDIA_STREAM_PATH: &str = "/media-stream";
/// Call status callbacks (`StatusCallback`).
pub const STATUS_CALLBACK_PATH: &str = "/twilio/status";
/// Asynchronous answering-machine detection (`AsyncAmdStatusCallback`).
pub const AMD_CALLBACK_PATH: &str = "/twilio/amd";
/// Cloud recordings that are ready (`RecordingStatusCallback`).
pub const RECORDING_STATUS_PATH: &str = "/twilio/recording-status";

/// The webhook URLs under one public base URL (`https://host` or `https://host/prefix`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrls {
    base: String,
}

impl WebhookUrls {
    /// URLs under `public_base`; a trailing `/` is ignored.
    ///
    /// ```
    /// use verbio::telephony::twilio::webhooks::WebhookUrls;
    /// let urls = WebhookUrls::new("https://abc.ngrok.app/");
    /// assert_eq!(urls.voice(), "https://abc.ngrok.app/twiml");
    /// assert_eq!(urls.media_stream(), "wss://abc.ngrok.app/media-stream");
    /// ```
    pub fn new(public_base: &str) -> Self {
        WebhookUrls {
            base: public_base.trim_end_matches('/').to_string(),
        }
    }

    /// The voice webhook (`VoiceUrl`, HTTP POST).
    pub fn voice(&self) -> String {
        self.at(VOICE_PATH)
    }

    /// The media stream for `<Stream url=…>`: `wss://` for an `https://` base, `ws://` for `http://`.
    pub fn media_stream(&self) -> String {
        to_websocket(&self.at(MEDIA_STREAM_PATH))
    }

    /// `StatusCallback`.
    pub fn status_callback(&self) -> String {
        self.at(STATUS_CALLBACK_PATH)
    }

    /// `AsyncAmdStatusCallback`.
    pub fn amd_callback(&self) -> String {
        self.at(AMD_CALLBACK_PATH)
    }

    /// `RecordingStatusCallback`.
    pub fn recording_status_callback(&self) -> String {
        self.at(RECORDING_STATUS_PATH)
    }

    fn at(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// The `ws://`/`wss://` form of an `http://`/`https://` URL (what Twilio connects to and signs for a
/// media stream); any other URL is returned as it is.
pub fn to_websocket(url: &str) -> String {
    if let Some(rest) = url.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = url.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        url.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_url_sits_under_the_public_base() {
        let urls = WebhookUrls::new("https://pub.example/verbio/");
        assert_eq!(urls.voice(), "https://pub.example/verbio/twiml");
        assert_eq!(urls.media_stream(), "wss://pub.example/verbio/media-stream");
        assert_eq!(
            urls.status_callback(),
            "https://pub.example/verbio/twilio/status"
        );
        assert_eq!(urls.amd_callback(), "https://pub.example/verbio/twilio/amd");
        assert_eq!(
            urls.recording_status_callback(),
            "https://pub.example/verbio/twilio/recording-status"
        );
        let local = WebhookUrls::new("http://127.0.0.1:8081");
        assert_eq!(local.media_stream(), "ws://127.0.0.1:8081/media-stream");
        assert_eq!(local.voice(), "http://127.0.0.1:8081/twiml");
    }

    #[test]
    fn only_http_schemes_become_websocket_schemes() {
        assert_eq!(to_websocket("https://h/x?a=1"), "wss://h/x?a=1");
        assert_eq!(to_websocket("http://h:80/x"), "ws://h:80/x");
        assert_eq!(to_websocket("wss://h/x"), "wss://h/x");
        assert_eq!(to_websocket("ftp://h/x"), "ftp://h/x");
    }
}

//! The URL Twilio used to reach us, which is what Twilio signed.
//!
//! Behind a tunnel or reverse proxy the local URL differs from the public one, so the live public URL
//! (a tunnel's, or the user's own: [`Services::public_url`]) always wins. Without one, the request's own
//! `Host` (over plain http) is used; `X-Forwarded-Proto`/`X-Forwarded-Host` only when the user said the
//! proxy in front is trusted (`VERBIO_TRUST_FORWARDED`): from anyone else they would let the client
//! choose the URL a replayed signature is checked against.

use axum::http::{HeaderMap, Uri};

use crate::services::Services;
use crate::telephony::twilio::webhooks::{to_websocket, WebhookUrls};

/// `https://public.host` (no trailing slash): where Twilio sent this request. Read once per request,
/// so a URL changed meanwhile cannot make one check mix two bases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedBase(String);

impl SignedBase {
    /// The base for a request to `services`: its live public URL, else the request's own.
    pub fn of(services: &Services, headers: &HeaderMap) -> Self {
        let public = services.public_url();
        SignedBase::from_parts(public.as_deref(), services.config.trust_forwarded, headers)
    }

    /// `public` if set; else the request's `Host`, or the forwarded headers when `trust_forwarded`.
    pub fn from_parts(public: Option<&str>, trust_forwarded: bool, headers: &HeaderMap) -> Self {
        if let Some(base) = public {
            return SignedBase(base.trim_end_matches('/').to_string());
        }
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let forwarded = |name: &str| header(name).filter(|_| trust_forwarded);
        let scheme = forwarded("x-forwarded-proto").unwrap_or_else(|| "http".into());
        let host = forwarded("x-forwarded-host")
            .or_else(|| header("host"))
            .unwrap_or_else(|| "localhost".into());
        SignedBase(format!("{scheme}://{host}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `https://public.host/path?query` for an HTTP webhook.
    pub fn webhook_url(&self, uri: &Uri) -> String {
        let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        format!("{}{}", self.0, path)
    }

    /// `wss://public.host/path?query` for the media WebSocket (Twilio signs the `wss://` form).
    pub fn websocket_url(&self, uri: &Uri) -> String {
        to_websocket(&self.webhook_url(uri))
    }

    /// The URLs to give Twilio under this base.
    pub fn webhook_urls(&self) -> WebhookUrls {
        WebhookUrls::new(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("host", HeaderValue::from_static("127.0.0.1:8081"));
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        h.insert(
            "x-forwarded-host",
            HeaderValue::from_static("abc.ngrok.app"),
        );
        h
    }

    #[test]
    fn forwarded_headers_count_only_from_a_trusted_proxy() {
        let uri: Uri = "/twiml?x=1".parse().unwrap();
        let h = headers();
        assert_eq!(
            SignedBase::from_parts(None, false, &h).webhook_url(&uri),
            "http://127.0.0.1:8081/twiml?x=1",
            "untrusted: the request's own Host and scheme"
        );
        assert_eq!(
            SignedBase::from_parts(None, true, &h).webhook_url(&uri),
            "https://abc.ngrok.app/twiml?x=1"
        );
        let ws: Uri = "/media-stream".parse().unwrap();
        assert_eq!(
            SignedBase::from_parts(None, true, &h).websocket_url(&ws),
            "wss://abc.ngrok.app/media-stream"
        );
        assert_eq!(
            SignedBase::from_parts(None, false, &HeaderMap::new()).as_str(),
            "http://localhost"
        );
    }

    #[test]
    fn the_public_url_wins_whatever_the_headers_say() {
        let uri: Uri = "/twilio/status".parse().unwrap();
        for trusted in [false, true] {
            assert_eq!(
                SignedBase::from_parts(Some("https://pub.example/"), trusted, &headers())
                    .webhook_url(&uri),
                "https://pub.example/twilio/status"
            );
        }
    }
}

//! The URL Twilio used to reach us, which is what Twilio signed.
//!
//! Behind a tunnel or reverse proxy the local URL differs from the public one, so the configured public
//! URL wins; without one, `X-Forwarded-Proto`/`X-Forwarded-Host` (set by the proxy) or `Host` are used.

use axum::http::{HeaderMap, Uri};

use crate::telephony::twilio::webhooks::{to_websocket, WebhookUrls};

/// `https://public.host/path?query` for an HTTP webhook.
pub fn webhook_url(public_base: Option<&str>, headers: &HeaderMap, uri: &Uri) -> String {
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    format!("{}{}", base_url(public_base, headers), path)
}

/// `wss://public.host/path?query` for the media WebSocket (Twilio signs the `wss://` form).
pub fn websocket_url(public_base: Option<&str>, headers: &HeaderMap, uri: &Uri) -> String {
    to_websocket(&webhook_url(public_base, headers, uri))
}

/// The URLs to give Twilio, under the public base (or, without one, the URL this request came to).
pub fn webhook_urls(public_base: Option<&str>, headers: &HeaderMap) -> WebhookUrls {
    WebhookUrls::new(&base_url(public_base, headers))
}

/// `https://public.host` (no trailing slash).
pub fn base_url(public_base: Option<&str>, headers: &HeaderMap) -> String {
    if let Some(base) = public_base {
        return base.trim_end_matches('/').to_string();
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let scheme = header("x-forwarded-proto").unwrap_or_else(|| "http".into());
    let host = header("x-forwarded-host")
        .or_else(|| header("host"))
        .unwrap_or_else(|| "localhost".into());
    format!("{scheme}://{host}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn configured_public_url_wins_then_forwarded_headers_then_host() {
        let uri: Uri = "/twiml?x=1".parse().unwrap();
        let mut h = HeaderMap::new();
        h.insert("host", HeaderValue::from_static("127.0.0.1:8081"));
        assert_eq!(
            webhook_url(None, &h, &uri),
            "http://127.0.0.1:8081/twiml?x=1"
        );
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        h.insert(
            "x-forwarded-host",
            HeaderValue::from_static("abc.ngrok.app"),
        );
        assert_eq!(
            webhook_url(None, &h, &uri),
            "https://abc.ngrok.app/twiml?x=1"
        );
        assert_eq!(
            webhook_url(Some("https://pub.example/"), &h, &uri),
            "https://pub.example/twiml?x=1"
        );
        let ws: Uri = "/media-stream".parse().unwrap();
        assert_eq!(
            websocket_url(None, &h, &ws),
            "wss://abc.ngrok.app/media-stream"
        );
    }
}

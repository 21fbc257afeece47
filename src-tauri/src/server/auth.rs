//! The local API key: `X-API-Key`, compared in constant time (length included). The key is never
//! logged.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::server::errors::ApiError;
use crate::services::Services;

/// Header carrying the local API key.
pub const API_KEY_HEADER: &str = "x-api-key";

/// True when `offered` is the configured key. An empty configured key matches nothing.
///
/// Both are hashed first and the fixed-size digests compared in constant time: comparing the keys
/// themselves returns early on a length mismatch, which tells a guesser the key's length.
pub fn key_matches(configured: &str, offered: &str) -> bool {
    let configured_digest = Sha256::digest(configured.as_bytes());
    let offered_digest = Sha256::digest(offered.as_bytes());
    let same = bool::from(configured_digest.ct_eq(&offered_digest));
    !configured.is_empty() && same
}

/// Middleware for every `/api` route. The events socket may instead send the key in its first message
/// (so it never lands in a URL), so its upgrade passes through here without a header.
pub async fn require_api_key(
    State(services): State<Arc<Services>>,
    request: Request,
    next: Next,
) -> Response {
    let offered = request
        .headers()
        .get(API_KEY_HEADER)
        .and_then(|v| v.to_str().ok());
    // Inside the nested `/api` router the path is relative ("/events").
    let path = request.uri().path();
    let is_events_upgrade = (path == "/events" || path == "/api/events")
        && request
            .headers()
            .get("upgrade")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let refused = match offered {
        Some(key) if key_matches(services.config.api_key.expose(), key) => None,
        None if is_events_upgrade => None,
        Some(_) => Some("invalid API key"),
        None => Some("missing X-API-Key header"),
    };
    match refused {
        None => next.run(request).await,
        Some(why) => ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", why).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_key_matches_nothing() {
        assert!(key_matches("k1", "k1"));
        assert!(!key_matches("k1", "k2"));
        assert!(!key_matches("k1", "k1 "));
        assert!(!key_matches("", ""));
        assert!(!key_matches("", "anything"));
    }

    #[test]
    fn keys_of_any_length_compare_by_value_only() {
        let key = "Zm9vYmFyLXJhbmRvbS1rZXktZm9yLXRlc3RzLTAwMDE";
        assert!(key_matches(key, key));
        for offered in [
            "",
            "Z",
            &key[..key.len() - 1],
            &format!("{key}A"),
            &format!("{key}{key}"),
            &key.to_ascii_lowercase(),
            &"x".repeat(4096),
        ] {
            assert!(!key_matches(key, offered), "{offered:?}");
        }
        // A prefix of the right length is no closer than anything else: the digests differ.
        let mut almost = key.to_string();
        almost.replace_range(key.len() - 1.., "2");
        assert!(!key_matches(key, &almost));
    }
}

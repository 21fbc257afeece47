//! The media socket's WebSocket upgrade, done here rather than by axum's `WebSocketUpgrade`, so the
//! call gets the raw connection under [`WsConn`] (the lean framing the bridge runs on)
//! instead of tungstenite's. Refuses what axum refuses, with the same statuses.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use crate::calls::bridge::MediaSocket;
use crate::wire::ws::{accept_key, Limits, Role, WsConn};

/// A checked request to upgrade to a WebSocket.
pub struct MediaUpgrade {
    key: HeaderValue,
    on_upgrade: OnUpgrade,
}

/// Why an upgrade was refused (axum's wording and statuses).
#[derive(Debug, PartialEq, Eq)]
pub enum UpgradeRefused {
    NotGet,
    NoUpgradeConnection,
    NotWebSocket,
    WrongVersion,
    NoKey,
    NotUpgradable,
}

impl IntoResponse for UpgradeRefused {
    fn into_response(self) -> Response {
        let (status, why) = match self {
            UpgradeRefused::NotGet => (
                StatusCode::METHOD_NOT_ALLOWED,
                "Request method must be `GET`",
            ),
            UpgradeRefused::NoUpgradeConnection => (
                StatusCode::BAD_REQUEST,
                "Connection header did not include 'upgrade'",
            ),
            UpgradeRefused::NotWebSocket => (
                StatusCode::BAD_REQUEST,
                "`Upgrade` header did not include 'websocket'",
            ),
            UpgradeRefused::WrongVersion => (
                StatusCode::BAD_REQUEST,
                "`Sec-WebSocket-Version` header did not include '13'",
            ),
            UpgradeRefused::NoKey => (
                StatusCode::BAD_REQUEST,
                "`Sec-WebSocket-Key` header missing",
            ),
            UpgradeRefused::NotUpgradable => (
                StatusCode::UPGRADE_REQUIRED,
                "WebSocket request couldn't be upgraded since no upgrade state was present",
            ),
        };
        (status, why).into_response()
    }
}

/// Whether header `name` holds `token` in its comma-separated list (case-insensitive).
fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// The checks of a WebSocket upgrade request (RFC 6455 §4.2.1), without taking anything.
fn check(method: &Method, headers: &HeaderMap) -> Result<HeaderValue, UpgradeRefused> {
    if method != Method::GET {
        return Err(UpgradeRefused::NotGet);
    }
    if !has_token(headers, header::CONNECTION, "upgrade") {
        return Err(UpgradeRefused::NoUpgradeConnection);
    }
    if !has_token(headers, header::UPGRADE, "websocket") {
        return Err(UpgradeRefused::NotWebSocket);
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes() != b"13")
    {
        return Err(UpgradeRefused::WrongVersion);
    }
    headers
        .get(header::SEC_WEBSOCKET_KEY)
        .cloned()
        .ok_or(UpgradeRefused::NoKey)
}

impl<S: Send + Sync> FromRequestParts<S> for MediaUpgrade {
    type Rejection = UpgradeRefused;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let key = check(&parts.method, &parts.headers)?;
        let on_upgrade = parts
            .extensions
            .remove::<OnUpgrade>()
            .ok_or(UpgradeRefused::NotUpgradable)?;
        Ok(MediaUpgrade { key, on_upgrade })
    }
}

impl MediaUpgrade {
    /// Answers 101 and runs `callback` with the socket once the client has it; a connection that goes
    /// away before that is only logged.
    pub fn on_upgrade<F, Fut>(self, limits: Limits, callback: F) -> Response
    where
        F: FnOnce(MediaSocket) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let accept = accept_key(self.key.to_str().unwrap_or_default());
        let on_upgrade = self.on_upgrade;
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => {
                    let socket = WsConn::new(TokioIo::new(upgraded), Role::Server, limits, &[]);
                    callback(socket).await;
                }
                Err(e) => tracing::debug!("media socket upgrade failed: {e}"),
            }
        });
        let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        if let Ok(value) = HeaderValue::from_str(&accept) {
            headers.insert(header::SEC_WEBSOCKET_ACCEPT, value);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn refuses_what_is_not_a_websocket_upgrade() {
        let good = [
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "WebSocket"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ];
        assert!(check(&Method::GET, &headers(&good)).is_ok());
        assert_eq!(
            check(&Method::POST, &headers(&good)),
            Err(UpgradeRefused::NotGet)
        );
        for (drop, refused) in [
            (0, UpgradeRefused::NoUpgradeConnection),
            (1, UpgradeRefused::NotWebSocket),
            (2, UpgradeRefused::WrongVersion),
            (3, UpgradeRefused::NoKey),
        ] {
            let mut pairs = good.to_vec();
            pairs.remove(drop);
            assert_eq!(check(&Method::GET, &headers(&pairs)), Err(refused));
        }
        let mut old = good.to_vec();
        old[2] = ("sec-websocket-version", "8");
        assert_eq!(
            check(&Method::GET, &headers(&old)),
            Err(UpgradeRefused::WrongVersion)
        );
    }
}

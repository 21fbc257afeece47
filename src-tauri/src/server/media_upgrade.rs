//! The media socket's WebSocket upgrade, done here rather than by axum's `WebSocketUpgrade`, so the
//! call gets the raw connection under [`WsConn`] (the lean framing the bridge runs on)
//! instead of tungstenite's. Refuses what axum refuses, with the same statuses.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use tokio_util::either::Either;

use crate::calls::bridge::{MediaSocket, MediaStream};
use crate::wire::slotted::Slotted;
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
                    // The server's own stream taken back whole, with what hyper read past the request.
                    let socket = match upgraded.downcast::<TokioIo<Slotted>>() {
                        Ok(parts) => {
                            let stream: MediaStream = Either::Left(parts.io.into_inner());
                            WsConn::new(stream, Role::Server, limits, &parts.read_buf)
                        }
                        Err(upgraded) => {
                            let stream: MediaStream = Either::Right(TokioIo::new(upgraded));
                            WsConn::new(stream, Role::Server, limits, &[])
                        }
                    };
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

    /// Through the real server: the call gets the TCP stream itself (not hyper's wrapper), and a frame
    /// the client sent in the same write as its request (which hyper read past the request) is not lost.
    #[tokio::test]
    async fn the_call_takes_the_tcp_stream_back_with_what_hyper_read_ahead() {
        use crate::server::http::{serve, HttpLimits};
        use crate::wire::ws::{client_request, parse_response, Incoming};
        use axum::routing::get;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let (seen_tx, seen_rx) = tokio::sync::oneshot::channel::<(bool, String)>();
        let seen_tx = std::sync::Arc::new(std::sync::Mutex::new(Some(seen_tx)));
        let router = axum::Router::new().route(
            "/media",
            get(move |upgrade: MediaUpgrade| {
                let seen_tx = seen_tx.clone();
                async move {
                    upgrade.on_upgrade(Limits::default(), move |mut socket| async move {
                        let tcp = matches!(socket.get_ref(), Either::Left(_));
                        let text = match socket.next().await {
                            Some(Ok(Incoming::Text(t))) => t.as_str().to_string(),
                            other => format!("{other:?}"),
                        };
                        if let Some(tx) = seen_tx.lock().unwrap().take() {
                            let _ = tx.send((tcp, text));
                        }
                    })
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(serve(listener, router, HttpLimits::default(), async {
            let _ = stopped.await;
        }));

        let (request, key) = client_request(&addr.to_string(), "/media", &[]).unwrap();
        // "hello" as one masked text frame, right behind the request.
        let mask = [0x11, 0x22, 0x33, 0x44];
        let mut bytes = request.into_bytes();
        bytes.extend_from_slice(&[0x81, 0x80 | 5]);
        bytes.extend_from_slice(&mask);
        bytes.extend(b"hello".iter().zip(mask.iter().cycle()).map(|(b, k)| b ^ k));
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        tcp.write_all(&bytes).await.unwrap();
        let mut answer = Vec::new();
        let status = loop {
            let mut chunk = [0u8; 512];
            let n = tcp.read(&mut chunk).await.unwrap();
            assert!(n > 0, "the server closed before answering");
            answer.extend_from_slice(&chunk[..n]);
            if let Some((_, status)) = parse_response(&answer, &key).unwrap() {
                break status;
            }
        };
        assert_eq!(status, 101);
        let (tcp_direct, text) = tokio::time::timeout(std::time::Duration::from_secs(5), seen_rx)
            .await
            .expect("the socket's callback ran")
            .unwrap();
        assert!(tcp_direct, "the media socket runs on hyper's wrapper");
        assert_eq!(text, "hello");
        let _ = stop.send(());
    }
}

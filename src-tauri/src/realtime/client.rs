//! The model socket: connects to a Realtime GA endpoint over `tokio-tungstenite`.
//!
//! Behind the [`ModelConnector`] trait so the bridge does not care whether it talks to OpenAI,
//! an Azure-style deployment, or the simulator.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::types::Secret;

/// An open model session socket.
pub type ModelSocket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A boxed connect future.
pub type ConnectFuture = Pin<Box<dyn Future<Output = Result<ModelSocket, RealtimeError>> + Send>>;

/// Opens model sessions.
pub trait ModelConnector: Send + Sync + 'static {
    /// Opens one session for `model`.
    fn connect(&self, model: &str) -> ConnectFuture;
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RealtimeError {
    #[error("invalid Realtime URL: {0}")]
    BadUrl(String),
    #[error("no OpenAI API key is configured")]
    MissingKey,
    #[error("could not reach the model: {0}")]
    Connect(String),
    #[error("the model refused the connection with HTTP {0}")]
    Rejected(u16),
    #[error("timed out connecting to the model")]
    Timeout,
}

/// Small buffers: a call moves ~8 KB/s each way, so tungstenite's 128 KiB defaults only cost memory, and
/// tungstenite zero-fills up to the read buffer's size before every read (audio deltas are 1–5 KB; a
/// bigger message still arrives whole, in more reads).
pub fn socket_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(4 * 1024 * 1024)
        .max_message_size(Some(4 * 1024 * 1024))
        .max_frame_size(Some(4 * 1024 * 1024))
}

/// Connects to `{base_url}?model=…` with `Authorization: Bearer`. Never sends the beta header.
#[derive(Clone)]
pub struct RealtimeClient {
    base_url: String,
    api_key: Secret,
    connect_timeout: Duration,
}

impl RealtimeClient {
    pub fn new(base_url: impl Into<String>, api_key: Secret) -> Self {
        crate::tls::install_crypto_provider();
        RealtimeClient {
            base_url: base_url.into(),
            api_key,
            connect_timeout: Duration::from_secs(10),
        }
    }

    /// The URL for `model` (the key is never part of it).
    pub fn url_for(&self, model: &str) -> Result<String, RealtimeError> {
        let mut url =
            url::Url::parse(&self.base_url).map_err(|e| RealtimeError::BadUrl(e.to_string()))?;
        if !matches!(url.scheme(), "ws" | "wss") {
            return Err(RealtimeError::BadUrl(format!(
                "scheme {:?} is not ws or wss",
                url.scheme()
            )));
        }
        url.query_pairs_mut().append_pair("model", model);
        Ok(url.to_string())
    }
}

impl ModelConnector for RealtimeClient {
    fn connect(&self, model: &str) -> ConnectFuture {
        let url = self.url_for(model);
        let key = self.api_key.clone();
        let timeout = self.connect_timeout;
        Box::pin(async move {
            let url = url?;
            if key.is_empty() {
                return Err(RealtimeError::MissingKey);
            }
            let mut request = url
                .into_client_request()
                .map_err(|e| RealtimeError::BadUrl(e.to_string()))?;
            let auth =
                HeaderValue::from_str(&format!("Bearer {}", key.expose())).map_err(|_| {
                    RealtimeError::Connect(
                        "the API key holds characters a header cannot carry".into(),
                    )
                })?;
            request.headers_mut().insert("Authorization", auth);
            let attempt =
                tokio_tungstenite::connect_async_with_config(request, Some(socket_config()), true);
            match tokio::time::timeout(timeout, attempt).await {
                Err(_) => Err(RealtimeError::Timeout),
                Ok(Ok((socket, _))) => Ok(socket),
                Ok(Err(tokio_tungstenite::tungstenite::Error::Http(resp))) => {
                    Err(RealtimeError::Rejected(resp.status().as_u16()))
                }
                Ok(Err(e)) => Err(RealtimeError::Connect(e.to_string())),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_carries_model_not_key() {
        let c = RealtimeClient::new("wss://api.openai.com/v1/realtime", Secret::new("sk-secret"));
        let url = c.url_for("gpt-realtime-2.1").unwrap();
        assert_eq!(
            url,
            "wss://api.openai.com/v1/realtime?model=gpt-realtime-2.1"
        );
        assert!(!url.contains("sk-secret"));
        assert!(RealtimeClient::new("https://x", Secret::new("k"))
            .url_for("m")
            .is_err());
    }

    #[tokio::test]
    async fn missing_key_and_unreachable_model_are_clear_errors() {
        let c = RealtimeClient::new("ws://127.0.0.1:9/v1/realtime", Secret::default());
        assert_eq!(c.connect("m").await.err(), Some(RealtimeError::MissingKey));
        let c = RealtimeClient::new("ws://127.0.0.1:9/v1/realtime", Secret::new("k"));
        assert!(matches!(
            c.connect("m").await,
            Err(RealtimeError::Connect(_))
        ));
    }
}

//! The model socket: connects to a Realtime GA endpoint and speaks WebSocket over it with the lean
//! layer the bridge runs on ([`crate::wire::ws`]): the handshake (with `Authorization: Bearer`) and TLS
//! (rustls, webpki roots) are done here.
//!
//! Behind the [`ModelConnector`] trait so the bridge does not care whether it talks to OpenAI,
//! an Azure-style deployment, or the simulator.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::either::Either;

use crate::types::Secret;
use crate::wire::ws::{client_request, parse_response, Limits, Role, WsConn};

/// An open model session socket.
pub type ModelSocket = WsConn<ModelStream>;

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

/// The largest message or frame taken from the model (audio deltas are 1–5 KB; a `session.updated`
/// with long instructions and many tools is the biggest thing it sends).
pub const MODEL_MESSAGE_LIMIT: usize = 4 * 1024 * 1024;

/// The byte stream under a model socket: `ws://` (the simulator, a local proxy) or `wss://` (boxed: the
/// TLS state is 1.4 KiB, and the plain side needs none of it).
pub type ModelStream = Either<TcpStream, Box<tokio_rustls::client::TlsStream<TcpStream>>>;

/// The TLS client configuration every model session uses unless told otherwise: webpki's roots
/// (built once: building it parses the root store).
pub fn default_tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            // The builder takes the process's provider, which must be chosen first (see `tls.rs`).
            crate::tls::install_crypto_provider();
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            Arc::new(
                rustls::ClientConfig::builder()
                    .with_root_certificates(roots)
                    .with_no_client_auth(),
            )
        })
        .clone()
}

/// Where a session's socket goes, taken apart from its URL.
struct Target {
    tls: bool,
    /// For the TCP connection and TLS's server name (an IPv6 address without brackets).
    host: String,
    port: u16,
    /// The `Host` header (with the port when it is not the scheme's).
    host_header: String,
    path_and_query: String,
}

impl Target {
    fn of(url: &str) -> Result<Target, RealtimeError> {
        let url = url::Url::parse(url).map_err(|e| RealtimeError::BadUrl(e.to_string()))?;
        let tls = match url.scheme() {
            "ws" => false,
            "wss" => true,
            other => {
                return Err(RealtimeError::BadUrl(format!(
                    "scheme {other:?} is not ws or wss"
                )))
            }
        };
        let host = match url.host() {
            Some(url::Host::Domain(d)) => d.to_string(),
            Some(url::Host::Ipv4(a)) => a.to_string(),
            Some(url::Host::Ipv6(a)) => a.to_string(),
            None => return Err(RealtimeError::BadUrl("no host".into())),
        };
        let port = url
            .port_or_known_default()
            .ok_or_else(|| RealtimeError::BadUrl("no port".into()))?;
        let host_header = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            (None, _) => return Err(RealtimeError::BadUrl("no host".into())),
        };
        let path_and_query = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        };
        Ok(Target {
            tls,
            host,
            port,
            host_header,
            path_and_query,
        })
    }
}

/// Opens the socket: TCP, TLS for `wss`, the upgrade request, its answer.
async fn open(
    target: Target,
    key: Secret,
    tls: Arc<rustls::ClientConfig>,
) -> Result<ModelSocket, RealtimeError> {
    let connect = |e: io::Error| RealtimeError::Connect(e.to_string());
    let tcp = TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(connect)?;
    // Appends are small and due every 20 ms: never held back waiting to fill a segment.
    let _ = tcp.set_nodelay(true);
    let mut stream = if target.tls {
        let name = rustls::pki_types::ServerName::try_from(target.host.clone())
            .map_err(|_| RealtimeError::BadUrl(format!("{:?} is not a host name", target.host)))?;
        let tls = tokio_rustls::TlsConnector::from(tls)
            .connect(name, tcp)
            .await
            .map_err(connect)?;
        Either::Right(Box::new(tls))
    } else {
        Either::Left(tcp)
    };
    let auth = format!("Bearer {}", key.expose());
    let (request, ws_key) = client_request(
        &target.host_header,
        &target.path_and_query,
        &[("Authorization", auth.as_str())],
    )
    .map_err(|_| {
        RealtimeError::Connect(
            "the API key or URL holds characters a request header cannot carry".into(),
        )
    })?;
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(connect)?;
    stream.flush().await.map_err(connect)?;
    let mut answer = Vec::with_capacity(1024);
    loop {
        let mut chunk = [0u8; 1024];
        let n = stream.read(&mut chunk).await.map_err(connect)?;
        if n == 0 {
            return Err(RealtimeError::Connect(
                "the server closed the connection during the upgrade".into(),
            ));
        }
        answer.extend_from_slice(&chunk[..n]);
        match parse_response(&answer, &ws_key) {
            Ok(None) => continue,
            Ok(Some((used, 101))) => {
                let limits = Limits {
                    max_message: MODEL_MESSAGE_LIMIT,
                    max_frame: MODEL_MESSAGE_LIMIT,
                };
                // What the server sent right after its answer (often `session.created`) comes first.
                return Ok(WsConn::new(stream, Role::Client, limits, &answer[used..]));
            }
            Ok(Some((_, status))) => return Err(RealtimeError::Rejected(status)),
            Err(e) => return Err(RealtimeError::Connect(format!("bad upgrade answer: {e}"))),
        }
    }
}

#[derive(Clone)]
pub struct RealtimeClient {
    base_url: String,
    api_key: Secret,
    connect_timeout: Duration,
    tls: Arc<rustls::ClientConfig>,
}

impl RealtimeClient {
    pub fn new(base_url: impl Into<String>, api_key: Secret) -> Self {
        crate::tls::install_crypto_provider();
        RealtimeClient {
            base_url: base_url.into(),
            api_key,
            connect_timeout: Duration::from_secs(10),
            tls: default_tls_config(),
        }
    }

    /// Uses `tls` for `wss` URLs instead of [`default_tls_config`] (say, roots that include a
    /// proxy's private CA).
    pub fn with_tls(mut self, tls: Arc<rustls::ClientConfig>) -> Self {
        self.tls = tls;
        self
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
        let tls = self.tls.clone();
        Box::pin(async move {
            let target = Target::of(&url?)?;
            if key.is_empty() {
                return Err(RealtimeError::MissingKey);
            }
            tokio::time::timeout(timeout, open(target, key, tls))
                .await
                .unwrap_or(Err(RealtimeError::Timeout))
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

    /// A one-connection server that reads the upgrade request, then writes `answer(request)` in one
    /// write; returns its address and the request it got.
    async fn one_shot(
        answer: impl FnOnce(&str) -> Vec<u8> + Send + 'static,
    ) -> (String, tokio::task::JoinHandle<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let (mut tcp, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            while !request.ends_with(b"\r\n\r\n") {
                let mut byte = [0u8; 1];
                tcp.read_exact(&mut byte).await.unwrap();
                request.push(byte[0]);
            }
            let request = String::from_utf8(request).unwrap();
            tcp.write_all(&answer(&request)).await.unwrap();
            // Keep the socket open until the client is done with it.
            let _ = tcp.read(&mut [0u8; 64]).await;
            request
        });
        (format!("ws://{addr}/v1/realtime"), task)
    }

    fn header<'a>(request: &'a str, name: &str) -> &'a str {
        request
            .lines()
            .find_map(|l| {
                l.split_once(':')
                    .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            })
            .map(|(_, v)| v.trim())
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn what_the_server_sends_with_its_answer_is_the_first_message() {
        let (url, server) = one_shot(|request| {
            let mut bytes =
                crate::wire::ws::server_response(header(request, "sec-websocket-key")).into_bytes();
            // An unmasked text frame, in the same write as the 101.
            let event = br#"{"type":"session.created"}"#;
            bytes.extend_from_slice(&[0x81, event.len() as u8]);
            bytes.extend_from_slice(event);
            bytes
        })
        .await;
        let client = RealtimeClient::new(url, Secret::new("sk-test-key"));
        let mut socket = client.connect("gpt-realtime").await.unwrap();
        match socket.next().await {
            Some(Ok(crate::wire::ws::Incoming::Text(text))) => {
                assert_eq!(text.as_str(), r#"{"type":"session.created"}"#)
            }
            other => panic!("{other:?}"),
        }
        drop(socket);
        let request = server.await.unwrap();
        assert!(request.starts_with("GET /v1/realtime?model=gpt-realtime HTTP/1.1\r\n"));
        assert_eq!(header(&request, "authorization"), "Bearer sk-test-key");
        assert!(header(&request, "host").starts_with("127.0.0.1:"));
        assert!(!request.to_ascii_lowercase().contains("openai-beta"));
    }

    #[tokio::test]
    async fn a_refusal_is_its_status_and_a_bad_answer_a_clear_error() {
        let (url, _server) =
            one_shot(|_| b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n".to_vec()).await;
        let client = RealtimeClient::new(url, Secret::new("sk-wrong"));
        assert_eq!(
            client.connect("m").await.err(),
            Some(RealtimeError::Rejected(401))
        );
        // A 101 without the right accept key is not a WebSocket.
        let (url, _server) = one_shot(|_| {
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Accept: bm90IHRoZSBrZXk=\r\n\r\n"
                .to_vec()
        })
        .await;
        let client = RealtimeClient::new(url, Secret::new("sk-secret-value"));
        match client.connect("m").await {
            Err(RealtimeError::Connect(why)) => assert!(!why.contains("sk-secret-value"), "{why}"),
            other => panic!("{:?}", other.err()),
        }
    }

    /// `wss`: TLS to a server whose certificate (self-signed, for `localhost`) the client is told to
    /// trust works, and one it is not told to trust is refused, both through the real handshake.
    #[tokio::test]
    async fn wss_runs_the_upgrade_over_tls_and_checks_the_certificate() {
        crate::tls::install_crypto_provider();
        let cert = rustls::pki_types::CertificateDer::from(
            include_bytes!("testdata/localhost.cert.der").to_vec(),
        );
        let key = rustls::pki_types::PrivateKeyDer::try_from(
            include_bytes!("testdata/localhost.key.der").to_vec(),
        )
        .unwrap();
        let server = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut request = Vec::new();
                    while !request.ends_with(b"\r\n\r\n") {
                        let mut byte = [0u8; 1];
                        if tls.read_exact(&mut byte).await.is_err() {
                            return;
                        }
                        request.push(byte[0]);
                    }
                    let request = String::from_utf8(request).unwrap();
                    let mut answer =
                        crate::wire::ws::server_response(header(&request, "sec-websocket-key"))
                            .into_bytes();
                    answer.extend_from_slice(&[0x81, 2, b'o', b'k']);
                    tls.write_all(&answer).await.unwrap();
                    tls.flush().await.unwrap();
                    let _ = tls.read(&mut [0u8; 64]).await;
                });
            }
        });
        let url = format!("wss://localhost:{port}/v1/realtime");
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert).unwrap();
        let trusting = Arc::new(
            rustls::ClientConfig::builder()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        );
        let client = RealtimeClient::new(url.clone(), Secret::new("k")).with_tls(trusting);
        let mut socket = client.connect("m").await.unwrap();
        assert!(
            matches!(socket.next().await, Some(Ok(crate::wire::ws::Incoming::Text(t))) if t.as_str() == "ok")
        );
        socket.send_text("{}").await.unwrap();
        let client = RealtimeClient::new(url, Secret::new("k"));
        match client.connect("m").await {
            Err(RealtimeError::Connect(why)) => assert!(why.contains("certificate"), "{why}"),
            other => panic!("{:?}", other.err()),
        }
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

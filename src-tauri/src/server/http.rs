//! The HTTP server under the router: hyper's HTTP/1 with a timer, so every connection is bounded.
//!
//! - **Open connections**: at most [`HttpLimits::max_connections`] per listener, WebSockets included (a
//!   socket keeps its slot until it closes). At the cap the server stops accepting; new connections wait
//!   in the kernel's backlog until a slot frees, rather than being dropped.
//! - **Request head**: the whole head within [`HttpLimits::header_timeout`], at most
//!   [`HttpLimits::max_head_bytes`]. The same timer closes a kept-alive connection that sends no next
//!   request (hyper starts it whenever it waits for a head), so it is also the idle timeout.
//! - **Request body**: at most [`HttpLimits::max_body_bytes`] (a larger `Content-Length` gets 413 unread),
//!   all of it within [`HttpLimits::body_timeout`] of the head. The routes' own limits (64 KiB) are lower;
//!   this is the backstop for every path.
//!
//! Graceful shutdown: the listener closes, idle connections close at once, requests in progress are
//! answered; sockets already upgraded (media streams, events) are not waited for (their calls end on
//! their own), as with `axum::serve`.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{header, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tower::ServiceExt;
use tracing::{debug, warn};

use crate::server::errors::ApiError;
use crate::wire::slotted::Slotted;

/// hyper refuses a read buffer below this (it panics).
const HYPER_MIN_BUF: usize = 8192;

/// What one listener allows each connection and request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// The whole request head, and the wait for the next request on a kept-alive connection.
    pub header_timeout: Duration,
    /// The whole request body, counted from when its head was read.
    pub body_timeout: Duration,
    /// The largest request body on any route.
    pub max_body_bytes: u64,
    /// The largest request head (request line and headers).
    pub max_head_bytes: usize,
    /// Open connections, upgraded sockets included.
    pub max_connections: usize,
}

impl Default for HttpLimits {
    /// - 10 s for a head: Twilio and a tunnel send one in milliseconds; a client that trickles bytes
    ///   holds a slot for 10 s at most (hyper's own default is 30 s, but only with a timer).
    /// - 30 s for a body of at most 1 MiB (≥ 35 KB/s); every route's own limit is 64 KiB.
    /// - 64 KiB of head: Twilio's requests carry about 2 KiB of headers, a proxy adds a few hundred bytes.
    /// - 2,048 connections: a burst of 1,000 calls holds 1,000 media sockets while their webhooks come and
    ///   go (BENCHMARKS.md); each call also holds a socket to OpenAI and a file, so that is about 4,000
    ///   descriptors at the cap, under common `ulimit -n` hard limits.
    fn default() -> Self {
        HttpLimits {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_body_bytes: 1024 * 1024,
            max_head_bytes: 64 * 1024,
            max_connections: 2048,
        }
    }
}

/// Serves `router` on `listener` within `limits` until `shutdown` resolves, then shuts down gracefully.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(limits.max_head_bytes.max(HYPER_MIN_BUF))
        .keep_alive(true);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    // Dropped to tell connections to finish; each connection holds a `closed` receiver until it ends.
    let (stop_tx, stop_rx) = watch::channel(());
    let (closed_tx, closed_rx) = watch::channel(());
    let mut accept_errors = AcceptErrors::default();
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            _ = &mut shutdown => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_errors.handle(e).await;
                    continue;
                }
            },
        };
        // Media frames are small and due every 20 ms: never held back waiting to fill a segment.
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(Slotted::new(stream, slot));
        let router = router.clone();
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let router = router.clone();
            async move { Ok::<_, Infallible>(handle(router, request, peer, limits).await) }
        });
        let connection = builder.serve_connection(io, service).with_upgrades();
        let mut stop = stop_rx.clone();
        let closed = closed_rx.clone();
        tokio::spawn(async move {
            tokio::pin!(connection);
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                _ = stop.changed() => {
                    connection.as_mut().graceful_shutdown();
                    connection.as_mut().await
                }
            };
            // A timeout or a client that went away: nothing to act on, and one line per client would let
            // anyone fill the log.
            if let Err(e) = ended {
                debug!(%peer, "HTTP connection ended: {e}");
            }
            drop(closed);
        });
    }
    drop(listener);
    drop(stop_tx);
    drop(closed_rx);
    closed_tx.closed().await;
}

/// One request: its peer address for the limiters, its body bounded, then the router.
async fn handle(
    router: Router,
    request: Request<Incoming>,
    peer: SocketAddr,
    limits: HttpLimits,
) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_body_bytes) {
        // Not read: hyper closes the connection instead of draining it.
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!(
                "request bodies are limited to {} bytes",
                limits.max_body_bytes
            ),
        )
        .into_response();
    }
    let mut request = request.map(|body| {
        Body::new(BoundedBody {
            inner: body,
            left: limits.max_body_bytes,
            deadline: tokio::time::Instant::now() + limits.body_timeout,
            timer: None,
        })
    });
    request.extensions_mut().insert(ConnectInfo(peer));
    match router.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

/// Why a request body was cut off.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("request body not received in time")]
    TooSlow,
    #[error("request body too large")]
    TooLarge,
    #[error("reading the request body: {0}")]
    Read(#[from] hyper::Error),
}

/// A request body with a size cap and a deadline for the whole of it (a per-read timeout would let a
/// client trickle one byte at a time forever).
struct BoundedBody {
    inner: Incoming,
    left: u64,
    deadline: tokio::time::Instant,
    /// Armed on the first read: a body nobody reads costs no timer.
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl http_body::Body for BoundedBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        let deadline = this.deadline;
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(BodyError::TooSlow)));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let n = data.len() as u64;
                    if n > this.left {
                        return Poll::Ready(Some(Err(BodyError::TooLarge)));
                    }
                    this.left -= n;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(BodyError::Read(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Accept errors: a client that gave up is skipped; anything else (out of file descriptors) pauses
/// accepting briefly, logged at most once a minute.
#[derive(Default)]
struct AcceptErrors {
    logged_at: Option<Instant>,
    unlogged: u64,
}

impl AcceptErrors {
    async fn handle(&mut self, e: io::Error) {
        if matches!(
            e.kind(),
            io::ErrorKind::ConnectionRefused
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::ConnectionReset
        ) {
            return;
        }
        let due = self
            .logged_at
            .is_none_or(|at| at.elapsed() >= Duration::from_secs(60));
        if due {
            warn!(
                unlogged = self.unlogged,
                "cannot accept connections: {e} (pausing; at most one line a minute)"
            );
            self.logged_at = Some(Instant::now());
            self.unlogged = 0;
        } else {
            self.unlogged += 1;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::{get, post};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    fn quick() -> HttpLimits {
        HttpLimits {
            header_timeout: Duration::from_millis(300),
            body_timeout: Duration::from_millis(300),
            max_body_bytes: 1000,
            max_head_bytes: 16 * 1024,
            max_connections: 2,
        }
    }

    /// A server with `/` (GET, answers at once), `/slow` (GET, answers after 300 ms) and `/echo` (POST,
    /// answers with the body's length, or 400 when the body cannot be read).
    async fn server(
        limits: HttpLimits,
    ) -> (
        SocketAddr,
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    ) {
        let router = Router::new()
            .route("/", get(|| async { "ok" }))
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    "done"
                }),
            )
            .route(
                "/echo",
                post(|body: Bytes| async move { body.len().to_string() }),
            );
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, router, limits, async {
            let _ = stopped.await;
        }));
        (addr, stop, task)
    }

    /// A connection to `addr` that has sent `raw`.
    async fn send(addr: SocketAddr, raw: &[u8]) -> TcpStream {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream.write_all(raw).await.expect("write");
        stream
    }

    /// Reads until the server closes the connection; what it sent, or `None` if it stayed open for `within`.
    async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> Option<String> {
        let mut got = Vec::new();
        let read = tokio::time::timeout(within, stream.read_to_end(&mut got)).await;
        match read {
            Ok(_) => Some(String::from_utf8_lossy(&got).into_owned()),
            Err(_) => None,
        }
    }

    #[tokio::test]
    async fn a_client_that_stalls_in_its_headers_is_disconnected() {
        let (addr, _stop, _task) = server(quick()).await;
        let mut stream = send(addr, b"GET / HTTP/1.1\r\nHost: x\r\nX-Partial: ").await;
        let started = Instant::now();
        let answer = read_until_closed(&mut stream, Duration::from_secs(3)).await;
        assert!(answer.is_some(), "the stalled connection was closed");
        assert!(started.elapsed() >= Duration::from_millis(250));
    }

    #[tokio::test]
    async fn an_idle_kept_alive_connection_is_closed() {
        let (addr, _stop, _task) = server(quick()).await;
        let mut stream = send(addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        let answer = read_until_closed(&mut stream, Duration::from_secs(3))
            .await
            .expect("closed once idle");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }

    #[tokio::test]
    async fn a_trickled_body_is_cut_off_at_its_deadline() {
        let (addr, _stop, _task) = server(quick()).await;
        let mut stream = send(
            addr,
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n",
        )
        .await;
        // A byte every 100 ms: no single read waits long, the whole body never comes in time.
        let mut answer = String::new();
        for _ in 0..20 {
            if stream.write_all(b"a").await.is_err() {
                break;
            }
            let mut buf = [0u8; 512];
            if let Ok(Ok(n)) =
                tokio::time::timeout(Duration::from_millis(100), stream.read(&mut buf)).await
            {
                answer.push_str(&String::from_utf8_lossy(&buf[..n]));
                break;
            }
        }
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer:?}");
    }

    #[tokio::test]
    async fn a_declared_body_over_the_cap_is_refused_unread() {
        let (addr, _stop, _task) = server(quick()).await;
        let mut stream = send(
            addr,
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\nabc",
        )
        .await;
        let answer = read_until_closed(&mut stream, Duration::from_secs(3))
            .await
            .expect("answered and closed");
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        // Within the cap, a body is read.
        let client = reqwest::Client::new();
        let ok = client
            .post(format!("http://{addr}/echo"))
            .body(vec![b'x'; 1000])
            .send()
            .await
            .expect("post");
        assert_eq!(ok.text().await.expect("body"), "1000");
    }

    #[tokio::test]
    async fn connections_over_the_cap_wait_for_a_free_slot() {
        let (addr, _stop, _task) = server(HttpLimits {
            header_timeout: Duration::from_secs(30),
            ..quick()
        })
        .await;
        // Two idle connections hold both slots.
        let first = TcpStream::connect(addr).await.expect("connect");
        let second = TcpStream::connect(addr).await.expect("connect");
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut third = TcpStream::connect(addr)
            .await
            .expect("the kernel queues it");
        third
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .expect("write");
        assert!(
            read_until_closed(&mut third, Duration::from_millis(500))
                .await
                .is_none(),
            "not served while the cap is reached"
        );
        drop(first);
        let answer = read_until_closed(&mut third, Duration::from_secs(3))
            .await
            .expect("served once a slot frees");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        drop(second);
    }

    #[tokio::test]
    async fn shutdown_answers_the_request_in_progress_then_stops() {
        let (addr, stop, task) = server(quick()).await;
        let slow = tokio::spawn(reqwest::get(format!("http://{addr}/slow")));
        tokio::time::sleep(Duration::from_millis(100)).await;
        let _ = stop.send(());
        let answer = slow.await.expect("task").expect("answered");
        assert_eq!(answer.text().await.expect("body"), "done");
        tokio::time::timeout(Duration::from_secs(3), task)
            .await
            .expect("the server stops")
            .expect("task");
        assert!(
            TcpStream::connect(addr).await.is_err(),
            "no longer listening"
        );
    }
}

//! Limits no one without a secret can turn against Twilio, and the server's timeouts and sizes: a flood
//! of unsigned or badly signed requests neither blocks Twilio's signed ones nor floods the log; a burst of
//! signed call set-ups is never rate-limited; a client that stalls in its headers is cut off; a frame
//! over a socket's limit closes it before authentication, as soon as its header announces it.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{call_sid, start, AUTH_TOKEN};
use futures_util::future::join_all;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::MaybeTlsStream;
use verbio::sim::realtime_server::SimRealtimeConfig;
use verbio::sim::twilio_caller::{CallerStep, SimCall};
use verbio::telephony::twilio::signature::compute;

/// The log lines written while a test runs (the runtime is single-threaded, so the server's lines too).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

/// Statuses of `n` POSTs of a voice webhook form to `/twiml`, `signature` in the header if given,
/// 25 at a time over kept-alive connections.
async fn flood(
    client: &reqwest::Client,
    base: &str,
    n: usize,
    signature: Option<&str>,
) -> Vec<u16> {
    let mut statuses = Vec::with_capacity(n);
    for batch in 0..n.div_ceil(25) {
        let requests = (0..25.min(n - batch * 25)).map(|_| {
            let mut request = client
                .post(format!("{base}/twiml"))
                .form(&[("CallSid", "CA00000000000000000000000000000bad")]);
            if let Some(sig) = signature {
                request = request.header("X-Twilio-Signature", sig);
            }
            request.send()
        });
        for response in join_all(requests).await {
            statuses.push(response.expect("the flood is answered").status().as_u16());
        }
    }
    statuses
}

/// On today's main all of Twilio's routes share one quota per client IP: through a tunnel (every client
/// 127.0.0.1) the flood below spends it and Twilio's own webhook gets 429; and every refusal is a log line.
#[tokio::test]
async fn a_flood_without_the_secret_neither_blocks_a_signed_call_nor_floods_the_log() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _logs = tracing::subscriber::set_default(subscriber);

    let h = start(SimRealtimeConfig::default(), |c| {
        c.twilio_rate_per_minute = 60;
    })
    .await;
    let client = reqwest::Client::new();
    let unsigned = flood(&client, &h.base, 300, None).await;
    let forged = flood(&client, &h.base, 100, Some("bm90LWEtc2lnbmF0dXJl")).await;
    let count = |statuses: &[u16], status: u16| statuses.iter().filter(|s| **s == status).count();
    assert_eq!(
        count(&unsigned, 403) + count(&unsigned, 429),
        300,
        "never served"
    );
    assert!(
        count(&unsigned, 429) >= 200,
        "unsigned requests are limited: {} refused with 429",
        count(&unsigned, 429)
    );
    assert_eq!(
        count(&forged, 429),
        100,
        "badly signed ones spend the same quota"
    );

    // Twilio's own requests, signed, right after: the webhook and the stream upgrade both get through.
    let sid = call_sid();
    let call = SimCall::place(
        h.caller(&sid),
        vec![CallerStep::Silence(200), CallerStep::HangUp],
    )
    .await
    .expect("the signed webhook is answered 200 and its stream upgraded");
    let report = call.finish().await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);

    let logs = captured.text();
    let refusal_lines = logs.lines().filter(|l| l.contains("status=4")).count();
    assert!(
        (1..=6).contains(&refusal_lines),
        "400 refusals, {refusal_lines} log lines (at most one per kind every 10 s):\n{logs}"
    );
    assert!(
        logs.contains("unlogged"),
        "the refusal lines say they are rate-limited"
    );
}

/// On today's main the per-IP quota (set low here, 100 a minute; 1,200 by default, which an 800-call
/// burst already exceeded) refuses most of these set-ups.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_signed_call_setups_is_never_rate_limited() {
    const CALLS: usize = 300;
    let h = start(SimRealtimeConfig::default(), |c| {
        c.twilio_rate_per_minute = 100;
        c.recording.enabled = false;
        // The bill-protecting cap on live calls (10 by default) is another limit, tested on its own.
        c.bridge.max_concurrent_calls = CALLS as u32;
    })
    .await;
    let started = Instant::now();
    let calls = (0..CALLS).map(|_| {
        let caller = h.caller(&call_sid());
        tokio::spawn(async move {
            let call =
                SimCall::place(caller, vec![CallerStep::Silence(500), CallerStep::HangUp]).await?;
            Ok::<_, verbio::sim::SimError>(call.finish().await)
        })
    });
    let results = join_all(calls).await;
    let setup = started.elapsed();
    let failures: Vec<String> = results
        .into_iter()
        .filter_map(|r| match r.expect("task") {
            Ok(_) => None,
            Err(e) => Some(e.to_string()),
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {CALLS} set-ups failed, e.g. {:?}",
        failures.len(),
        failures.first()
    );
    common::eventually(
        Duration::from_secs(20),
        "every call opened its model session",
        || h.model.accepted_sessions().len() == CALLS,
    )
    .await;
    eprintln!("{CALLS} signed set-ups in {setup:?}");
}

/// On today's main `axum::serve` has no timer: the connection stays open for as long as the client likes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stalls_in_its_headers_is_disconnected() {
    let h = start(SimRealtimeConfig::default(), |_| {}).await;
    let mut stream = TcpStream::connect(h.running.local_addr)
        .await
        .expect("connect");
    stream
        .write_all(b"POST /twiml HTTP/1.1\r\nHost: localhost\r\nX-Twilio-Signa")
        .await
        .expect("write");
    let started = Instant::now();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(13), stream.read_to_end(&mut rest)).await;
    assert!(
        closed.is_ok(),
        "still connected after 13 s of partial headers"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(9),
        "closed by the 10 s header timer, not at once: {:?}",
        started.elapsed()
    );
}

/// Writes a masked text frame header announcing `len` bytes, and a few of them, on the raw socket under
/// `ws`; the server must close the connection within 2 s (well before any auth or `start` wait ends).
async fn assert_closed_at_once(
    mut ws: tokio_tungstenite::WebSocketStream<MaybeTlsStream<TcpStream>>,
    len: u64,
) {
    let MaybeTlsStream::Plain(tcp) = ws.get_mut() else {
        panic!("plain socket expected");
    };
    let mut frame = vec![0x81, 0x80 | 127];
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&[1, 2, 3, 4]);
    frame.extend_from_slice(&[b'x' ^ 1; 64]);
    tcp.write_all(&frame).await.expect("write frame");
    let started = Instant::now();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut rest))
        .await
        .ok()
        .map(|_| started.elapsed());
    assert!(
        closed.is_some_and(|t| t < Duration::from_secs(2)),
        "a frame of {len} bytes announced: closed after {closed:?}"
    );
}

/// On today's main `/api/events` reads frames up to tungstenite's 16 MiB before the key is checked: the
/// server waits for the announced payload until the 5 s auth timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_frame_on_the_events_socket_closes_it_before_authentication() {
    let h = start(SimRealtimeConfig::default(), |c| {
        c.api_key = verbio::types::Secret::new("local-api-key-for-tests-0001");
    })
    .await;
    let url = format!("{}/api/events", h.api.replace("http://", "ws://"));
    let (ws, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .expect("upgraded without a key (it may come in the first message)");
    assert_closed_at_once(ws, 64 * 1024).await;
}

/// On today's main a media stream reads frames up to 1 MiB before the call's token is seen: the server
/// waits for the announced payload until the 10 s `start` timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_frame_on_a_media_stream_closes_it_before_start() {
    let h = start(SimRealtimeConfig::default(), |_| {}).await;
    let public = "https://pub.example";
    h.running
        .services
        .set_public_url(Some(public))
        .expect("public URL");
    let stream_url = format!("{}/media-stream", public.replace("https://", "wss://"));
    let local = format!("{}/media-stream", h.base.replace("http://", "ws://"));
    let mut request = local.as_str().into_client_request().expect("request");
    let sig = compute::<&str, &str>(AUTH_TOKEN, &stream_url, &[]);
    request
        .headers_mut()
        .insert("X-Twilio-Signature", sig.parse().expect("header value"));
    let (ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("a signed upgrade");
    assert_closed_at_once(ws, 512 * 1024).await;
    assert!(h.model.accepted_sessions().is_empty(), "no model session");
}

//! A fake Twilio caller: the signed voice webhook, the `<Connect><Stream>` TwiML, and a bidirectional
//! Media Streams socket with Twilio's timing.
//!
//! The caller sends one 160-byte μ-law frame every 20 ms for the whole call (silence when the script is quiet,
//! as a real phone line does) and plays the bridge's audio on a 20 ms playout clock, echoing marks only once
//! the audio before them has played, or at once when `clear` drops them. The report says what the caller
//! actually heard, which is what a bridge's barge-in and truncation logic must agree with.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use url::Url;

pub use super::frame_tag::{find_tags, read_tag, tag_frame};
pub use super::playout::HeardSegment;
pub use super::script::CallerStep;

use super::caller_line::Line;
use super::script::Script;
use super::{new_sid, twiml_scan, SimError};
use crate::telephony::twilio::signature;

/// Time allowed for the webhook and the WebSocket handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Who calls whom, and how the fake Twilio authenticates itself.
#[derive(Debug, Clone)]
pub struct CallerConfig {
    /// Where requests go: `http://127.0.0.1:PORT`.
    pub bridge_base: String,
    /// The URL Twilio thinks it calls (used for signing; a tunnel's URL in production, `bridge_base` in tests).
    /// A stream URL on this host is reached through `bridge_base`.
    pub public_url: String,
    pub auth_token: String,
    pub account_sid: String,
    pub call_sid: String,
    pub from: String,
    pub to: String,
    /// `false` sends no `X-Twilio-Signature` at all (negative tests).
    pub sign: bool,
    /// Replaces the `token` custom parameter in `start` (negative tests).
    pub token_override: Option<String>,
    /// Keep every message from the bridge in [`CallerReport::received`].
    pub record_messages: bool,
    /// Keep the heard audio in [`CallerReport::heard`] and the segments (timing is kept either way).
    pub record_audio: bool,
    /// Tag each outgoing media frame with its chunk number (see [`tag_frame`]).
    pub tag_frames: bool,
    /// Added to the chunk number in frame tags (and in `MediaSent.seq`), so tags are unique across calls.
    pub tag_base: u32,
    /// Optional timing probe for the benchmark.
    pub probe: Option<mpsc::UnboundedSender<CallerProbe>>,
    /// Hard limit on the call; the caller hangs up when it is reached (so no test can hang).
    pub max_duration: Duration,
    /// Twilio's jitter buffer: each stretch of agent audio starts playing this long after its first bytes
    /// arrived (marks after it are echoed correspondingly later).
    pub playout_delay: Duration,
}

impl CallerConfig {
    /// A signed call to `bridge_base` with fresh SIDs, recording everything, limited to two minutes.
    pub fn new(bridge_base: impl Into<String>, auth_token: impl Into<String>) -> Self {
        let bridge_base = bridge_base.into();
        Self {
            public_url: bridge_base.clone(),
            bridge_base,
            auth_token: auth_token.into(),
            account_sid: new_sid("AC"),
            call_sid: new_sid("CA"),
            from: "+15005550006".into(),
            to: "+15005550001".into(),
            sign: true,
            token_override: None,
            record_messages: true,
            record_audio: true,
            tag_frames: false,
            tag_base: 0,
            probe: None,
            max_duration: Duration::from_secs(120),
            playout_delay: Duration::ZERO,
        }
    }
}

/// What the benchmark can observe on the caller's side.
#[derive(Debug, Clone)]
pub enum CallerProbe {
    /// A media frame went out; `seq` is its chunk number (the value [`tag_frame`] writes).
    MediaSent {
        call: String,
        at: std::time::Instant,
        seq: u64,
    },
    /// A media message arrived from the bridge (decoded μ-law).
    MediaReceived {
        call: String,
        at: std::time::Instant,
        bytes: Vec<u8>,
    },
    /// A `clear` arrived from the bridge.
    ClearReceived {
        call: String,
        at: std::time::Instant,
    },
}

/// One mark echo the caller sent back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkEcho {
    pub name: String,
    /// Stream time of the echo.
    pub at_ms: u64,
    /// Echoed because a `clear` dropped it (not because its audio played).
    pub via_clear: bool,
}

/// What happened on the call, from the caller's side.
#[derive(Debug, Clone, Default)]
pub struct CallerReport {
    pub call_sid: String,
    pub stream_sid: String,
    /// Agent audio actually played, in order (empty unless `record_audio`).
    pub heard: Vec<u8>,
    /// Contiguous stretches of played agent audio (a clear or an empty queue ends one).
    pub heard_segments: Vec<HeardSegment>,
    /// Total agent audio played, in ms (kept even without `record_audio`).
    pub heard_ms: u64,
    /// For each `clear`: ms of the then-current utterance that had played when it arrived.
    pub played_ms_at_clear: Vec<u64>,
    /// Stream time of each `clear`.
    pub clears: Vec<u64>,
    pub marks_received: usize,
    pub marks_echoed: usize,
    pub mark_echoes: Vec<MarkEcho>,
    pub media_frames_sent: u64,
    pub media_received: u64,
    /// The bridge's close code, if the bridge closed the socket.
    pub close_code: Option<u16>,
    /// The bridge closed or dropped the socket (rather than the caller hanging up).
    pub server_closed: bool,
    /// Every message from the bridge (only with `record_messages`; non-JSON kept as a string).
    pub received: Vec<Value>,
    /// Protocol violations seen and script steps that timed out.
    pub errors: Vec<String>,
}

pub(crate) type CallerWs = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A call in progress. Dropping it hangs up.
pub struct SimCall {
    call_sid: String,
    stream_sid: String,
    stream_url: String,
    twiml: String,
    custom_parameters: Vec<(String, String)>,
    hang_up: watch::Sender<bool>,
    played_ms: Arc<AtomicU64>,
    finished: Arc<AtomicBool>,
    max_duration: Duration,
    task: JoinHandle<CallerReport>,
}

impl SimCall {
    /// Rings the bridge (signed webhook), opens the media stream, sends `connected` and `start`, and starts
    /// running `script` while playing what the bridge sends.
    pub async fn place(config: CallerConfig, script: Vec<CallerStep>) -> Result<SimCall, SimError> {
        let twiml = post_webhook(&config).await?;
        Self::answer(config, twiml, script).await
    }

    /// Runs `twiml` the way Twilio runs an outbound call's inline TwiML when the callee picks up: opens
    /// its media stream and plays `script` as the callee. `config.call_sid` must be the call's SID.
    pub async fn answer(
        config: CallerConfig,
        twiml: String,
        script: Vec<CallerStep>,
    ) -> Result<SimCall, SimError> {
        let stream = twiml_scan::parse(&twiml).map_err(|reason| SimError::Twiml {
            reason,
            body: twiml.clone(),
        })?;
        let target = connect_url(&stream.url, &config.public_url, &config.bridge_base)?;
        let mut request = target.as_str().into_client_request()?;
        if config.sign {
            let sig = signature::compute::<&str, &str>(&config.auth_token, &stream.url, &[]);
            let value = HeaderValue::from_str(&sig).map_err(|e| SimError::Url {
                url: stream.url.clone(),
                reason: e.to_string(),
            })?;
            request.headers_mut().insert("X-Twilio-Signature", value);
        }
        let (ws, _) = tokio::time::timeout(
            CONNECT_TIMEOUT,
            tokio_tungstenite::connect_async_with_config(request, None, true),
        )
        .await
        .map_err(|_| SimError::Timeout {
            what: format!("media stream {target}"),
            after: CONNECT_TIMEOUT,
        })??;

        let mut custom_parameters = stream.parameters.clone();
        if let Some(token) = &config.token_override {
            custom_parameters.retain(|(name, _)| name != "token");
            custom_parameters.push(("token".into(), token.clone()));
        }
        let stream_sid = new_sid("MZ");
        let played_ms = Arc::new(AtomicU64::new(0));
        let finished = Arc::new(AtomicBool::new(false));
        let (hang_up, hang_up_rx) = watch::channel(false);
        let mut line = Line::new(ws, config.clone(), stream_sid.clone(), played_ms.clone());
        line.report.call_sid = config.call_sid.clone();
        line.report.stream_sid = stream_sid.clone();
        let params: Map<String, Value> = custom_parameters
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        line.open(params).await?;
        let done = finished.clone();
        let task = tokio::spawn(async move {
            let report = line.run(Script::new(script), hang_up_rx).await;
            done.store(true, Ordering::SeqCst);
            report
        });
        Ok(SimCall {
            call_sid: config.call_sid,
            stream_sid,
            stream_url: stream.url,
            twiml,
            custom_parameters,
            hang_up,
            played_ms,
            finished,
            max_duration: config.max_duration,
            task,
        })
    }

    /// Places the call and waits for its script to end.
    pub async fn run(
        config: CallerConfig,
        script: Vec<CallerStep>,
    ) -> Result<CallerReport, SimError> {
        Ok(Self::place(config, script).await?.finish().await)
    }

    pub fn call_sid(&self) -> &str {
        &self.call_sid
    }

    pub fn stream_sid(&self) -> &str {
        &self.stream_sid
    }

    /// The stream URL from the TwiML (what was signed).
    pub fn stream_url(&self) -> &str {
        &self.stream_url
    }

    /// The raw TwiML answer.
    pub fn twiml(&self) -> &str {
        &self.twiml
    }

    /// The parameters sent in `start.customParameters` (after `token_override`).
    pub fn custom_parameters(&self) -> &[(String, String)] {
        &self.custom_parameters
    }

    /// Agent audio played so far, in ms.
    pub fn played_ms(&self) -> u64 {
        self.played_ms.load(Ordering::SeqCst)
    }

    /// Whether the call has ended (script over, hung up, or closed by the bridge).
    pub fn is_finished(&self) -> bool {
        self.finished.load(Ordering::SeqCst)
    }

    /// Waits until at least `ms` of agent audio has played.
    pub async fn wait_played(&self, ms: u64, timeout: Duration) -> Result<(), SimError> {
        let deadline = Instant::now() + timeout;
        while self.played_ms() < ms {
            if Instant::now() >= deadline || self.is_finished() {
                return Err(SimError::Timeout {
                    what: format!("{ms} ms of agent audio played"),
                    after: timeout,
                });
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }

    /// Hangs up at the next chance: `stop`, then close. [`finish`](Self::finish) still collects the report.
    pub fn hang_up_now(&self) {
        let _ = self.hang_up.send(true);
    }

    /// Waits for the call to end (script over, hang-up or bridge close) and returns what happened.
    pub async fn finish(self) -> CallerReport {
        let SimCall {
            hang_up,
            task,
            max_duration,
            call_sid,
            stream_sid,
            ..
        } = self;
        let limit = max_duration + Duration::from_secs(15);
        let report = match tokio::time::timeout(limit, task).await {
            Ok(Ok(report)) => report,
            Ok(Err(join)) => {
                failed_report(call_sid, stream_sid, format!("caller task failed: {join}"))
            }
            Err(_) => failed_report(
                call_sid,
                stream_sid,
                format!("caller task did not end within {limit:?}"),
            ),
        };
        drop(hang_up);
        report
    }
}

fn failed_report(call_sid: String, stream_sid: String, error: String) -> CallerReport {
    CallerReport {
        call_sid,
        stream_sid,
        errors: vec![error],
        ..CallerReport::default()
    }
}

/// Step 1: the voice webhook, signed like Twilio signs it. Returns the TwiML.
async fn post_webhook(config: &CallerConfig) -> Result<String, SimError> {
    let params: Vec<(&str, &str)> = vec![
        ("AccountSid", &config.account_sid),
        ("ApiVersion", "2010-04-01"),
        ("CallSid", &config.call_sid),
        ("CallStatus", "ringing"),
        ("Direction", "inbound"),
        ("From", &config.from),
        ("To", &config.to),
    ];
    let url = format!("{}/twiml", config.bridge_base.trim_end_matches('/'));
    let signed_url = format!("{}/twiml", config.public_url.trim_end_matches('/'));
    let client = reqwest::Client::builder()
        .timeout(CONNECT_TIMEOUT)
        .build()?;
    let mut request = client.post(&url).form(&params);
    if config.sign {
        request = request.header(
            "X-Twilio-Signature",
            signature::compute(&config.auth_token, &signed_url, &params),
        );
    }
    let response = request.send().await?;
    let status = response.status();
    let body = response.text().await?;
    if !status.is_success() {
        return Err(SimError::Webhook {
            status: status.as_u16(),
            body,
        });
    }
    Ok(body)
}

/// The URL to dial for the stream: the TwiML's, except that a stream on the public (tunnel) host is reached
/// through `bridge_base`, as the tunnel would forward it.
fn connect_url(stream_url: &str, public_url: &str, bridge_base: &str) -> Result<Url, SimError> {
    let parse = |url: &str| {
        Url::parse(url).map_err(|e| SimError::Url {
            url: url.to_string(),
            reason: e.to_string(),
        })
    };
    let mut stream = parse(stream_url)?;
    let public = parse(public_url)?;
    let bridge = parse(bridge_base)?;
    let same_origin = |a: &Url, b: &Url| {
        a.host_str() == b.host_str() && a.port_or_known_default() == b.port_or_known_default()
    };
    if !same_origin(&public, &bridge) && same_origin(&stream, &public) {
        let bad = |reason: &str| SimError::Url {
            url: bridge_base.to_string(),
            reason: reason.to_string(),
        };
        let scheme = if bridge.scheme() == "https" {
            "wss"
        } else {
            "ws"
        };
        stream.set_scheme(scheme).map_err(|()| bad("scheme"))?;
        stream
            .set_host(bridge.host_str())
            .map_err(|e| bad(&e.to_string()))?;
        stream.set_port(bridge.port()).map_err(|()| bad("port"))?;
    }
    Ok(stream)
}

#[cfg(test)]
#[path = "twilio_caller_tests.rs"]
mod tests;

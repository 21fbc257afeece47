//! The simulator: both outside parties of a call, speaking the published protocols.
//!
//! - [`realtime_server`]: a fake OpenAI Realtime GA server, strict like the live one (schema checks, one
//!   response at a time, asynchronous cancel, energy VAD, scripted answers, outage controls).
//! - [`twilio_caller`]: a fake Twilio caller (signed webhook, Media Streams socket, playout clock).
//! - [`responses_server`]: a stand-in for OpenAI's Responses API (the post-call summary), strict about
//!   structured-output schemas, answering from a script.
//! - [`mcp_server`]: a small MCP server (stdio or streamable HTTP) for the MCP tools' tests.
//!
//! Both parse and build messages as `serde_json::Value` straight from `docs/protocols.md`, never with the
//! bridge's own wire types: a fake that shared the bridge's types would agree with the bridge's bugs.
//!
//! Used by the tests, `verbio bench` and the desktop's demo call; never by production paths.
//!
//! A whole call through a bridge listening on `bridge_base` (which must be configured with the fake
//! model's URL and the same Twilio auth token):
//!
//! ```no_run
//! # async fn demo(bridge_base: &str) -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use verbio::sim::realtime_server::{AgentTurn, SimRealtimeConfig, SimRealtimeServer};
//! use verbio::sim::twilio_caller::{CallerConfig, CallerStep, SimCall};
//!
//! let model = SimRealtimeServer::start(SimRealtimeConfig {
//!     script: vec![AgentTurn::with_tone("Hello!", 880.0, 1200)],
//!     ..SimRealtimeConfig::default()
//! })
//! .await?;
//! // … start the bridge with `model.url()` as its Realtime base URL …
//! let report = SimCall::run(
//!     CallerConfig::new(bridge_base, "twilio-auth-token"),
//!     vec![
//!         CallerStep::Speak { tone_hz: 300.0, ms: 600 },
//!         CallerStep::SpeakWhenAgentHasPlayed {
//!             after_ms: 400, tone_hz: 300.0, ms: 500, timeout: Duration::from_secs(5),
//!         },
//!         CallerStep::Silence(1000),
//!         CallerStep::HangUp,
//!     ],
//! )
//! .await?;
//! let truncates = &model.sessions()[0].truncates;
//! assert!(truncates.iter().all(|(_, ms)| *ms <= report.played_ms_at_clear[0]));
//! # Ok(())
//! # }
//! ```
mod caller_line;
pub mod frame_tag;
pub mod mcp_server;
pub mod microphone;
mod playout;
pub mod realtime_server;
pub(crate) mod realtime_session;
pub mod responses_server;
mod script;
pub mod tool_server;
pub mod twilio_caller;
pub mod twilio_rest_tap;
pub(crate) mod twiml_scan;

use std::time::Duration;

/// What can go wrong while driving a simulated party.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The bridge answered the voice webhook with a non-2xx status.
    #[error("webhook answered HTTP {status}: {body}")]
    Webhook { status: u16, body: String },
    /// The webhook request itself failed (connection refused, timeout, …).
    #[error("webhook request failed: {0}")]
    Http(#[from] reqwest::Error),
    /// The TwiML answer did not contain what a `<Connect><Stream>` call needs.
    #[error("TwiML answer unusable: {reason}; body: {body}")]
    Twiml { reason: String, body: String },
    /// The bridge refused the Media Streams WebSocket upgrade.
    #[error("media stream handshake rejected with HTTP {status}")]
    Handshake { status: u16, body: Option<String> },
    /// Any other WebSocket failure (boxed: tungstenite's error is large).
    #[error("websocket error: {0}")]
    WebSocket(Box<tokio_tungstenite::tungstenite::Error>),
    /// A URL (bridge base, public URL, stream URL) could not be used.
    #[error("bad URL {url}: {reason}")]
    Url { url: String, reason: String },
    /// A local socket could not be opened.
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
    /// A bounded wait ran out.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout { what: String, after: Duration },
}

impl From<tokio_tungstenite::tungstenite::Error> for SimError {
    fn from(err: tokio_tungstenite::tungstenite::Error) -> Self {
        use tokio_tungstenite::tungstenite::Error;
        match err {
            Error::Http(response) => SimError::Handshake {
                status: response.status().as_u16(),
                body: response
                    .body()
                    .as_ref()
                    .map(|b| String::from_utf8_lossy(b).into_owned()),
            },
            other => SimError::WebSocket(Box::new(other)),
        }
    }
}

/// A fresh id like the providers' (`prefix` + 24 hex digits): unique enough for a test run.
pub(crate) fn new_id(prefix: &str) -> String {
    let n: u128 = rand::random();
    format!("{prefix}{:024x}", n & ((1u128 << 96) - 1))
}

/// A Twilio-style SID: two letters and 32 hex digits.
pub(crate) fn new_sid(prefix: &str) -> String {
    let n: u128 = rand::random();
    format!("{prefix}{n:032x}")
}

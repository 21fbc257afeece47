//! One task per call: the Twilio media socket on one side, a Realtime GA session on the other.
//!
//! The socket loop (`call.rs`) only does I/O; each concern is a pure part that is told what happened
//! and returns what to send: `lifecycle` (which session to open when: first, reconnect, rollover,
//! standby), `model_setup` (a session counts only once `session.updated` confirms
//! μ-law both ways), `sequencer` (one `response.create` in flight), `tool_calls` (act only on completed
//! function calls), `transcript` (turns in heard order; seeds for replacement sessions), `ending`
//! (open / ending after playout / transferring), `gaps` (silence for holes in Twilio's media),
//! `frames` (agent audio to Twilio in whole 20 ms frames), `operator` (the operator's hold on the
//! call: where their microphone frames play, their turns, what the model is told), `sources` (which
//! of the loop's sockets, timer and channels woke it, so a wake-up polls only those), and
//! `crate::calls::playout` (what the caller heard, for barge-in).
//!
//! The hot path (a Twilio frame in → `input_audio_buffer.append` out; an audio delta in → Twilio
//! `media` and `mark` out) touches only this task's own state and its two sockets: no database, no file, no lock
//! shared with other calls. Everything else (transcripts, errors, the end of the call) leaves through
//! [`BridgeDeps::emit`], which never blocks.
//!
//! The model session is replaceable mid-call: a dropped socket is re-opened with the same config and
//! seeded with the conversation so far, and before the 60-minute session cap a fresh session is opened in
//! the background and swapped in between turns, so the caller never notices.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tracing::{debug, info, warn, Instrument};

use crate::calls::control_channel::{self, ControlReceiver};
use crate::calls::registry::{ActiveCall, CallRegistry};
use crate::calls::session_settings::SessionSettings;
use crate::config::BridgeSettings;
use crate::events::{CallEvent, EventBus};
use crate::realtime::client::ModelConnector;
use crate::telephony::twilio::media::{self, Inbound, StartMeta};
use crate::types::now_ms;
use crate::wire::slotted::Slotted;
use crate::wire::ws::{Incoming, WsConn};

mod call;
pub mod call_cost;
pub mod dropped;
pub mod ending;
pub mod frames;
pub mod gaps;
pub mod lifecycle;
pub mod model_setup;
pub mod operator;
pub mod sequencer;
pub mod sources;
pub mod tool_calls;
pub mod transcript;
pub mod turn_latency;

use call::Call;

/// Persists call events (wired to the store by the services layer); must not block.
pub type PersistFn = Arc<dyn Fn(&CallEvent) + Send + Sync>;

/// What a call asks of the telephony side (the Twilio REST API, wired by the services layer).
pub trait CallActions: Send + Sync {
    /// The model cannot be reached: let the caller hear an apology and hang up, instead of silence.
    /// Returns once Twilio has the new instructions (or refused them).
    fn apologize(&self, call_sid: &str) -> futures_util::future::BoxFuture<'static, ()>;
    /// Hands the caller to a person at `number` (`<Dial>`); Twilio then ends the media stream.
    fn transfer(
        &self,
        call_sid: &str,
        number: &str,
    ) -> futures_util::future::BoxFuture<'static, Result<(), String>>;
    /// Ends the call at Twilio (after a voicemail, so the line does not stay open).
    fn hang_up(&self, call_sid: &str) -> futures_util::future::BoxFuture<'static, ()>;
    /// An inbound call's media stream has started (Twilio reached the app at `public_base`): start
    /// what Twilio should do for it, such as its own recording. Failures are logged, never the call's.
    fn inbound_stream_started(
        &self,
        call_sid: &str,
        public_base: &str,
    ) -> futures_util::future::BoxFuture<'static, ()>;
}

/// What a call's task needs from the rest of the app.
pub struct BridgeDeps {
    pub registry: CallRegistry,
    pub bus: EventBus,
    pub persist: Option<PersistFn>,
    pub connector: Arc<dyn ModelConnector>,
    /// The session new calls get; a call keeps the config it started with.
    pub session: Arc<SessionSettings>,
    pub settings: BridgeSettings,
    /// Telephony actions; `None` when Twilio's REST API is not configured (the call still works, but
    /// cannot apologise, transfer or hang up at Twilio).
    pub actions: Option<Arc<dyn CallActions>>,
    /// Records calls and feeds listen-in; `None` in setups without recordings.
    pub recorder: Option<Arc<crate::recording::Recorder>>,
    /// Runs the tools that do real work (HTTP endpoints, MCP servers); `None`: only the built-in tools
    /// work, the others are answered "not available".
    pub tools: Option<Arc<dyn crate::calls::tool_runner::ToolRunner>>,
    /// Tool calls waiting for the operator's approval.
    pub approvals: crate::calls::approvals::Approvals,
    /// Prices, budgets and the day's spend (every call adds to it).
    pub costs: Arc<crate::costs::CostBook>,
}

impl BridgeDeps {
    /// Persists and publishes an event; never blocks the call.
    pub fn emit(&self, event: CallEvent) {
        if let Some(persist) = &self.persist {
            persist(&event);
        }
        self.bus.publish(event);
    }
}

/// The media socket as the bridge owns it: the lean WebSocket layer ([`crate::wire::ws`]) over the
/// connection hyper upgraded ([`MediaStream`]).
pub type MediaSocket = WsConn<MediaStream>;

/// The byte stream under a call's media socket: the server's own TCP connection taken back from hyper
/// (always, from the server's own `serve`), or hyper's `Upgraded` for anything else.
///
/// hyper hands an upgraded connection back as `Upgraded`: a boxed `dyn Io` behind a rewind buffer, so
/// every read and write went through two more layers and one more heap object than the stream itself;
/// at hundreds of calls the bridge is bound by cache misses, one per object a frame touches
/// (BENCHMARKS.md, issue 16, sixth stretch).
pub type MediaStream =
    tokio_util::either::Either<Slotted, hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>>;

/// WebSocket close code for policy violations (no or bad stream token).
pub const CLOSE_POLICY: u16 = 1008;

/// Why a call's bridge ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    CallerHungUp,
    AgentEnded,
    EndedByApp,
    TwilioSocket(String),
    ModelUnavailable(String),
    /// The agent left a voicemail and hung up.
    VoicemailLeft,
    /// The call was handed to a person.
    Transferred(String),
    /// The call reached its maximum length (`max_call_length`) and the agent said goodbye.
    MaxLength,
    /// A money budget (the call's or the day's) was reached and the agent said the goodbye line.
    OverBudget,
}

impl EndReason {
    pub fn failed(&self) -> bool {
        matches!(
            self,
            EndReason::TwilioSocket(_) | EndReason::ModelUnavailable(_)
        )
    }

    pub fn describe(&self) -> String {
        match self {
            EndReason::CallerHungUp => "caller hung up".into(),
            EndReason::AgentEnded => "agent ended the call".into(),
            EndReason::EndedByApp => "ended from the app".into(),
            EndReason::TwilioSocket(e) => format!("Twilio stream error: {e}"),
            EndReason::ModelUnavailable(e) => format!("model unavailable: {e}"),
            EndReason::VoicemailLeft => "voicemail left".into(),
            EndReason::Transferred(number) => format!("transferred to {number}"),
            EndReason::MaxLength => "reached the maximum call length".into(),
            EndReason::OverBudget => "reached its budget".into(),
        }
    }
}

/// Serves one Twilio media socket from upgrade to close; Twilio reached it at `public_base`.
pub async fn handle_media_socket(deps: Arc<BridgeDeps>, socket: MediaSocket, public_base: String) {
    let mut twilio = socket;
    let (stream_sid, start) = match await_start(&mut twilio, deps.settings.start_timeout).await {
        Ok(started) => started,
        Err(reason) => {
            warn!(%reason, "media stream refused before start");
            close_twilio(&mut twilio, CLOSE_POLICY, &reason).await;
            return;
        }
    };
    let token = start.custom_parameters.get("token").map(String::as_str);
    let call_sid = start.call_sid.clone();
    let pending = match deps.registry.redeem(token, &call_sid) {
        Ok(p) => p,
        Err(e) => {
            warn!(call_sid = %call_sid, reason = %e, "media stream refused: bad stream token");
            close_twilio(&mut twilio, CLOSE_POLICY, &e.to_string()).await;
            return;
        }
    };
    let session = pending
        .plan
        .as_ref()
        .map(|plan| plan.session.clone())
        .unwrap_or_else(|| deps.session.current());
    // The tools the app adds now (MCP servers that are up) are the call's for its whole length.
    let session = match &deps.tools {
        Some(tools) => tools.session_for_call(session),
        None => session,
    };
    let info = ActiveCall {
        call_sid: call_sid.clone(),
        stream_sid: stream_sid.clone(),
        from: pending.from.clone(),
        to: pending.to.clone(),
        started_at_ms: now_ms(),
    };
    let (control_tx, control_rx) = control_channel::channel(8);
    let guard = match deps.registry.register(info.clone(), control_tx) {
        Ok(g) => g,
        Err(e) => {
            warn!(call_sid = %call_sid, "{e}");
            close_twilio(&mut twilio, CLOSE_POLICY, &e.to_string()).await;
            return;
        }
    };
    let inbound = pending
        .plan
        .as_ref()
        .is_none_or(|p| p.direction == crate::telephony::twilio::direction::Direction::Inbound);
    if let (true, Some(actions)) = (inbound, &deps.actions) {
        tokio::spawn(actions.inbound_stream_started(&call_sid, &public_base));
    }
    deps.emit(CallEvent::CallStarted {
        call_sid: call_sid.clone(),
        stream_sid: stream_sid.clone(),
        from: info.from,
        to: info.to,
        at_ms: info.started_at_ms,
    });
    // A call opts out of recording in its plan (calls the app places) or with
    // `<Parameter name="record" value="false"/>`.
    let record = pending.plan.as_ref().is_none_or(|p| p.record)
        && start.custom_parameters.get("record").map(String::as_str) != Some("false");
    let recording = deps
        .recorder
        .as_ref()
        .map(|r| r.start_call(&call_sid, info.started_at_ms, record));
    let call = Box::new(Call::new(
        deps.clone(),
        session,
        call_sid.clone(),
        stream_sid,
        twilio,
    ));
    let task = spawn_call(call, recording, control_rx, &call_sid);
    let reason = match task.await {
        Ok(reason) => reason,
        Err(e) => {
            tracing::error!(call_sid = %call_sid, "call task failed: {e}");
            EndReason::TwilioSocket("internal error".into())
        }
    };
    drop(guard);
    info!(call_sid = %call_sid, reason = %reason.describe(), "call ended");
    deps.emit(CallEvent::CallEnded {
        call_sid,
        reason: reason.describe(),
        failed: reason.failed(),
        at_ms: now_ms(),
    });
}

/// Runs `call` in its own task, so a panic inside one call is contained and still reported as that
/// call's end. Not async, so nothing it touches takes room in [`handle_media_socket`]'s state, which
/// lives as long as the call.
fn spawn_call(
    mut call: Box<Call>,
    recording: Option<crate::recording::CallRecording>,
    control: ControlReceiver,
    call_sid: &str,
) -> tokio::task::JoinHandle<EndReason> {
    call.recording = recording;
    let span = tracing::info_span!("call", call_sid = %call_sid);
    tokio::spawn(call.run(control).instrument(span))
}

/// Reads until Twilio's `start`. Media before `start` is ignored; a silent or closed socket is refused.
async fn await_start(
    rx: &mut MediaSocket,
    timeout: Duration,
) -> Result<(String, StartMeta), String> {
    let deadline = Instant::now() + timeout;
    loop {
        let frame = tokio::time::timeout_at(deadline, rx.next())
            .await
            .map_err(|_| format!("no start event within {} ms", timeout.as_millis()))?;
        match frame {
            Some(Ok(Incoming::Text(text))) => match media::parse(text.as_str()) {
                Ok(Inbound::Start { stream_sid, start }) => return Ok((stream_sid, start)),
                Ok(Inbound::Connected { .. }) => {}
                Ok(Inbound::Stop { .. }) => return Err("stream stopped before start".into()),
                Ok(other) => debug!(event = ?event_name(&other), "event before start ignored"),
                Err(e) => warn!("bad frame before start ignored: {e}"),
            },
            Some(Ok(Incoming::Close(_))) | None => return Err("socket closed before start".into()),
            Some(Ok(Incoming::Binary(_))) => {}
            Some(Err(e)) => return Err(format!("socket error before start: {e}")),
        }
    }
}

fn event_name(event: &Inbound<'_>) -> &'static str {
    match event {
        Inbound::Connected { .. } => "connected",
        Inbound::Start { .. } => "start",
        Inbound::Media { .. } => "media",
        Inbound::Dtmf { .. } => "dtmf",
        Inbound::Mark { .. } => "mark",
        Inbound::Stop { .. } => "stop",
    }
}

pub(super) async fn close_twilio(tx: &mut MediaSocket, code: u16, reason: &str) {
    // Bounded: a peer that stopped reading must not hold the call's end.
    let _ = tokio::time::timeout(Duration::from_millis(500), async {
        if tx.close(code, reason).await.is_ok() {
            let _ = tx.shutdown().await;
        }
    })
    .await;
}

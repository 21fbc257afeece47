//! One task per call: the Twilio media socket on one side, a Realtime GA session on the other.
//!
//! The hot path (a Twilio frame in → `input_audio_buffer.append` out; an audio delta in → Twilio
//! `media` and `mark` out) touches only this task's own state and its two sockets: no database, no file, no lock
//! shared with other calls. Everything else (transcripts, errors, the end of the call) leaves through
//! [`BridgeDeps::emit`], which never blocks.
//!
//! The model session is replaceable mid-call: a dropped socket is re-opened with the same config and
//! seeded with the conversation so far, and before the 60-minute session cap a fresh session is opened in
//! the background and swapped in between turns, so the caller never notices.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};
use tokio_tungstenite::tungstenite::Message as ModelMessage;
use tracing::{debug, info, warn, Instrument};

use crate::calls::events::{now_ms, CallEvent, EventBus, Speaker};
use crate::calls::playout::{MarkOutcome, Playout};
use crate::calls::registry::{CallControl, CallRegistry};
use crate::config::BridgeSettings;
use crate::realtime::client::{ConnectFuture, ModelConnector, ModelSocket, RealtimeError};
use crate::realtime::events::{self as rt, ServerEvent};
use crate::realtime::session::{Greeting, SessionConfig, END_CALL_TOOL, TRANSFER_CALL_TOOL};
use crate::recording::timeline::{SessionAudio, StreamClock, StreamUs};
use crate::services::ActiveCall;
use crate::telephony::twilio::media::{self, Inbound, MediaError, StartMeta};

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
    pub session: std::sync::RwLock<Arc<SessionConfig>>,
    pub settings: BridgeSettings,
    /// Telephony actions; `None` when Twilio's REST API is not configured (the call still works, but
    /// cannot apologise, transfer or hang up at Twilio).
    pub actions: Option<Arc<dyn CallActions>>,
    /// Records calls and feeds listen-in; `None` in setups without recordings.
    pub recorder: Option<Arc<crate::recording::Recorder>>,
}

impl BridgeDeps {
    /// The session config for a call starting now.
    pub fn current_session(&self) -> Arc<SessionConfig> {
        self.session
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Replaces the config for calls that start from now on.
    pub fn set_session(&self, session: SessionConfig) {
        *self.session.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(session);
    }

    /// Persists and publishes an event; never blocks the call.
    pub fn emit(&self, event: CallEvent) {
        if let Some(persist) = &self.persist {
            persist(&event);
        }
        self.bus.publish(event);
    }
}

/// WebSocket close code for policy violations (no or bad stream token).
pub const CLOSE_POLICY: u16 = 1008;
/// Agent turns kept for seeding a fresh session (the newest ones).
const MAX_SEED_TURNS: usize = 200;
/// How long the agent's goodbye may keep playing after it called `end_call`.
const END_CALL_GRACE: Duration = Duration::from_secs(15);
/// How long a voicemail may take to say.
const VOICEMAIL_GRACE: Duration = Duration::from_secs(60);
/// How long the apology update may take before the stream is closed anyway.
const APOLOGY_TIMEOUT: Duration = Duration::from_secs(5);
/// Bad frames logged individually per call before logging only every 1000th (a flood must not flood logs).
const BAD_FRAME_LOG_LIMIT: u64 = 20;

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
        }
    }
}

/// Serves one Twilio media socket from upgrade to close; Twilio reached it at `public_base`.
pub async fn handle_media_socket(deps: Arc<BridgeDeps>, socket: WebSocket, public_base: String) {
    let (mut twilio_tx, mut twilio_rx) = socket.split();
    let (stream_sid, start) = match await_start(&mut twilio_rx, deps.settings.start_timeout).await {
        Ok(started) => started,
        Err(reason) => {
            warn!(%reason, "media stream refused before start");
            close_twilio(&mut twilio_tx, CLOSE_POLICY, &reason).await;
            return;
        }
    };
    let token = start.custom_parameters.get("token").map(String::as_str);
    let call_sid = start.call_sid.clone();
    let pending = match deps.registry.redeem(token, &call_sid) {
        Ok(p) => p,
        Err(e) => {
            warn!(call_sid = %call_sid, reason = %e, "media stream refused: bad stream token");
            close_twilio(&mut twilio_tx, CLOSE_POLICY, &e.to_string()).await;
            return;
        }
    };
    let session = pending
        .plan
        .as_ref()
        .map(|plan| plan.session.clone())
        .unwrap_or_else(|| deps.current_session());
    let info = ActiveCall {
        call_sid: call_sid.clone(),
        stream_sid: stream_sid.clone(),
        from: pending.from.clone(),
        to: pending.to.clone(),
        started_at_ms: now_ms(),
    };
    let (control_tx, control_rx) = mpsc::channel(8);
    let guard = match deps.registry.register(info.clone(), control_tx) {
        Ok(g) => g,
        Err(e) => {
            warn!(call_sid = %call_sid, "{e}");
            close_twilio(&mut twilio_tx, CLOSE_POLICY, &e.to_string()).await;
            return;
        }
    };
    let inbound = pending
        .plan
        .as_ref()
        .is_none_or(|p| p.direction == crate::calls::plan::Direction::Inbound);
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
    let span = tracing::info_span!("call", call_sid = %call_sid);
    let mut call = Call::new(
        deps.clone(),
        session,
        call_sid.clone(),
        stream_sid,
        twilio_tx,
    );
    // A call opts out of recording in its plan (calls the app places) or with
    // `<Parameter name="record" value="false"/>`.
    let record = pending.plan.as_ref().is_none_or(|p| p.record)
        && start.custom_parameters.get("record").map(String::as_str) != Some("false");
    call.recording = deps.recorder.as_ref().map(|r| {
        r.start_call(
            &call_sid,
            info.started_at_ms,
            record,
            call.started.into_std(),
        )
    });
    // Its own task, so a panic inside one call is contained and still reported as that call's end.
    let task = tokio::spawn(call.run(twilio_rx, control_rx).instrument(span));
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

/// Reads until Twilio's `start`. Media before `start` is ignored; a silent or closed socket is refused.
async fn await_start(
    rx: &mut SplitStream<WebSocket>,
    timeout: Duration,
) -> Result<(String, StartMeta), String> {
    let deadline = Instant::now() + timeout;
    loop {
        let frame = tokio::time::timeout_at(deadline, rx.next())
            .await
            .map_err(|_| format!("no start event within {} ms", timeout.as_millis()))?;
        match frame {
            Some(Ok(Message::Text(text))) => match media::parse(text.as_str()) {
                Ok(Inbound::Start { stream_sid, start }) => return Ok((stream_sid, start)),
                Ok(Inbound::Connected { .. }) => {}
                Ok(Inbound::Stop { .. }) => return Err("stream stopped before start".into()),
                Ok(other) => debug!(event = ?event_name(&other), "event before start ignored"),
                Err(e) => warn!("bad frame before start ignored: {e}"),
            },
            Some(Ok(Message::Close(_))) | None => return Err("socket closed before start".into()),
            Some(Ok(_)) => {}
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

async fn close_twilio(tx: &mut SplitSink<WebSocket, Message>, code: u16, reason: &str) {
    let reason: String = reason.chars().take(120).collect();
    let _ = tx
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        })))
        .await;
    let _ = tx.close().await;
}

/// One model session socket, split.
struct ModelLink {
    tx: SplitSink<ModelSocket, ModelMessage>,
    rx: SplitStream<ModelSocket>,
}

impl ModelLink {
    async fn send(&mut self, text: String) -> Result<(), String> {
        self.tx
            .send(ModelMessage::Text(text.into()))
            .await
            .map_err(|e| e.to_string())
    }

    /// Closes the session so it stops costing money; does not wait for the server.
    async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_millis(500), self.tx.close()).await;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// The call's first session.
    Initial,
    /// Replacing a session that dropped.
    Reconnect,
    /// A fresh session for the rollover before the session cap.
    Rollover,
}

struct Connecting {
    purpose: Purpose,
    future: ConnectFuture,
}

/// A finished transcript turn, kept to seed replacement sessions.
#[derive(Debug, Clone)]
struct Turn {
    speaker: Speaker,
    text: String,
}

/// A call's state. Lives only inside its task.
struct Call {
    deps: Arc<BridgeDeps>,
    session: Arc<SessionConfig>,
    call_sid: String,
    stream_sid: String,
    twilio: SplitSink<WebSocket, Message>,
    model: Option<ModelLink>,
    /// A fresh, configured session waiting for a quiet moment to take over (rollover).
    standby: Option<ModelLink>,
    connecting: Option<Connecting>,
    failed_attempts: u32,
    rollover_at: Option<Instant>,
    playout: Playout,
    started: Instant,
    /// Stream time (from Twilio's media timestamps, as the recording uses): transcript offsets.
    clock: StreamClock,
    /// Caller audio sent to the current model session, to place its `speech_started` on the stream.
    session_audio: SessionAudio,
    turns: Vec<Turn>,
    response_active: bool,
    current_response: Option<String>,
    /// Items and responses cut by barge-in: their late deltas are dropped.
    dropped_items: VecDeque<String>,
    dropped_responses: VecDeque<String>,
    caller_speaking: bool,
    greeted: bool,
    end_deadline: Option<Instant>,
    /// Caller audio held while the model socket is being re-opened: (stream time, bytes, append).
    held_audio: VecDeque<(StreamUs, usize, String)>,
    function_names: HashMap<String, String>,
    caller_offsets: HashMap<String, u64>,
    agent_offsets: HashMap<String, u64>,
    /// The agent's words so far per item, from transcript deltas: kept as the turn when a barge-in
    /// cancels the response before its `transcript.done`.
    agent_text: HashMap<String, String>,
    bad_frames: u64,
    /// A replacement session took over outside a quiet moment and still needs the conversation so far.
    needs_seed: bool,
    /// A `response.create` was sent and its `response.created` has not come yet.
    awaiting_response: bool,
    /// Leaving a voicemail: the machine's audio is no longer sent to the model.
    voicemail: bool,
    /// The agent asked to transfer; done once its last words have played.
    transfer_to: Option<String>,
    /// The transfer was handed to Twilio; the stream's end is the transfer, not a hang-up.
    transferring: Option<String>,
    /// The call's recording and listen-in tap (never blocks; see `recording::recorder`).
    recording: Option<crate::recording::CallRecording>,
}

/// A frame from the model socket, or its end.
type ModelFrame = Option<Result<ModelMessage, tokio_tungstenite::tungstenite::Error>>;

async fn next_model_frame(link: &mut Option<ModelLink>) -> ModelFrame {
    match link {
        Some(link) => link.rx.next().await,
        None => std::future::pending().await,
    }
}

async fn finish_connecting(
    slot: &mut Option<Connecting>,
) -> (Purpose, Result<ModelSocket, RealtimeError>) {
    match slot {
        Some(connecting) => {
            let result = (&mut connecting.future).await;
            let purpose = connecting.purpose;
            *slot = None;
            (purpose, result)
        }
        None => std::future::pending().await,
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => sleep_until(at).await,
        None => std::future::pending().await,
    }
}

type Flow = Result<(), EndReason>;

impl Call {
    fn new(
        deps: Arc<BridgeDeps>,
        session: Arc<SessionConfig>,
        call_sid: String,
        stream_sid: String,
        twilio: SplitSink<WebSocket, Message>,
    ) -> Self {
        let now = Instant::now();
        let rollover_at = Some(now + deps.settings.session_rollover_after);
        Call {
            session,
            deps,
            call_sid,
            stream_sid,
            twilio,
            model: None,
            standby: None,
            connecting: None,
            failed_attempts: 0,
            rollover_at,
            playout: Playout::new(),
            started: now,
            clock: StreamClock::new(now.into_std()),
            session_audio: SessionAudio::new(),
            turns: Vec::new(),
            response_active: false,
            current_response: None,
            dropped_items: VecDeque::new(),
            dropped_responses: VecDeque::new(),
            caller_speaking: false,
            greeted: false,
            end_deadline: None,
            held_audio: VecDeque::new(),
            function_names: HashMap::new(),
            caller_offsets: HashMap::new(),
            agent_offsets: HashMap::new(),
            agent_text: HashMap::new(),
            bad_frames: 0,
            needs_seed: false,
            awaiting_response: false,
            voicemail: false,
            transfer_to: None,
            transferring: None,
            recording: None,
        }
    }

    async fn run(
        mut self,
        mut twilio_rx: SplitStream<WebSocket>,
        mut control: mpsc::Receiver<CallControl>,
    ) -> EndReason {
        self.start_connecting(Purpose::Initial, Duration::ZERO);
        let reason = loop {
            if let Err(reason) = self.between_events().await {
                break reason;
            }
            let step = tokio::select! {
                frame = twilio_rx.next() => self.on_twilio_frame(frame).await,
                frame = next_model_frame(&mut self.model) => self.on_model_frame(frame).await,
                (purpose, result) = finish_connecting(&mut self.connecting) => self.on_connected(purpose, result).await,
                command = control.recv() => match command {
                    Some(CallControl::HangUp) | None => Err(EndReason::EndedByApp),
                    Some(CallControl::LeaveVoicemail(message)) => self.leave_voicemail(&message).await,
                    Some(other) => {
                        self.on_transfer_control(other);
                        Ok(())
                    }
                },
                _ = sleep_until_opt(self.rollover_at) => {
                    self.rollover_at = None;
                    if self.connecting.is_none() && self.standby.is_none() {
                        info!("opening a fresh model session before the session cap");
                        self.start_connecting(Purpose::Rollover, Duration::ZERO);
                    }
                    Ok(())
                }
                _ = sleep_until_opt(self.end_deadline) => Err(self.ending_reason()),
            };
            if let Err(reason) = step {
                break reason;
            }
        };
        // A transfer by hand announced just before Twilio stopped the stream may still be queued.
        while let Ok(command) = control.try_recv() {
            self.on_transfer_control(command);
        }
        let reason = match (reason, self.transferring.take()) {
            (EndReason::CallerHungUp, Some(number)) => EndReason::Transferred(number),
            (reason, _) => reason,
        };
        if let (EndReason::ModelUnavailable(_), Some(actions)) = (&reason, &self.deps.actions) {
            // Before the stream closes: with the stream gone and no new TwiML, Twilio would hang up
            // in silence.
            if tokio::time::timeout(APOLOGY_TIMEOUT, actions.apologize(&self.call_sid))
                .await
                .is_err()
            {
                warn!(call_sid = %self.call_sid, "apology to the caller timed out");
            }
        }
        self.shut_down(&reason).await;
        if let (EndReason::VoicemailLeft, Some(actions)) = (&reason, &self.deps.actions) {
            tokio::spawn(actions.hang_up(&self.call_sid));
        }
        reason
    }

    /// The app's transfer by hand: the REST redirect is the app's; the call only has to know why its
    /// stream is about to stop.
    fn on_transfer_control(&mut self, command: CallControl) {
        match command {
            CallControl::Transferred(number) => {
                info!(call_sid = %self.call_sid, "the app is transferring the call");
                self.transfer_to = None;
                self.transferring = Some(number);
            }
            CallControl::TransferFailed => self.transferring = None,
            CallControl::HangUp | CallControl::LeaveVoicemail(_) => {}
        }
    }

    fn ending_reason(&self) -> EndReason {
        if self.voicemail {
            EndReason::VoicemailLeft
        } else {
            EndReason::AgentEnded
        }
    }

    /// A machine took the call and its greeting is over: cut whatever the agent was saying, stop
    /// listening to the machine, say the message, and end once it has played.
    async fn leave_voicemail(&mut self, message: &str) -> Flow {
        info!(call_sid = %self.call_sid, "leaving a voicemail");
        self.voicemail = true;
        self.held_audio.clear();
        if self.response_active {
            self.send_model(rt::response_cancel()).await;
        }
        self.barge_in().await?;
        let instructions = format!(
            "A voicemail system is recording now. Say exactly this message, then stop: {message}"
        );
        self.send_model(rt::response_create_scripted(&instructions))
            .await;
        self.awaiting_response = true;
        self.end_deadline = Some(Instant::now() + VOICEMAIL_GRACE);
        Ok(())
    }

    /// Work that waits for a quiet moment: swapping in a rolled-over session, finishing `end_call`.
    async fn between_events(&mut self) -> Flow {
        if self.needs_seed && self.model.is_some() {
            self.needs_seed = false;
            self.seed_and_flush().await;
        }
        let idle = !self.response_active && !self.awaiting_response && self.playout.is_drained();
        let quiet = idle && !self.caller_speaking;
        if self.end_deadline.is_some() && idle {
            return Err(self.ending_reason());
        }
        if idle && self.transfer_to.is_some() {
            if let (Some(number), Some(actions)) = (self.transfer_to.take(), &self.deps.actions) {
                info!(call_sid = %self.call_sid, "transferring the call");
                match actions.transfer(&self.call_sid, &number).await {
                    Ok(()) => self.transferring = Some(number),
                    Err(e) => {
                        warn!(call_sid = %self.call_sid, "transfer failed: {e}");
                        self.issue("transfer_failed", &e);
                    }
                }
            }
        }
        if quiet && self.standby.is_some() {
            if let Some(fresh) = self.standby.take() {
                info!(
                    turns = self.turns.len(),
                    "switching to the fresh model session"
                );
                let old = self.new_model_session(fresh);
                if let Some(old) = old {
                    tokio::spawn(old.close());
                }
                self.rollover_at = Some(Instant::now() + self.deps.settings.session_rollover_after);
                self.seed_and_flush().await;
            }
        }
        Ok(())
    }

    async fn shut_down(&mut self, reason: &EndReason) {
        for link in [self.model.take(), self.standby.take()]
            .into_iter()
            .flatten()
        {
            link.close().await;
        }
        self.connecting = None;
        if *reason != EndReason::CallerHungUp {
            let code = if reason.failed() { 1011 } else { 1000 };
            close_twilio(&mut self.twilio, code, &reason.describe()).await;
        }
    }

    /// Transcript offset of "now": stream time, the recording's timeline.
    fn offset_ms(&self) -> u64 {
        self.clock.now_us(std::time::Instant::now()) / 1000
    }

    /// Where the caller started speaking, on the stream: `audio_start_ms` is a position in the audio the
    /// current session has received (the VAD reports it after some delay); now if the model gave none.
    fn speech_offset_ms(&self, audio_start_ms: Option<u64>) -> u64 {
        audio_start_ms
            .and_then(|ms| self.session_audio.stream_us(ms))
            .map_or_else(|| self.offset_ms(), |us| us / 1000)
    }

    /// A fresh model session became the current one: its audio positions count from zero.
    fn new_model_session(&mut self, link: ModelLink) -> Option<ModelLink> {
        self.session_audio = SessionAudio::new();
        self.model.replace(link)
    }

    fn note_bad_frame(&mut self, what: &str, error: &dyn std::fmt::Display) {
        self.bad_frames += 1;
        if self.bad_frames <= BAD_FRAME_LOG_LIMIT || self.bad_frames.is_multiple_of(1000) {
            warn!(call_sid = %self.call_sid, count = self.bad_frames, "{what} ignored: {error}");
        }
    }

    // ---- Twilio side -------------------------------------------------------------------------

    async fn send_twilio(&mut self, text: String) -> Flow {
        self.twilio
            .send(Message::Text(text.into()))
            .await
            .map_err(|e| EndReason::TwilioSocket(e.to_string()))
    }

    async fn on_twilio_frame(&mut self, frame: Option<Result<Message, axum::Error>>) -> Flow {
        match frame {
            Some(Ok(Message::Text(text))) => self.on_twilio_text(text.as_str()).await,
            Some(Ok(Message::Binary(_))) => {
                self.note_bad_frame("binary frame", &"Twilio sends text frames only");
                Ok(())
            }
            Some(Ok(Message::Close(_))) | None => Err(EndReason::CallerHungUp),
            Some(Ok(_)) => Ok(()),
            Some(Err(e)) => Err(EndReason::TwilioSocket(e.to_string())),
        }
    }

    async fn on_twilio_text(&mut self, text: &str) -> Flow {
        let event = match media::parse(text) {
            Ok(event) => event,
            Err(e) => {
                self.note_bad_frame("Twilio frame", &e);
                return Ok(());
            }
        };
        match event {
            Inbound::Media { media } => {
                if self.voicemail {
                    // The machine is recording; nothing it hears should make the agent stop.
                    return Ok(());
                }
                let bytes = match media::base64_decoded_len(&media.payload) {
                    Ok(n) => n,
                    Err(e) => {
                        self.note_bad_frame("media frame", &e);
                        return Ok(());
                    }
                };
                let timestamp = media.timestamp_ms().unwrap_or_else(|e| {
                    self.note_bad_frame("media timestamp", &e);
                    None
                });
                if let Some(rec) = &mut self.recording {
                    rec.caller_audio(timestamp, &media.payload);
                }
                let start_us = self.clock.on_frame(timestamp, std::time::Instant::now());
                self.send_model_audio(start_us, bytes, rt::input_audio_append(&media.payload))
                    .await;
                Ok(())
            }
            Inbound::Mark { mark } => {
                if let Some(rec) = &mut self.recording {
                    rec.mark(&mark.name);
                }
                if self.playout.on_mark(&mark.name, Instant::now()) == MarkOutcome::Unknown {
                    self.note_bad_frame(
                        "mark",
                        &format_args!("unknown mark name {:?}", short(&mark.name)),
                    );
                }
                Ok(())
            }
            Inbound::Dtmf { dtmf } => {
                self.on_dtmf(&dtmf.digit).await;
                Ok(())
            }
            Inbound::Stop { .. } => Err(EndReason::CallerHungUp),
            Inbound::Start { .. } => {
                self.note_bad_frame("second start", &"a stream starts once");
                Ok(())
            }
            Inbound::Connected { .. } => Ok(()),
        }
    }

    async fn on_dtmf(&mut self, digit: &str) {
        let valid = digit.len() == 1
            && digit
                .chars()
                .all(|c| c.is_ascii_digit() || "*#ABCD".contains(c));
        if !valid {
            self.note_bad_frame(
                "dtmf",
                &MediaError::Malformed(format!("digit {:?}", short(digit))),
            );
            return;
        }
        let note = format!("[caller pressed {digit}]");
        info!(call_sid = %self.call_sid, digit, "DTMF");
        let offset = self.offset_ms();
        self.add_turn(Speaker::Caller, note.clone(), offset, false);
        self.send_model(rt::message_item_create(Speaker::Caller, &note))
            .await;
        if !self.response_active {
            self.send_model(rt::response_create(None)).await;
        }
    }

    // ---- Model side --------------------------------------------------------------------------

    /// Sends caller audio (`bytes` μ-law bytes from stream time `start_us`), or holds it (bounded)
    /// while the model socket is being re-opened.
    async fn send_model_audio(&mut self, start_us: StreamUs, bytes: usize, append: String) {
        if self.model.is_some() {
            self.session_audio.on_sent(start_us, bytes);
            self.send_model(append).await;
        } else {
            if self.held_audio.len() >= self.deps.settings.reconnect_buffer_frames {
                self.held_audio.pop_front();
            }
            self.held_audio.push_back((start_us, bytes, append));
        }
    }

    /// Sends a control event to the model; a failed send is handled as a dropped socket.
    async fn send_model(&mut self, text: String) {
        let Some(link) = self.model.as_mut() else {
            debug!("model not connected; event dropped");
            return;
        };
        if let Err(e) = link.send(text).await {
            self.on_model_lost(format!("send failed: {e}"));
        }
    }

    fn start_connecting(&mut self, purpose: Purpose, delay: Duration) {
        let connect = self.deps.connector.connect(&self.session.model);
        let future: ConnectFuture = if delay.is_zero() {
            connect
        } else {
            Box::pin(async move {
                tokio::time::sleep(delay).await;
                connect.await
            })
        };
        self.connecting = Some(Connecting { purpose, future });
    }

    async fn on_connected(
        &mut self,
        purpose: Purpose,
        result: Result<ModelSocket, RealtimeError>,
    ) -> Flow {
        let socket = match result {
            Ok(socket) => socket,
            Err(e) => return self.on_connect_failed(purpose, e),
        };
        let (tx, rx) = socket.split();
        let mut link = ModelLink { tx, rx };
        if let Err(e) = link
            .send(rt::session_update(self.session.session_object()))
            .await
        {
            return self.on_connect_failed(purpose, RealtimeError::Connect(e));
        }
        match purpose {
            Purpose::Rollover if self.model.is_some() => {
                // Configured now, seeded at the switch so it gets every turn up to that moment.
                self.standby = Some(link);
            }
            _ => {
                if purpose != Purpose::Initial {
                    info!(call_sid = %self.call_sid, "model session re-opened");
                    self.issue(
                        "model_reconnected",
                        "model session re-opened with the conversation so far",
                    );
                }
                self.failed_attempts = 0;
                self.new_model_session(link);
                self.seed_and_flush().await;
                if !self.greeted {
                    self.greeted = true;
                    if let Greeting::SpeakFirst { opening_line } = &self.session.greeting {
                        let instructions =
                            format!("Greet the caller now by saying: {opening_line}");
                        self.send_model(rt::response_create(Some(&instructions)))
                            .await;
                    }
                }
            }
        }
        Ok(())
    }

    fn on_connect_failed(&mut self, purpose: Purpose, error: RealtimeError) -> Flow {
        warn!(call_sid = %self.call_sid, ?purpose, "model connection failed: {error}");
        self.issue("model_connect_failed", &error.to_string());
        if purpose == Purpose::Rollover && self.model.is_some() {
            // The current session still has time left; try again shortly.
            self.rollover_at = Some(Instant::now() + Duration::from_secs(5));
            return Ok(());
        }
        self.failed_attempts += 1;
        if self.failed_attempts > self.deps.settings.reconnect_attempts {
            return Err(EndReason::ModelUnavailable(error.to_string()));
        }
        let backoff =
            self.deps.settings.reconnect_backoff * 2u32.saturating_pow(self.failed_attempts - 1);
        self.start_connecting(Purpose::Reconnect, backoff);
        Ok(())
    }

    /// The model socket closed or failed: keep the caller, re-open the session with the same context.
    fn on_model_lost(&mut self, reason: String) {
        let Some(old) = self.model.take() else { return };
        drop(old);
        warn!(call_sid = %self.call_sid, %reason, "model socket lost");
        self.issue("model_disconnected", &reason);
        self.response_active = false;
        self.current_response = None;
        self.caller_speaking = false;
        if let Some(fresh) = self.standby.take() {
            self.new_model_session(fresh);
            self.needs_seed = true;
            return;
        }
        match &mut self.connecting {
            // A rollover connection already on its way becomes the replacement.
            Some(connecting) => connecting.purpose = Purpose::Reconnect,
            None => self.start_connecting(Purpose::Reconnect, Duration::ZERO),
        }
    }

    /// Seeds the (new) session with the conversation so far, then forwards held caller audio.
    async fn seed_and_flush(&mut self) {
        let skip = self.turns.len().saturating_sub(MAX_SEED_TURNS);
        let seeds: Vec<String> = self.turns[skip..]
            .iter()
            .map(|t| rt::message_item_create(t.speaker, &t.text))
            .collect();
        for seed in seeds {
            self.send_model(seed).await;
        }
        while let Some((start_us, bytes, append)) = self.held_audio.pop_front() {
            if self.model.is_none() {
                self.held_audio.push_front((start_us, bytes, append));
                break;
            }
            self.session_audio.on_sent(start_us, bytes);
            self.send_model(append).await;
        }
    }

    fn issue(&self, code: &str, message: &str) {
        self.deps.emit(CallEvent::ModelIssue {
            call_sid: self.call_sid.clone(),
            code: code.into(),
            message: message.into(),
            at_ms: now_ms(),
        });
    }

    async fn on_model_frame(&mut self, frame: ModelFrame) -> Flow {
        match frame {
            Some(Ok(ModelMessage::Text(text))) => self.on_model_event(text.as_str()).await,
            Some(Ok(ModelMessage::Close(close))) => {
                let why = close
                    .map(|c| format!("closed by the model ({}: {})", u16::from(c.code), c.reason))
                    .unwrap_or_else(|| "closed by the model".into());
                self.on_model_lost(why);
                Ok(())
            }
            Some(Ok(_)) => Ok(()),
            Some(Err(e)) => {
                self.on_model_lost(e.to_string());
                Ok(())
            }
            None => {
                self.on_model_lost("socket ended".into());
                Ok(())
            }
        }
    }

    async fn on_model_event(&mut self, text: &str) -> Flow {
        let event = match rt::parse_server_event(text) {
            Ok(event) => event,
            Err(e) => {
                self.note_bad_frame("model event", &e);
                return Ok(());
            }
        };
        match event {
            ServerEvent::AudioDelta {
                response_id,
                item_id,
                delta,
            } => {
                if self.dropped_items.contains(&item_id)
                    || response_id
                        .as_ref()
                        .is_some_and(|r| self.dropped_responses.contains(r))
                {
                    return Ok(());
                }
                let bytes = match media::base64_decoded_len(&delta) {
                    Ok(n) => n,
                    Err(e) => {
                        self.note_bad_frame("audio delta", &e);
                        return Ok(());
                    }
                };
                let now = Instant::now();
                // Only the item's first delta allocates: this runs for every chunk of agent audio.
                if !self.agent_offsets.contains_key(&item_id) {
                    // The turn starts where its audio starts playing: after the agent audio queued
                    // before it, which may be seconds after this delta is sent.
                    let wait = self.playout.play_start(now).saturating_duration_since(now);
                    let offset_us = self.clock.now_us(now.into_std()) + wait.as_micros() as u64;
                    self.agent_offsets.insert(item_id.clone(), offset_us / 1000);
                }
                let mark = self.playout.on_sent(&item_id, bytes, now);
                if let Some(rec) = &mut self.recording {
                    rec.agent_sent(&mark, &delta);
                }
                let media_msg = media::media_message(&self.stream_sid, &delta);
                let mark_msg = media::mark_message(&self.stream_sid, &mark);
                // Both frames in one write.
                let sent = async {
                    self.twilio.feed(Message::Text(media_msg.into())).await?;
                    self.twilio.feed(Message::Text(mark_msg.into())).await?;
                    self.twilio.flush().await
                }
                .await;
                sent.map_err(|e| EndReason::TwilioSocket(e.to_string()))
            }
            ServerEvent::SpeechStarted {
                item_id,
                audio_start_ms,
            } => {
                self.caller_speaking = true;
                if let Some(id) = item_id {
                    let offset = self.speech_offset_ms(audio_start_ms);
                    self.caller_offsets.insert(id, offset);
                }
                self.barge_in().await
            }
            ServerEvent::SpeechStopped => {
                self.caller_speaking = false;
                Ok(())
            }
            ServerEvent::ResponseCreated { response_id } => {
                self.response_active = true;
                self.awaiting_response = false;
                self.current_response = response_id;
                Ok(())
            }
            ServerEvent::ResponseDone { status, .. } => {
                self.response_active = false;
                self.current_response = None;
                // Items that ended without a `transcript.done` (cancelled by a barge-in): keep what was said.
                for (item_id, text) in std::mem::take(&mut self.agent_text) {
                    let interrupted = self.dropped_items.contains(&item_id);
                    let offset = self
                        .agent_offsets
                        .remove(&item_id)
                        .unwrap_or_else(|| self.offset_ms());
                    self.add_turn(Speaker::Agent, text, offset, interrupted);
                }
                if status.as_deref() == Some("failed") {
                    self.issue("response_failed", "the model's response failed");
                }
                Ok(())
            }
            ServerEvent::AudioTranscriptDelta { item_id, delta } => {
                self.agent_text.entry(item_id).or_default().push_str(&delta);
                Ok(())
            }
            ServerEvent::AudioTranscriptDone {
                item_id,
                transcript,
            } => {
                self.agent_text.remove(&item_id);
                let interrupted = self.dropped_items.contains(&item_id);
                let offset = self
                    .agent_offsets
                    .remove(&item_id)
                    .unwrap_or_else(|| self.offset_ms());
                self.add_turn(Speaker::Agent, transcript, offset, interrupted);
                Ok(())
            }
            ServerEvent::InputTranscriptionCompleted {
                item_id,
                transcript,
            } => {
                let offset = self
                    .caller_offsets
                    .remove(&item_id)
                    .unwrap_or_else(|| self.offset_ms());
                self.add_turn(Speaker::Caller, transcript, offset, false);
                Ok(())
            }
            ServerEvent::InputTranscriptionFailed { message, .. } => {
                self.issue("transcription_failed", &message);
                Ok(())
            }
            ServerEvent::OutputItemAdded {
                item_id: Some(item_id),
                kind: Some(kind),
                name: Some(name),
            } if kind == "function_call" => {
                self.function_names.insert(item_id, name);
                Ok(())
            }
            ServerEvent::FunctionCallDone {
                call_id,
                name,
                item_id,
                arguments,
            } => {
                let name = name.or_else(|| item_id.and_then(|id| self.function_names.remove(&id)));
                self.on_function_call(&call_id, name.as_deref().unwrap_or(""), &arguments)
                    .await;
                Ok(())
            }
            ServerEvent::Error(error) => {
                let code = error.code.unwrap_or_else(|| "error".into());
                let message = error.message.unwrap_or_default();
                warn!(call_sid = %self.call_sid, %code, %message, "model error event");
                self.issue(&code, &message);
                Ok(())
            }
            ServerEvent::ItemTruncated {
                item_id,
                audio_end_ms,
            } => {
                debug!(%item_id, audio_end_ms, "model confirmed truncation");
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn add_turn(&mut self, speaker: Speaker, text: String, offset_ms: u64, interrupted: bool) {
        if text.trim().is_empty() {
            return;
        }
        self.turns.push(Turn {
            speaker,
            text: text.clone(),
        });
        self.deps.emit(CallEvent::Transcript {
            call_sid: self.call_sid.clone(),
            speaker,
            text,
            offset_ms,
            interrupted,
            at_ms: now_ms(),
        });
    }

    /// The caller talked over the agent: stop Twilio's playback at once, cut the model's item to what
    /// was actually heard, and ignore whatever of the interrupted response is still in flight.
    async fn barge_in(&mut self) -> Flow {
        let now = Instant::now();
        let had_queued = !self.playout.is_drained();
        let cut = self.playout.interrupt(now, self.response_active);
        if had_queued || cut.is_some() {
            self.send_twilio(media::clear_message(&self.stream_sid))
                .await?;
            if let Some(rec) = &mut self.recording {
                rec.clear();
            }
        }
        if let Some(response) = self
            .current_response
            .clone()
            .filter(|_| self.response_active)
        {
            push_bounded(&mut self.dropped_responses, response);
        }
        if let Some(cut) = cut {
            debug!(item_id = %cut.item_id, heard_ms = cut.audio_end_ms, sent_ms = cut.sent_ms, "barge-in");
            push_bounded(&mut self.dropped_items, cut.item_id.clone());
            self.send_model(rt::item_truncate(&cut.item_id, cut.audio_end_ms))
                .await;
            self.deps.emit(CallEvent::BargeIn {
                call_sid: self.call_sid.clone(),
                item_id: cut.item_id,
                heard_ms: cut.audio_end_ms,
                at_ms: now_ms(),
            });
        }
        Ok(())
    }

    async fn on_function_call(&mut self, call_id: &str, name: &str, arguments: &str) {
        if name == END_CALL_TOOL {
            info!(call_sid = %self.call_sid, %arguments, "agent ended the call");
            self.end_deadline = Some(Instant::now() + END_CALL_GRACE);
            return;
        }
        if name == TRANSFER_CALL_TOOL {
            let output = match (&self.session.transfer_number, &self.deps.actions) {
                (Some(number), Some(_)) => {
                    info!(call_sid = %self.call_sid, %arguments, "agent asked to transfer the call");
                    self.transfer_to = Some(number.clone());
                    serde_json::json!({"status": "transferring"})
                }
                _ => serde_json::json!({"error": "transfer is not available on this call"}),
            };
            self.send_model(rt::function_output_create(call_id, &output.to_string()))
                .await;
            if self.transfer_to.is_none() && !self.response_active {
                self.send_model(rt::response_create(None)).await;
            }
            return;
        }
        warn!(call_sid = %self.call_sid, tool = %short(name), "model called a tool with no handler");
        let output =
            serde_json::json!({"error": format!("tool {name:?} is not available")}).to_string();
        self.send_model(rt::function_output_create(call_id, &output))
            .await;
        if !self.response_active {
            self.send_model(rt::response_create(None)).await;
        }
    }
}

fn push_bounded(list: &mut VecDeque<String>, value: String) {
    if list.len() >= 16 {
        list.pop_front();
    }
    list.push_back(value);
}

fn short(s: &str) -> String {
    s.chars().take(64).collect()
}

//! The call's task: reads both sockets and the app's commands, hands each event to the pure parts and
//! sends what they return. Nothing here decides protocol questions on its own.

use std::collections::{HashMap, VecDeque};
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine;
use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::call_cost::CallCost;
use super::dropped::DroppedIds;
use super::ending::{Due, EndKind, Ending};
use super::frames::{Chunk, FrameAligner, Ready};
use super::gaps::GapFiller;
use super::lifecycle::{Lifecycle, Lost, Next, Placement};
use super::model_setup::{Setup, SetupStep};
use super::operator::{self, Hold};
use super::sequencer::{Outgoing, Purpose, Request, Sequencer};
use super::sources::{Due as SourceSet, Source, Sources};
use super::tool_calls::{FunctionCall, ToolCalls};
use super::transcript::{Transcript, Turn};
use super::turn_latency::TurnLatency;
use super::{close_twilio, BridgeDeps, EndReason, MediaSocket};
use crate::audio::microphone::MicFrame;
use crate::calls::approvals::PendingApproval;
use crate::calls::control_channel::ControlReceiver;
use crate::calls::playout::{MarkOutcome, Placed};
use crate::calls::registry::{CallControl, OperatorRefusal};
use crate::calls::timeline::{CallTimeline, SessionAudio};
use crate::costs::budget::{BudgetScope, BudgetStep};
use crate::costs::{pico_to_usd, CostSource, Metered};
use crate::events::{CallEvent, HandBackReason, ToolOutcome};
use crate::realtime::client::{ConnectFuture, ModelSocket, RealtimeError};
use crate::realtime::events::{self as rt, ApiError, Role, ServerEvent};
use crate::realtime::session::{Greeting, OptionalField, Responding, SessionConfig, TurnDetection};
use crate::realtime::tools::{built_in, BuiltIn};
use crate::recording::recorder::decode_payload;
use crate::telephony::twilio::media::{self, Inbound, MediaError, BYTES_PER_MS};
use crate::tools::{FailureKind, ToolFailure, ToolRequest};
use crate::types::{now_ms, Speaker, StreamUs, TokenUsage};
use crate::wire::ws::{Incoming, TextBytes, WsError};

/// Turns kept for seeding a fresh session (the newest ones): all the transcript keeps.
const MAX_SEED_TURNS: usize = super::transcript::KEPT_TURNS;
/// How long the agent's goodbye may keep playing after it called `end_call`.
const END_CALL_GRACE: Duration = Duration::from_secs(15);
/// How long a voicemail may take to say.
const VOICEMAIL_GRACE: Duration = Duration::from_secs(60);
/// How long the goodbye at the call's maximum length may take (cancelling what runs, then one sentence).
const TIME_LIMIT_GRACE: Duration = Duration::from_secs(20);
/// What the agent is told when the call reaches its maximum length.
const TIME_LIMIT_INSTRUCTIONS: &str = "The call has reached its maximum length and ends now. \
    In one short sentence, tell the caller that the time for this call is up, thank them and say \
    goodbye. Do not ask anything.";
/// What the agent is told when the call comes near a budget.
const WRAP_UP_NOTE: &str = "The budget for this call is nearly used up. Bring the conversation to \
    a close now: answer what is open in a sentence or two, then thank the caller and say goodbye. \
    Do not start anything new.";
/// How long the apology update may take before the stream is closed anyway.
const APOLOGY_TIMEOUT: Duration = Duration::from_secs(5);
/// Bad frames logged individually per call before logging only every 1000th (a flood must not flood logs).
const BAD_FRAME_LOG_LIMIT: u64 = 20;
/// How long the line may stay quiet while a tool runs before the agent says a few words.
const KEEPALIVE_AFTER: Duration = Duration::from_secs(2);
/// A tool result in a call event is cut to this many characters (the model gets all of it).
const EVENT_OUTPUT_CHARS: usize = 2000;
/// Client event ids are `vb_<n>`, counted per call.
const EVENT_ID_PREFIX: &str = "vb_";
/// Client events remembered to tie an `error` back to what caused it.
const SENT_EVENTS_KEPT: usize = 64;

/// What a client event was, for errors that name its `event_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    SessionUpdate,
    ResponseCreate,
    ResponseCancel,
    Truncate,
    ItemCreate,
}

/// One model session socket, split, with where its configuration stands.
struct ModelLink {
    /// Not split: the call's one task reads and writes it, so no lock is taken per message.
    socket: ModelSocket,
    setup: Setup,
    /// Configured to only listen (the operator held the call when it was set up).
    listen_only: bool,
}

impl ModelLink {
    async fn send(&mut self, text: String) -> Result<(), String> {
        self.socket
            .send_text(&text)
            .await
            .map_err(|e| e.to_string())
    }

    /// Closes the session so it stops costing money; does not wait for the server.
    async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_millis(500), async {
            if self.socket.close(1000, "").await.is_ok() {
                let _ = self.socket.shutdown().await;
            }
        })
        .await;
    }
}

/// The operator holds the call: their microphone's frames, and where they play.
struct OperatorLink {
    hold: Hold,
    audio: mpsc::Receiver<MicFrame>,
    /// Microphone capture → frame handed to Twilio, per frame (for the log at hand-back).
    latency: LatencyStats,
}

/// Smallest, largest and mean of a series of delays.
#[derive(Debug, Default)]
struct LatencyStats {
    count: u64,
    total_us: u64,
    max_us: u64,
}

impl LatencyStats {
    fn add(&mut self, delay: Duration) {
        let us = delay.as_micros() as u64;
        self.count += 1;
        self.total_us += us;
        self.max_us = self.max_us.max(us);
    }

    fn mean_ms(&self) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        self.total_us as f64 / self.count as f64 / 1000.0
    }
}

/// A tool run's end, from its task to the call's.
struct ToolDone {
    call_id: String,
    result: Result<String, ToolFailure>,
    outcome: ToolOutcome,
    approved_by: Option<String>,
}

/// A tool the call is running (or waiting to run for the operator's approval).
struct RunningTool {
    tool: String,
    arguments: String,
    started: Instant,
    offset_ms: u64,
    /// The model session the call was made on: its output can only go to that one.
    session: u64,
    task: tokio::task::AbortHandle,
}

/// A call's state. Lives only inside its task.
pub(super) struct Call {
    deps: Arc<BridgeDeps>,
    session: Arc<SessionConfig>,
    call_sid: String,
    stream_sid: String,
    /// `stream_sid` as it goes into a JSON string, escaped once.
    stream_sid_json: String,
    /// Twilio's media socket, read and written by this task alone (not split: no lock per message).
    twilio: MediaSocket,
    /// Boxed, like `standby`: a link is 1.4 KiB (the TLS stream), and every call held two slots of
    /// it inline, mostly empty.
    model: Option<Box<ModelLink>>,
    /// A fresh session waiting for a quiet moment to take over (rollover); read all the while.
    standby: Option<Box<ModelLink>>,
    /// The connection on its way (why it was opened is the lifecycle's).
    connecting: Option<ConnectFuture>,
    lifecycle: Lifecycle,
    /// The current session came from a reconnect or a mid-turn swap and needs the conversation so far.
    needs_seed: bool,
    /// The current session was opened to replace a dropped one (an issue is reported once it is ready).
    reconnecting: bool,
    /// The call's one clock and playout model: barge-in cuts, transcript offsets, the recording.
    timeline: CallTimeline,
    /// Caller audio sent to the current model session, to place its `speech_started` on the stream.
    session_audio: SessionAudio,
    gaps: GapFiller,
    frames: FrameAligner,
    transcript: Transcript,
    sequencer: Sequencer,
    tools: ToolCalls,
    ending: Ending,
    /// When the call reaches its maximum length; `None` once it did.
    limit_at: Option<Instant>,
    /// Items and responses cut by barge-in: their late deltas are dropped.
    dropped_items: DroppedIds,
    dropped_responses: DroppedIds,
    caller_speaking: bool,
    greeted: bool,
    /// Caller audio held while no configured session takes it: (stream time, bytes, base64 payload).
    held_audio: VecDeque<(StreamUs, usize, String)>,
    /// A recorded caller frame's μ-law, decoded once for the file and listen-in (reused per frame).
    caller_mulaw: Vec<u8>,
    next_event: u64,
    /// Kept by number (the id is `vb_<n>`): 64 strings a call were 4 KiB.
    sent: VecDeque<(u64, Sent)>,
    bad_frames: u64,
    /// The call's recording and listen-in tap (never blocks; see `recording::recorder`).
    pub(super) recording: Option<crate::recording::CallRecording>,
    /// The operator holds the call (took it over with their microphone).
    operator: Option<OperatorLink>,
    /// Tools running for this call, by `call_id`, and where their tasks report.
    running_tools: HashMap<String, RunningTool>,
    /// Boxed: a channel keeps a block of 32 slots from the start, 2.8 KiB a call of `ToolDone`s for
    /// calls that mostly run no tool.
    tool_tx: mpsc::Sender<Box<ToolDone>>,
    tool_rx: mpsc::Receiver<Box<ToolDone>>,
    /// When the agent says a few words if the line is still quiet while a tool runs.
    keepalive_at: Option<Instant>,
    /// Counts model sessions installed (a function call's output only fits the session that made it).
    session_number: u64,
    /// Turn latency as the caller hears it.
    latency: TurnLatency,
    /// What the call has cost so far, and its budgets.
    cost: CallCost,
    /// Which of the loop's sources woke it. Whoever puts a source in place calls `poll_all`.
    sources: Sources,
}

/// A frame from a model socket, or its end.
type ModelFrame = Option<Result<Incoming, WsError>>;

/// What woke the call's loop, taken from its source.
enum Event {
    Twilio(Option<Result<Incoming, WsError>>),
    Model(ModelFrame),
    Standby(ModelFrame),
    /// The socket comes boxed: inline it would widen every event by 1.4 KiB.
    Connected(Result<Box<ModelSocket>, RealtimeError>),
    Operator(Option<MicFrame>),
    ToolDone(Box<ToolDone>),
    Control(Option<CallControl>),
    Timer,
}

/// The loop's one timer as a source: polled once after each reset, then only when it fires.
struct TimerSlot<'a> {
    sleep: Pin<&'a mut tokio::time::Sleep>,
    armed: bool,
    polled: &'a mut bool,
}

/// A model socket frame as the bridge needs it: text to parse, nothing to do (pings, pongs, binary), or
/// the socket is gone and why.
fn read_frame(frame: ModelFrame) -> Result<Option<TextBytes>, String> {
    match frame {
        Some(Ok(Incoming::Text(text))) => Ok(Some(text)),
        Some(Ok(Incoming::Close(close))) => Err(close
            .map(|(code, reason)| format!("closed by the model ({code}: {reason})"))
            .unwrap_or_else(|| "closed by the model".into())),
        Some(Ok(Incoming::Binary(_))) => Ok(None),
        Some(Err(e)) => Err(e.to_string()),
        None => Err("socket ended".into()),
    }
}

type Flow = Result<(), EndReason>;

/// Base64 of `bytes` bytes of μ-law silence (0xFF): "////" encodes three.
fn silence_b64(bytes: usize) -> String {
    let mut s = "////".repeat(bytes / 3);
    match bytes % 3 {
        1 => s.push_str("/w=="),
        2 => s.push_str("//8="),
        _ => {}
    }
    s
}

impl Call {
    pub(super) fn new(
        deps: Arc<BridgeDeps>,
        session: Arc<SessionConfig>,
        call_sid: String,
        stream_sid: String,
        twilio: MediaSocket,
    ) -> Self {
        let now = Instant::now();
        let settings = &deps.settings;
        // The lifecycle starts with the first session on its way (`run` opens it).
        let lifecycle = Lifecycle::new(
            settings.reconnect_attempts,
            settings.reconnect_backoff,
            settings.session_rollover_after,
            now,
        );
        let transcription = session.transcription.is_some();
        let limit_at = now.checked_add(settings.max_call_length);
        let (tool_tx, tool_rx) = mpsc::channel(16);
        Call {
            session,
            deps,
            call_sid,
            stream_sid_json: media::json_escaped(&stream_sid).into_owned(),
            stream_sid,
            twilio,
            model: None,
            standby: None,
            connecting: None,
            lifecycle,
            needs_seed: false,
            reconnecting: false,

            timeline: CallTimeline::new(now),
            session_audio: SessionAudio::new(),
            gaps: GapFiller::new(),
            frames: FrameAligner::new(),
            transcript: Transcript::new(transcription),
            sequencer: Sequencer::new(),
            tools: ToolCalls::new(),
            ending: Ending::Open,
            limit_at,
            dropped_items: DroppedIds::default(),
            dropped_responses: DroppedIds::default(),
            caller_speaking: false,
            greeted: false,
            held_audio: VecDeque::new(),
            caller_mulaw: Vec::new(),
            next_event: 0,
            sent: VecDeque::new(),
            bad_frames: 0,
            recording: None,
            operator: None,
            running_tools: HashMap::new(),
            tool_tx,
            tool_rx,
            keepalive_at: None,
            session_number: 0,
            latency: TurnLatency::new(),
            cost: CallCost::new(),
            sources: Sources::new(),
        }
    }

    /// The call's loop. `self` comes boxed: an async fn keeps its by-value receiver twice in its state
    /// (the argument and the binding), which was 1.6 KiB twice for every call.
    pub(super) async fn run(mut self: Box<Self>, mut control: ControlReceiver) -> EndReason {
        self.start_connecting(Duration::ZERO);
        let timer = tokio::time::sleep_until(Instant::now());
        tokio::pin!(timer);
        let mut armed: Option<Instant> = None;
        // Whether the armed timer has been polled since it was set: from then on it holds its
        // source's waker, and is polled again only once that fires.
        let mut timer_polled = false;
        let reason = loop {
            if let Err(reason) = self.between_events().await {
                break reason;
            }
            // One timer for every deadline (rollover, setup, the server's answer, the goodbye), re-armed
            // only when the earliest one changes: no timer registration per audio frame.
            let deadline = self.next_deadline();
            if deadline != armed {
                armed = deadline;
                if let Some(at) = deadline {
                    timer.as_mut().reset(at);
                    timer_polled = false;
                }
            }
            let event = poll_fn(|cx| {
                let timer = TimerSlot {
                    sleep: timer.as_mut(),
                    armed: armed.is_some(),
                    polled: &mut timer_polled,
                };
                self.poll_sources(cx, &mut control, timer)
            })
            .await;
            let step = match event {
                Event::Twilio(frame) => self.on_twilio_frame(frame).await,
                Event::Model(frame) => self.on_model_frame(frame).await,
                Event::Standby(frame) => self.on_standby_frame(frame).await,
                // Boxed, as `shut_down` below: rare, and its state would otherwise sit inline in
                // every call's task for the whole call.
                Event::Connected(result) => Box::pin(self.on_connected(result)).await,
                Event::Operator(frame) => self.on_operator_frame(frame).await,
                Event::ToolDone(done) => {
                    self.on_tool_done(*done).await;
                    Ok(())
                }
                Event::Control(command) => self.on_control(command).await,
                Event::Timer => {
                    armed = None;
                    self.on_timer().await
                }
            };
            if let Err(reason) = step {
                break reason;
            }
        };
        // A transfer by hand announced just before Twilio stopped the stream may still be queued.
        while let Ok(command) = control.try_recv() {
            self.on_transfer_control(*command);
        }
        let reason = match (reason, self.ending.transferring()) {
            (EndReason::CallerHungUp, Some(number)) => EndReason::Transferred(number.to_string()),
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
        Box::pin(self.shut_down(&reason)).await;
        // After last words the line must not stay open at Twilio, whatever TwiML follows the stream.
        if let (
            EndReason::VoicemailLeft | EndReason::MaxLength | EndReason::OverBudget,
            Some(actions),
        ) = (&reason, &self.deps.actions)
        {
            tokio::spawn(actions.hang_up(&self.call_sid));
        }
        reason
    }

    /// The earliest deadline the call waits for.
    fn next_deadline(&self) -> Option<Instant> {
        let setup = |link: &Option<Box<ModelLink>>| link.as_ref().and_then(|l| l.setup.deadline());
        [
            self.lifecycle.rollover_at(),
            setup(&self.model),
            setup(&self.standby),
            self.sequencer.deadline(),
            self.ending.deadline(),
            self.limit_at,
            self.keepalive_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Some deadline passed: the goodbye's grace, the call's maximum length, the rollover, a session's
    /// setup, or the wait for the server's answer (that one is handled in `between_events`).
    async fn on_timer(&mut self) -> Flow {
        let now = Instant::now();
        if self.ending.deadline().is_some_and(|d| d <= now) {
            return Err(self.ending.deadline_reason());
        }
        if self.keepalive_at.is_some_and(|d| d <= now) {
            self.keepalive_at = None;
            self.say_still_working().await;
        }
        if self.limit_at.is_some_and(|d| d <= now) {
            self.limit_at = None;
            self.on_time_limit().await?;
        }
        if self.lifecycle.rollover_at().is_some_and(|d| d <= now) {
            let next = self.lifecycle.on_rollover_due(self.standby.is_some());
            if next != Next::Wait {
                info!("opening a fresh model session before the session cap");
            }
            self.follow(next)?;
        }
        self.on_setup_timeout().await
    }

    /// Which source has something, polling only those that woke (see `sources`). A source that gives
    /// something rare (anything but a socket's frame) makes every source due next time: its handler may
    /// put new ones in place.
    fn poll_sources(
        &mut self,
        cx: &mut Context<'_>,
        control: &mut ControlReceiver,
        timer: TimerSlot<'_>,
    ) -> Poll<Event> {
        let mut due = self.sources.due(cx.waker());
        if timer.armed && !*timer.polled {
            // Reset since it was last polled: it must be polled to register again.
            due = due.with(Source::Timer);
        }
        let TimerSlot {
            mut sleep,
            armed,
            polled,
        } = timer;
        // Sources found with nothing in their slot (see `Sources::settle`).
        let mut vacant = SourceSet::NONE;
        for source in self.sources.order() {
            if !due.contains(source) {
                continue;
            }
            due = due.without(source);
            let mut cx = Context::from_waker(self.sources.waker(source));
            let cx = &mut cx;
            let event = match source {
                Source::Twilio => self.twilio.poll_next(cx).map(Event::Twilio),
                Source::Model => match self.model.as_mut() {
                    Some(link) => link.socket.poll_next(cx).map(Event::Model),
                    None => {
                        vacant = vacant.with(source);
                        Poll::Pending
                    }
                },
                Source::Standby => match self.standby.as_mut() {
                    Some(link) => link.socket.poll_next(cx).map(Event::Standby),
                    None => {
                        vacant = vacant.with(source);
                        Poll::Pending
                    }
                },
                Source::Connecting => match self.connecting.as_mut().map(|f| f.as_mut().poll(cx)) {
                    Some(Poll::Ready(result)) => {
                        self.connecting = None;
                        Poll::Ready(Event::Connected(result.map(Box::new)))
                    }
                    _ => Poll::Pending,
                },
                Source::Operator => match self.operator.as_mut() {
                    Some(link) => link.audio.poll_recv(cx).map(Event::Operator),
                    None => {
                        vacant = vacant.with(source);
                        Poll::Pending
                    }
                },
                // Polled only while a tool runs. (A tool aborted as the call ends may leave a result
                // behind; results for tools not running are ignored anyway.)
                Source::Tools if !self.running_tools.is_empty() => match self.tool_rx.poll_recv(cx)
                {
                    Poll::Ready(Some(done)) => Poll::Ready(Event::ToolDone(done)),
                    // The call holds a sender: the channel cannot close.
                    Poll::Ready(None) | Poll::Pending => Poll::Pending,
                },
                Source::Tools => Poll::Pending,
                Source::Control => control.poll_recv(cx).map(|c| Event::Control(c.map(|c| *c))),
                Source::Timer if armed => {
                    *polled = true;
                    sleep.as_mut().poll(cx).map(|()| Event::Timer)
                }
                Source::Timer => Poll::Pending,
            };
            if let Poll::Ready(event) = event {
                match event {
                    // Whether a vacant source woke it does not matter here: the loop looks again after
                    // handling the event, and `settle` has made every source due for that look.
                    Event::Twilio(_) | Event::Model(_) => {
                        let _ = self.sources.settle(Some(source), due, vacant);
                    }
                    _ => self.sources.poll_all(),
                }
                return Poll::Ready(event);
            }
        }
        if self.sources.settle(None, due, vacant) {
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }

    async fn on_control(&mut self, command: Option<CallControl>) -> Flow {
        match command {
            Some(CallControl::HangUp) | None => Err(EndReason::EndedByApp),
            Some(CallControl::LeaveVoicemail(message)) => self.leave_voicemail(&message).await,
            Some(CallControl::Whisper {
                text,
                say_now,
                done,
            }) => {
                let outcome = self.whisper(text, say_now).await;
                let _ = done.send(outcome);
                Ok(())
            }
            Some(CallControl::TakeOver {
                device,
                audio,
                done,
            }) => match self.take_over(device, audio).await {
                Ok(outcome) => {
                    let _ = done.send(outcome);
                    Ok(())
                }
                Err(end) => Err(end),
            },
            Some(CallControl::HandBack { done }) => {
                let outcome = match self.operator.is_some() {
                    true => {
                        self.hand_back(HandBackReason::Operator).await;
                        Ok(())
                    }
                    false => Err(OperatorRefusal::NotHeld),
                };
                let _ = done.send(outcome);
                Ok(())
            }
            Some(other) => {
                self.on_transfer_control(other);
                Ok(())
            }
        }
    }

    /// The app's transfer by hand: the REST redirect is the app's; the call only has to know why its
    /// stream is about to stop.
    fn on_transfer_control(&mut self, command: CallControl) {
        match command {
            CallControl::Transferred(number) => {
                info!(call_sid = %self.call_sid, "the app is transferring the call");
                self.ending = Ending::Transferring { number };
            }
            CallControl::TransferFailed => {
                if self.ending.transferring().is_some() {
                    self.ending = Ending::Open;
                }
            }
            CallControl::Whisper { done, .. }
            | CallControl::TakeOver { done, .. }
            | CallControl::HandBack { done } => {
                let _ = done.send(Err(OperatorRefusal::Ending));
            }
            CallControl::HangUp | CallControl::LeaveVoicemail(_) => {}
        }
    }

    // ---- The operator ------------------------------------------------------------------------

    /// A private instruction from the operator: a `system` item the caller never hears; with
    /// `say_now`, a sequenced response that says it in the agent's voice (not while the operator holds
    /// the call: the agent is silent then).
    async fn whisper(&mut self, text: String, say_now: bool) -> Result<(), OperatorRefusal> {
        if self.ending.saying_last_words() || self.ending.transferring().is_some() {
            return Err(OperatorRefusal::Ending);
        }
        if say_now && self.operator.is_some() {
            return Err(OperatorRefusal::AgentSilenced);
        }
        let offset = self.offset_ms();
        info!(call_sid = %self.call_sid, say_now, "operator whisper");
        // Kept in the transcript (as a whisper) so a replacement session is told it too.
        self.transcript.note(Speaker::Whisper, text.clone(), offset);
        let id = self.event_id(Sent::ItemCreate);
        self.send_model(rt::message_item_create(
            &id,
            Role::System,
            &operator::whisper_note(&text),
        ))
        .await;
        self.deps.emit(CallEvent::Whisper {
            call_sid: self.call_sid.clone(),
            text: text.clone(),
            say_now,
            offset_ms: offset,
            at_ms: now_ms(),
        });
        if say_now {
            let instructions = operator::say_now_instructions(&self.session.instructions, &text);
            self.request_response(Request {
                purpose: Purpose::OperatorLine,
                params: Some(json!({"instructions": instructions})),
            })
            .await;
        }
        Ok(())
    }

    /// The operator takes the call: the agent stops at once (as on a barge-in: `clear`, the running
    /// response cancelled and cut to what was heard), the model only listens from now on, and the
    /// operator's frames go to the caller. The microphone is already open (the caller of this opened it).
    async fn take_over(
        &mut self,
        device: String,
        audio: mpsc::Receiver<MicFrame>,
    ) -> Result<Result<(), OperatorRefusal>, EndReason> {
        if self.operator.is_some() {
            return Ok(Err(OperatorRefusal::AlreadyHeld));
        }
        if self.ending.saying_last_words() || self.ending.transferring().is_some() {
            return Ok(Err(OperatorRefusal::Ending));
        }
        info!(call_sid = %self.call_sid, "the operator takes the call over");
        self.latency.on_speech_started();
        if self.ending.on_barge_in() {
            info!(call_sid = %self.call_sid, "the operator took over during the goodbye: the call goes on");
        }
        self.sequencer.drop_queued();
        if let Some(Outgoing::Cancel) = self.sequencer.cancel() {
            let id = self.event_id(Sent::ResponseCancel);
            self.send_model(rt::response_cancel(&id)).await;
        }
        self.cut_playback(None).await?;
        let now_us = self.timeline.now_us(Instant::now());
        self.operator = Some(OperatorLink {
            hold: Hold::new(device.clone(), now_us),
            audio,
            latency: LatencyStats::default(),
        });
        self.sources.poll_all();
        self.send_responding(Responding::ListenOnly).await;
        self.deps.emit(CallEvent::OperatorTookOver {
            call_sid: self.call_sid.clone(),
            device,
            offset_ms: now_us / 1000,
            at_ms: now_ms(),
        });
        Ok(Ok(()))
    }

    /// Switches whether the model answers on its own (a `session.update` of the turn detection only).
    async fn send_responding(&mut self, responding: Responding) {
        if let Some(link) = self.model.as_mut() {
            link.listen_only = responding == Responding::ListenOnly;
        }
        let id = self.event_id(Sent::SessionUpdate);
        self.send_model(rt::session_update(
            &id,
            self.session.responding_update(responding),
        ))
        .await;
    }

    /// A frame from the operator's microphone goes to the caller, and to the recording's agent channel
    /// where it plays; `None`: the microphone stopped, and the call goes back to the agent.
    async fn on_operator_frame(&mut self, frame: Option<MicFrame>) -> Flow {
        let Some(frame) = frame else {
            warn!(call_sid = %self.call_sid, "the operator's microphone stopped; the agent takes the call back");
            self.issue(
                "microphone_lost",
                "the operator's microphone stopped; the agent has the call again",
            );
            self.hand_back(HandBackReason::MicrophoneLost).await;
            return Ok(());
        };
        let Some(link) = self.operator.as_mut() else {
            return Ok(());
        };
        let now = Instant::now();
        let (at_us, ended) = link.hold.on_frame(&frame.mulaw, self.timeline.now_us(now));
        let payload = base64::engine::general_purpose::STANDARD.encode(frame.mulaw);
        self.send_twilio(media::media_message(&self.stream_sid, &payload))
            .await?;
        if let Some(link) = self.operator.as_mut() {
            link.latency.add(frame.captured_at.elapsed());
        }
        if let Some(rec) = &mut self.recording {
            rec.operator(at_us, &frame.mulaw);
        }
        if let Some(turn) = ended {
            self.operator_turn(turn);
            self.add_operator_turn_to_model(turn).await;
        }
        Ok(())
    }

    /// An operator turn into the transcript (and the seeds of any replacement session).
    fn operator_turn(&mut self, turn: operator::OperatorTurn) {
        if let Some(turn) = self
            .transcript
            .note(Speaker::Operator, turn.note(), turn.offset_ms)
        {
            self.publish_turn(turn);
        }
    }

    /// The model hears of the operator's turn as it ends, so it sits among the caller's turns in the
    /// order they happened (the API cannot take assistant audio: it is text).
    async fn add_operator_turn_to_model(&mut self, turn: operator::OperatorTurn) {
        let id = self.event_id(Sent::ItemCreate);
        self.send_model(rt::message_item_create(&id, Role::Assistant, &turn.note()))
            .await;
    }

    /// The call goes back to the agent: the operator's last turn, a note that a human handled part of
    /// the call, automatic responses again, and the agent's next response (unless the caller is
    /// talking: then the model answers them when they stop, as usual).
    async fn hand_back(&mut self, reason: HandBackReason) {
        let Some(mut link) = self.operator.take() else {
            return;
        };
        let now_us = self.timeline.now_us(Instant::now());
        if let Some(turn) = link.hold.finish() {
            self.operator_turn(turn);
            self.add_operator_turn_to_model(turn).await;
        }
        let note = operator::hand_back_note(link.hold.held_for(now_us), link.hold.turns().len());
        let id = self.event_id(Sent::ItemCreate);
        self.send_model(rt::message_item_create(&id, Role::System, &note))
            .await;
        self.send_responding(Responding::Auto).await;
        self.operator_released(&link, reason, now_us);
        let answer_now = matches!(
            reason,
            HandBackReason::Operator | HandBackReason::MicrophoneLost
        );
        if answer_now && !self.caller_speaking {
            self.request_response(Request {
                purpose: Purpose::FollowUp,
                params: None,
            })
            .await;
        }
    }

    /// Reports the end of the operator's hold.
    fn operator_released(&self, link: &OperatorLink, reason: HandBackReason, now_us: StreamUs) {
        info!(
            call_sid = %self.call_sid,
            reason = reason.as_str(),
            held_ms = link.hold.held_for(now_us).as_millis() as u64,
            frames = link.hold.frames(),
            mic_to_twilio_mean_ms = link.latency.mean_ms(),
            mic_to_twilio_max_ms = link.latency.max_us as f64 / 1000.0,
            "the operator handed the call back"
        );
        self.deps.emit(CallEvent::OperatorHandedBack {
            call_sid: self.call_sid.clone(),
            reason,
            turns: link.hold.turns().len(),
            offset_ms: now_us / 1000,
            at_ms: now_ms(),
        });
    }

    /// A machine took the call and its greeting is over: cut whatever the agent was saying, stop
    /// listening to the machine, say the message, and end once it has played.
    async fn leave_voicemail(&mut self, message: &str) -> Flow {
        info!(call_sid = %self.call_sid, "leaving a voicemail");
        let instructions = format!(
            "A voicemail system is recording now. Say exactly this message, then stop: {message}"
        );
        self.say_last_words(EndKind::VoicemailLeft, VOICEMAIL_GRACE, instructions)
            .await
    }

    /// The call reached its maximum length (a cap that protects the bill): the agent says goodbye
    /// and the call ends once that has played (or after [`TIME_LIMIT_GRACE`]); the caller can no
    /// longer keep it going. A voicemail or a transfer under way ends the call anyway.
    async fn on_time_limit(&mut self) -> Flow {
        if self.ending.saying_last_words()
            || self.ending.transferring().is_some()
            || matches!(self.ending, Ending::TransferAfterPlayout { .. })
        {
            return Ok(());
        }
        let limit = self.deps.settings.max_call_length;
        info!(call_sid = %self.call_sid, limit_secs = limit.as_secs(), "the call reached its maximum length; saying goodbye");
        self.deps.emit(CallEvent::CallCapped {
            call_sid: self.call_sid.clone(),
            cap: crate::events::CallCap::CallLength,
            message: format!(
                "The call reached its maximum length ({}); the agent says goodbye.",
                describe_length(limit)
            ),
            from: None,
            to: None,
            at_ms: now_ms(),
        });
        self.say_last_words(
            EndKind::TimeLimit,
            TIME_LIMIT_GRACE,
            TIME_LIMIT_INSTRUCTIONS.to_string(),
        )
        .await
    }

    /// Prices what the model reported using, tells the window, and acts on the budgets: near a cap the
    /// agent is told to wrap up, at a cap the call ends with the budget's goodbye line.
    async fn charge(&mut self, source: CostSource, model: &str, usage: Metered) -> Flow {
        let at_ms = now_ms();
        let charge = self.cost.charge(&self.deps.costs, model, &usage, at_ms);
        if charge.newly_unpriced {
            warn!(call_sid = %self.call_sid, %model, "the price table has no price for this model: the call's cost leaves it out");
        }
        self.deps.emit(CallEvent::Cost {
            call_sid: self.call_sid.clone(),
            source,
            model: model.to_string(),
            usage,
            cost_pico: charge.cost.unwrap_or(0),
            cost_usd: pico_to_usd(charge.cost.unwrap_or(0)),
            call_total_usd: pico_to_usd(charge.total),
            priced: charge.cost.is_some(),
            at_ms,
        });
        match charge.step {
            None => Ok(()),
            Some(BudgetStep::WrapUp { scope, spent, cap }) => {
                info!(call_sid = %self.call_sid, ?scope, "near the budget: the agent is told to wrap up");
                let id = self.event_id(Sent::ItemCreate);
                self.send_model(rt::message_item_create(&id, Role::System, WRAP_UP_NOTE))
                    .await;
                self.deps.emit(CallEvent::BudgetWarning {
                    call_sid: self.call_sid.clone(),
                    scope,
                    spent_usd: pico_to_usd(spent),
                    cap_usd: pico_to_usd(cap),
                    at_ms,
                });
                Ok(())
            }
            Some(BudgetStep::Stop { scope, spent, cap }) => {
                self.on_budget_spent(scope, spent, cap).await
            }
        }
    }

    /// A budget is spent: the agent says the goodbye line and the call ends (like the time limit, the
    /// caller cannot keep it going). A voicemail, a goodbye or a transfer under way ends the call anyway.
    async fn on_budget_spent(&mut self, scope: BudgetScope, spent: u64, cap: u64) -> Flow {
        if self.ending.saying_last_words()
            || self.ending.transferring().is_some()
            || matches!(self.ending, Ending::TransferAfterPlayout { .. })
        {
            return Ok(());
        }
        let (cap_kind, which) = match scope {
            BudgetScope::Call => (crate::events::CallCap::CallBudget, "call's"),
            BudgetScope::Day => (crate::events::CallCap::DailyBudget, "day's"),
        };
        info!(call_sid = %self.call_sid, ?scope, "a budget is spent; the agent says the goodbye line");
        self.deps.emit(CallEvent::CallCapped {
            call_sid: self.call_sid.clone(),
            cap: cap_kind,
            message: format!(
                "The {which} budget (${:.4}) was reached at ${:.4}; the agent says the goodbye line.",
                pico_to_usd(cap),
                pico_to_usd(spent)
            ),
            from: None,
            to: None,
            at_ms: now_ms(),
        });
        let goodbye = self.deps.costs.budget().goodbye.clone();
        self.say_last_words(
            EndKind::Budget,
            TIME_LIMIT_GRACE,
            format!("The call must end now. Say exactly this, then stop: {goodbye}"),
        )
        .await
    }

    /// Cuts whatever the agent was saying (except for a budget's goodbye, which follows it), stops
    /// forwarding the other side, has the agent say `instructions` (no tools), and ends the call once
    /// that has played, or at `grace`.
    async fn say_last_words(
        &mut self,
        kind: EndKind,
        grace: Duration,
        instructions: String,
    ) -> Flow {
        if self.operator.is_some() {
            // Last words are the agent's: the operator's microphone leaves the line first.
            let reason = match kind {
                EndKind::TimeLimit => HandBackReason::TimeLimit,
                _ => HandBackReason::CallEnded,
            };
            self.hand_back(reason).await;
        }
        self.ending = Ending::AfterPlayout {
            kind,
            deadline: Instant::now() + grace,
        };
        self.held_audio.clear();
        // A budget's goodbye follows what the agent is saying (it is paid for, and a cut sentence is
        // rude); the other last words interrupt it.
        if kind != EndKind::Budget {
            if let Some(Outgoing::Cancel) = self.sequencer.cancel() {
                let id = self.event_id(Sent::ResponseCancel);
                self.send_model(rt::response_cancel(&id)).await;
            }
            self.cut_playback(None).await?;
        }
        self.request_response(Request {
            purpose: Purpose::LastWords,
            params: Some(json!({"instructions": instructions, "tool_choice": "none"})),
        })
        .await;
        Ok(())
    }

    /// Work that waits for a quiet moment: seeding, swapping in a rolled-over session, ending.
    async fn between_events(&mut self) -> Flow {
        if self.sequencer.deadline().is_some() {
            if let Some(request) = self.sequencer.tick(Instant::now()) {
                self.send_response_create(request).await;
            }
        }
        let ready = self.model_ready();
        if self.needs_seed && ready {
            // A session that was confirmed before it took over (the rollover's, after a drop).
            self.on_session_ready().await;
        }
        let idle = self.sequencer.idle() && self.timeline.is_drained();
        match self.ending.due(idle) {
            Some(Due::End(reason)) => return Err(reason),
            Some(Due::Transfer(number)) => {
                if let Some(actions) = self.deps.actions.clone() {
                    info!(call_sid = %self.call_sid, "transferring the call");
                    match actions.transfer(&self.call_sid, &number).await {
                        Ok(()) => self.ending = Ending::Transferring { number },
                        Err(e) => {
                            warn!(call_sid = %self.call_sid, "transfer failed: {e}");
                            self.issue("transfer_failed", &e);
                        }
                    }
                }
            }
            None => {}
        }
        let quiet = idle && !self.caller_speaking;
        self.arm_keepalive(quiet);
        let standby_ready = self.standby.as_ref().is_some_and(|s| s.setup.confirmed());
        if quiet && standby_ready {
            if let Some(fresh) = self.standby.take() {
                info!(
                    turns = self.transcript.turns().len(),
                    "switching to the fresh model session"
                );
                if let Some(old) = self.install_session(fresh) {
                    tokio::spawn(old.close());
                }
                self.lifecycle.on_swapped(Instant::now());
                self.seed_and_flush().await;
            }
        }
        Ok(())
    }

    async fn shut_down(&mut self, reason: &EndReason) {
        self.cancel_tools();
        if let Some(mut link) = self.operator.take() {
            let now_us = self.timeline.now_us(Instant::now());
            if let Some(turn) = link.hold.finish() {
                self.operator_turn(turn);
            }
            self.operator_released(&link, HandBackReason::CallEnded, now_us);
        }
        // An answer the call ended in the middle of is kept as far as the caller heard it.
        let cut = self.timeline.cut(Instant::now(), true);
        self.record_heard(cut.heard);
        for cut in cut.truncations {
            self.transcript
                .agent_truncated(&cut.item_id, cut.audio_end_ms);
        }
        for turn in self.transcript.response_done() {
            self.publish_turn(turn);
        }
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

    /// Agent audio the timeline says was heard (echoed, or cut mid-chunk) goes to the recording.
    fn record_heard(&mut self, heard: Vec<Placed>) {
        if let Some(rec) = &mut self.recording {
            for placed in heard {
                rec.agent_played(placed.start_us, &placed.audio);
            }
        }
    }

    /// The current session is configured as the call needs it (μ-law both ways).
    fn model_ready(&self) -> bool {
        self.model.as_ref().is_some_and(|m| m.setup.confirmed())
    }

    /// Transcript offset of "now": stream time, the recording's timeline.
    fn offset_ms(&self) -> u64 {
        self.timeline.now_us(Instant::now()) / 1000
    }

    /// Where the caller started speaking, on the stream: `audio_start_ms` is a position in the audio the
    /// current session has received (the VAD reports it after some delay); now if the model gave none.
    fn speech_offset_ms(&self, audio_start_ms: Option<u64>) -> u64 {
        audio_start_ms
            .and_then(|ms| self.session_audio.stream_us(ms))
            .map_or_else(|| self.offset_ms(), |us| us / 1000)
    }

    /// A session becomes the current one: its audio positions and items count from zero, nothing
    /// runs on it yet.
    fn install_session(&mut self, link: Box<ModelLink>) -> Option<Box<ModelLink>> {
        self.session_number += 1;
        self.session_audio = SessionAudio::new();
        self.frames.discard();
        self.timeline.new_session();
        self.sequencer.reset();
        self.tools.on_response_done();
        // The link may come from the standby slot, its socket registered under the standby's waker.
        self.sources.poll_all();
        self.model.replace(link)
    }

    fn note_bad_frame(&mut self, what: &str, error: &dyn std::fmt::Display) {
        self.bad_frames += 1;
        if self.bad_frames <= BAD_FRAME_LOG_LIMIT || self.bad_frames.is_multiple_of(1000) {
            warn!(call_sid = %self.call_sid, count = self.bad_frames, "{what} ignored: {error}");
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

    fn publish_turn(&self, turn: Turn) {
        if turn.placeholder {
            return;
        }
        self.deps.emit(CallEvent::Transcript {
            call_sid: self.call_sid.clone(),
            speaker: turn.speaker,
            text: turn.text,
            offset_ms: turn.offset_ms,
            interrupted: turn.interrupted,
            at_ms: now_ms(),
        });
    }

    /// A fresh client `event_id`, remembered with what it was (`kind`) for errors that name it.
    fn event_id(&mut self, kind: Sent) -> String {
        self.next_event += 1;
        let id = format!("{EVENT_ID_PREFIX}{}", self.next_event);
        if self.sent.len() == SENT_EVENTS_KEPT {
            self.sent.pop_front();
        }
        self.sent.push_back((self.next_event, kind));
        id
    }

    /// The number of an audio append's id (`vb_<n>`): not remembered (there are fifty a second).
    fn append_id(&mut self) -> u64 {
        self.next_event += 1;
        self.next_event
    }

    fn sent_kind(&self, event_id: Option<&str>) -> Option<Sent> {
        let n: u64 = event_id?.strip_prefix(EVENT_ID_PREFIX)?.parse().ok()?;
        self.sent.iter().find(|(e, _)| *e == n).map(|(_, k)| *k)
    }

    // ---- Twilio side -------------------------------------------------------------------------

    async fn send_twilio(&mut self, text: String) -> Flow {
        self.twilio
            .send_text(&text)
            .await
            .map_err(|e| EndReason::TwilioSocket(e.to_string()))
    }

    async fn on_twilio_frame(&mut self, frame: Option<Result<Incoming, WsError>>) -> Flow {
        match frame {
            Some(Ok(Incoming::Text(text))) => self.on_twilio_text(text.as_str()).await,
            Some(Ok(Incoming::Binary(_))) => {
                self.note_bad_frame("binary frame", &"Twilio sends text frames only");
                Ok(())
            }
            Some(Ok(Incoming::Close(_))) | None => Err(EndReason::CallerHungUp),
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
                if self.ending.saying_last_words() {
                    // A machine recording, or a caller whose time is up: nothing they say should make
                    // the agent stop or answer.
                    return Ok(());
                }
                // Recorded: decoded once, which also checks it; else only checked (the model takes
                // the base64 as it came).
                let checked = match self.recording.is_some() {
                    true => media::decode_base64(&media.payload, &mut self.caller_mulaw)
                        .map(<[u8]>::len),
                    false => media::base64_decoded_len(&media.payload),
                };
                let bytes = match checked {
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
                let start_us = self.timeline.caller_frame(timestamp, Instant::now());
                if let Some(rec) = &self.recording {
                    rec.caller(start_us, &self.caller_mulaw);
                }
                let pad_ms = self.gaps.on_frame(timestamp, bytes as u64 / BYTES_PER_MS);
                if pad_ms > 0 {
                    // Twilio sent nothing for a while: the model must hear that silence, or its VAD
                    // and its audio positions drift from the stream.
                    let pad_bytes = (pad_ms * BYTES_PER_MS) as usize;
                    let pad_start = start_us.saturating_sub(pad_ms * 1000);
                    self.send_model_audio(pad_start, pad_bytes, &silence_b64(pad_bytes))
                        .await;
                }
                self.send_model_audio(start_us, bytes, &media.payload).await;
                Ok(())
            }
            Inbound::Mark { mark } => {
                let (outcome, played) = self.timeline.mark(&mark.name, Instant::now());
                self.record_heard(played);
                if outcome == MarkOutcome::Played {
                    self.on_played(&mark.name);
                }
                if outcome == MarkOutcome::Unknown {
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
        if let Some(turn) = self.transcript.note(Speaker::Caller, note.clone(), offset) {
            self.publish_turn(turn);
        }
        let id = self.event_id(Sent::ItemCreate);
        self.send_model(rt::message_item_create(&id, Role::User, &note))
            .await;
        self.request_response(Request {
            purpose: Purpose::FollowUp,
            params: None,
        })
        .await;
    }

    // ---- Model side --------------------------------------------------------------------------

    /// Sends caller audio (`bytes` μ-law bytes from stream time `start_us`), or holds it (bounded)
    /// while no configured session can take it (connecting, reconnecting, confirming).
    async fn send_model_audio(&mut self, start_us: StreamUs, bytes: usize, payload: &str) {
        let ready = self.model_ready();
        if ready && !self.needs_seed {
            self.send_append(start_us, bytes, payload).await;
        } else {
            if self.held_audio.len() >= self.deps.settings.reconnect_buffer_frames {
                self.held_audio.pop_front();
            }
            self.held_audio
                .push_back((start_us, bytes, payload.to_string()));
        }
    }

    /// `input_audio_buffer.append` of caller audio from stream time `start_us`, counted on the session's
    /// timeline (where its `speech_started` positions point).
    async fn send_append(&mut self, start_us: StreamUs, bytes: usize, payload: &str) {
        self.session_audio.on_sent(start_us, bytes);
        let id = self.append_id();
        let Some(link) = self.model.as_mut() else {
            debug!("model not connected; audio dropped");
            return;
        };
        // Framed from its pieces: no string built for the 50 appends a second.
        let mut digits = [0u8; 20];
        let parts = rt::input_audio_append_parts(EVENT_ID_PREFIX, id, &mut digits, payload);
        let sent = match link.socket.queue_text_parts(&parts) {
            Ok(()) => link.socket.flush().await,
            Err(e) => Err(e),
        };
        if let Err(e) = sent {
            self.on_model_lost(format!("send failed: {e}"));
        }
    }

    /// Sends a client event to the current session; a failed send is handled as a dropped socket.
    async fn send_model(&mut self, text: String) {
        let Some(link) = self.model.as_mut() else {
            debug!("model not connected; event dropped");
            return;
        };
        if let Err(e) = link.send(text).await {
            self.on_model_lost(format!("send failed: {e}"));
        }
    }

    /// Asks for a response through the sequencer: sent now if nothing runs, else when it ends.
    async fn request_response(&mut self, request: Request) {
        if self.operator.is_some() && request.purpose != Purpose::LastWords {
            // The operator speaks for the agent now; what the caller says meanwhile is answered by
            // them (the model hears it all and answers after the hand-back).
            debug!(call_sid = %self.call_sid, purpose = ?request.purpose, "response not asked for: the operator holds the call");
            return;
        }
        let ready = self.model_ready();
        if !ready {
            // Kept until the session is ready (see `on_session_ready`).
            self.sequencer.defer(request);
            return;
        }
        if let Some(request) = self.sequencer.request(request) {
            self.send_response_create(request).await;
        }
    }

    async fn send_response_create(&mut self, request: Request) {
        let id = self.event_id(Sent::ResponseCreate);
        let text = rt::response_create(&id, request.params.as_ref());
        self.sequencer.sent(id, request);
        self.send_model(text).await;
    }

    /// Opens a model session after `delay` (the lifecycle already knows why).
    fn start_connecting(&mut self, delay: Duration) {
        let connect = self.deps.connector.connect(&self.session.model);
        let future: ConnectFuture = if delay.is_zero() {
            connect
        } else {
            Box::pin(async move {
                tokio::time::sleep(delay).await;
                connect.await
            })
        };
        self.connecting = Some(future);
        self.sources.poll_all();
    }

    /// Does what the lifecycle decided.
    fn follow(&mut self, next: Next) -> Flow {
        match next {
            Next::Connect { delay, .. } => {
                self.start_connecting(delay);
                Ok(())
            }
            Next::Wait => Ok(()),
            Next::End(why) => Err(EndReason::ModelUnavailable(why)),
        }
    }

    /// The `session.update` for this call without the optional fields a refusal named, and the setup
    /// state that waits for its answer.
    fn session_update(&mut self, dropped: Vec<OptionalField>) -> (Setup, String) {
        let id = self.event_id(Sent::SessionUpdate);
        let mut session = self.session.session_object_without(&dropped);
        if self.operator.is_some() {
            // A session opened while the operator holds the call (a reconnect, a rollover) only listens.
            session["audio"]["input"]["turn_detection"] =
                self.session.turn_detection_object(Responding::ListenOnly);
        }
        let text = rt::session_update(&id, session);
        (Setup::new(id, dropped, Instant::now()), text)
    }

    async fn on_connected(&mut self, result: Result<Box<ModelSocket>, RealtimeError>) -> Flow {
        let socket = match result {
            Ok(socket) => socket,
            Err(e) => return self.on_connect_failed(e),
        };
        let (setup, update) = self.session_update(Vec::new());
        let mut link = Box::new(ModelLink {
            socket: *socket,
            setup,
            listen_only: self.operator.is_some(),
        });
        let opening = self.lifecycle.connecting();
        if let Err(e) = link.send(update).await {
            return self.on_connect_failed(RealtimeError::Connect(e));
        }
        match self.lifecycle.on_connected(self.model.is_some()) {
            // Configured now, seeded at the switch so it gets every turn up to that moment.
            Placement::Standby => {
                self.standby = Some(link);
                self.sources.poll_all();
            }
            Placement::Current { replaces } => {
                self.reconnecting = replaces;
                self.needs_seed = replaces;
                if let Some(old) = self.install_session(link) {
                    tokio::spawn(old.close());
                }
            }
        }
        debug!(call_sid = %self.call_sid, ?opening, "model session connected");
        Ok(())
    }

    fn on_connect_failed(&mut self, error: RealtimeError) -> Flow {
        let opening = self.lifecycle.connecting();
        warn!(call_sid = %self.call_sid, ?opening, "model connection failed: {error}");
        self.issue("model_connect_failed", &error.to_string());
        let next = self
            .lifecycle
            .on_connect_failed(&error, self.model.is_some(), Instant::now());
        self.follow(next)
    }

    /// A session's configuration took too long to confirm.
    async fn on_setup_timeout(&mut self) -> Flow {
        let now = Instant::now();
        let expired = |link: &Option<Box<ModelLink>>| {
            link.as_ref()
                .and_then(|l| l.setup.deadline())
                .is_some_and(|d| d <= now)
        };
        if expired(&self.standby) {
            if let Some(link) = self.standby.take() {
                tokio::spawn(link.close());
            }
            self.issue(
                "model_setup_timeout",
                "the fresh session never confirmed its setup",
            );
            self.lifecycle.on_standby_lost(now);
        }
        if expired(&self.model) {
            if let Some(link) = self.model.take() {
                tokio::spawn(link.close());
            }
            return self.on_connect_failed(RealtimeError::Connect(
                "the session never confirmed its configuration".into(),
            ));
        }
        Ok(())
    }

    /// The current session confirmed μ-law both ways: the conversation so far, held audio, the
    /// greeting and any waiting response can go.
    async fn on_session_ready(&mut self) {
        if self.reconnecting {
            self.reconnecting = false;
            info!(call_sid = %self.call_sid, "model session re-opened");
            self.issue(
                "model_reconnected",
                "model session re-opened with the conversation so far",
            );
        }
        self.lifecycle.on_ready();
        if std::mem::take(&mut self.needs_seed) {
            self.seed_and_flush().await;
        } else {
            self.flush_held_audio().await;
        }
        if !self.greeted {
            self.greeted = true;
            if let Greeting::SpeakFirst { opening_line } = &self.session.greeting {
                // `response.instructions` replaces the session's for this response: repeat the
                // persona so the greeting is said in character.
                let instructions = format!(
                    "{}\n\nThe call has just been answered. Greet the caller now by saying: {opening_line}",
                    self.session.instructions
                );
                self.request_response(Request {
                    purpose: Purpose::Greeting,
                    params: Some(json!({"instructions": instructions})),
                })
                .await;
            }
        }
        if let Some(request) = self.sequencer.resume() {
            self.send_response_create(request).await;
        }
    }

    /// The model socket closed or failed: keep the caller, re-open the session with the same context.
    fn on_model_lost(&mut self, reason: String) {
        let Some(old) = self.model.take() else { return };
        drop(old);
        warn!(call_sid = %self.call_sid, %reason, "model socket lost");
        self.issue("model_disconnected", &reason);
        for turn in self.transcript.response_done() {
            self.publish_turn(turn);
        }
        self.sequencer.reset();
        self.tools.on_response_done();
        self.caller_speaking = false;
        match self.lifecycle.on_current_lost(self.standby.is_some()) {
            Lost::UseStandby => {
                if let Some(fresh) = self.standby.take() {
                    // The rollover's session is open already: it takes over (seeded at once if it
                    // is confirmed, else once it is).
                    self.needs_seed = true;
                    self.reconnecting = true;
                    self.install_session(fresh);
                }
            }
            Lost::AwaitConnection => {}
            Lost::Connect(_) => self.start_connecting(Duration::ZERO),
        }
    }

    /// Seeds the (new) session with the conversation so far, in heard order, then forwards held
    /// caller audio.
    async fn seed_and_flush(&mut self) {
        // A session set up before the operator took over (or handed back), a rollover's standby: it
        // answers as the hold says now.
        let held = self.operator.is_some();
        if self.model.as_ref().is_some_and(|m| m.listen_only != held) {
            let responding = if held {
                Responding::ListenOnly
            } else {
                Responding::Auto
            };
            self.send_responding(responding).await;
        }
        for (role, text) in self.transcript.seeds(MAX_SEED_TURNS) {
            let id = self.event_id(Sent::ItemCreate);
            self.send_model(rt::message_item_create(&id, role, &text))
                .await;
        }
        self.flush_held_audio().await;
    }

    /// Forwards caller audio held while no configured session could take it.
    async fn flush_held_audio(&mut self) {
        while let Some((start_us, bytes, payload)) = self.held_audio.pop_front() {
            if self.model.is_none() {
                self.held_audio.push_front((start_us, bytes, payload));
                break;
            }
            self.send_append(start_us, bytes, &payload).await;
        }
    }

    async fn on_model_frame(&mut self, frame: ModelFrame) -> Flow {
        match read_frame(frame) {
            Ok(Some(text)) => self.on_model_event(text.as_str()).await,
            Ok(None) => Ok(()),
            Err(why) => {
                self.on_model_lost(why);
                Ok(())
            }
        }
    }

    /// The standby session is read while it waits (pings are answered, a close is noticed); only its
    /// setup matters before it takes over.
    async fn on_standby_frame(&mut self, frame: ModelFrame) -> Flow {
        let lost = match read_frame(frame) {
            Ok(Some(text)) => {
                let step = match rt::parse_server_event(text.as_str()) {
                    Ok(ServerEvent::SessionUpdated {
                        input_format,
                        output_format,
                    }) => self.standby.as_mut().map(|s| {
                        s.setup
                            .on_updated(input_format.as_deref(), output_format.as_deref())
                    }),
                    Ok(ServerEvent::Error(error)) => {
                        self.standby.as_mut().map(|s| s.setup.on_error(&error))
                    }
                    _ => None,
                };
                match step {
                    Some(SetupStep::Retry(fields)) => {
                        let (setup, update) = self.session_update(fields);
                        match self.standby.as_mut() {
                            Some(link) => {
                                link.setup = setup;
                                link.listen_only = self.operator.is_some();
                                link.send(update).await.err()
                            }
                            None => None,
                        }
                    }
                    Some(SetupStep::Failed(why)) => Some(why),
                    _ => None,
                }
            }
            Ok(None) => None,
            Err(why) => Some(why),
        };
        if let Some(why) = lost {
            warn!(call_sid = %self.call_sid, %why, "standby model session lost");
            self.issue("standby_lost", &why);
            if let Some(link) = self.standby.take() {
                tokio::spawn(link.close());
            }
            self.lifecycle.on_standby_lost(Instant::now());
        }
        Ok(())
    }

    async fn on_model_event(&mut self, text: &str) -> Flow {
        let event = match rt::parse_server_event(text) {
            Ok(event) => event,
            Err(e) => {
                self.note_bad_frame("model event", &e);
                return Ok(());
            }
        };
        let confirmed = self.model_ready();
        match event {
            ServerEvent::AudioDelta {
                response_id,
                item_id,
                delta,
            } => {
                // Audio of a cut item, or while the operator holds the call, is never played.
                let dropped = self.operator.is_some()
                    || self.dropped_items.contains(&item_id)
                    || response_id
                        .as_ref()
                        .is_some_and(|r| self.dropped_responses.contains(r));
                // Decoded once when it will play and the recording or a listener wants the μ-law
                // (which checks it too), else only checked: Twilio takes the base64 as it came.
                let mut mulaw = (confirmed && !dropped && self.agent_audio_wanted()).then(Vec::new);
                let checked = match mulaw.as_mut() {
                    Some(buf) => media::decode_base64(&delta, buf).map(|audio| audio.len()),
                    None => media::base64_decoded_len(&delta),
                };
                let bytes = match checked {
                    Ok(n) => n,
                    Err(e) => {
                        self.note_bad_frame("audio delta", &e);
                        return Ok(());
                    }
                };
                if !confirmed {
                    // Not μ-law yet: playing it would be noise.
                    self.note_bad_frame("audio before the session was confirmed", &item_id);
                    return Ok(());
                }
                if dropped {
                    // Counted (the words heard are estimated from it), never played.
                    self.transcript.agent_audio(&item_id, bytes, || 0);
                    return Ok(());
                }
                let now = Instant::now();
                let timeline = &self.timeline;
                // The turn starts where its audio starts playing: after the agent audio queued before
                // it, which may be seconds after this delta is sent.
                self.transcript
                    .agent_audio(&item_id, bytes, || timeline.play_start_ms(now));
                let pushed = self.frames.push(&item_id, &delta, bytes, mulaw.as_deref());
                let (previous, ready) = match pushed {
                    Ok(chunks) => chunks,
                    Err(e) => {
                        self.note_bad_frame("audio delta", &e);
                        return Ok(());
                    }
                };
                if let Some(left) = previous {
                    self.send_chunk(left, now).await?;
                }
                match ready {
                    Ready::Nothing => Ok(()),
                    Ready::AsIs => {
                        self.send_agent_audio(&item_id, &delta, bytes, mulaw, now)
                            .await
                    }
                    Ready::Chunk(c) => self.send_chunk(c, now).await,
                }
            }
            ServerEvent::AudioDone { .. } => {
                if let Some(last) = self.frames.flush() {
                    self.send_chunk(last, Instant::now()).await?;
                }
                Ok(())
            }
            ServerEvent::SessionUpdated {
                input_format,
                output_format,
            } => {
                let step = match self.model.as_mut() {
                    Some(link) => link
                        .setup
                        .on_updated(input_format.as_deref(), output_format.as_deref()),
                    None => SetupStep::NotOurs,
                };
                self.on_setup_step(step).await
            }
            ServerEvent::SpeechStarted {
                item_id,
                audio_start_ms,
            } => {
                self.caller_speaking = true;
                self.latency.on_speech_started();
                if let Some(id) = item_id {
                    let offset = self.speech_offset_ms(audio_start_ms);
                    self.transcript.caller_started(id, offset);
                }
                if self.ending.on_barge_in() {
                    info!(call_sid = %self.call_sid, "the caller spoke over the goodbye: the call goes on");
                }
                self.sequencer.on_barge_in();
                let speech_us = audio_start_ms.and_then(|ms| self.session_audio.stream_us(ms));
                self.cut_playback(Some(
                    speech_us.unwrap_or_else(|| self.timeline.now_us(Instant::now())),
                ))
                .await
            }
            ServerEvent::SpeechStopped {
                item_id,
                audio_end_ms,
            } => {
                self.caller_speaking = false;
                let now_us = self.timeline.now_us(Instant::now());
                // `audio_end_ms` is where the server's VAD ended the turn: the caller's last sound plus
                // the configured silence (semantic VAD has no fixed one; its wait is then not counted).
                let silence_us = match &self.session.turn_detection {
                    TurnDetection::ServerVad {
                        silence_duration_ms,
                        ..
                    } => u64::from(*silence_duration_ms) * 1000,
                    TurnDetection::SemanticVad { .. } => 0,
                };
                let speech_end_us = audio_end_ms
                    .and_then(|ms| self.session_audio.stream_us(ms))
                    .map_or(now_us, |us| us.saturating_sub(silence_us));
                if self.operator.is_none() {
                    self.latency.on_speech_stopped(speech_end_us, now_us);
                }
                self.sequencer.on_turn_ended(Instant::now());
                let now = self.offset_ms();
                self.transcript.caller_stopped(item_id.as_deref(), now);
                Ok(())
            }
            ServerEvent::ResponseCreated { response_id } => {
                if let Some(Outgoing::Cancel) = self.sequencer.on_created(response_id) {
                    let id = self.event_id(Sent::ResponseCancel);
                    self.send_model(rt::response_cancel(&id)).await;
                }
                Ok(())
            }
            ServerEvent::ResponseDone {
                response_id,
                status,
                details,
                usage,
            } => {
                self.on_response_done(response_id, status, details, usage)
                    .await;
                match usage {
                    Some(usage) => {
                        let model = self.session.model.clone();
                        let metered = TokenUsage::from(usage).into();
                        self.charge(CostSource::Response, &model, metered).await
                    }
                    None => Ok(()),
                }
            }
            ServerEvent::AudioTranscriptDelta { item_id, delta } => {
                let now = self.offset_ms();
                self.transcript.agent_text_delta(&item_id, &delta, now);
                Ok(())
            }
            ServerEvent::AudioTranscriptDone {
                item_id,
                transcript,
            } => {
                let now = self.offset_ms();
                if let Some(turn) = self.transcript.agent_done(&item_id, transcript, now) {
                    self.publish_turn(turn);
                }
                Ok(())
            }
            ServerEvent::InputTranscriptionCompleted {
                item_id,
                transcript,
                usage,
            } => {
                let now = self.offset_ms();
                if let Some(turn) = self.transcript.caller_text(&item_id, transcript, now) {
                    self.publish_turn(turn);
                }
                let model = self.session.transcription.as_ref().map(|t| t.model.clone());
                match (usage, model) {
                    (Some(usage), Some(model)) => {
                        self.charge(CostSource::Transcription, &model, usage.into())
                            .await
                    }
                    _ => Ok(()),
                }
            }
            ServerEvent::InputTranscriptionFailed { item_id, message } => {
                let now = self.offset_ms();
                self.transcript.caller_failed(&item_id, now);
                self.issue("transcription_failed", &message);
                Ok(())
            }
            ServerEvent::OutputItemAdded {
                item_id: Some(item_id),
                kind: Some(kind),
                name,
            } if kind == "function_call" => {
                self.tools.on_added(item_id, name);
                Ok(())
            }
            ServerEvent::FunctionCallDone {
                call_id,
                name,
                item_id,
                arguments,
            } => {
                self.tools
                    .on_arguments_done(item_id, call_id, name, arguments);
                Ok(())
            }
            ServerEvent::OutputItemDone {
                item_id,
                kind,
                status,
                call_id,
                name,
                arguments,
            } => {
                if kind.as_deref() == Some("function_call") {
                    let call = self.tools.on_item_done(
                        item_id.as_deref(),
                        status.as_deref(),
                        call_id,
                        name,
                        arguments,
                    );
                    match call {
                        Some(call) => self.on_function_call(call).await,
                        None => {
                            debug!(call_sid = %self.call_sid, ?status, "function call not completed; ignored")
                        }
                    }
                }
                Ok(())
            }
            ServerEvent::Error(error) => self.on_model_error(error).await,
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

    async fn on_setup_step(&mut self, step: SetupStep) -> Flow {
        match step {
            SetupStep::NotOurs => Ok(()),
            SetupStep::Confirmed => {
                self.on_session_ready().await;
                Ok(())
            }
            SetupStep::Retry(fields) => {
                warn!(call_sid = %self.call_sid, ?fields, "session update refused; retrying without the refused field");
                let names: Vec<&str> = fields.iter().map(|f| f.param()).collect();
                self.issue(
                    "session_update_retried",
                    &format!(
                        "the model refused {}; the call goes on without it",
                        names.join(", ")
                    ),
                );
                if fields.contains(&OptionalField::Transcription) {
                    self.transcript.set_transcription(false);
                }
                let (setup, update) = self.session_update(fields);
                let listen_only = self.operator.is_some();
                if let Some(link) = self.model.as_mut() {
                    link.setup = setup;
                    link.listen_only = listen_only;
                }
                self.send_model(update).await;
                Ok(())
            }
            SetupStep::Failed(why) => {
                warn!(call_sid = %self.call_sid, %why, "model session cannot carry the call");
                self.issue("session_update_refused", &why);
                Err(EndReason::ModelUnavailable(why))
            }
        }
    }

    async fn on_model_error(&mut self, error: ApiError) -> Flow {
        let code = error.code.clone().unwrap_or_else(|| "error".into());
        let mut message = error.message.clone().unwrap_or_default();
        if let Some(param) = &error.param {
            message.push_str(&format!(" (param {param})"));
        }
        let kind = self.sent_kind(error.event_id.as_deref());
        warn!(call_sid = %self.call_sid, %code, %message, ?kind, "model error event");
        let setup_step = match self.model.as_mut() {
            Some(link) => link.setup.on_error(&error),
            None => SetupStep::NotOurs,
        };
        if setup_step != SetupStep::NotOurs {
            return self.on_setup_step(setup_step).await;
        }
        if kind == Some(Sent::ResponseCreate) || kind.is_none() {
            let next = self
                .sequencer
                .on_error(error.event_id.as_deref(), error.code.as_deref());
            if let Some(request) = next {
                self.send_response_create(request).await;
            }
        }
        if code != "conversation_already_has_active_response" {
            let what = match kind {
                Some(Sent::Truncate) => "truncate refused: ",
                Some(Sent::ItemCreate) => "conversation item refused: ",
                Some(Sent::ResponseCreate) => "response refused: ",
                Some(Sent::ResponseCancel) => "cancel refused: ",
                Some(Sent::SessionUpdate) | None => "",
            };
            self.issue(&code, &format!("{what}{message}"));
        }
        Ok(())
    }

    async fn on_response_done(
        &mut self,
        response_id: Option<String>,
        status: Option<String>,
        details: Option<rt::StatusDetails>,
        usage: Option<rt::Usage>,
    ) {
        if let Some(last) = self.frames.flush() {
            // A failed send ends the call at the next Twilio read; nothing else to do here.
            let _ = self.send_chunk(last, Instant::now()).await;
        }
        for turn in self.transcript.response_done() {
            self.publish_turn(turn);
        }
        self.tools.on_response_done();
        let reason = details.as_ref().map(|d| d.describe());
        match status.as_deref() {
            Some("failed") => self.issue(
                "response_failed",
                &format!(
                    "the model's response failed: {}",
                    reason.as_deref().unwrap_or("no reason given")
                ),
            ),
            Some("incomplete") => self.issue(
                "response_incomplete",
                &format!(
                    "the model's response was cut short: {}",
                    reason.as_deref().unwrap_or("no reason given")
                ),
            ),
            _ => {}
        }
        self.deps.emit(CallEvent::ResponseDone {
            call_sid: self.call_sid.clone(),
            response_id: response_id.clone(),
            status: status.unwrap_or_else(|| "unknown".into()),
            reason,
            usage: usage.map(TokenUsage::from),
            at_ms: now_ms(),
        });
        if let Some(request) = self.sequencer.on_done(response_id.as_deref()) {
            self.send_response_create(request).await;
        }
    }

    /// Stops what Twilio is playing and cuts every unheard item (barge-in, voicemail): `clear` at
    /// once, then `conversation.item.truncate` per item at what the caller heard of it, and late
    /// deltas of the cut items and response are dropped. `caller_speech_us`: where the caller started
    /// talking over the agent (on the stream), for the barge-in's reaction time.
    async fn cut_playback(&mut self, caller_speech_us: Option<StreamUs>) -> Flow {
        let now = Instant::now();
        let now_us = self.timeline.now_us(now);
        let offset_ms = caller_speech_us.unwrap_or(now_us) / 1000;
        // One interruption, however many items it cuts: the first cut carries the reaction.
        let mut reaction_ms = caller_speech_us.map(|start| now_us.saturating_sub(start) / 1000);
        self.frames.discard();
        let had_queued = !self.timeline.is_drained();
        let running = self.sequencer.active_response().map(str::to_string);
        let cut = self.timeline.cut(now, running.is_some());
        let cuts = cut.truncations;
        if had_queued || !cuts.is_empty() {
            self.latency.on_cleared();
            self.send_twilio(media::clear_message(&self.stream_sid))
                .await?;
            if let Some(rec) = &self.recording {
                rec.cleared(cut.at);
            }
        }
        self.record_heard(cut.heard);
        if let Some(response) = running {
            self.dropped_responses.insert(response);
        }
        for cut in cuts {
            debug!(item_id = %cut.item_id, heard_ms = cut.audio_end_ms, sent_ms = cut.sent_ms, "barge-in");
            self.dropped_items.insert(cut.item_id.clone());
            self.transcript
                .agent_truncated(&cut.item_id, cut.audio_end_ms);
            let id = self.event_id(Sent::Truncate);
            self.send_model(rt::item_truncate(&id, &cut.item_id, cut.audio_end_ms))
                .await;
            self.deps.emit(CallEvent::BargeIn {
                call_sid: self.call_sid.clone(),
                item_id: cut.item_id,
                heard_ms: cut.audio_end_ms,
                offset_ms,
                reaction_ms: reaction_ms.take(),
                at_ms: now_ms(),
            });
        }
        Ok(())
    }

    /// A chunk of agent audio played at Twilio: if it began the answer to the caller's last turn, the
    /// turn's latency as heard.
    fn on_played(&mut self, mark: &str) {
        if !self.latency.awaits(mark) {
            return;
        }
        let Some(started_us) = self.timeline.chunk_started(mark) else {
            return;
        };
        if let Some(m) = self.latency.on_played(mark, started_us) {
            debug!(call_sid = %self.call_sid, total_ms = m.total_ms, "turn latency as heard");
            self.deps.emit(CallEvent::TurnLatency {
                call_sid: self.call_sid.clone(),
                offset_ms: m.speech_end_ms,
                total_ms: m.total_ms,
                endpointing_ms: m.endpointing_ms,
                model_ms: m.model_ms,
                playout_ms: m.playout_ms,
                at_ms: now_ms(),
            });
        }
    }

    /// Agent audio to Twilio: `media` then its `mark`, in one socket write.
    /// Whether the agent's μ-law itself is wanted: by the file (once played) or a listener (now).
    fn agent_audio_wanted(&self) -> bool {
        self.recording
            .as_ref()
            .is_some_and(|r| r.is_recording() || r.has_listeners())
    }

    /// Re-cut agent audio to Twilio (its μ-law came with it).
    async fn send_chunk(&mut self, chunk: Chunk, now: Instant) -> Flow {
        let Chunk {
            item_id,
            payload,
            bytes,
            mulaw,
        } = chunk;
        self.send_agent_audio(&item_id, &payload, bytes, Some(mulaw), now)
            .await
    }

    /// Agent audio to Twilio; `mulaw` is `payload` decoded, if it was.
    async fn send_agent_audio(
        &mut self,
        item_id: &str,
        payload: &str,
        bytes: usize,
        mulaw: Option<Vec<u8>>,
        now: Instant,
    ) -> Flow {
        let audio = match self.agent_audio_wanted() {
            true => mulaw.or_else(|| decode_payload(payload)),
            false => None,
        };
        let keep = self.recording.as_ref().is_some_and(|r| r.is_recording());
        // A copy only for listeners; the file's copy moves into the timeline until it has played.
        let for_listeners = audio
            .as_ref()
            .filter(|_| self.recording.as_ref().is_some_and(|r| r.has_listeners()))
            .cloned();
        let queued = self
            .timeline
            .agent_sent(item_id, bytes, audio.filter(|_| keep), now);
        if let (Some(rec), Some(audio)) = (&self.recording, &for_listeners) {
            rec.agent_queued(queued.plays_at, audio);
        }
        let mark = queued.mark;
        self.latency
            .on_agent_audio(&mark, self.timeline.now_us(now));
        // Framed from their pieces, and one write for both.
        let mark_json = media::json_escaped(&mark);
        let media_msg = media::media_message_parts(&self.stream_sid_json, payload);
        let mark_msg = media::mark_message_parts(&self.stream_sid_json, &mark_json);
        let sent = match self
            .twilio
            .queue_text_parts(&media_msg)
            .and_then(|()| self.twilio.queue_text_parts(&mark_msg))
        {
            Ok(()) => self.twilio.flush().await,
            Err(e) => Err(e),
        };
        sent.map_err(|e| EndReason::TwilioSocket(e.to_string()))
    }

    /// A function call the model completed.
    async fn on_function_call(&mut self, call: FunctionCall) {
        let FunctionCall {
            call_id,
            name,
            arguments,
        } = call;
        let output = match built_in(&name).map(|t| t.kind) {
            Some(BuiltIn::EndCall) => {
                info!(call_sid = %self.call_sid, arguments = %short(&arguments), "agent ended the call");
                self.ending = Ending::AfterPlayout {
                    kind: EndKind::AgentEnded,
                    deadline: Instant::now() + END_CALL_GRACE,
                };
                // No follow-up: the goodbye was said. The output keeps the conversation whole if a
                // barge-in undoes the end.
                self.send_function_output(&call_id, &json!({"status": "ending the call"}))
                    .await;
                return;
            }
            Some(BuiltIn::TransferCall) => {
                match (&self.session.transfer_number, &self.deps.actions) {
                    (Some(number), Some(_)) => {
                        info!(call_sid = %self.call_sid, arguments = %short(&arguments), "agent asked to transfer the call");
                        self.ending = Ending::TransferAfterPlayout {
                            number: number.clone(),
                        };
                        self.send_function_output(&call_id, &json!({"status": "transferring"}))
                            .await;
                        return;
                    }
                    _ => json!({"error": "transfer is not available on this call"}),
                }
            }
            None if self.deps.tools.is_some() => {
                self.start_tool(call_id, name, arguments).await;
                return;
            }
            None => {
                warn!(call_sid = %self.call_sid, tool = %short(&name), "model called a tool with no handler");
                json!({"error": format!("tool {:?} is not available", short(&name))})
            }
        };
        self.send_function_output(&call_id, &output).await;
        // The model says nothing after a tool output until asked; the sequencer sends this once the
        // response that made the call is done.
        self.request_response(Request {
            purpose: Purpose::FollowUp,
            params: None,
        })
        .await;
    }

    /// Starts a tool that does real work, in its own task: the call goes on while it runs (and while it
    /// waits for the operator's approval, if it needs it), and hears of its end through `tool_rx`.
    async fn start_tool(&mut self, call_id: String, tool: String, arguments: String) {
        let Some(runner) = self.deps.tools.clone() else {
            return;
        };
        let needs_approval = runner.needs_approval(&self.session, &tool);
        let offset_ms = self.offset_ms();
        info!(call_sid = %self.call_sid, tool = %short(&tool), needs_approval, "agent called a tool");
        self.deps.emit(CallEvent::ToolStarted {
            call_sid: self.call_sid.clone(),
            call_id: call_id.clone(),
            tool: tool.clone(),
            arguments: arguments.clone(),
            needs_approval,
            offset_ms,
            at_ms: now_ms(),
        });
        let parsed = serde_json::from_str::<serde_json::Value>(&arguments);
        let approval = needs_approval.then(|| {
            let asked_at_ms = now_ms();
            let timeout = Duration::from_secs(u64::from(self.session.tool_approval_timeout_secs));
            let expires_at_ms = asked_at_ms + timeout.as_millis() as i64;
            let answer = self.deps.approvals.ask(PendingApproval {
                call_sid: self.call_sid.clone(),
                call_id: call_id.clone(),
                tool: tool.clone(),
                arguments: arguments.clone(),
                asked_at_ms,
                expires_at_ms,
            });
            self.deps.emit(CallEvent::ToolApprovalRequested {
                call_sid: self.call_sid.clone(),
                call_id: call_id.clone(),
                tool: tool.clone(),
                arguments: arguments.clone(),
                expires_at_ms,
                at_ms: now_ms(),
            });
            (answer, timeout)
        });
        let deps = self.deps.clone();
        let session = self.session.clone();
        let done = self.tool_tx.clone();
        let (call_sid, id, name) = (self.call_sid.clone(), call_id.clone(), tool.clone());
        let task = tokio::spawn(async move {
            let mut approved_by = None;
            if let Some((answer, timeout)) = approval {
                let decision = tokio::time::timeout(timeout, answer).await;
                let (approved, by) = match decision {
                    Ok(Ok(decision)) => (decision.approved, decision.by),
                    // The call ended (its questions were forgotten): nobody reads the result.
                    Ok(Err(_)) => return,
                    Err(_) => {
                        deps.approvals.withdraw(&call_sid, &id);
                        (false, "timeout".to_string())
                    }
                };
                deps.emit(CallEvent::ToolApprovalSettled {
                    call_sid: call_sid.clone(),
                    call_id: id.clone(),
                    approved,
                    by: by.clone(),
                    at_ms: now_ms(),
                });
                if !approved {
                    let message = if by == "timeout" {
                        format!("the operator did not approve {name} in time, so it was not done")
                    } else {
                        format!("the operator declined {name}, so it was not done")
                    };
                    let failure = ToolFailure::new(FailureKind::Declined, message);
                    let _ = done
                        .send(Box::new(ToolDone {
                            call_id: id,
                            result: Err(failure),
                            outcome: ToolOutcome::Declined,
                            approved_by: None,
                        }))
                        .await;
                    return;
                }
                approved_by = Some(by);
            }
            let result = match parsed {
                Ok(arguments) => {
                    runner
                        .run(
                            session,
                            ToolRequest {
                                call_sid,
                                call_id: id.clone(),
                                tool: name,
                                arguments,
                            },
                        )
                        .await
                }
                Err(e) => Err(ToolFailure::new(
                    FailureKind::Malformed,
                    format!("the arguments for {name} were not valid JSON ({e})"),
                )),
            };
            let outcome = if result.is_ok() {
                ToolOutcome::Ok
            } else {
                ToolOutcome::Failed
            };
            let _ = done
                .send(Box::new(ToolDone {
                    call_id: id,
                    result,
                    outcome,
                    approved_by,
                }))
                .await;
        });
        self.running_tools.insert(
            call_id,
            RunningTool {
                tool,
                arguments,
                started: Instant::now(),
                offset_ms,
                session: self.session_number,
                task: task.abort_handle(),
            },
        );
        self.sources.poll_all();
        if needs_approval {
            // The caller hears why nothing happens: a short line, then the keep-alive while waiting.
            self.request_filler(
                "Tell the caller in one short sentence that you need a moment to check this. Do not say \
                 whether it will work.",
            )
            .await;
        }
    }

    /// A tool ended: its result (or the failure, in words) goes to the model, and the model is asked to
    /// answer once the response that made the call (or a keep-alive line) is done.
    async fn on_tool_done(&mut self, done: ToolDone) {
        let Some(running) = self.running_tools.remove(&done.call_id) else {
            return;
        };
        let latency_ms = running.started.elapsed().as_millis() as u64;
        let (output, error, failure) = match &done.result {
            Ok(output) => (Some(output.clone()), None, None),
            Err(f) => (None, Some(f.message.clone()), Some(f.kind)),
        };
        let for_model = match &done.result {
            Ok(output) => output.clone(),
            Err(f) => json!({"error": f.message}).to_string(),
        };
        info!(call_sid = %self.call_sid, tool = %short(&running.tool), outcome = done.outcome.as_str(), latency_ms, "tool finished");
        if running.session == self.session_number {
            let id = self.event_id(Sent::ItemCreate);
            self.send_model(rt::function_output_create(&id, &done.call_id, &for_model))
                .await;
        } else {
            // The session that made the call was replaced: its function call is not in this one.
            let note = format!(
                "The result of the tool {} you called earlier (arguments {}) is: {}",
                running.tool, running.arguments, for_model
            );
            let id = self.event_id(Sent::ItemCreate);
            self.send_model(rt::message_item_create(&id, Role::System, &note))
                .await;
        }
        let line = crate::store::tool_calls::ToolCallRecord {
            call_id: done.call_id.clone(),
            tool: running.tool.clone(),
            arguments: running.arguments.clone(),
            outcome: done.outcome.as_str().into(),
            output: output.clone(),
            error: error.clone(),
            failure: failure.map(|f| f.as_str().to_string()),
            latency_ms,
            approved_by: done.approved_by.clone(),
            offset_ms: running.offset_ms,
            at_ms: now_ms(),
        };
        // The transcript keeps it for a replacement session's seeds.
        self.transcript.note(
            Speaker::Tool,
            crate::store::tool_calls::transcript_line(&line),
            running.offset_ms,
        );
        self.deps.emit(CallEvent::ToolFinished {
            call_sid: self.call_sid.clone(),
            call_id: done.call_id,
            tool: running.tool,
            arguments: running.arguments,
            outcome: done.outcome,
            output: output.map(|o| o.chars().take(EVENT_OUTPUT_CHARS).collect()),
            error,
            failure,
            latency_ms,
            approved_by: done.approved_by,
            offset_ms: running.offset_ms,
            at_ms: now_ms(),
        });
        self.request_response(Request {
            purpose: Purpose::FollowUp,
            params: None,
        })
        .await;
    }

    /// The call ends with tools running: their tasks stop, and the log says they were cancelled.
    fn cancel_tools(&mut self) {
        self.deps.approvals.forget_call(&self.call_sid);
        for (call_id, running) in self.running_tools.drain() {
            running.task.abort();
            self.deps.emit(CallEvent::ToolFinished {
                call_sid: self.call_sid.clone(),
                call_id,
                latency_ms: running.started.elapsed().as_millis() as u64,
                tool: running.tool,
                arguments: running.arguments,
                outcome: ToolOutcome::Cancelled,
                output: None,
                error: Some("the call ended first".into()),
                failure: None,
                approved_by: None,
                offset_ms: running.offset_ms,
                at_ms: now_ms(),
            });
        }
    }

    /// While a tool runs and the line is quiet (nothing playing, nothing asked, nobody speaking), the
    /// agent says a few words after [`KEEPALIVE_AFTER`], so the caller is never left in silence.
    fn arm_keepalive(&mut self, quiet: bool) {
        let waiting = !self.running_tools.is_empty()
            && self.operator.is_none()
            && !self.ending.saying_last_words();
        if waiting && quiet {
            if self.keepalive_at.is_none() {
                self.keepalive_at = Some(Instant::now() + KEEPALIVE_AFTER);
            }
        } else {
            self.keepalive_at = None;
        }
    }

    async fn say_still_working(&mut self) {
        let Some(tool) = self.running_tools.values().next().map(|r| r.tool.clone()) else {
            return;
        };
        debug!(call_sid = %self.call_sid, tool = %short(&tool), "keeping the line alive while a tool runs");
        self.request_filler(&format!(
            "You are still waiting for the result of {tool}. Tell the caller in a few words that you \
             are still on it. Do not make up a result and do not call any tool."
        ))
        .await;
    }

    /// A short line in the agent's voice and persona, with no tools (they wait for a real result).
    async fn request_filler(&mut self, what: &str) {
        let instructions = format!("{}\n\n{what}", self.session.instructions);
        self.request_response(Request {
            purpose: Purpose::Filler,
            params: Some(json!({"instructions": instructions, "tool_choice": "none"})),
        })
        .await;
    }

    async fn send_function_output(&mut self, call_id: &str, output: &serde_json::Value) {
        let id = self.event_id(Sent::ItemCreate);
        self.send_model(rt::function_output_create(
            &id,
            call_id,
            &output.to_string(),
        ))
        .await;
    }
}

/// `30 min`, `90 s`: a length as the call's events say it.
fn describe_length(length: Duration) -> String {
    let secs = length.as_secs();
    if secs >= 60 && secs.is_multiple_of(60) {
        format!("{} min", secs / 60)
    } else {
        format!("{:.0} s", length.as_secs_f64())
    }
}

fn short(s: &str) -> String {
    s.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_stays_small() {
        // Every live call holds one (boxed) for its whole length, and the call loop's future keeps
        // the box's pointer only; the big, mostly empty parts (model links, sockets) are boxed too.
        // Was 4.5 KiB before the links were boxed (BENCHMARKS.md, issue 16).
        let size = std::mem::size_of::<Call>();
        assert!(size <= 2 * 1024, "Call is {size} bytes");
    }

    #[test]
    fn silence_is_mulaw_ff_of_the_exact_length() {
        for n in [0usize, 1, 2, 3, 160, 2401] {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(silence_b64(n))
                .unwrap();
            assert_eq!(decoded.len(), n);
            assert!(decoded.iter().all(|&b| b == 0xFF));
        }
    }
}

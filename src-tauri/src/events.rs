//! The in-process event bus: live call events for the UI, the `/api/events` socket and the tray.
//!
//! A `tokio::sync::broadcast` channel: publishing never blocks a call, and a listener that falls behind
//! loses old events (it is told how many) instead of slowing anyone down.

use serde::Serialize;
use tokio::sync::broadcast;

use crate::telephony::twilio::answered_by::AnsweredBy;
use crate::telephony::twilio::direction::Direction;
use crate::types::{Speaker, TokenUsage};

/// Something that happened on a call.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CallEvent {
    /// The media stream started and the model session is being opened.
    CallStarted {
        call_sid: String,
        stream_sid: String,
        from: Option<String>,
        to: Option<String>,
        at_ms: i64,
    },
    /// A finished transcript turn. `offset_ms` is from the stream's start.
    Transcript {
        call_sid: String,
        speaker: Speaker,
        text: String,
        offset_ms: u64,
        interrupted: bool,
        at_ms: i64,
    },
    /// The caller talked over the agent; `heard_ms` is how much of the agent's item they heard.
    /// `offset_ms` is where the caller started speaking (on the stream) and `reaction_ms` how long after
    /// that Twilio was told to stop playing (`None` when the agent was cut for another reason).
    BargeIn {
        call_sid: String,
        item_id: String,
        heard_ms: u64,
        offset_ms: u64,
        reaction_ms: Option<u64>,
        at_ms: i64,
    },
    /// The call cost more: `cost_usd` for this `source` on `model`, `call_total_usd` so far. Unpriced
    /// (`priced: false`, cost 0) when the price table has no row for the model.
    Cost {
        call_sid: String,
        source: crate::costs::CostSource,
        model: String,
        usage: crate::costs::Metered,
        cost_pico: u64,
        cost_usd: f64,
        call_total_usd: f64,
        priced: bool,
        at_ms: i64,
    },
    /// The call came near a budget (`scope`: `call` or `day`): the agent was told to wrap up.
    BudgetWarning {
        call_sid: String,
        scope: crate::costs::budget::BudgetScope,
        spent_usd: f64,
        cap_usd: f64,
        at_ms: i64,
    },
    /// A model-side problem (error event, dropped socket, reconnect).
    ModelIssue {
        call_sid: String,
        code: String,
        message: String,
        at_ms: i64,
    },
    /// The call's bridge ended.
    CallEnded {
        call_sid: String,
        reason: String,
        failed: bool,
        at_ms: i64,
    },
    /// The call's progress as Twilio reports it (`queued` when the app placed it, then status callbacks:
    /// `initiated`, `ringing`, `in-progress`, and one of `completed`, `busy`, `no-answer`, `failed`,
    /// `canceled`).
    CallStatus {
        call_sid: String,
        status: String,
        /// Twilio's `Direction` (`inbound`, `outbound-api`, …).
        direction: Option<Direction>,
        from: Option<String>,
        to: Option<String>,
        answered_by: Option<AnsweredBy>,
        duration_secs: Option<u32>,
        at_ms: i64,
    },
    /// A model response ended: its status, why it did not complete, and the tokens it used.
    ResponseDone {
        call_sid: String,
        response_id: Option<String>,
        /// `completed`, `cancelled`, `incomplete` or `failed`.
        status: String,
        /// Why it was cancelled, cut short or failed (`turn_detected`, `max_output_tokens`,
        /// `insufficient_quota`, …).
        reason: Option<String>,
        usage: Option<TokenUsage>,
        at_ms: i64,
    },
    /// A cap that protects the bill turned the call away before any stream existed (the caller heard
    /// `message` and the call was hung up), or ended it (`call_length`: the agent said goodbye).
    CallCapped {
        call_sid: String,
        cap: CallCap,
        /// Why, in words (what the caller heard, or which limit was reached).
        message: String,
        from: Option<String>,
        to: Option<String>,
        at_ms: i64,
    },
    /// The operator told the agent something privately (a `system` item the caller never hears);
    /// with `say_now` the agent also says it at once, in its own voice.
    Whisper {
        call_sid: String,
        text: String,
        say_now: bool,
        offset_ms: u64,
        at_ms: i64,
    },
    /// The operator took the call over with their microphone: the agent stopped and only listens.
    OperatorTookOver {
        call_sid: String,
        /// The microphone.
        device: String,
        offset_ms: u64,
        at_ms: i64,
    },
    /// The call went back to the agent (`reason`: `operator`, `microphone_lost`, `call_ended`,
    /// `time_limit`) after `turns` operator turns.
    OperatorHandedBack {
        call_sid: String,
        reason: HandBackReason,
        turns: usize,
        offset_ms: u64,
        at_ms: i64,
    },
    /// The agent called a tool that does real work (an HTTP endpoint, an MCP server); its result follows
    /// as [`CallEvent::ToolFinished`].
    ToolStarted {
        call_sid: String,
        call_id: String,
        tool: String,
        /// The model's arguments (JSON text).
        arguments: String,
        needs_approval: bool,
        offset_ms: u64,
        at_ms: i64,
    },
    /// A tool call waits for the operator's approval until `expires_at_ms` (then it is declined).
    ToolApprovalRequested {
        call_sid: String,
        call_id: String,
        tool: String,
        arguments: String,
        expires_at_ms: i64,
        at_ms: i64,
    },
    /// The operator answered (`by`: `window`, `api`, …), or nobody did in time (`by`: `timeout`).
    ToolApprovalSettled {
        call_sid: String,
        call_id: String,
        approved: bool,
        by: String,
        at_ms: i64,
    },
    /// A tool call ended: its result went to the model (or the failure, in words it can talk about).
    ToolFinished {
        call_sid: String,
        call_id: String,
        tool: String,
        arguments: String,
        outcome: ToolOutcome,
        /// The result as the model got it (cut to 2,000 characters here; the model got all of it).
        output: Option<String>,
        /// Why there is no result.
        error: Option<String>,
        failure: Option<crate::tools::FailureKind>,
        /// From the model's call to the result (approval included).
        latency_ms: u64,
        approved_by: Option<String>,
        /// Where the call was made, on the stream.
        offset_ms: u64,
        at_ms: i64,
    },
    /// The agent answered a caller turn: from the end of the caller's speech (`offset_ms`, on the stream)
    /// to the moment the answer started playing at Twilio, and its parts (endpointing wait, the model's
    /// time to the first audio, the bridge and Twilio's playout).
    TurnLatency {
        call_sid: String,
        offset_ms: u64,
        total_ms: u64,
        endpointing_ms: u64,
        model_ms: u64,
        playout_ms: u64,
        at_ms: i64,
    },
    /// The post-call summary is ready (`done`), or it could not be made (`failed`: no usable answer;
    /// `invalid`: an answer that does not follow the schema). Made after the call ended; never
    /// affects it.
    Summary {
        call_sid: String,
        status: crate::summary::SummaryStatus,
        summary: Option<String>,
        disposition: Option<String>,
        /// The user's fields (an object), when `done`.
        fields: Option<serde_json::Map<String, serde_json::Value>>,
        error: Option<String>,
        at_ms: i64,
    },
    /// Answering-machine detection decided who answered, and what the app did about it
    /// (`hang_up`, `voicemail`, `continue`).
    MachineDetection {
        call_sid: String,
        answered_by: AnsweredBy,
        action: String,
        at_ms: i64,
    },
}

impl CallEvent {
    pub fn call_sid(&self) -> &str {
        match self {
            CallEvent::CallStarted { call_sid, .. }
            | CallEvent::Transcript { call_sid, .. }
            | CallEvent::BargeIn { call_sid, .. }
            | CallEvent::ModelIssue { call_sid, .. }
            | CallEvent::CallEnded { call_sid, .. }
            | CallEvent::CallStatus { call_sid, .. }
            | CallEvent::MachineDetection { call_sid, .. }
            | CallEvent::CallCapped { call_sid, .. }
            | CallEvent::Whisper { call_sid, .. }
            | CallEvent::OperatorTookOver { call_sid, .. }
            | CallEvent::OperatorHandedBack { call_sid, .. }
            | CallEvent::ToolStarted { call_sid, .. }
            | CallEvent::ToolApprovalRequested { call_sid, .. }
            | CallEvent::ToolApprovalSettled { call_sid, .. }
            | CallEvent::ToolFinished { call_sid, .. }
            | CallEvent::TurnLatency { call_sid, .. }
            | CallEvent::Cost { call_sid, .. }
            | CallEvent::BudgetWarning { call_sid, .. }
            | CallEvent::Summary { call_sid, .. }
            | CallEvent::ResponseDone { call_sid, .. } => call_sid,
        }
    }
}

/// The caps that protect the bill (`config::BridgeSettings`): which one a [`CallEvent::CallCapped`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallCap {
    /// As many calls as `max_concurrent_calls` were live or about to stream: the call was refused.
    ConcurrentCalls,
    /// The daily minute budget was used up: the call was refused.
    DailyMinutes,
    /// The call reached `max_call_length`: it was ended with a goodbye.
    CallLength,
    /// The call's cost reached the per-call budget: it was ended with the budget's goodbye line.
    CallBudget,
    /// The day's money budget was spent: the call was refused, or ended with the goodbye line.
    DailyBudget,
}

impl CallCap {
    pub fn as_str(self) -> &'static str {
        match self {
            CallCap::ConcurrentCalls => "concurrent_calls",
            CallCap::DailyMinutes => "daily_minutes",
            CallCap::CallLength => "call_length",
            CallCap::CallBudget => "call_budget",
            CallCap::DailyBudget => "daily_budget",
        }
    }

    /// True for the caps that turn a call away before it streams (the call never started).
    pub fn refuses(self) -> bool {
        self != CallCap::CallLength
    }
}

/// How a tool call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolOutcome {
    Ok,
    Failed,
    /// The operator declined it, or did not answer in time.
    Declined,
    /// The call ended first.
    Cancelled,
}

impl ToolOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            ToolOutcome::Ok => "ok",
            ToolOutcome::Failed => "failed",
            ToolOutcome::Declined => "declined",
            ToolOutcome::Cancelled => "cancelled",
        }
    }
}

/// Why the operator's hold on a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HandBackReason {
    /// The operator handed the call back.
    Operator,
    /// The microphone stopped delivering audio (unplugged, the sound server went away).
    MicrophoneLost,
    /// The call ended while the operator held it.
    CallEnded,
    /// The call reached its maximum length: the agent says goodbye.
    TimeLimit,
}

impl HandBackReason {
    pub fn as_str(self) -> &'static str {
        match self {
            HandBackReason::Operator => "operator",
            HandBackReason::MicrophoneLost => "microphone_lost",
            HandBackReason::CallEnded => "call_ended",
            HandBackReason::TimeLimit => "time_limit",
        }
    }
}

/// Cheap to clone; every clone publishes to the same listeners.
#[derive(Clone)]
pub struct EventBus {
    tx: broadcast::Sender<CallEvent>,
}

impl EventBus {
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity);
        EventBus { tx }
    }

    /// Publishes to whoever listens; never blocks, never fails the caller.
    pub fn publish(&self, event: CallEvent) {
        let _ = self.tx.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<CallEvent> {
        self.tx.subscribe()
    }
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus::new(1024)
    }
}

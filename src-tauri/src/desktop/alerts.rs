//! What deserves a desktop notification, and delivering it.
//!
//! [`AlertTracker`] turns bus events into alerts (pure, unit-tested): an incoming call, an outbound call
//! answered (a call the app placed: `call_status` said `outbound…` before its `call_started`), a call ended
//! (with its duration), a failed call, and model problems the user must fix (a bad key, no quota).
//! A call answered by a machine or fax (a `machine_detection` event) names the number dialled, remembered from
//! `call_status` and `call_started` events, through [`machine_answered`].
//!
//! [`Notifier`] shows them with `tauri-plugin-notification`. Where no notification server runs (a headless
//! session, a minimal window manager) it logs one warning and keeps going: every alert also reaches the
//! window as a `desktop-alert` event, which the UI shows as a toast.
//!
//! A live call's notification (incoming, answered) offers "Take over" where the notification server shows
//! actions (the plugin's desktop action types, through D-Bus on Linux); a click on the notification itself
//! opens the call in the window with its take-over button focused ([`NotificationAction`]).
//!
//! A tool call waiting for the operator's approval (issue 14) is a notification with the tool and its
//! arguments and "Approve" / "Decline" buttons, which answer through `services.tools.decide` (by
//! `notification`); a click on it opens the call, where the window shows the same question.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;
use tauri::{AppHandle, Emitter};
use tracing::{info, warn};

use crate::events::{CallCap, CallEvent};
use crate::telephony::twilio::answered_by::AnsweredBy;
use crate::telephony::twilio::direction::Direction;

/// Tauri event carrying each [`Alert`] to the window.
pub const DESKTOP_ALERT: &str = "desktop-alert";
/// The notification action type of a live call's alert: one "Take over" button.
pub const LIVE_CALL_ACTIONS: &str = "live_call";
const TAKE_OVER_ACTION: &str = "take_over";
/// The notification action type of a tool call waiting for approval: "Approve" and "Decline".
pub const TOOL_APPROVAL_ACTIONS: &str = "tool_approval";
const APPROVE_ACTION: &str = "approve";
const DECLINE_ACTION: &str = "decline";
/// The notification's extra field naming its call.
const CALL_SID_EXTRA: &str = "call_sid";
/// The notification's extra field naming the tool call it asks about.
const CALL_ID_EXTRA: &str = "call_id";
/// Longest arguments a notification shows (they are the model's, and may be long).
const NOTIFIED_ARGUMENTS_CHARS: usize = 160;

/// What a click on a notification asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotificationAction {
    /// The "Take over" button: take the call over now (as the tray does), then show it.
    TakeOver(String),
    /// The notification itself: show the call with its take-over button focused.
    ShowCall(String),
    /// "Approve" or "Decline" on a tool call waiting for the operator: `(call_sid, call_id, approved)`.
    Decide(String, String, bool),
    /// A click on an approval's notification: show the call (its approval card has the focus).
    ShowApproval(String),
}

/// Reads a notification click: the action (`tap` is the notification itself), the call it named and, for
/// a tool approval, the tool call.
pub fn notification_action(
    action_id: &str,
    call_sid: Option<&str>,
    call_id: Option<&str>,
) -> Option<NotificationAction> {
    let sid = call_sid.filter(|s| !s.is_empty())?.to_string();
    let id = call_id.filter(|s| !s.is_empty()).map(String::from);
    match (action_id, id) {
        (APPROVE_ACTION, Some(id)) => Some(NotificationAction::Decide(sid, id, true)),
        (DECLINE_ACTION, Some(id)) => Some(NotificationAction::Decide(sid, id, false)),
        (APPROVE_ACTION | DECLINE_ACTION, None) => None,
        (TAKE_OVER_ACTION, _) => Some(NotificationAction::TakeOver(sid)),
        ("tap", Some(_)) => Some(NotificationAction::ShowApproval(sid)),
        ("tap", None) => Some(NotificationAction::ShowCall(sid)),
        _ => None,
    }
}

/// Registers the live call's "Take over" action and what a click on a notification does. Without a
/// notification server nothing is ever clicked; the window's toast and the tray remain.
pub fn register_actions(app: &AppHandle) {
    use tauri_plugin_notification::{Action, ActionType, NotificationExt};
    let notification = app.notification();
    let types = vec![
        ActionType::builder(LIVE_CALL_ACTIONS)
            .actions(vec![Action::builder(TAKE_OVER_ACTION, "Take over").build()])
            .build(),
        ActionType::builder(TOOL_APPROVAL_ACTIONS)
            .actions(vec![
                Action::builder(APPROVE_ACTION, "Approve").build(),
                Action::builder(DECLINE_ACTION, "Decline").build(),
            ])
            .build(),
    ];
    if let Err(e) = notification.register_action_types(types) {
        warn!(error = %e, "cannot register the notification actions; notifications show no buttons");
        return;
    }
    let handle = app.clone();
    let registered = notification.on_action(move |performed| {
        let extra = |key: &str| {
            performed
                .notification()
                .and_then(|n| n.extra().get(key))
                .and_then(|v| v.as_str())
                .map(String::from)
        };
        let (call_sid, call_id) = (extra(CALL_SID_EXTRA), extra(CALL_ID_EXTRA));
        match notification_action(
            performed.action_id(),
            call_sid.as_deref(),
            call_id.as_deref(),
        ) {
            Some(NotificationAction::TakeOver(sid)) => {
                super::tray::act_on_call(&handle, &sid, super::tray::CallAction::TakeOver)
            }
            Some(NotificationAction::ShowCall(sid)) => super::tray::show_call(&handle, &sid, true),
            Some(NotificationAction::ShowApproval(sid)) => {
                super::tray::show_call(&handle, &sid, false)
            }
            Some(NotificationAction::Decide(sid, id, approved)) => {
                decide_from_notification(&handle, sid, id, approved)
            }
            None => {}
        }
    });
    if let Err(e) = registered {
        warn!(error = %e, "cannot listen to notification clicks");
    }
}

/// Answers a tool approval from its notification's buttons; an answer that comes too late (the window,
/// the API or the timeout answered first) is an alert saying so.
fn decide_from_notification(app: &AppHandle, call_sid: String, call_id: String, approved: bool) {
    use tauri::Manager;
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let result = match app.state::<super::Core>().services().await {
            Ok(services) => services
                .tools
                .decide(
                    &call_sid,
                    &call_id,
                    approved,
                    super::tool_commands::BY_NOTIFICATION,
                )
                .map_err(|e| e.body()),
            Err(e) => Err(e.body()),
        };
        if let Err(error) = result {
            warn!(
                code = error.code,
                "a tool approval from a notification was not taken"
            );
            let alert = approval_failed(&call_sid, approved, &error);
            app.state::<super::Desktop>().notifier.deliver(&app, alert);
        }
    });
}

/// The notification's Approve/Decline came too late, or failed.
pub fn approval_failed(
    call_sid: &str,
    approved: bool,
    error: &crate::services::ErrorBody,
) -> Alert {
    let title = if approved {
        "Could not approve the tool"
    } else {
        "Could not decline the tool"
    };
    let body = match error.code {
        "not_pending" => "It was already answered, or the time to answer ran out.".to_string(),
        "not_found" => "The call has ended.".to_string(),
        _ => error.message.clone(),
    };
    Alert::new(AlertKind::Error, title, body, call_sid)
}

/// A tool's arguments as a notification shows them: `{"order":"42"}` → `{order: "42"}`, cut short.
pub fn short_arguments(arguments: &str) -> String {
    let shown = match serde_json::from_str::<serde_json::Value>(arguments) {
        Ok(serde_json::Value::Object(map)) => {
            let pairs: Vec<String> = map.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            format!("{{{}}}", pairs.join(", "))
        }
        Ok(value) => value.to_string(),
        Err(_) => arguments.trim().to_string(),
    };
    if shown.chars().count() > NOTIFIED_ARGUMENTS_CHARS {
        let cut: String = shown.chars().take(NOTIFIED_ARGUMENTS_CHARS - 1).collect();
        format!("{cut}…")
    } else {
        shown
    }
}

/// The alert for a tool call waiting for the operator: what the agent wants to run, on which call, and
/// how long the answer may take.
pub fn tool_approval(
    call_sid: &str,
    call_id: &str,
    tool: &str,
    arguments: &str,
    party: Option<&str>,
    seconds_left: i64,
) -> Alert {
    let who = party.unwrap_or("an unknown number");
    let mut alert = Alert::new(
        AlertKind::ToolApproval,
        format!("Approve {tool}?"),
        format!(
            "The agent wants to run {tool} {} on the call with {who}. Answer within {} s, or it is declined.",
            short_arguments(arguments),
            seconds_left.max(0)
        ),
        call_sid,
    );
    alert.call_id = Some(call_id.to_string());
    alert
}

/// A call action from the tray or a notification failed: what the desk should know (the agent keeps the
/// call whenever the failure allows).
pub fn call_action_failed(
    call_sid: &str,
    action: super::tray::CallAction,
    error: &crate::services::ErrorBody,
) -> Alert {
    use super::tray::CallAction;
    let title = match action {
        CallAction::TakeOver => "Could not take the call over",
        CallAction::HandBack => "Could not hand the call back",
        CallAction::HangUp => "Could not hang up",
    };
    let body = match error.code {
        "no_input_device" => "No microphone found — the agent keeps the call.".to_string(),
        "input_device_unusable" => format!(
            "The microphone could not be opened — the agent keeps the call. ({})",
            error.message
        ),
        "operator_busy" => {
            "You already hold another call: hand it back first (one microphone, one call)."
                .to_string()
        }
        _ => error.message.clone(),
    };
    Alert::new(AlertKind::Error, title, body, call_sid)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    IncomingCall,
    /// A call the app placed was answered and the agent is on it.
    CallAnswered,
    MachineAnswered,
    CallEnded,
    Error,
    /// A tool call waits for the operator's approval (the notification has Approve/Decline).
    ToolApproval,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alert {
    pub kind: AlertKind,
    pub title: String,
    pub body: String,
    pub call_sid: Option<String>,
    /// The tool call a [`AlertKind::ToolApproval`] asks about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    /// Whether it was also shown as a system notification.
    pub native: bool,
}

impl Alert {
    fn new(kind: AlertKind, title: impl Into<String>, body: impl Into<String>, sid: &str) -> Self {
        Alert {
            kind,
            title: title.into(),
            body: body.into(),
            call_sid: Some(sid.to_string()),
            call_id: None,
            native: false,
        }
    }
}

/// `65_000` → `1:05`; `3_723_000` → `1:02:03`.
pub fn format_duration(ms: i64) -> String {
    let secs = ms.max(0) / 1000;
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// Model issue codes that need the user (keys, billing), not just a retry.
fn needs_user(code: &str) -> bool {
    let code = code.to_ascii_lowercase();
    [
        "auth",
        "api_key",
        "quota",
        "billing",
        "permission",
        "unreachable",
    ]
    .iter()
    .any(|k| code.contains(k))
}

/// Call statuses after which no more detection result comes.
fn is_final_status(status: &str) -> bool {
    crate::telephony::twilio::status::is_final(status)
}

/// The other party of a call: the caller of an inbound call, the number dialled of an outbound one.
fn other_party(outbound: bool, from: Option<&str>, to: Option<&str>) -> Option<String> {
    let party = if outbound { to } else { from };
    party.filter(|p| !p.is_empty()).map(String::from)
}

/// The alert for a bridged call's start: who called in, or who answered the app's call.
pub fn call_started(call_sid: &str, outbound: bool, party: Option<&str>) -> Alert {
    let who = party.unwrap_or("an unknown number");
    if outbound {
        Alert::new(
            AlertKind::CallAnswered,
            "Call answered",
            format!("The agent is talking with {who}."),
            call_sid,
        )
    } else {
        Alert::new(
            AlertKind::IncomingCall,
            format!("Incoming call from {who}"),
            "The agent answered.",
            call_sid,
        )
    }
}

/// A live call as the core lists it, for [`AlertTracker::sync_active`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveCall {
    pub call_sid: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub started_at_ms: i64,
}

impl From<&crate::calls::registry::ActiveCall> for LiveCall {
    fn from(call: &crate::calls::registry::ActiveCall) -> Self {
        LiveCall {
            call_sid: call.call_sid.clone(),
            from: call.from.clone(),
            to: call.to.clone(),
            started_at_ms: call.started_at_ms,
        }
    }
}

/// Remembers each live call's other party and start, each dialled call's number and which calls the app
/// placed, to word the alerts.
#[derive(Debug, Default)]
pub struct AlertTracker {
    calls: HashMap<String, (Option<String>, i64)>,
    /// Number dialled per call, from call status and call start events.
    dialled: HashMap<String, String>,
    /// Calls whose `call_status` said they are outbound (placed by the app), until they end.
    outbound: HashSet<String>,
}

impl AlertTracker {
    pub fn on_event(&mut self, event: &CallEvent) -> Option<Alert> {
        match event {
            CallEvent::CallStarted {
                call_sid,
                from,
                to,
                at_ms,
                ..
            } => {
                let outbound = self.outbound.contains(call_sid);
                let party = other_party(outbound, from.as_deref(), to.as_deref()).or_else(|| {
                    outbound
                        .then(|| self.dialled.get(call_sid).cloned())
                        .flatten()
                });
                self.calls.insert(call_sid.clone(), (party.clone(), *at_ms));
                if let Some(to) = to {
                    self.dialled
                        .entry(call_sid.clone())
                        .or_insert_with(|| to.clone());
                }
                Some(call_started(call_sid, outbound, party.as_deref()))
            }
            CallEvent::CallEnded {
                call_sid,
                reason,
                failed,
                at_ms,
            } => {
                self.dialled.remove(call_sid);
                self.outbound.remove(call_sid);
                let (from, started) = self.calls.remove(call_sid)?;
                let who = from.as_deref().unwrap_or("an unknown number");
                let took = format_duration(at_ms - started);
                Some(if *failed {
                    Alert::new(
                        AlertKind::Error,
                        "Call failed",
                        format!("The call with {who} failed after {took}: {reason}"),
                        call_sid,
                    )
                } else {
                    Alert::new(
                        AlertKind::CallEnded,
                        "Call ended",
                        format!("The call with {who} ended after {took}."),
                        call_sid,
                    )
                })
            }
            CallEvent::ModelIssue {
                call_sid,
                code,
                message,
                ..
            } if needs_user(code) => Some(Alert::new(
                AlertKind::Error,
                "The agent needs your attention",
                format!("{message} ({code})"),
                call_sid,
            )),
            CallEvent::CallStatus {
                call_sid,
                status,
                direction,
                to,
                ..
            } => {
                if is_final_status(status) {
                    self.dialled.remove(call_sid);
                    self.outbound.remove(call_sid);
                } else {
                    if let Some(to) = to {
                        self.dialled.insert(call_sid.clone(), to.clone());
                    }
                    // A call placed from Twilio's side: by the app (`outbound-api`) or a `<Dial>`.
                    if direction.as_ref().is_some_and(Direction::is_outbound) {
                        self.outbound.insert(call_sid.clone());
                    }
                }
                None
            }
            CallEvent::CallCapped {
                call_sid,
                cap,
                from,
                ..
            } => Some(call_capped(call_sid, *cap, from.as_deref())),
            CallEvent::ToolApprovalRequested {
                call_sid,
                call_id,
                tool,
                arguments,
                expires_at_ms,
                at_ms,
            } => {
                let party = self.calls.get(call_sid).and_then(|(p, _)| p.as_deref());
                let seconds_left = (expires_at_ms - at_ms + 999) / 1000;
                Some(tool_approval(
                    call_sid,
                    call_id,
                    tool,
                    arguments,
                    party,
                    seconds_left,
                ))
            }
            CallEvent::MachineDetection {
                call_sid,
                answered_by,
                ..
            } if answered_by.is_machine() => {
                let to = self
                    .dialled
                    .get(call_sid)
                    .map(String::as_str)
                    .unwrap_or("The number");
                Some(machine_answered(call_sid, to, answered_by))
            }
            _ => None,
        }
    }

    /// Whether the tracker lists `call_sid` as live.
    pub fn is_live(&self, call_sid: &str) -> bool {
        self.calls.contains_key(call_sid)
    }

    /// Re-syncs the live calls with the core's list after the event stream lagged (a `call_started` or
    /// `call_ended` may have been lost): listed calls the tracker lacks are added (no alert), calls it has
    /// that the list lacks are dropped. Returns the calls added.
    pub fn sync_active(&mut self, active: &[LiveCall]) -> Vec<String> {
        let listed: HashSet<&str> = active.iter().map(|c| c.call_sid.as_str()).collect();
        self.calls.retain(|sid, _| listed.contains(sid.as_str()));
        let mut added = Vec::new();
        for call in active {
            if self.calls.contains_key(&call.call_sid) {
                continue;
            }
            let outbound = self.outbound.contains(&call.call_sid);
            let party = other_party(outbound, call.from.as_deref(), call.to.as_deref());
            self.calls
                .insert(call.call_sid.clone(), (party, call.started_at_ms));
            added.push(call.call_sid.clone());
        }
        added
    }

    /// Live calls the tracker knows, with their other party: what the tray lists.
    pub fn live(&self) -> Vec<(String, Option<String>)> {
        let mut calls: Vec<_> = self
            .calls
            .iter()
            .map(|(sid, (from, at))| (sid.clone(), from.clone(), *at))
            .collect();
        calls.sort_by(|a, b| a.2.cmp(&b.2).then(a.0.cmp(&b.0)));
        calls
            .into_iter()
            .map(|(sid, from, _)| (sid, from))
            .collect()
    }
}

/// An outbound call reached voicemail or an answering machine (from Twilio's `AnsweredBy`).
pub fn machine_answered(call_sid: &str, to: &str, answered_by: &AnsweredBy) -> Alert {
    Alert::new(
        AlertKind::MachineAnswered,
        "Answered by a machine",
        format!("{to} was answered by a machine ({answered_by})."),
        call_sid,
    )
}

/// A cap that protects the bill turned a call away or ended it: the desk should know (and may want
/// to raise the cap).
pub fn call_capped(call_sid: &str, cap: CallCap, from: Option<&str>) -> Alert {
    let who = from.unwrap_or("A caller");
    let (title, body) = match cap {
        CallCap::ConcurrentCalls => (
            "A call was turned away: all lines busy",
            format!(
                "{who} heard that all lines are busy (the cap on calls at once, VERBIO_MAX_CALLS)."
            ),
        ),
        CallCap::DailyMinutes => (
            "A call was turned away: today's minutes are used up",
            format!(
                "{who} was asked to call later (the daily minute budget, VERBIO_DAILY_MINUTES)."
            ),
        ),
        CallCap::CallLength => (
            "A call reached its time limit",
            "The agent said goodbye and the call ended (VERBIO_MAX_CALL_SECS).".to_string(),
        ),
        CallCap::CallBudget => (
            "A call reached its budget",
            "The agent said the budget's goodbye line and the call ended (the per-call budget)."
                .to_string(),
        ),
        CallCap::DailyBudget => (
            "Today's budget is spent",
            format!(
                "{who}: the call was refused or ended with the goodbye line (the daily budget). Raise it in Settings to take more calls."
            ),
        ),
    };
    Alert::new(AlertKind::Error, title, body, call_sid)
}

/// An MCP server failed (did not start, or died): its tools are gone from new calls until it is back.
pub fn mcp_failed(status: &crate::tools::mcp::McpServerStatus) -> Alert {
    Alert {
        kind: AlertKind::Error,
        title: format!("MCP server {} is unavailable", status.name),
        body: format!(
            "{}. The agent cannot use its tools until it is back.",
            status
                .message
                .as_deref()
                .unwrap_or("It stopped without saying why")
                .trim_end_matches('.')
        ),
        call_sid: None,
        call_id: None,
        native: false,
    }
}

/// Shows alerts as system notifications while a notification server answers.
pub struct Notifier {
    native: AtomicBool,
}

impl Notifier {
    /// Probes for a notification server on a background thread (a D-Bus activation can be slow, and start-up
    /// must not wait for it); until it answers, alerts show in the window only. Without a server it warns once.
    pub fn probe() -> std::sync::Arc<Self> {
        let notifier = std::sync::Arc::new(Notifier {
            native: AtomicBool::new(false),
        });
        let probing = notifier.clone();
        let spawned = std::thread::Builder::new()
            .name("notify-probe".into())
            .spawn(move || match notification_server() {
                Ok(name) => {
                    info!(server = %name, "desktop notifications on");
                    probing.native.store(true, Ordering::Relaxed);
                }
                Err(reason) => {
                    warn!(%reason, "no notification server: desktop notifications are off; alerts show in the window only");
                }
            });
        if let Err(e) = spawned {
            warn!(error = %e, "cannot probe for a notification server: desktop notifications are off; alerts show in the window only");
        }
        notifier
    }

    pub fn native(&self) -> bool {
        self.native.load(Ordering::Relaxed)
    }

    /// Shows `alert` (natively if possible) and always forwards it to the window.
    pub fn deliver(&self, app: &AppHandle, mut alert: Alert) {
        if self.native() {
            use tauri_plugin_notification::NotificationExt;
            let mut builder = app
                .notification()
                .builder()
                .title(&alert.title)
                .body(&alert.body);
            // A live call's notification offers "Take over" (and opens the call when clicked); a tool
            // approval's offers Approve/Decline.
            match (alert.kind, &alert.call_sid, &alert.call_id) {
                (AlertKind::IncomingCall | AlertKind::CallAnswered, Some(sid), _) => {
                    builder = builder
                        .action_type_id(LIVE_CALL_ACTIONS)
                        .extra(CALL_SID_EXTRA, sid);
                }
                (AlertKind::ToolApproval, Some(sid), Some(id)) => {
                    builder = builder
                        .action_type_id(TOOL_APPROVAL_ACTIONS)
                        .extra(CALL_SID_EXTRA, sid)
                        .extra(CALL_ID_EXTRA, id);
                }
                _ => {}
            }
            match builder.show() {
                Ok(()) => alert.native = true,
                Err(e) => {
                    warn!(error = %e, "cannot show a desktop notification; notifications are off from now on");
                    self.native.store(false, Ordering::Relaxed);
                }
            }
        }
        if let Err(e) = app.emit(DESKTOP_ALERT, &alert) {
            warn!(error = %e, "cannot forward an alert to the window");
        }
    }
}

#[cfg(target_os = "linux")]
fn notification_server() -> Result<String, String> {
    notify_rust::get_server_information()
        .map(|info| format!("{} {}", info.name, info.version))
        .map_err(|e| e.to_string())
}

#[cfg(not(target_os = "linux"))]
fn notification_server() -> Result<String, String> {
    Ok("system".into())
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_failed_mcp_server_is_an_alert_that_says_why() {
        let alert = mcp_failed(&crate::tools::mcp::McpServerStatus {
            name: "orders".into(),
            state: crate::tools::mcp::McpState::Failed,
            message: Some("server 'orders' exited with status 1; next try in 5 s".into()),
            tools: Vec::new(),
        });
        assert_eq!(alert.kind, AlertKind::Error);
        assert_eq!(alert.title, "MCP server orders is unavailable");
        assert_eq!(
            alert.body,
            "server 'orders' exited with status 1; next try in 5 s. The agent cannot use its tools until it is back."
        );
    }
    use super::*;

    fn started(sid: &str, from: Option<&str>, at_ms: i64) -> CallEvent {
        CallEvent::CallStarted {
            call_sid: sid.into(),
            stream_sid: "MZ1".into(),
            from: from.map(String::from),
            to: None,
            at_ms,
        }
    }

    #[test]
    fn calls_raise_incoming_and_ended_alerts_with_duration() {
        let mut t = AlertTracker::default();
        let a = t
            .on_event(&started("CA1", Some("+15551234567"), 1_000))
            .unwrap();
        assert_eq!(a.kind, AlertKind::IncomingCall);
        assert_eq!(a.title, "Incoming call from +15551234567");
        assert_eq!(
            t.live(),
            vec![("CA1".to_string(), Some("+15551234567".to_string()))]
        );
        let ended = t
            .on_event(&CallEvent::CallEnded {
                call_sid: "CA1".into(),
                reason: "caller hung up".into(),
                failed: false,
                at_ms: 1_000 + 125_400,
            })
            .unwrap();
        assert_eq!(ended.kind, AlertKind::CallEnded);
        assert!(ended.body.ends_with("after 2:05."), "{}", ended.body);
        assert!(t.live().is_empty());
    }

    #[test]
    fn a_capped_call_is_an_alert_that_names_the_cap() {
        let mut t = AlertTracker::default();
        let capped = |cap| CallEvent::CallCapped {
            call_sid: "CA9".into(),
            cap,
            message: "Sorry, all our lines are busy".into(),
            from: Some("+15551234567".into()),
            to: None,
            at_ms: 0,
        };
        let busy = t.on_event(&capped(CallCap::ConcurrentCalls)).unwrap();
        assert_eq!(busy.kind, AlertKind::Error);
        assert!(busy.title.contains("all lines busy"), "{}", busy.title);
        assert!(busy.body.contains("+15551234567") && busy.body.contains("VERBIO_MAX_CALLS"));
        let budget = t.on_event(&capped(CallCap::DailyMinutes)).unwrap();
        assert!(
            budget.body.contains("VERBIO_DAILY_MINUTES"),
            "{}",
            budget.body
        );
        let long = t.on_event(&capped(CallCap::CallLength)).unwrap();
        assert_eq!(long.title, "A call reached its time limit");
    }

    #[test]
    fn failures_and_key_problems_are_errors_other_issues_are_quiet() {
        let mut t = AlertTracker::default();
        t.on_event(&started("CA2", None, 0));
        let issue = |code: &str| CallEvent::ModelIssue {
            call_sid: "CA2".into(),
            code: code.into(),
            message: "m".into(),
            at_ms: 1,
        };
        assert!(t.on_event(&issue("reconnecting")).is_none());
        assert_eq!(
            t.on_event(&issue("invalid_api_key")).unwrap().kind,
            AlertKind::Error
        );
        let failed = t
            .on_event(&CallEvent::CallEnded {
                call_sid: "CA2".into(),
                reason: "model unreachable".into(),
                failed: true,
                at_ms: 3_725_000,
            })
            .unwrap();
        assert_eq!(failed.kind, AlertKind::Error);
        assert!(failed.body.contains("1:02:05") && failed.body.contains("an unknown number"));
        // An end without a start (e.g. before the app started) raises nothing.
        assert!(t
            .on_event(&CallEvent::CallEnded {
                call_sid: "CA9".into(),
                reason: "x".into(),
                failed: false,
                at_ms: 0,
            })
            .is_none());
        assert_eq!(
            machine_answered("CA3", "+15550001111", &AnsweredBy::MachineEndBeep).kind,
            AlertKind::MachineAnswered
        );
    }

    fn status(sid: &str, status: &str, to: Option<&str>) -> CallEvent {
        CallEvent::CallStatus {
            call_sid: sid.into(),
            status: status.into(),
            direction: Some(Direction::OutboundApi),
            from: Some("+15550000000".into()),
            to: to.map(String::from),
            answered_by: None,
            duration_secs: None,
            at_ms: 1,
        }
    }

    fn detection(sid: &str, answered_by: &str) -> CallEvent {
        CallEvent::MachineDetection {
            call_sid: sid.into(),
            answered_by: AnsweredBy::parse(answered_by),
            action: "hang_up".into(),
            at_ms: 2,
        }
    }

    #[test]
    fn machines_and_faxes_raise_an_alert_naming_the_dialled_number() {
        let mut t = AlertTracker::default();
        assert!(t
            .on_event(&status("CA4", "ringing", Some("+15557654321")))
            .is_none());
        let a = t.on_event(&detection("CA4", "machine_end_beep")).unwrap();
        assert_eq!(a.kind, AlertKind::MachineAnswered);
        assert!(a.body.starts_with("+15557654321 "), "{}", a.body);
        assert_eq!(a.call_sid.as_deref(), Some("CA4"));
        assert_eq!(
            t.on_event(&detection("CA4", "fax")).unwrap().kind,
            AlertKind::MachineAnswered
        );
        // A person, an undecided detection, or a verdict Verbio does not know, is no alert.
        assert!(t.on_event(&detection("CA4", "human")).is_none());
        assert!(t.on_event(&detection("CA4", "unknown")).is_none());
        assert!(t.on_event(&detection("CA4", "machine")).is_none());
        // Status events do not make a call live (the tray lists bridged calls only).
        assert!(t.live().is_empty());
        // Once the call is over its number is forgotten.
        t.on_event(&status("CA4", "completed", Some("+15557654321")));
        let late = t.on_event(&detection("CA4", "machine_start")).unwrap();
        assert!(late.body.starts_with("The number "), "{}", late.body);
    }

    #[test]
    fn an_outbound_call_says_answered_and_names_the_number_dialled() {
        let mut t = AlertTracker::default();
        t.on_event(&status("CA5", "queued", Some("+15557654321")));
        t.on_event(&status("CA5", "in-progress", Some("+15557654321")));
        let a = t
            .on_event(&CallEvent::CallStarted {
                call_sid: "CA5".into(),
                stream_sid: "MZ5".into(),
                from: Some("+15550000000".into()),
                to: Some("+15557654321".into()),
                at_ms: 1_000,
            })
            .unwrap();
        assert_eq!(a.kind, AlertKind::CallAnswered);
        assert_eq!(a.title, "Call answered");
        assert_eq!(a.body, "The agent is talking with +15557654321.");
        // The tray and the end alert name the person called, not the app's own number.
        assert_eq!(
            t.live(),
            vec![("CA5".to_string(), Some("+15557654321".to_string()))]
        );
        let ended = t
            .on_event(&CallEvent::CallEnded {
                call_sid: "CA5".into(),
                reason: "hung up".into(),
                failed: false,
                at_ms: 61_000,
            })
            .unwrap();
        assert!(ended.body.contains("+15557654321"), "{}", ended.body);

        // An inbound call, even with a status callback, is incoming.
        let mut inbound = status("CA6", "ringing", Some("+15550000000"));
        if let CallEvent::CallStatus { direction, .. } = &mut inbound {
            *direction = Some(Direction::Inbound);
        }
        t.on_event(&inbound);
        let a = t
            .on_event(&started("CA6", Some("+15551112222"), 2_000))
            .unwrap();
        assert_eq!(a.kind, AlertKind::IncomingCall);
        assert_eq!(a.title, "Incoming call from +15551112222");
        // A `<Dial>`ed leg is placed from Twilio's side too; a direction Verbio does not know is not.
        for (sid, direction, kind) in [
            ("CA10", Direction::OutboundDial, AlertKind::CallAnswered),
            (
                "CA11",
                Direction::Other("trunking-originating".into()),
                AlertKind::IncomingCall,
            ),
        ] {
            let mut event = status(sid, "in-progress", Some("+15557654321"));
            if let CallEvent::CallStatus { direction: d, .. } = &mut event {
                *d = Some(direction);
            }
            t.on_event(&event);
            assert_eq!(
                t.on_event(&started(sid, None, 2_500)).unwrap().kind,
                kind,
                "{sid}"
            );
        }
        let a = t.on_event(&started("CA7", None, 3_000)).unwrap();
        assert_eq!(a.title, "Incoming call from an unknown number");
        assert_eq!(
            call_started("CA8", true, None).body,
            "The agent is talking with an unknown number."
        );
    }

    #[test]
    fn sync_active_adds_missed_calls_and_drops_ended_ones() {
        let mut t = AlertTracker::default();
        t.on_event(&started("CA1", Some("+15551234567"), 1_000));
        t.on_event(&started("CA2", Some("+15559876543"), 2_000));
        t.on_event(&status("CA3", "in-progress", Some("+15557654321")));
        let live = |sid: &str, at: i64| LiveCall {
            call_sid: sid.into(),
            from: Some("+15550000000".into()),
            to: Some("+15557654321".into()),
            started_at_ms: at,
        };
        // CA1's end and CA3's start were lost; CA2 is still live.
        let added = t.sync_active(&[live("CA2", 2_000), live("CA3", 3_000)]);
        assert_eq!(added, vec!["CA3".to_string()]);
        assert_eq!(
            t.live(),
            vec![
                ("CA2".to_string(), Some("+15559876543".to_string())),
                // CA3 is outbound: the tray names the number dialled.
                ("CA3".to_string(), Some("+15557654321".to_string())),
            ]
        );
        assert!(t.is_live("CA3") && !t.is_live("CA1"));
        assert!(t.sync_active(&[]).is_empty());
        assert!(t.live().is_empty());
    }

    #[test]
    fn a_notification_click_takes_over_or_shows_the_call() {
        assert_eq!(
            notification_action("take_over", Some("CA1"), None),
            Some(NotificationAction::TakeOver("CA1".into()))
        );
        assert_eq!(
            notification_action("tap", Some("CA1"), None),
            Some(NotificationAction::ShowCall("CA1".into()))
        );
        assert_eq!(notification_action("take_over", None, None), None);
        assert_eq!(notification_action("take_over", Some(""), None), None);
        assert_eq!(notification_action("dismiss", Some("CA1"), None), None);
    }

    #[test]
    fn an_approval_notification_approves_declines_or_opens_the_call() {
        assert_eq!(
            notification_action("approve", Some("CA1"), Some("fc_1")),
            Some(NotificationAction::Decide(
                "CA1".into(),
                "fc_1".into(),
                true
            ))
        );
        assert_eq!(
            notification_action("decline", Some("CA1"), Some("fc_1")),
            Some(NotificationAction::Decide(
                "CA1".into(),
                "fc_1".into(),
                false
            ))
        );
        assert_eq!(
            notification_action("tap", Some("CA1"), Some("fc_1")),
            Some(NotificationAction::ShowApproval("CA1".into()))
        );
        // Without the tool call named, a button does nothing rather than guess.
        assert_eq!(notification_action("approve", Some("CA1"), None), None);
        assert_eq!(notification_action("decline", Some("CA1"), Some("")), None);
        assert_eq!(notification_action("approve", None, Some("fc_1")), None);
    }

    #[test]
    fn a_tool_waiting_for_approval_is_an_alert_with_its_arguments() {
        let mut t = AlertTracker::default();
        t.on_event(&started("CA1", Some("+15551234567"), 1_000));
        let a = t
            .on_event(&CallEvent::ToolApprovalRequested {
                call_sid: "CA1".into(),
                call_id: "fc_1".into(),
                tool: "refund".into(),
                arguments: r#"{"order":42,"reason":"late"}"#.into(),
                expires_at_ms: 31_000,
                at_ms: 1_200,
            })
            .unwrap();
        assert_eq!(a.kind, AlertKind::ToolApproval);
        assert_eq!(a.title, "Approve refund?");
        assert_eq!(
            a.body,
            "The agent wants to run refund {order: 42, reason: \"late\"} on the call with +15551234567. \
             Answer within 30 s, or it is declined."
        );
        assert_eq!(
            (a.call_sid.as_deref(), a.call_id.as_deref()),
            (Some("CA1"), Some("fc_1"))
        );
        // Settling it raises nothing more (the window removes its card).
        assert!(t
            .on_event(&CallEvent::ToolApprovalSettled {
                call_sid: "CA1".into(),
                call_id: "fc_1".into(),
                approved: true,
                by: "window".into(),
                at_ms: 2_000,
            })
            .is_none());
    }

    #[test]
    fn arguments_are_shown_short_and_readable() {
        assert_eq!(short_arguments(r#"{"order":"42"}"#), r#"{order: "42"}"#);
        assert_eq!(short_arguments("[1,2]"), "[1,2]");
        assert_eq!(short_arguments(" not json "), "not json");
        let long = format!(r#"{{"text":"{}"}}"#, "x".repeat(400));
        let shown = short_arguments(&long);
        assert_eq!(shown.chars().count(), NOTIFIED_ARGUMENTS_CHARS);
        assert!(shown.ends_with('…'));
    }

    #[test]
    fn a_late_answer_from_a_notification_says_it_was_answered() {
        let body = crate::services::ErrorBody {
            code: "not_pending",
            message: "fc_1 is not waiting".into(),
        };
        let a = approval_failed("CA1", true, &body);
        assert_eq!(a.title, "Could not approve the tool");
        assert_eq!(
            a.body,
            "It was already answered, or the time to answer ran out."
        );
    }

    #[test]
    fn a_failed_take_over_says_the_agent_keeps_the_call() {
        use crate::desktop::tray::CallAction;
        let body = |code, message: &str| crate::services::ErrorBody {
            code,
            message: message.into(),
        };
        let a = call_action_failed(
            "CA1",
            CallAction::TakeOver,
            &body("no_input_device", "no microphone"),
        );
        assert_eq!(a.kind, AlertKind::Error);
        assert_eq!(a.title, "Could not take the call over");
        assert_eq!(a.body, "No microphone found — the agent keeps the call.");
        let a = call_action_failed(
            "CA1",
            CallAction::HandBack,
            &body("not_held", "CA1 is not held"),
        );
        assert_eq!(
            (a.title.as_str(), a.body.as_str()),
            ("Could not hand the call back", "CA1 is not held")
        );
    }
}

//! Calls through Twilio's REST API: placing a call, following its status and answering-machine
//! detection, transferring it, and the telephony actions a live call asks for.
//!
//! The desktop's commands and `/api` both call these methods; neither holds logic of its own.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::reachability::Reachability;
use super::ServiceError;
use crate::calls::bridge::{BridgeDeps, CallActions};
use crate::calls::plan::{self, CallPlan, MachineAction, MachinePolicy};
use crate::calls::registry::{CallControl, CallRegistry};
use crate::calls::session_settings::SessionSettings;
use crate::config::TelephonySettings;
use crate::events::CallEvent;
use crate::realtime::session::{Greeting, MaxOutputTokens, ReasoningEffort, SessionConfig, Voice};
use crate::store::StoreHandle;
use crate::telephony::phone::E164;
use crate::telephony::twilio::answered_by::AnsweredBy;
use crate::telephony::twilio::callbacks::StatusCallback;
use crate::telephony::twilio::direction::Direction;
use crate::telephony::twilio::rest::{
    CreateCall, HangUpOutcome, IncomingNumber, MachineDetection, RestError, TwilioRest,
};
use crate::telephony::twilio::status::CallStatus;
use crate::telephony::twilio::twiml;
use crate::telephony::twilio::webhooks::WebhookUrls;
use crate::types::now_ms;

/// Status callbacks Verbio asks Twilio for.
const STATUS_EVENTS: [&str; 4] = ["initiated", "ringing", "answered", "completed"];
/// How long a voicemail request keeps trying to reach a call whose stream has not started yet.
const VOICEMAIL_DELIVERY_WINDOW: Duration = Duration::from_secs(10);

/// How Twilio is asked to detect machines for a call with `policy`. Only a voicemail needs the end of
/// the machine's greeting (`DetectMessageEnd`); `Enable` reports `machine_start` as soon as a machine
/// is recognised, so `hang_up` ends the call before the agent talks to the greeting, and `continue`
/// knows at once that it carries on.
fn machine_detection_for(policy: MachinePolicy) -> MachineDetection {
    match policy {
        MachinePolicy::Voicemail => MachineDetection::DetectMessageEnd,
        MachinePolicy::HangUp | MachinePolicy::Continue => MachineDetection::Enable,
    }
}

/// Whether the agent speaks first on a call the app places.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GreetingChoice {
    WaitForCaller,
    SpeakFirst,
}

/// A call to place: who, from which of the account's numbers, and how this one call differs from the
/// app's session. Unset overrides keep the app's session settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboundRequest {
    pub to: String,
    pub from: String,
    #[serde(default)]
    pub instructions: Option<String>,
    #[serde(default)]
    pub voice: Option<Voice>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub reasoning_effort: Option<ReasoningEffort>,
    #[serde(default)]
    pub speed: Option<f64>,
    #[serde(default)]
    pub max_output_tokens: Option<MaxOutputTokens>,
    /// Default for calls the app places: wait for the callee to speak.
    #[serde(default)]
    pub greeting: Option<GreetingChoice>,
    /// What the agent opens with when it speaks first.
    #[serde(default)]
    pub opening_line: Option<String>,
    /// Keep a local recording of this call.
    #[serde(default = "yes")]
    pub record: bool,
    /// Also have Twilio record it in the cloud (two channels).
    #[serde(default)]
    pub twilio_recording: bool,
    /// Ask Twilio to tell people from answering machines.
    #[serde(default = "yes")]
    pub detect_machines: bool,
    #[serde(default)]
    pub machine_policy: MachinePolicy,
    #[serde(default)]
    pub voicemail_message: Option<String>,
}

fn yes() -> bool {
    true
}

impl OutboundRequest {
    /// A request with every override unset.
    pub fn new(to: impl Into<String>, from: impl Into<String>) -> Self {
        OutboundRequest {
            to: to.into(),
            from: from.into(),
            instructions: None,
            voice: None,
            model: None,
            reasoning_effort: None,
            speed: None,
            max_output_tokens: None,
            greeting: None,
            opening_line: None,
            record: true,
            twilio_recording: false,
            detect_machines: true,
            machine_policy: MachinePolicy::default(),
            voicemail_message: None,
        }
    }

    /// The app's session with this call's overrides.
    fn session(&self, base: &SessionConfig) -> Result<SessionConfig, ServiceError> {
        let mut session = base.clone();
        if let Some(v) = &self.instructions {
            session.instructions = v.clone();
        }
        if let Some(v) = self.voice {
            session.voice = v;
        }
        if let Some(v) = &self.model {
            session.model = v.clone();
        }
        if let Some(v) = self.reasoning_effort {
            session.reasoning_effort = Some(v);
        }
        if let Some(v) = self.speed {
            session.speed = v;
        }
        if let Some(v) = self.max_output_tokens {
            session.max_output_tokens = v;
        }
        session.greeting = match self.greeting.unwrap_or(GreetingChoice::WaitForCaller) {
            GreetingChoice::WaitForCaller => Greeting::WaitForCaller,
            GreetingChoice::SpeakFirst => Greeting::SpeakFirst {
                opening_line: self
                    .opening_line
                    .clone()
                    .filter(|l| !l.trim().is_empty())
                    .or_else(|| match &base.greeting {
                        Greeting::SpeakFirst { opening_line } => Some(opening_line.clone()),
                        Greeting::WaitForCaller => None,
                    })
                    .unwrap_or_else(|| "Hello!".into()),
            },
        };
        session
            .validate()
            .map_err(|e| ServiceError::Invalid(e.to_string()))?;
        Ok(session)
    }
}

/// A call Twilio accepted.
#[derive(Debug, Clone, Serialize)]
pub struct PlacedCall {
    pub call_sid: String,
    pub status: String,
    pub to: String,
    pub from: String,
}

/// One of the account's numbers, as the "from" choices show it.
#[derive(Debug, Clone, Serialize)]
pub struct PhoneNumber {
    pub sid: String,
    pub phone_number: String,
    pub friendly_name: Option<String>,
    pub voice_url: Option<String>,
}

impl From<IncomingNumber> for PhoneNumber {
    fn from(n: IncomingNumber) -> Self {
        PhoneNumber {
            sid: n.sid,
            phone_number: n.phone_number,
            friendly_name: n.friendly_name,
            voice_url: n.voice_url,
        }
    }
}

impl From<RestError> for ServiceError {
    fn from(e: RestError) -> Self {
        match e {
            RestError::NotConfigured | RestError::BadAccountSid(_) | RestError::BadBaseUrl(_) => {
                ServiceError::NotConfigured(e.to_string())
            }
            other => ServiceError::Twilio(other),
        }
    }
}

/// Calls the app places and what Twilio reports about them (status, machine detection), transfers
/// and hang-ups at Twilio: the one service for them, as [`crate::recording::Library`] is for
/// recordings. Call state itself (plans, tokens, Twilio's status) lives in the call registry.
pub struct Outbound {
    twilio: Option<TwilioRest>,
    reachability: Arc<Reachability>,
    session: Arc<SessionSettings>,
    registry: CallRegistry,
    /// Publishes (and persists) call events.
    bridge: Arc<BridgeDeps>,
    store: StoreHandle,
    telephony: TelephonySettings,
}

impl Outbound {
    pub fn new(
        twilio: Option<TwilioRest>,
        reachability: Arc<Reachability>,
        bridge: Arc<BridgeDeps>,
        store: StoreHandle,
        telephony: TelephonySettings,
    ) -> Self {
        Outbound {
            twilio,
            reachability,
            session: bridge.session.clone(),
            registry: bridge.registry.clone(),
            bridge,
            store,
            telephony,
        }
    }

    /// The Twilio REST client, or why there is none.
    pub fn twilio(&self) -> Result<&TwilioRest, ServiceError> {
        self.twilio.as_ref().ok_or_else(|| {
            ServiceError::NotConfigured(
                "Twilio is not set up: add the account SID and auth token in Settings".into(),
            )
        })
    }

    /// True when the REST client is set up.
    pub fn has_twilio(&self) -> bool {
        self.twilio.is_some()
    }

    /// The account's phone numbers (the "from" choices).
    pub async fn phone_numbers(&self) -> Result<Vec<PhoneNumber>, ServiceError> {
        let numbers = self.twilio()?.list_numbers().await?;
        Ok(numbers.into_iter().map(PhoneNumber::from).collect())
    }

    /// Places a call: validates the numbers, checks `from` is the account's, issues a stream token
    /// that refers to this call's plan, and creates the call with inline TwiML, status callbacks and
    /// asynchronous answering-machine detection.
    pub async fn place_call(&self, request: OutboundRequest) -> Result<PlacedCall, ServiceError> {
        let to = E164::parse(&request.to)
            .map_err(|e| ServiceError::InvalidNumber(format!("to: {e}")))?;
        let from = E164::parse(&request.from)
            .map_err(|e| ServiceError::InvalidNumber(format!("from: {e}")))?;
        let session = request.session(&self.session.current())?;
        // The bill-protecting cap counts the calls the app places too (they also use the model).
        let cap = self.bridge.settings.max_concurrent_calls;
        if self.registry.in_flight() >= cap as usize {
            return Err(ServiceError::LinesBusy(cap));
        }
        // So is the day's money budget: no call is dialled that `/twiml` would refuse anyway.
        let costs = &self.bridge.costs;
        if costs.day_spent(crate::types::now_ms()) {
            return Err(ServiceError::DayBudgetSpent(
                costs.budget().daily_usd.unwrap_or_default(),
            ));
        }
        let twilio = self.twilio()?;
        let public = self.reachability.require_public_url()?;
        let numbers = twilio.list_numbers().await?;
        if !numbers.iter().any(|n| n.phone_number == from.as_str()) {
            let choices: Vec<&str> = numbers.iter().map(|n| n.phone_number.as_str()).collect();
            return Err(ServiceError::UnknownFrom(format!(
                "{from} is not one of this Twilio account's numbers ({})",
                if choices.is_empty() {
                    "the account has none".to_string()
                } else {
                    choices.join(", ")
                }
            )));
        }
        let telephony = &self.telephony;
        let plan = Arc::new(CallPlan {
            direction: Direction::OutboundApi,
            session: Arc::new(session),
            machine_policy: request.machine_policy,
            voicemail_message: request
                .voicemail_message
                .clone()
                .filter(|m| !m.trim().is_empty())
                .unwrap_or_else(|| telephony.voicemail_message.clone()),
            record: request.record,
        });
        let token = self.registry.issue_outbound_token(
            plan.clone(),
            Some(from.to_string()),
            Some(to.to_string()),
            telephony.ring_timeout + Duration::from_secs(60),
        );
        let urls = WebhookUrls::new(&public);
        let xml = twiml::Response::new()
            .connect_stream(
                twiml::Stream::new(urls.media_stream()).parameter("token", token.clone()),
            )
            .to_xml();
        let mut create = CreateCall::new(to.as_str(), from.as_str(), xml);
        create.status_callback = Some(urls.status_callback());
        create.status_callback_events = STATUS_EVENTS.to_vec();
        if request.detect_machines {
            create.machine_detection = Some(machine_detection_for(request.machine_policy));
            create.async_amd_callback = Some(urls.amd_callback());
        }
        if request.twilio_recording {
            create.record = true;
            create.recording_status_callback = Some(urls.recording_status_callback());
        }
        create.timeout_secs = Some(telephony.ring_timeout.as_secs().clamp(5, 600) as u32);
        let call = match twilio.create_call(&create).await {
            Ok(call) => call,
            Err(e) => {
                self.registry.revoke_token(&token);
                warn!(to = %to, "Twilio refused the call: {e}");
                return Err(e.into());
            }
        };
        // A call Twilio has just accepted has not been answered yet; anything else in the create
        // response (a stand-in's canned example) must not end the call's record before it began.
        let status = CallStatus::parse(&call.status)
            .filter(|s| s.is_cancellable())
            .unwrap_or(CallStatus::Queued);
        self.registry.placed(&token, &call.sid, plan, status);
        let status = status.as_str().to_string();
        info!(call_sid = %call.sid, %status, "outbound call placed");
        self.bridge.emit(CallEvent::CallStatus {
            call_sid: call.sid.clone(),
            status: status.clone(),
            direction: Some(Direction::OutboundApi),
            from: Some(from.to_string()),
            to: Some(to.to_string()),
            answered_by: None,
            duration_secs: None,
            at_ms: now_ms(),
        });
        Ok(PlacedCall {
            call_sid: call.sid,
            status,
            to: to.to_string(),
            from: from.to_string(),
        })
    }

    /// A status callback from Twilio: recorded, published, and the end of the call's plan.
    pub fn on_call_status(&self, report: StatusCallback) {
        info!(call_sid = %report.call_sid, status = %report.call_status, "call status");
        if let Some(status) = report.status() {
            self.registry.placed_status(&report.call_sid, status);
        }
        self.bridge.emit(CallEvent::CallStatus {
            call_sid: report.call_sid,
            status: report.call_status,
            direction: report.direction,
            from: report.from,
            to: report.to,
            answered_by: report.answered_by,
            duration_secs: report.duration_secs,
            at_ms: now_ms(),
        });
    }

    /// Asynchronous answering-machine detection's verdict: apply the call's machine policy.
    pub async fn on_machine_detection(
        &self,
        call_sid: &str,
        answered_by: AnsweredBy,
    ) -> MachineAction {
        let plan = self.registry.placed_plan(call_sid);
        // Only an answered call has anything to detect.
        self.registry
            .placed_status(call_sid, CallStatus::InProgress);
        let policy = plan
            .as_ref()
            .map(|p| p.machine_policy)
            .unwrap_or(MachinePolicy::Continue);
        let action = plan::decide(policy, &answered_by);
        info!(%call_sid, %answered_by, action = action.as_str(), "answering-machine detection");
        self.bridge.emit(CallEvent::MachineDetection {
            call_sid: call_sid.to_string(),
            answered_by,
            action: action.as_str().to_string(),
            at_ms: now_ms(),
        });
        match action {
            MachineAction::HangUp => {
                self.registry.control(call_sid, CallControl::HangUp);
                if let Ok(twilio) = self.twilio() {
                    if let Err(e) = twilio.hang_up(call_sid, true).await {
                        warn!(%call_sid, "hang-up after machine detection failed: {e}");
                    }
                }
            }
            MachineAction::Voicemail => {
                let message = plan
                    .map(|p| p.voicemail_message.clone())
                    .unwrap_or_default();
                let registry = self.registry.clone();
                let sid = call_sid.to_string();
                // Usually the stream is live already; if Twilio's callback beat the stream, retry briefly.
                tokio::spawn(async move {
                    let deadline = tokio::time::Instant::now() + VOICEMAIL_DELIVERY_WINDOW;
                    while !registry.control(&sid, CallControl::LeaveVoicemail(message.clone())) {
                        if tokio::time::Instant::now() >= deadline {
                            warn!(call_sid = %sid, "voicemail not left: the call's stream never started");
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                });
            }
            MachineAction::Continue | MachineAction::Wait => {}
        }
        action
    }

    /// Hands a live call to a person: `to`, or the session's transfer number.
    pub async fn transfer_call(
        &self,
        call_sid: &str,
        to: Option<&str>,
    ) -> Result<String, ServiceError> {
        let number = match to.filter(|t| !t.trim().is_empty()) {
            Some(to) => E164::parse(to).map_err(|e| ServiceError::InvalidNumber(e.to_string()))?,
            None => {
                let configured = self.session.current().transfer_number.clone();
                let configured = configured.ok_or_else(|| {
                    ServiceError::Invalid(
                        "no number to transfer to: give one, or set the session's transfer number"
                            .into(),
                    )
                })?;
                E164::parse(&configured).map_err(|e| ServiceError::InvalidNumber(e.to_string()))?
            }
        };
        if !self
            .registry
            .active()
            .iter()
            .any(|c| c.call_sid == call_sid)
        {
            return Err(match self.store.call(call_sid).await? {
                Some(_) => ServiceError::AlreadyEnded(call_sid.to_string()),
                None => ServiceError::UnknownCall(call_sid.to_string()),
            });
        }
        let twilio = self.twilio()?;
        // Told before the redirect: Twilio stops the stream as soon as it takes the new TwiML, and
        // the call must end as transferred, not as hung up.
        self.registry
            .control(call_sid, CallControl::Transferred(number.to_string()));
        if let Err(e) = twilio
            .redirect_call(call_sid, &transfer_twiml(number.as_str()))
            .await
        {
            self.registry.control(call_sid, CallControl::TransferFailed);
            return Err(e.into());
        }
        info!(%call_sid, "call transferred");
        Ok(number.to_string())
    }

    /// Ends a call the app placed whose stream is not live, at Twilio: `canceled` while Twilio last
    /// reported it queued, initiated or ringing, `completed` once answered. Twilio ignores `canceled`
    /// on a call that was answered meanwhile (and answers with its live status): then `completed`.
    pub async fn hang_up_at_twilio(&self, call_sid: &str) -> Result<HangUpOutcome, ServiceError> {
        let twilio = self.twilio()?;
        let cancellable = self
            .registry
            .placed_call_status(call_sid)
            .is_some_and(CallStatus::is_cancellable);
        let outcome = twilio.hang_up(call_sid, !cancellable).await?;
        if cancellable && outcome == HangUpOutcome::Completed {
            info!(%call_sid, "the call was answered before it could be cancelled: hung up");
            self.registry
                .placed_status(call_sid, CallStatus::InProgress);
        }
        Ok(outcome)
    }

    /// Whether the app placed `call_sid` and it has not finished.
    pub fn is_pending(&self, call_sid: &str) -> bool {
        self.registry.placed_call_status(call_sid).is_some()
    }
}

fn transfer_twiml(number: &str) -> String {
    twiml::Response::new()
        .dial(twiml::Dial {
            number: number.to_string(),
            caller_id: None,
            timeout: Some(30),
        })
        .to_xml()
}

/// [`CallActions`] through Twilio's REST API.
pub struct TwilioCallActions {
    pub twilio: TwilioRest,
    pub apology_message: String,
    /// Start Twilio's own two-channel recording of inbound calls (`[recording] twilio_inbound`).
    pub record_inbound: bool,
}

impl CallActions for TwilioCallActions {
    fn apologize(&self, call_sid: &str) -> BoxFuture<'static, ()> {
        let twilio = self.twilio.clone();
        let sid = call_sid.to_string();
        let xml = twiml::Response::new()
            .say(self.apology_message.clone(), twiml::SayOptions::default())
            .hangup()
            .to_xml();
        Box::pin(async move {
            match twilio.redirect_call(&sid, &xml).await {
                Ok(_) => info!(call_sid = %sid, "caller told the agent is unavailable"),
                Err(e) => warn!(call_sid = %sid, "could not play the apology: {e}"),
            }
        })
    }

    fn transfer(&self, call_sid: &str, number: &str) -> BoxFuture<'static, Result<(), String>> {
        let twilio = self.twilio.clone();
        let sid = call_sid.to_string();
        let xml = transfer_twiml(number);
        Box::pin(async move {
            twilio
                .redirect_call(&sid, &xml)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    }

    fn hang_up(&self, call_sid: &str) -> BoxFuture<'static, ()> {
        let twilio = self.twilio.clone();
        let sid = call_sid.to_string();
        Box::pin(async move {
            if let Err(e) = twilio.hang_up(&sid, true).await {
                warn!(call_sid = %sid, "hang-up at Twilio failed: {e}");
            }
        })
    }

    fn inbound_stream_started(&self, call_sid: &str, public_base: &str) -> BoxFuture<'static, ()> {
        if !self.record_inbound {
            return Box::pin(async {});
        }
        let twilio = self.twilio.clone();
        let sid = call_sid.to_string();
        let callback = WebhookUrls::new(public_base).recording_status_callback();
        Box::pin(async move {
            // A RestError never carries the auth token (see `rest`), so it can be logged as is.
            match twilio.start_call_recording(&sid, Some(&callback)).await {
                Ok(rec) => {
                    info!(call_sid = %sid, recording_sid = %rec.sid, "Twilio recording started")
                }
                Err(e) => warn!(call_sid = %sid, "Twilio recording not started: {e}"),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_apply_and_are_validated() {
        let base = SessionConfig::default();
        let mut request = OutboundRequest::new("+14155550123", "+14155550100");
        request.instructions = Some("Confirm the appointment.".into());
        request.voice = Some(Voice::Cedar);
        request.speed = Some(1.2);
        request.greeting = Some(GreetingChoice::SpeakFirst);
        let session = request.session(&base).unwrap();
        assert_eq!(session.instructions, "Confirm the appointment.");
        assert_eq!(session.voice, Voice::Cedar);
        assert!(matches!(session.greeting, Greeting::SpeakFirst { .. }));
        assert_eq!(session.model, base.model);
        request.speed = Some(3.0);
        assert!(matches!(
            request.session(&base),
            Err(ServiceError::Invalid(_))
        ));
    }

    #[test]
    fn outbound_calls_wait_for_the_callee_by_default() {
        let base = SessionConfig {
            greeting: Greeting::SpeakFirst {
                opening_line: "Hi".into(),
            },
            ..SessionConfig::default()
        };
        let session = OutboundRequest::new("+1415", "+1416")
            .session(&base)
            .unwrap();
        assert_eq!(session.greeting, Greeting::WaitForCaller);
    }

    #[test]
    fn request_json_rejects_unknown_fields_and_reads_policies() {
        let r: OutboundRequest = serde_json::from_str(
            r#"{"to":"+14155550123","from":"+14155550100","machine_policy":"voicemail","greeting":"speak_first","max_output_tokens":300}"#,
        )
        .unwrap();
        assert_eq!(r.machine_policy, MachinePolicy::Voicemail);
        assert!(r.record && r.detect_machines);
        assert!(serde_json::from_str::<OutboundRequest>(
            r#"{"to":"+1","from":"+1","temperature":0.7}"#
        )
        .is_err());
    }

    #[test]
    fn only_a_voicemail_waits_for_the_end_of_the_greeting() {
        assert_eq!(
            machine_detection_for(MachinePolicy::Voicemail),
            MachineDetection::DetectMessageEnd
        );
        assert_eq!(
            machine_detection_for(MachinePolicy::HangUp),
            MachineDetection::Enable
        );
        assert_eq!(
            machine_detection_for(MachinePolicy::Continue),
            MachineDetection::Enable
        );
        // What `Enable` reports for a machine is acted on by each policy that asks for it.
        let machine_start = &AnsweredBy::MachineStart;
        assert_eq!(
            plan::decide(MachinePolicy::HangUp, machine_start),
            MachineAction::HangUp
        );
        assert_eq!(
            plan::decide(MachinePolicy::Continue, machine_start),
            MachineAction::Continue
        );
        assert_eq!(
            plan::decide(MachinePolicy::Voicemail, machine_start),
            MachineAction::Wait
        );
    }
}

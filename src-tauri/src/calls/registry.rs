//! The one owner of the app's calls in flight: one-time stream tokens, the calls that are live, the
//! calls the app placed (their plan and the furthest status Twilio has reported) until they finish, and
//! the CallSids `/twiml` already answered (so a replayed webhook mints no token).
//!
//! Not global: each running core owns one registry. The locks are held only for a map lookup when a
//! call starts or ends and when the UI lists calls, never on the audio path.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rand::RngCore;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::audio::microphone::MicFrame;
use crate::calls::control_channel::ControlSender;
use crate::calls::plan::CallPlan;
use crate::telephony::twilio::status::CallStatus;

/// A live call as the UI lists it.
#[derive(Debug, Clone, Serialize)]
pub struct ActiveCall {
    pub call_sid: String,
    pub stream_sid: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub started_at_ms: i64,
}

/// Commands another part of the app can send to a live call's task.
#[derive(Debug)]
pub enum CallControl {
    /// End the stream now.
    HangUp,
    /// A machine answered and its greeting is over: stop whatever the agent was saying, say
    /// `message`, then end the call.
    LeaveVoicemail(String),
    /// The app is redirecting the call to this number (a transfer by hand): once the stream stops,
    /// the call ended as transferred, not hung up.
    Transferred(String),
    /// The redirect of a [`CallControl::Transferred`] failed: the call carries on.
    TransferFailed,
    /// The operator tells the agent something privately; with `say_now` the agent also says it.
    Whisper {
        text: String,
        say_now: bool,
        done: oneshot::Sender<Result<(), OperatorRefusal>>,
    },
    /// The operator takes the call over: the agent stops and listens, and the operator's microphone
    /// frames (from `device`) go to the caller until [`CallControl::HandBack`] or `audio` ends.
    TakeOver {
        device: String,
        audio: mpsc::Receiver<MicFrame>,
        done: oneshot::Sender<Result<(), OperatorRefusal>>,
    },
    /// The operator gives the call back to the agent.
    HandBack {
        done: oneshot::Sender<Result<(), OperatorRefusal>>,
    },
}

/// Why a call turned down an operator's command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OperatorRefusal {
    #[error("the operator already holds this call")]
    AlreadyHeld,
    #[error("the operator does not hold this call")]
    NotHeld,
    #[error("the agent cannot speak while the operator holds the call; hand it back first")]
    AgentSilenced,
    #[error("the call is ending")]
    Ending,
}

/// What `/twiml` (or the app, for a call it placed) knew about the call, handed to the media socket
/// that redeems the token.
#[derive(Debug, Clone)]
pub struct PendingStream {
    /// `None` until the call placed with this token has a SID (see [`CallRegistry::placed`]).
    pub call_sid: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    /// Per-call session and policies; `None` runs the app's current session.
    pub plan: Option<Arc<CallPlan>>,
    issued_at: Instant,
    ttl: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the stream carried no token")]
    Missing,
    #[error("unknown or already used stream token")]
    Unknown,
    #[error("stream token expired")]
    Expired,
    #[error("stream token belongs to another call")]
    WrongCall,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("call {0} already has a live stream")]
pub struct DuplicateCall(pub String);

struct LiveCall {
    info: ActiveCall,
    control: ControlSender,
}

/// A call the app placed that has not finished.
struct PlacedCall {
    plan: Arc<CallPlan>,
    /// The furthest status Twilio has reported (callbacks can arrive out of order).
    status: CallStatus,
    placed_at: Instant,
}

/// A placed call whose final status callback never came (Twilio could not reach the app) is
/// forgotten after this long.
const PLACED_TTL: Duration = Duration::from_secs(12 * 60 * 60);

/// How long a CallSid `/twiml` answered is remembered after its stream ended (or it was refused).
/// Twilio retries a webhook only while the call rings (a few attempts, 15 s each at most), so a
/// `/twiml` for a call whose stream already ran is never Twilio's: two hours cover every retry with a
/// wide margin. Older replays are caught by the call library (`StoreHandle::call_answered`), as long
/// as the user keeps the call there; live calls are refused whatever their age.
pub const REPLAY_MEMORY: Duration = Duration::from_secs(2 * 60 * 60);
/// At most this many answered CallSids are remembered (about 10 MB); past it the oldest go first.
/// Each is a real call at Twilio, and the concurrency cap keeps their rate low.
const REPLAY_MEMORY_MAX: usize = 100_000;
/// How long [`CallRegistry::allow_restream`] keeps its allowance (the redirect reaches `/twiml` at once).
const RESTREAM_WINDOW: Duration = Duration::from_secs(5 * 60);

/// What `/twiml` did with a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answered {
    Streamed,
    Refused,
}

/// CallSids `/twiml` answered, newest last; an entry's time moves on when its stream ends.
#[derive(Default)]
struct AnsweredCalls {
    by_sid: HashMap<String, (Answered, Instant)>,
    /// (time, sid) in the order they were noted; an entry is stale when `by_sid` has a later time.
    order: VecDeque<(Instant, String)>,
}

impl AnsweredCalls {
    fn note(&mut self, sid: &str, how: Answered, now: Instant) {
        self.by_sid.insert(sid.to_string(), (how, now));
        self.order.push_back((now, sid.to_string()));
        self.prune(now);
    }

    fn get(&self, sid: &str) -> Option<Answered> {
        self.by_sid.get(sid).map(|(how, _)| *how)
    }

    fn prune(&mut self, now: Instant) {
        while let Some((at, _)) = self.order.front() {
            let expired = now.duration_since(*at) >= REPLAY_MEMORY;
            if !expired && self.order.len() <= REPLAY_MEMORY_MAX {
                break;
            }
            if let Some((at, sid)) = self.order.pop_front() {
                // Only the entry's latest note removes it (an earlier one was refreshed since).
                if self.by_sid.get(&sid).is_some_and(|(_, noted)| *noted == at) {
                    self.by_sid.remove(&sid);
                }
            }
        }
    }
}

#[derive(Default)]
struct Inner {
    tokens: HashMap<String, PendingStream>,
    /// The unredeemed token `/twiml` issued for a CallSid (so a retried webhook gets the same one).
    token_of_call: HashMap<String, String>,
    live: HashMap<String, LiveCall>,
    placed: HashMap<String, PlacedCall>,
    answered: AnsweredCalls,
    /// Calls Verbio itself sends back to `/twiml` (see [`CallRegistry::allow_restream`]).
    restream: HashMap<String, Instant>,
}

impl Inner {
    fn remove_token(&mut self, token: &str) -> Option<PendingStream> {
        let pending = self.tokens.remove(token)?;
        if let Some(sid) = &pending.call_sid {
            if self.token_of_call.get(sid).is_some_and(|t| t == token) {
                self.token_of_call.remove(sid);
            }
        }
        Some(pending)
    }

    fn prune_tokens(&mut self, now: Instant) {
        let expired: Vec<String> = self
            .tokens
            .iter()
            .filter(|(_, p)| now.duration_since(p.issued_at) >= p.ttl)
            .map(|(t, _)| t.clone())
            .collect();
        for token in expired {
            self.remove_token(&token);
        }
    }
}

/// What `/twiml` may do for a call (see [`CallRegistry::admit`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Stream with this token: a fresh one, or the one already issued and not redeemed yet (Twilio
    /// retried the webhook), so no call ever holds two.
    Stream(String),
    /// `/twiml` already answered this call (its stream ran, runs, or it was refused): no token. A
    /// replayed webhook, unless Verbio sent the call back itself ([`CallRegistry::allow_restream`]).
    Replayed,
    /// As many calls as the cap allows are live or about to stream.
    Busy,
    /// The daily minute budget is used up.
    OverBudget,
    /// The day's money budget is spent.
    MoneySpent,
}

/// What `/twiml` knows about a call before asking the registry.
#[derive(Debug, Clone, Default)]
pub struct AdmissionRequest {
    pub call_sid: String,
    pub from: Option<String>,
    pub to: Option<String>,
    /// At most this many calls live or holding a token (new ones are refused).
    pub max_concurrent_calls: usize,
    /// The call library has this call as streamed or refused (a replay older than [`REPLAY_MEMORY`]).
    pub answered_in_library: bool,
    /// The daily minute budget is used up.
    pub over_budget: bool,
    /// The day's money budget is spent.
    pub money_spent: bool,
}

/// Tokens issued by `/twiml` and for placed calls, the calls that are live now, and the calls the app
/// placed.
#[derive(Clone)]
pub struct CallRegistry {
    inner: Arc<Mutex<Inner>>,
    token_ttl: Duration,
}

impl CallRegistry {
    pub fn new(token_ttl: Duration) -> Self {
        CallRegistry {
            inner: Arc::default(),
            token_ttl,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave the maps half-updated (single inserts/removes),
        // so a poisoned lock is still safe to use.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Decides what `/twiml` does for a call, in one step (so a burst cannot slip past the cap):
    /// a call that already holds an unredeemed token gets the same one; a replay mints nothing; then
    /// the caps; then a new single-use token bound to the CallSid (256 random bits, hex). Refusals are
    /// remembered like streams, so replaying a refused call's webhook later mints nothing either.
    pub fn admit(&self, request: AdmissionRequest) -> Admission {
        let now = Instant::now();
        let sid = request.call_sid.as_str();
        let mut inner = self.lock();
        inner.prune_tokens(now);
        inner.answered.prune(now);
        inner
            .restream
            .retain(|_, at| now.duration_since(*at) < RESTREAM_WINDOW);
        // Twilio retried the webhook before the stream came (the token is burned once it does).
        if let Some(token) = inner.token_of_call.get(sid) {
            return Admission::Stream(token.clone());
        }
        let sent_back = inner.restream.remove(sid).is_some();
        if !sent_back
            && (request.answered_in_library
                || inner.live.contains_key(sid)
                || inner.answered.get(sid).is_some())
        {
            return Admission::Replayed;
        }
        // A call Verbio sent back was admitted before: the caps apply to new calls.
        if !sent_back {
            let refusal = if inner.live.len() + inner.tokens.len() >= request.max_concurrent_calls {
                Some(Admission::Busy)
            } else if request.over_budget {
                Some(Admission::OverBudget)
            } else if request.money_spent {
                Some(Admission::MoneySpent)
            } else {
                None
            };
            if let Some(refusal) = refusal {
                inner.answered.note(sid, Answered::Refused, now);
                return refusal;
            }
        }
        let token = new_token();
        inner.tokens.insert(
            token.clone(),
            PendingStream {
                call_sid: Some(sid.to_string()),
                from: request.from,
                to: request.to,
                plan: None,
                issued_at: now,
                ttl: self.token_ttl,
            },
        );
        inner.token_of_call.insert(sid.to_string(), token.clone());
        Admission::Stream(token)
    }

    /// The hook for sending a call Verbio handles back to a stream (a later feature may return a caller
    /// to the agent after a transfer or a menu): call it right before redirecting the call to `/twiml`
    /// (`TwilioRest::redirect_call`), and the next `/twiml` for `call_sid` within five minutes gets a
    /// fresh token even though the call streamed before. Without it, that `/twiml` counts as a replay.
    pub fn allow_restream(&self, call_sid: &str) {
        self.lock()
            .restream
            .insert(call_sid.to_string(), Instant::now());
    }

    /// Milliseconds the live calls have streamed so far, all together (the daily budget counts them).
    pub fn live_ms(&self, now_ms: i64) -> i64 {
        self.lock()
            .live
            .values()
            .map(|c| (now_ms - c.info.started_at_ms).max(0))
            .sum()
    }

    /// Issues a token for a call the app is about to place. Twilio names the call only when it is
    /// created, so the token is bound with [`CallRegistry::placed`] right after; it lives for
    /// `ring_time` longer than an inbound token, since the callee may take that long to answer.
    pub fn issue_outbound_token(
        &self,
        plan: Arc<CallPlan>,
        from: Option<String>,
        to: Option<String>,
        ring_time: Duration,
    ) -> String {
        self.insert_token(PendingStream {
            call_sid: None,
            from,
            to,
            plan: Some(plan),
            issued_at: Instant::now(),
            ttl: self.token_ttl + ring_time,
        })
    }

    /// Twilio created the call placed with `token` as `call_sid`, in `status`: binds the token to it
    /// and tracks the call (its plan, Twilio's status) until a final status.
    pub fn placed(&self, token: &str, call_sid: &str, plan: Arc<CallPlan>, status: CallStatus) {
        let now = Instant::now();
        let mut inner = self.lock();
        if let Some(pending) = inner.tokens.get_mut(token) {
            pending.call_sid = Some(call_sid.to_string());
        }
        inner
            .placed
            .retain(|_, p| now.duration_since(p.placed_at) < PLACED_TTL);
        inner.placed.insert(
            call_sid.to_string(),
            PlacedCall {
                plan,
                status,
                placed_at: now,
            },
        );
    }

    /// Twilio reported `status` for a call the app placed: kept if it moves the call forward; a
    /// final status ends the tracking.
    pub fn placed_status(&self, call_sid: &str, status: CallStatus) {
        let mut inner = self.lock();
        if status.is_final() {
            inner.placed.remove(call_sid);
        } else if let Some(placed) = inner.placed.get_mut(call_sid) {
            if status.rank() > placed.status.rank() {
                placed.status = status;
            }
        }
    }

    /// The plan of a call the app placed that has not finished.
    pub fn placed_plan(&self, call_sid: &str) -> Option<Arc<CallPlan>> {
        self.lock().placed.get(call_sid).map(|p| p.plan.clone())
    }

    /// The furthest status Twilio reported for a call the app placed that has not finished.
    pub fn placed_call_status(&self, call_sid: &str) -> Option<CallStatus> {
        self.lock().placed.get(call_sid).map(|p| p.status)
    }

    /// Withdraws a token whose call could not be placed.
    pub fn revoke_token(&self, token: &str) {
        self.lock().remove_token(token);
    }

    fn insert_token(&self, pending: PendingStream) -> String {
        let token = new_token();
        let now = Instant::now();
        let mut inner = self.lock();
        inner.prune_tokens(now);
        inner.tokens.insert(token.clone(), pending);
        token
    }

    /// Redeems a token for the stream of `call_sid`. The token is burned whatever the outcome, so a
    /// wrong guess cannot be retried against it. An outbound token not bound yet (the callee answered
    /// before Twilio's create response reached us) is accepted for the call that presents it: the
    /// socket has already passed Twilio's signature check.
    pub fn redeem(&self, token: Option<&str>, call_sid: &str) -> Result<PendingStream, TokenError> {
        let token = token.filter(|t| !t.is_empty()).ok_or(TokenError::Missing)?;
        let mut inner = self.lock();
        let mut pending = inner.remove_token(token).ok_or(TokenError::Unknown)?;
        if pending.issued_at.elapsed() >= pending.ttl {
            return Err(TokenError::Expired);
        }
        match &pending.call_sid {
            Some(bound) if bound != call_sid => return Err(TokenError::WrongCall),
            Some(_) => {}
            None => pending.call_sid = Some(call_sid.to_string()),
        }
        // From now on a `/twiml` for this call is a replay (see `admit`).
        inner
            .answered
            .note(call_sid, Answered::Streamed, Instant::now());
        Ok(pending)
    }

    /// Registers a live call; the returned guard unregisters it when dropped (also on panic).
    pub fn register(
        &self,
        info: ActiveCall,
        control: ControlSender,
    ) -> Result<LiveGuard, DuplicateCall> {
        let sid = info.call_sid.clone();
        let mut inner = self.lock();
        if inner.live.contains_key(&sid) {
            return Err(DuplicateCall(sid));
        }
        inner.live.insert(sid.clone(), LiveCall { info, control });
        Ok(LiveGuard {
            registry: self.clone(),
            call_sid: sid,
        })
    }

    /// Live calls, oldest first.
    pub fn active(&self) -> Vec<ActiveCall> {
        let mut calls: Vec<ActiveCall> =
            self.lock().live.values().map(|c| c.info.clone()).collect();
        calls.sort_by(|a, b| {
            a.started_at_ms
                .cmp(&b.started_at_ms)
                .then(a.call_sid.cmp(&b.call_sid))
        });
        calls
    }

    /// Calls live or about to stream (a token not yet redeemed): what the concurrent-call cap counts.
    pub fn in_flight(&self) -> usize {
        let inner = self.lock();
        inner.live.len() + inner.tokens.len()
    }

    pub fn active_count(&self) -> usize {
        self.lock().live.len()
    }

    /// Sends `command` to a live call. `false` if there is no such call (or it is just ending).
    /// True while the call's stream is live.
    pub fn is_live(&self, call_sid: &str) -> bool {
        self.lock().live.contains_key(call_sid)
    }

    pub fn control(&self, call_sid: &str, command: CallControl) -> bool {
        let sender = self.lock().live.get(call_sid).map(|c| c.control.clone());
        sender.is_some_and(|s| s.try_send(Box::new(command)).is_ok())
    }
}

/// Keeps a call listed as live while it exists.
pub struct LiveGuard {
    registry: CallRegistry,
    call_sid: String,
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        let mut inner = self.registry.lock();
        inner.live.remove(&self.call_sid);
        // Replays are refused for `REPLAY_MEMORY` after the stream *ended*.
        inner
            .answered
            .note(&self.call_sid, Answered::Streamed, Instant::now());
    }
}

/// 256 random bits, hex.
fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calls::control_channel;

    fn info(sid: &str) -> ActiveCall {
        ActiveCall {
            call_sid: sid.into(),
            stream_sid: "MZ".into(),
            from: None,
            to: None,
            started_at_ms: 0,
        }
    }

    fn request(sid: &str, max: usize) -> AdmissionRequest {
        AdmissionRequest {
            call_sid: sid.into(),
            max_concurrent_calls: max,
            ..AdmissionRequest::default()
        }
    }

    /// A token for a new inbound call.
    fn issue(r: &CallRegistry, sid: &str) -> String {
        match r.admit(request(sid, 100)) {
            Admission::Stream(token) => token,
            other => panic!("{sid} not admitted: {other:?}"),
        }
    }

    #[test]
    fn tokens_are_single_use_and_bound_to_their_call() {
        let r = CallRegistry::new(Duration::from_secs(60));
        let t = issue(&r, "CA1");
        assert_eq!(t.len(), 64);
        assert_eq!(
            r.redeem(Some(&t), "CA1").unwrap().call_sid.as_deref(),
            Some("CA1")
        );
        assert_eq!(r.redeem(Some(&t), "CA1").unwrap_err(), TokenError::Unknown);
        let t = issue(&r, "CA3");
        assert_eq!(
            r.redeem(Some(&t), "CA2").unwrap_err(),
            TokenError::WrongCall
        );
        assert_eq!(
            r.redeem(Some(&t), "CA3").unwrap_err(),
            TokenError::Unknown,
            "burned"
        );
        assert_eq!(r.redeem(None, "CA1").unwrap_err(), TokenError::Missing);
    }

    #[test]
    fn a_call_that_streamed_gets_no_second_token_unless_verbio_sends_it_back() {
        let r = CallRegistry::new(Duration::from_secs(60));
        let t = issue(&r, "CA1");
        // Twilio retried the webhook before the stream came: the same token, not a second one.
        assert_eq!(r.admit(request("CA1", 100)), Admission::Stream(t.clone()));
        assert_eq!(r.admit(request("CA1", 1)), Admission::Stream(t.clone()));
        r.redeem(Some(&t), "CA1").unwrap();
        assert_eq!(r.admit(request("CA1", 100)), Admission::Replayed, "live");
        let (tx, _rx) = control_channel::channel(1);
        drop(r.register(info("CA1"), tx).unwrap());
        assert_eq!(r.admit(request("CA1", 100)), Admission::Replayed, "ended");
        // Older than the registry remembers: the library still knows it streamed.
        let old = AdmissionRequest {
            answered_in_library: true,
            ..request("CA2", 100)
        };
        assert_eq!(r.admit(old.clone()), Admission::Replayed);
        // Verbio sends a call back to the agent: one fresh token, whatever the library says.
        r.allow_restream("CA2");
        let fresh = r.admit(old.clone());
        assert!(
            matches!(&fresh, Admission::Stream(t2) if *t2 != t),
            "{fresh:?}"
        );
        assert_eq!(r.admit(old.clone()), fresh, "a retry gets the same token");
        if let Admission::Stream(t2) = fresh {
            r.redeem(Some(&t2), "CA2").unwrap();
        }
        assert_eq!(
            r.admit(old),
            Admission::Replayed,
            "the allowance is used up"
        );
    }

    #[test]
    fn the_caps_count_live_calls_and_tokens_and_refusals_are_remembered() {
        let r = CallRegistry::new(Duration::from_secs(60));
        let a = issue(&r, "CA1");
        issue(&r, "CA2");
        assert_eq!(r.admit(request("CA3", 2)), Admission::Busy);
        // Replaying the refused call's webhook later mints nothing, even with room.
        assert_eq!(r.admit(request("CA3", 100)), Admission::Replayed);
        r.redeem(Some(&a), "CA1").unwrap();
        let (tx, _rx) = control_channel::channel(1);
        let live = r.register(info("CA1"), tx).unwrap();
        assert_eq!(r.admit(request("CA4", 2)), Admission::Busy, "live counts");
        drop(live);
        assert!(matches!(r.admit(request("CA5", 2)), Admission::Stream(_)));
        let over = AdmissionRequest {
            over_budget: true,
            ..request("CA6", 100)
        };
        assert_eq!(r.admit(over), Admission::OverBudget);
        // A call sent back to the agent was admitted before: no cap applies to it.
        r.allow_restream("CA1");
        assert!(matches!(r.admit(request("CA1", 0)), Admission::Stream(_)));
    }

    #[test]
    fn answered_calls_are_forgotten_after_the_replay_window_and_bounded() {
        let mut answered = AnsweredCalls::default();
        let t0 = Instant::now();
        answered.note("CA1", Answered::Streamed, t0);
        answered.note("CA2", Answered::Refused, t0 + Duration::from_secs(60));
        // CA1's stream ended later: remembered from then on.
        answered.note("CA1", Answered::Streamed, t0 + Duration::from_secs(1800));
        answered.prune(t0 + REPLAY_MEMORY + Duration::from_secs(61));
        assert_eq!(answered.get("CA1"), Some(Answered::Streamed));
        assert_eq!(answered.get("CA2"), None);
        answered.prune(t0 + REPLAY_MEMORY + Duration::from_secs(1800));
        assert_eq!(answered.get("CA1"), None);
        assert!(answered.order.is_empty());
        for i in 0..REPLAY_MEMORY_MAX + 10 {
            answered.note(&format!("CA{i}"), Answered::Streamed, t0);
        }
        assert_eq!(answered.by_sid.len(), REPLAY_MEMORY_MAX);
        assert_eq!(answered.get("CA0"), None, "the oldest went first");
    }

    #[test]
    fn live_ms_adds_up_live_calls() {
        let r = CallRegistry::new(Duration::from_secs(60));
        let (tx, _rx) = control_channel::channel(1);
        let mut a = info("CA1");
        a.started_at_ms = 1_000;
        let mut b = info("CA2");
        b.started_at_ms = 4_000;
        let _a = r.register(a, tx.clone()).unwrap();
        let _b = r.register(b, tx).unwrap();
        assert_eq!(r.live_ms(10_000), 15_000);
    }

    fn outbound_plan(message: &str) -> Arc<CallPlan> {
        Arc::new(CallPlan {
            direction: crate::telephony::twilio::direction::Direction::OutboundApi,
            session: Arc::default(),
            machine_policy: crate::calls::plan::MachinePolicy::Voicemail,
            voicemail_message: message.into(),
            record: true,
        })
    }

    #[test]
    fn outbound_tokens_carry_a_plan_and_are_bound_after_creation() {
        let r = CallRegistry::new(Duration::from_secs(60));
        let plan = outbound_plan("Call us back");
        let t = r.issue_outbound_token(plan.clone(), None, None, Duration::from_secs(60));
        r.placed(&t, "CA5", plan.clone(), CallStatus::Queued);
        assert_eq!(
            r.redeem(Some(&t), "CA6").unwrap_err(),
            TokenError::WrongCall
        );
        let t = r.issue_outbound_token(plan.clone(), None, None, Duration::from_secs(60));
        r.placed(&t, "CA5", plan.clone(), CallStatus::Queued);
        let pending = r.redeem(Some(&t), "CA5").unwrap();
        assert_eq!(pending.plan.as_deref(), Some(&*plan));
        // Not bound yet: the first stream to present it takes it.
        let t = r.issue_outbound_token(plan.clone(), None, None, Duration::from_secs(60));
        assert_eq!(
            r.redeem(Some(&t), "CA7").unwrap().call_sid.as_deref(),
            Some("CA7")
        );
        let t = r.issue_outbound_token(plan.clone(), None, None, Duration::from_secs(60));
        r.revoke_token(&t);
        r.placed(&t, "CA8", plan, CallStatus::Queued);
        assert_eq!(r.redeem(Some(&t), "CA8").unwrap_err(), TokenError::Unknown);
    }

    #[test]
    fn a_placed_call_is_tracked_until_its_final_status_and_only_moves_forward() {
        let r = CallRegistry::new(Duration::from_secs(60));
        let plan = outbound_plan("");
        let t = r.issue_outbound_token(plan.clone(), None, None, Duration::from_secs(60));
        r.placed(&t, "CA1", plan.clone(), CallStatus::Queued);
        assert_eq!(r.placed_plan("CA1").as_deref(), Some(&*plan));
        r.placed_status("CA1", CallStatus::InProgress);
        // A late `ringing` callback does not take the call back to cancellable.
        r.placed_status("CA1", CallStatus::Ringing);
        assert_eq!(r.placed_call_status("CA1"), Some(CallStatus::InProgress));
        // The stream's token, the plan and the status are one call's: the stream still redeems.
        assert!(r.redeem(Some(&t), "CA1").is_ok());
        r.placed_status("CA1", CallStatus::Completed);
        assert_eq!(r.placed_call_status("CA1"), None);
        assert!(r.placed_plan("CA1").is_none());
        // Statuses of calls the app did not place are ignored.
        r.placed_status("CA2", CallStatus::Ringing);
        assert_eq!(r.placed_call_status("CA2"), None);
    }

    #[test]
    fn expired_tokens_are_refused() {
        let r = CallRegistry::new(Duration::from_millis(0));
        let t = issue(&r, "CA1");
        assert_eq!(r.redeem(Some(&t), "CA1").unwrap_err(), TokenError::Expired);
    }

    #[test]
    fn live_calls_are_listed_until_their_guard_drops() {
        let r = CallRegistry::new(Duration::from_secs(60));
        let (tx, mut rx) = control_channel::channel(1);
        let guard = r.register(info("CA1"), tx.clone()).unwrap();
        assert!(r.register(info("CA1"), tx).is_err());
        assert_eq!(r.active().len(), 1);
        assert!(r.control("CA1", CallControl::HangUp));
        assert!(matches!(*rx.try_recv().unwrap(), CallControl::HangUp));
        assert!(!r.control("CA2", CallControl::HangUp));
        drop(guard);
        assert_eq!(r.active_count(), 0);
    }
}

//! The one owner of the app's calls in flight: one-time stream tokens, the calls that are live, and the
//! calls the app placed (their plan and the furthest status Twilio has reported) until they finish.
//!
//! Not global: each running core owns one registry. The locks are held only for a map lookup when a
//! call starts or ends and when the UI lists calls, never on the audio path.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rand::RngCore;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::time::Instant;

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
#[derive(Debug, Clone, PartialEq, Eq)]
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
    control: mpsc::Sender<CallControl>,
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

#[derive(Default)]
struct Inner {
    tokens: HashMap<String, PendingStream>,
    live: HashMap<String, LiveCall>,
    placed: HashMap<String, PlacedCall>,
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

    /// Issues a single-use token bound to `call_sid` (256 random bits, hex).
    pub fn issue_token(&self, call_sid: &str, from: Option<String>, to: Option<String>) -> String {
        self.insert_token(PendingStream {
            call_sid: Some(call_sid.to_string()),
            from,
            to,
            plan: None,
            issued_at: Instant::now(),
            ttl: self.token_ttl,
        })
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
        self.lock().tokens.remove(token);
    }

    fn insert_token(&self, pending: PendingStream) -> String {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let now = Instant::now();
        let mut inner = self.lock();
        inner
            .tokens
            .retain(|_, p| now.duration_since(p.issued_at) < p.ttl);
        inner.tokens.insert(token.clone(), pending);
        token
    }

    /// Redeems a token for the stream of `call_sid`. The token is burned whatever the outcome, so a
    /// wrong guess cannot be retried against it. An outbound token not bound yet (the callee answered
    /// before Twilio's create response reached us) is accepted for the call that presents it: the
    /// socket has already passed Twilio's signature check.
    pub fn redeem(&self, token: Option<&str>, call_sid: &str) -> Result<PendingStream, TokenError> {
        let token = token.filter(|t| !t.is_empty()).ok_or(TokenError::Missing)?;
        let mut pending = self
            .lock()
            .tokens
            .remove(token)
            .ok_or(TokenError::Unknown)?;
        if pending.issued_at.elapsed() >= pending.ttl {
            return Err(TokenError::Expired);
        }
        match &pending.call_sid {
            Some(bound) if bound != call_sid => return Err(TokenError::WrongCall),
            Some(_) => {}
            None => pending.call_sid = Some(call_sid.to_string()),
        }
        Ok(pending)
    }

    /// Registers a live call; the returned guard unregisters it when dropped (also on panic).
    pub fn register(
        &self,
        info: ActiveCall,
        control: mpsc::Sender<CallControl>,
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

    pub fn active_count(&self) -> usize {
        self.lock().live.len()
    }

    /// Sends `command` to a live call. `false` if there is no such call (or it is just ending).
    pub fn control(&self, call_sid: &str, command: CallControl) -> bool {
        let sender = self.lock().live.get(call_sid).map(|c| c.control.clone());
        sender.is_some_and(|s| s.try_send(command).is_ok())
    }
}

/// Keeps a call listed as live while it exists.
pub struct LiveGuard {
    registry: CallRegistry,
    call_sid: String,
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.registry.lock().live.remove(&self.call_sid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(sid: &str) -> ActiveCall {
        ActiveCall {
            call_sid: sid.into(),
            stream_sid: "MZ".into(),
            from: None,
            to: None,
            started_at_ms: 0,
        }
    }

    #[test]
    fn tokens_are_single_use_and_bound_to_their_call() {
        let r = CallRegistry::new(Duration::from_secs(60));
        let t = r.issue_token("CA1", None, None);
        assert_eq!(t.len(), 64);
        assert_eq!(
            r.redeem(Some(&t), "CA1").unwrap().call_sid.as_deref(),
            Some("CA1")
        );
        assert_eq!(r.redeem(Some(&t), "CA1").unwrap_err(), TokenError::Unknown);
        let t = r.issue_token("CA1", None, None);
        assert_eq!(
            r.redeem(Some(&t), "CA2").unwrap_err(),
            TokenError::WrongCall
        );
        assert_eq!(
            r.redeem(Some(&t), "CA1").unwrap_err(),
            TokenError::Unknown,
            "burned"
        );
        assert_eq!(r.redeem(None, "CA1").unwrap_err(), TokenError::Missing);
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
        let t = r.issue_token("CA1", None, None);
        assert_eq!(r.redeem(Some(&t), "CA1").unwrap_err(), TokenError::Expired);
    }

    #[test]
    fn live_calls_are_listed_until_their_guard_drops() {
        let r = CallRegistry::new(Duration::from_secs(60));
        let (tx, mut rx) = mpsc::channel(1);
        let guard = r.register(info("CA1"), tx.clone()).unwrap();
        assert!(r.register(info("CA1"), tx).is_err());
        assert_eq!(r.active().len(), 1);
        assert!(r.control("CA1", CallControl::HangUp));
        assert_eq!(rx.try_recv().unwrap(), CallControl::HangUp);
        assert!(!r.control("CA2", CallControl::HangUp));
        drop(guard);
        assert_eq!(r.active_count(), 0);
    }
}

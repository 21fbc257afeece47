//! Live calls and one-time stream tokens.
//!
//! Not global: each running core owns one registry. The locks are held only for a map lookup when a
//! call starts or ends and when the UI lists calls, never on the audio path.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rand::RngCore;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::services::ActiveCall;

/// Commands another part of the app can send to a live call's task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallControl {
    /// End the stream now.
    HangUp,
}

/// What `/twiml` learned about the call, handed to the media socket that redeems the token.
#[derive(Debug, Clone)]
pub struct PendingStream {
    pub call_sid: String,
    pub from: Option<String>,
    pub to: Option<String>,
    issued_at: Instant,
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

#[derive(Default)]
struct Inner {
    tokens: HashMap<String, PendingStream>,
    live: HashMap<String, LiveCall>,
}

/// Tokens issued by `/twiml` and the calls that are live now.
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
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let now = Instant::now();
        let mut inner = self.lock();
        let ttl = self.token_ttl;
        inner
            .tokens
            .retain(|_, p| now.duration_since(p.issued_at) < ttl);
        inner.tokens.insert(
            token.clone(),
            PendingStream {
                call_sid: call_sid.to_string(),
                from,
                to,
                issued_at: now,
            },
        );
        token
    }

    /// Redeems a token for the stream of `call_sid`. The token is burned whatever the outcome, so a
    /// wrong guess cannot be retried against it.
    pub fn redeem(&self, token: Option<&str>, call_sid: &str) -> Result<PendingStream, TokenError> {
        let token = token.filter(|t| !t.is_empty()).ok_or(TokenError::Missing)?;
        let pending = self
            .lock()
            .tokens
            .remove(token)
            .ok_or(TokenError::Unknown)?;
        if pending.issued_at.elapsed() >= self.token_ttl {
            return Err(TokenError::Expired);
        }
        if pending.call_sid != call_sid {
            return Err(TokenError::WrongCall);
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
        assert_eq!(r.redeem(Some(&t), "CA1").unwrap().call_sid, "CA1");
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

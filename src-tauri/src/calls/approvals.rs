//! Tool calls waiting for the operator's approval: one owner for the question "may the agent do
//! this?", asked by a call's tool task and answered from either door (the window, `/api`).
//!
//! Each pending approval holds the sender of a oneshot the tool task waits on (with its own timeout);
//! answering removes it, so an approval is decided once. A call that ends forgets its questions (the
//! tasks see their channel close and give up).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;
use tokio::sync::oneshot;

/// The operator's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub approved: bool,
    /// Who answered (`window`, `api`, `tray`, …), kept in the tool log.
    pub by: String,
}

/// A question the operator has not answered yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PendingApproval {
    pub call_sid: String,
    pub call_id: String,
    pub tool: String,
    /// The model's arguments (JSON text).
    pub arguments: String,
    pub asked_at_ms: i64,
    /// When it is declined on its own.
    pub expires_at_ms: i64,
}

struct Waiting {
    question: PendingApproval,
    answer: oneshot::Sender<Decision>,
}

/// Why an answer was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no tool call {call_id} of call {call_sid} is waiting for approval")]
pub struct NotPending {
    pub call_sid: String,
    pub call_id: String,
}

/// Cheap to clone; every clone sees the same questions.
#[derive(Clone, Default)]
pub struct Approvals {
    waiting: Arc<Mutex<HashMap<(String, String), Waiting>>>,
}

impl Approvals {
    fn lock(&self) -> MutexGuard<'_, HashMap<(String, String), Waiting>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Asks; the receiver gets the answer (or closes if the call ends first).
    pub fn ask(&self, question: PendingApproval) -> oneshot::Receiver<Decision> {
        let (answer, receiver) = oneshot::channel();
        let key = (question.call_sid.clone(), question.call_id.clone());
        self.lock().insert(key, Waiting { question, answer });
        receiver
    }

    /// Answers a pending question.
    pub fn decide(
        &self,
        call_sid: &str,
        call_id: &str,
        decision: Decision,
    ) -> Result<(), NotPending> {
        let waiting = self
            .lock()
            .remove(&(call_sid.to_string(), call_id.to_string()));
        let not_pending = || NotPending {
            call_sid: call_sid.to_string(),
            call_id: call_id.to_string(),
        };
        let waiting = waiting.ok_or_else(not_pending)?;
        // The task gave up meanwhile (timed out, call ended): too late.
        waiting.answer.send(decision).map_err(|_| not_pending())
    }

    /// Withdraws a question (timed out): nobody can answer it any more.
    pub fn withdraw(&self, call_sid: &str, call_id: &str) -> Option<PendingApproval> {
        self.lock()
            .remove(&(call_sid.to_string(), call_id.to_string()))
            .map(|w| w.question)
    }

    /// Forgets every question of a call that ended.
    pub fn forget_call(&self, call_sid: &str) {
        self.lock().retain(|(sid, _), _| sid != call_sid);
    }

    /// Questions waiting now, oldest first.
    pub fn pending(&self) -> Vec<PendingApproval> {
        let mut all: Vec<PendingApproval> =
            self.lock().values().map(|w| w.question.clone()).collect();
        all.sort_by_key(|q| q.asked_at_ms);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn question(call_id: &str, at: i64) -> PendingApproval {
        PendingApproval {
            call_sid: "CA1".into(),
            call_id: call_id.into(),
            tool: "refund".into(),
            arguments: "{}".into(),
            asked_at_ms: at,
            expires_at_ms: at + 30_000,
        }
    }

    #[tokio::test]
    async fn an_answer_reaches_the_asker_once() {
        let approvals = Approvals::default();
        let asked = approvals.ask(question("c1", 2));
        let _other = approvals.ask(question("c0", 1));
        assert_eq!(
            approvals
                .pending()
                .iter()
                .map(|q| q.call_id.as_str())
                .collect::<Vec<_>>(),
            vec!["c0", "c1"]
        );
        let yes = Decision {
            approved: true,
            by: "api".into(),
        };
        approvals.decide("CA1", "c1", yes.clone()).unwrap();
        assert_eq!(asked.await.unwrap(), yes);
        assert!(
            approvals.decide("CA1", "c1", yes.clone()).is_err(),
            "decided once"
        );
        assert!(
            approvals.decide("CA2", "c0", yes).is_err(),
            "another call's id"
        );
    }

    #[tokio::test]
    async fn a_withdrawn_or_forgotten_question_cannot_be_answered() {
        let approvals = Approvals::default();
        let asked = approvals.ask(question("c1", 1));
        assert!(approvals.withdraw("CA1", "c1").is_some());
        let no = Decision {
            approved: false,
            by: "window".into(),
        };
        assert!(approvals.decide("CA1", "c1", no.clone()).is_err());
        assert!(asked.await.is_err(), "the asker sees the question gone");
        let asked = approvals.ask(question("c2", 1));
        approvals.forget_call("CA1");
        assert!(approvals.pending().is_empty());
        assert!(asked.await.is_err());
        // An asker that gave up: the answer is refused, not lost silently.
        let asked = approvals.ask(question("c3", 1));
        drop(asked);
        assert!(approvals.decide("CA1", "c3", no).is_err());
    }
}

//! How a call is ending, as one state instead of loose flags.

use tokio::time::Instant;

use super::EndReason;

/// Why the call ends once the agent's last words have played.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndKind {
    /// The agent called `end_call`.
    AgentEnded,
    /// The voicemail message is being left.
    VoicemailLeft,
    /// The call reached its maximum length; the agent says goodbye.
    TimeLimit,
    /// A money budget was reached; the agent says the budget's goodbye line.
    Budget,
}

impl EndKind {
    fn reason(self) -> EndReason {
        match self {
            EndKind::AgentEnded => EndReason::AgentEnded,
            EndKind::VoicemailLeft => EndReason::VoicemailLeft,
            EndKind::TimeLimit => EndReason::MaxLength,
            EndKind::Budget => EndReason::OverBudget,
        }
    }
}

/// The call's ending state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Ending {
    #[default]
    Open,
    /// End once no response runs or waits and everything sent has played, or at `deadline`.
    AfterPlayout { kind: EndKind, deadline: Instant },
    /// Transfer to `number` once the agent's last words have played.
    TransferAfterPlayout { number: String },
    /// The transfer was handed to Twilio: the stream's end is the transfer, not a hang-up.
    Transferring { number: String },
}

/// What the bridge must do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Due {
    End(EndReason),
    Transfer(String),
}

impl Ending {
    /// When the call ends whatever happens (a goodbye that never finishes playing).
    pub fn deadline(&self) -> Option<Instant> {
        match self {
            Ending::AfterPlayout { deadline, .. } => Some(*deadline),
            _ => None,
        }
    }

    /// The reason to end with at the deadline.
    pub fn deadline_reason(&self) -> EndReason {
        match self {
            Ending::AfterPlayout { kind, .. } => kind.reason(),
            _ => EndReason::AgentEnded,
        }
    }

    /// What is due now that the line is `idle` (no response running or waiting, all audio played).
    pub fn due(&mut self, idle: bool) -> Option<Due> {
        if !idle {
            return None;
        }
        match self {
            Ending::AfterPlayout { kind, .. } => Some(Due::End(kind.reason())),
            Ending::TransferAfterPlayout { number } => {
                let number = number.clone();
                *self = Ending::Open;
                Some(Due::Transfer(number))
            }
            _ => None,
        }
    }

    /// The caller spoke over the goodbye ("wait, one more thing"): the agent's `end_call` is undone and
    /// the conversation goes on. A voicemail, the time limit's goodbye or a transfer is not undone.
    /// Returns whether it was undone.
    pub fn on_barge_in(&mut self) -> bool {
        if matches!(
            self,
            Ending::AfterPlayout {
                kind: EndKind::AgentEnded,
                ..
            }
        ) {
            *self = Ending::Open;
            return true;
        }
        false
    }

    /// The transfer's number, once it was handed to Twilio.
    pub fn transferring(&self) -> Option<&str> {
        match self {
            Ending::Transferring { number } => Some(number),
            _ => None,
        }
    }

    /// The call's last words are being said (a voicemail, the time limit's goodbye): what the other
    /// side says no longer reaches the model, so nothing can make the agent stop or answer.
    pub fn saying_last_words(&self) -> bool {
        matches!(
            self,
            Ending::AfterPlayout {
                kind: EndKind::VoicemailLeft | EndKind::TimeLimit | EndKind::Budget,
                ..
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn end_call_waits_for_playout_and_a_barge_in_undoes_it() {
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut e = Ending::AfterPlayout {
            kind: EndKind::AgentEnded,
            deadline,
        };
        assert_eq!(e.due(false), None);
        assert!(e.on_barge_in());
        assert_eq!(e, Ending::Open);
        assert_eq!(e.due(true), None);
    }

    #[test]
    fn voicemail_and_transfer_are_not_undone() {
        let deadline = Instant::now();
        let mut e = Ending::AfterPlayout {
            kind: EndKind::VoicemailLeft,
            deadline,
        };
        assert!(!e.on_barge_in());
        assert_eq!(e.due(true), Some(Due::End(EndReason::VoicemailLeft)));
        let mut limit = Ending::AfterPlayout {
            kind: EndKind::TimeLimit,
            deadline,
        };
        assert!(limit.saying_last_words());
        assert!(
            !limit.on_barge_in(),
            "the time limit's goodbye is not undone"
        );
        assert_eq!(limit.deadline_reason(), EndReason::MaxLength);
        assert_eq!(limit.due(true), Some(Due::End(EndReason::MaxLength)));
        let mut t = Ending::TransferAfterPlayout {
            number: "+1".into(),
        };
        assert!(!t.on_barge_in());
        assert_eq!(t.due(true), Some(Due::Transfer("+1".into())));
        assert_eq!(t, Ending::Open);
    }
}

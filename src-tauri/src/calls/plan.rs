//! How one call is run, decided before it connects: its model session and, for calls the app places,
//! what to do when a machine answers. The stream token carries a reference to it (never its text), so
//! per-call instructions stay out of TwiML and Twilio's logs.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::realtime::session::SessionConfig;
use crate::telephony::twilio::answered_by::AnsweredBy;
use crate::telephony::twilio::direction::Direction;

/// What to do when answering-machine detection says a machine (or fax) picked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum MachinePolicy {
    /// End the call at once.
    #[default]
    HangUp,
    /// After the beep, the agent says the voicemail message, then the call ends.
    Voicemail,
    /// Carry on as if a person answered.
    Continue,
}

/// One call's plan.
#[derive(Debug, Clone, PartialEq)]
pub struct CallPlan {
    /// Who placed the call (`outbound-api` for a call the app placed).
    pub direction: Direction,
    /// The session this call's model gets (the app's session with the call's overrides).
    pub session: Arc<SessionConfig>,
    pub machine_policy: MachinePolicy,
    /// What the agent says on a voicemail ([`MachinePolicy::Voicemail`]).
    pub voicemail_message: String,
    /// Keep a local recording of this call.
    pub record: bool,
}

/// What the app does about a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MachineAction {
    HangUp,
    Voicemail,
    Continue,
    /// A greeting is playing: wait for the end-of-greeting verdict.
    Wait,
}

impl MachineAction {
    pub fn as_str(self) -> &'static str {
        match self {
            MachineAction::HangUp => "hang_up",
            MachineAction::Voicemail => "voicemail",
            MachineAction::Continue => "continue",
            MachineAction::Wait => "wait",
        }
    }
}

/// The decision table: people and unknowns get the agent; a fax is never talked to; machines get the
/// policy, and a voicemail waits for the end of the greeting.
pub fn decide(policy: MachinePolicy, answered_by: &AnsweredBy) -> MachineAction {
    if !answered_by.is_machine() {
        // A person, or a verdict Verbio cannot act on.
        return MachineAction::Continue;
    }
    match (answered_by, policy) {
        // Before the policy: there is no one to talk to, whatever the policy says.
        (AnsweredBy::Fax, _) => MachineAction::HangUp,
        (_, MachinePolicy::Continue) => MachineAction::Continue,
        (_, MachinePolicy::HangUp) => MachineAction::HangUp,
        (_, MachinePolicy::Voicemail) if answered_by.greeting_ended() => MachineAction::Voicemail,
        // The greeting is still playing: wait for the end-of-greeting verdict.
        (_, MachinePolicy::Voicemail) => MachineAction::Wait,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decision_table() {
        use AnsweredBy as A;
        use MachineAction as M;
        use MachinePolicy as P;
        let cases = [
            (P::HangUp, "human", M::Continue),
            (P::HangUp, "unknown", M::Continue),
            (P::HangUp, "machine_start", M::HangUp),
            (P::HangUp, "machine_end_beep", M::HangUp),
            (P::Voicemail, "machine_start", M::Wait),
            (P::Voicemail, "machine_end_beep", M::Voicemail),
            (P::Voicemail, "machine_end_silence", M::Voicemail),
            (P::Voicemail, "fax", M::HangUp),
            (P::Continue, "fax", M::HangUp),
            (P::HangUp, "fax", M::HangUp),
            (P::Continue, "machine_end_other", M::Continue),
            (P::Voicemail, "machine_end_other", M::Voicemail),
            (P::Voicemail, "human", M::Continue),
            (P::Voicemail, "unknown", M::Continue),
            (P::Voicemail, "something_new", M::Continue),
            (P::HangUp, "something_new", M::Continue),
        ];
        for (policy, answered_by, want) in cases {
            assert_eq!(
                decide(policy, &A::parse(answered_by)),
                want,
                "{policy:?} {answered_by}"
            );
        }
    }
}

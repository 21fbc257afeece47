//! Who spoke.

use serde::{Deserialize, Serialize};

/// Who spoke a transcript line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Speaker {
    Caller,
    Agent,
    /// The person at the desk, speaking to the caller after taking the call over.
    Operator,
    /// A private instruction from the operator to the agent; the caller never hears it.
    Whisper,
    /// A tool the agent used, with its result (the tool log's line in the transcript).
    Tool,
}

impl Speaker {
    pub const ALL: [Speaker; 5] = [
        Speaker::Caller,
        Speaker::Agent,
        Speaker::Operator,
        Speaker::Whisper,
        Speaker::Tool,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Speaker::Caller => "caller",
            Speaker::Agent => "agent",
            Speaker::Operator => "operator",
            Speaker::Whisper => "whisper",
            Speaker::Tool => "tool",
        }
    }

    /// The speaker stored as `name` (see [`Speaker::as_str`]).
    pub fn parse(name: &str) -> Option<Speaker> {
        Speaker::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for speaker in Speaker::ALL {
            assert_eq!(Speaker::parse(speaker.as_str()), Some(speaker));
            assert_eq!(
                serde_json::to_value(speaker).unwrap(),
                serde_json::json!(speaker.as_str())
            );
        }
        assert_eq!(Speaker::parse("robot"), None);
    }
}

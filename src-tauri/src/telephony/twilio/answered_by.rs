//! Who answered, as answering-machine detection reports it (`AnsweredBy`), typed once.
//!
//! Twilio documents `human`, `machine_start` (with `MachineDetection=Enable`, or before the end of
//! the greeting), `machine_end_beep`, `machine_end_silence`, `machine_end_other` (with
//! `DetectMessageEnd`: the greeting is over), `fax` and `unknown`. A value Verbio does not know is
//! kept as Twilio spelled it and treated like `unknown`.

/// Answering-machine detection's verdict. Serializes as Twilio's spelling.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AnsweredBy {
    Human,
    /// A machine's greeting has started; the beep is still to come.
    MachineStart,
    MachineEndBeep,
    MachineEndSilence,
    MachineEndOther,
    Fax,
    /// Twilio could not tell.
    Unknown,
    /// A value Verbio does not know, verbatim.
    Other(String),
}

impl AnsweredBy {
    /// Parses Twilio's spelling; an unknown value is kept as [`AnsweredBy::Other`].
    ///
    /// ```
    /// use verbio::telephony::twilio::answered_by::AnsweredBy;
    /// assert_eq!(AnsweredBy::parse("machine_end_beep"), AnsweredBy::MachineEndBeep);
    /// assert!(AnsweredBy::parse("fax").is_machine());
    /// assert!(!AnsweredBy::parse("robot").is_machine());
    /// ```
    pub fn parse(value: &str) -> AnsweredBy {
        match value {
            "human" => AnsweredBy::Human,
            "machine_start" => AnsweredBy::MachineStart,
            "machine_end_beep" => AnsweredBy::MachineEndBeep,
            "machine_end_silence" => AnsweredBy::MachineEndSilence,
            "machine_end_other" => AnsweredBy::MachineEndOther,
            "fax" => AnsweredBy::Fax,
            "unknown" => AnsweredBy::Unknown,
            other => AnsweredBy::Other(other.to_string()),
        }
    }

    /// Twilio's spelling.
    pub fn as_str(&self) -> &str {
        match self {
            AnsweredBy::Human => "human",
            AnsweredBy::MachineStart => "machine_start",
            AnsweredBy::MachineEndBeep => "machine_end_beep",
            AnsweredBy::MachineEndSilence => "machine_end_silence",
            AnsweredBy::MachineEndOther => "machine_end_other",
            AnsweredBy::Fax => "fax",
            AnsweredBy::Unknown => "unknown",
            AnsweredBy::Other(other) => other,
        }
    }

    /// A machine picked up (an answering machine or a fax): there is no person on the line.
    pub fn is_machine(&self) -> bool {
        matches!(self, AnsweredBy::MachineStart | AnsweredBy::Fax) || self.greeting_ended()
    }

    /// An answering machine's greeting is over (beep, silence or other): a message can be left now.
    pub fn greeting_ended(&self) -> bool {
        matches!(
            self,
            AnsweredBy::MachineEndBeep
                | AnsweredBy::MachineEndSilence
                | AnsweredBy::MachineEndOther
        )
    }
}

twilio_spelling!(AnsweredBy);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twilios_values_round_trip_and_unknown_ones_are_kept_verbatim() {
        use AnsweredBy as A;
        // (value, parsed, machine, greeting ended)
        for (text, parsed, machine, ended) in [
            ("human", A::Human, false, false),
            ("machine_start", A::MachineStart, true, false),
            ("machine_end_beep", A::MachineEndBeep, true, true),
            ("machine_end_silence", A::MachineEndSilence, true, true),
            ("machine_end_other", A::MachineEndOther, true, true),
            ("fax", A::Fax, true, false),
            ("unknown", A::Unknown, false, false),
            ("machine", A::Other("machine".into()), false, false),
            ("", A::Other(String::new()), false, false),
        ] {
            let value = AnsweredBy::parse(text);
            assert_eq!(value, parsed, "{text:?}");
            assert_eq!(value.as_str(), text);
            assert_eq!(value.to_string(), text);
            assert_eq!(value.is_machine(), machine, "{text:?}");
            assert_eq!(value.greeting_ended(), ended, "{text:?}");
            assert_eq!(
                serde_json::to_value(&value).unwrap(),
                serde_json::Value::String(text.into())
            );
        }
    }
}

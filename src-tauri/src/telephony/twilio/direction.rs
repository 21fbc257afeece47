//! Which way a call goes, typed once (`Direction` in webhooks, `direction` in the REST API).
//!
//! Twilio documents `inbound`, `outbound-api` (placed through the REST API) and `outbound-dial`
//! (placed by a `<Dial>`); Elastic SIP Trunking adds `trunking-*`. Anything Verbio does not know is
//! kept as Twilio spelled it, so what is stored and shown is always Twilio's own word.

/// A call's direction as Twilio reports it. Serializes as Twilio's spelling.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Direction {
    Inbound,
    /// Placed through the REST API (every call the app places).
    OutboundApi,
    /// Placed by a `<Dial>` verb.
    OutboundDial,
    /// A value Verbio does not know, verbatim.
    Other(String),
}

impl Direction {
    /// Parses Twilio's spelling; an unknown value is kept as [`Direction::Other`].
    ///
    /// ```
    /// use verbio::telephony::twilio::direction::Direction;
    /// assert_eq!(Direction::parse("outbound-api"), Direction::OutboundApi);
    /// assert!(!Direction::parse("trunking-originating").is_outbound());
    /// ```
    pub fn parse(value: &str) -> Direction {
        match value {
            "inbound" => Direction::Inbound,
            "outbound-api" => Direction::OutboundApi,
            "outbound-dial" => Direction::OutboundDial,
            other => Direction::Other(other.to_string()),
        }
    }

    /// Twilio's spelling.
    pub fn as_str(&self) -> &str {
        match self {
            Direction::Inbound => "inbound",
            Direction::OutboundApi => "outbound-api",
            Direction::OutboundDial => "outbound-dial",
            Direction::Other(other) => other,
        }
    }

    /// A call placed from Twilio's side (by the API or a `<Dial>`), as opposed to one that came in.
    /// An unknown direction is not outbound.
    pub fn is_outbound(&self) -> bool {
        matches!(self, Direction::OutboundApi | Direction::OutboundDial)
    }
}

twilio_spelling!(Direction);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twilios_values_round_trip_and_unknown_ones_are_kept_verbatim() {
        for (text, direction, outbound) in [
            ("inbound", Direction::Inbound, false),
            ("outbound-api", Direction::OutboundApi, true),
            ("outbound-dial", Direction::OutboundDial, true),
            (
                "trunking-terminating",
                Direction::Other("trunking-terminating".into()),
                false,
            ),
            (
                "Outbound-API",
                Direction::Other("Outbound-API".into()),
                false,
            ),
        ] {
            let parsed = Direction::parse(text);
            assert_eq!(parsed, direction, "{text}");
            assert_eq!(parsed.as_str(), text);
            assert_eq!(parsed.to_string(), text);
            assert_eq!(parsed.is_outbound(), outbound, "{text}");
            assert_eq!(
                serde_json::to_value(&parsed).unwrap(),
                serde_json::Value::String(text.into())
            );
        }
    }
}

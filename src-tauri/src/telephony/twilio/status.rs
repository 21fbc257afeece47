//! Twilio's call statuses, typed once: their order in a call's life, which are final, and which can
//! still be cancelled. Every place that reasons about a status (outbound call tracking, the call
//! library, the desktop's alerts) asks this type, so they cannot disagree.

/// A call status as Twilio reports it (`CallStatus` in callbacks, `status` in the REST API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CallStatus {
    Queued,
    Initiated,
    Ringing,
    /// `in-progress`; the status callback event `answered` means the same.
    InProgress,
    Completed,
    Busy,
    NoAnswer,
    Failed,
    Canceled,
}

impl CallStatus {
    /// Parses Twilio's spelling; `None` for a status Verbio does not know (a newer API's), which
    /// callers must leave alone rather than guess at.
    ///
    /// ```
    /// use verbio::telephony::twilio::status::CallStatus;
    /// assert_eq!(CallStatus::parse("no-answer"), Some(CallStatus::NoAnswer));
    /// assert_eq!(CallStatus::parse("answered"), Some(CallStatus::InProgress));
    /// assert_eq!(CallStatus::parse("on-hold"), None);
    /// ```
    pub fn parse(status: &str) -> Option<CallStatus> {
        Some(match status {
            "queued" => CallStatus::Queued,
            "initiated" => CallStatus::Initiated,
            "ringing" => CallStatus::Ringing,
            "in-progress" | "answered" => CallStatus::InProgress,
            "completed" => CallStatus::Completed,
            "busy" => CallStatus::Busy,
            "no-answer" => CallStatus::NoAnswer,
            "failed" => CallStatus::Failed,
            "canceled" => CallStatus::Canceled,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CallStatus::Queued => "queued",
            CallStatus::Initiated => "initiated",
            CallStatus::Ringing => "ringing",
            CallStatus::InProgress => "in-progress",
            CallStatus::Completed => "completed",
            CallStatus::Busy => "busy",
            CallStatus::NoAnswer => "no-answer",
            CallStatus::Failed => "failed",
            CallStatus::Canceled => "canceled",
        }
    }

    /// Where the status sits in a call's life (callbacks arrive out of order: a status only moves
    /// forward). Every final status has the same rank.
    pub fn rank(self) -> u8 {
        match self {
            CallStatus::Queued => 0,
            CallStatus::Initiated => 1,
            CallStatus::Ringing => 2,
            CallStatus::InProgress => 3,
            _ => 4,
        }
    }

    /// The call is over; no more callbacks (or detection results) follow.
    pub fn is_final(self) -> bool {
        self.rank() == 4
    }

    /// The call can still be cancelled (`Status=canceled`); once answered only `Status=completed`
    /// ends it (Twilio ignores `canceled` on an answered call).
    pub fn is_cancellable(self) -> bool {
        self.rank() <= 2
    }
}

/// Whether `status` (Twilio's spelling) is a known final status.
pub fn is_final(status: &str) -> bool {
    CallStatus::parse(status).is_some_and(CallStatus::is_final)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_finality_and_cancelling_agree() {
        let all = [
            "queued",
            "initiated",
            "ringing",
            "in-progress",
            "completed",
            "busy",
            "no-answer",
            "failed",
            "canceled",
        ];
        for s in all {
            let status = CallStatus::parse(s).unwrap();
            assert_eq!(status.as_str(), s);
            assert_eq!(status.is_final(), status.rank() == 4, "{s}");
            assert_eq!(status.is_cancellable(), status.rank() < 3, "{s}");
        }
        assert!(!is_final("on-hold"), "an unknown status is never final");
        assert!(is_final("canceled"));
        assert!(CallStatus::Ringing < CallStatus::InProgress);
    }
}

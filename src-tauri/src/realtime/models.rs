//! Which Realtime models take which session fields.
//!
//! The live model list (`GET /v1/models`) offers dated snapshots next to the family names, and a
//! name prefix is not a family: `gpt-realtime-2025-08-28` is a snapshot of the original, non-reasoning
//! `gpt-realtime`, not of `gpt-realtime-2`. So the tables below name families exactly, and a snapshot
//! belongs to the family its name has before the date.

/// Model families that accept `reasoning.effort` (and `parallel_tool_calls`).
pub const REASONING_FAMILIES: &[&str] = &[
    "gpt-realtime-2",
    "gpt-realtime-2.1",
    "gpt-realtime-2.1-mini",
];

/// GA speech model families Verbio knows, newest first (offered when the live list cannot be read);
/// anything else is passed through but gets no optional fields.
pub const KNOWN_FAMILIES: &[&str] = &[
    "gpt-realtime-2.1",
    "gpt-realtime-2.1-mini",
    "gpt-realtime-2",
    "gpt-realtime-1.5",
    "gpt-realtime",
    "gpt-realtime-mini",
];

/// The family of a model name: the name without a trailing `-YYYY-MM-DD` snapshot date.
///
/// ```
/// use verbio::realtime::models::family;
/// assert_eq!(family("gpt-realtime-2025-08-28"), "gpt-realtime");
/// assert_eq!(family("gpt-realtime-2.1-mini-2026-10-01"), "gpt-realtime-2.1-mini");
/// assert_eq!(family("gpt-realtime-2"), "gpt-realtime-2");
/// ```
pub fn family(model: &str) -> &str {
    let bytes = model.as_bytes();
    if bytes.len() > 11 {
        let (head, date) = model.split_at(model.len() - 11);
        let d = date.as_bytes();
        let dated = d[0] == b'-'
            && d[5] == b'-'
            && d[8] == b'-'
            && [1, 2, 3, 4, 6, 7, 9, 10]
                .iter()
                .all(|&i| d[i].is_ascii_digit());
        if dated {
            return head;
        }
    }
    model
}

/// True only for models known to accept `reasoning.effort`; unknown models don't get it.
pub fn takes_reasoning(model: &str) -> bool {
    REASONING_FAMILIES.contains(&family(model))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasoning_table_is_exact() {
        for yes in [
            "gpt-realtime-2",
            "gpt-realtime-2.1",
            "gpt-realtime-2.1-mini",
            "gpt-realtime-2-2026-03-01",
            "gpt-realtime-2.1-2026-09-30",
        ] {
            assert!(takes_reasoning(yes), "{yes}");
        }
        for no in [
            "gpt-realtime",
            "gpt-realtime-mini",
            "gpt-realtime-1.5",
            "gpt-realtime-2025-08-28",
            "gpt-realtime-mini-2025-10-06",
            "gpt-realtime-20",
            "gpt-realtime-2x",
            "gpt-realtime-2.2",
            "some-future-model",
            "",
        ] {
            assert!(!takes_reasoning(no), "{no}");
        }
    }
}

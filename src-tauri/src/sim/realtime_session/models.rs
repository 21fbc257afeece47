//! The simulator's own table of Realtime models, kept apart from the app's on purpose: a fake that shared the
//! bridge's table would agree with the bridge's mistakes (such as reading `gpt-realtime-2025-08-28` as a 2.x model).
//!
//! A model is a family name or a dated snapshot of one (`<family>-YYYY-MM-DD`). Only the 2.x families take
//! `reasoning` and `parallel_tool_calls`.

/// `(family, takes reasoning)`, from the GA schema's model list and `docs/protocols.md`.
const FAMILIES: [(&str, bool); 6] = [
    ("gpt-realtime-2.1-mini", true),
    ("gpt-realtime-2.1", true),
    ("gpt-realtime-2", true),
    ("gpt-realtime-1.5", false),
    ("gpt-realtime-mini", false),
    ("gpt-realtime", false),
];

/// Transcription models a GA Realtime session accepts in `audio.input.transcription.model`.
pub(crate) const TRANSCRIPTION_MODELS: [&str; 8] = [
    "whisper-1",
    "gpt-transcribe",
    "gpt-live-transcribe",
    "gpt-4o-mini-transcribe",
    "gpt-4o-mini-transcribe-2025-12-15",
    "gpt-4o-transcribe",
    "gpt-4o-transcribe-diarize",
    "gpt-realtime-whisper",
];

/// What the simulator knows about a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ModelInfo {
    /// Takes `reasoning` (and `parallel_tool_calls`).
    pub reasoning: bool,
}

/// `Some` for a known GA Realtime model or a dated snapshot of one.
pub(crate) fn lookup(model: &str) -> Option<ModelInfo> {
    FAMILIES.iter().find_map(|&(family, reasoning)| {
        let known = model == family
            || model
                .strip_prefix(family)
                .and_then(|rest| rest.strip_prefix('-'))
                .is_some_and(is_date);
        known.then_some(ModelInfo { reasoning })
    })
}

/// Whether `model` takes `reasoning`; unknown models do not.
pub(crate) fn takes_reasoning(model: &str) -> bool {
    lookup(model).is_some_and(|info| info.reasoning)
}

/// `YYYY-MM-DD` with a plausible month and day.
fn is_date(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    let [year, month, day] = parts[..] else {
        return false;
    };
    let number = |part: &str, len: usize| {
        (part.len() == len && part.bytes().all(|b| b.is_ascii_digit()))
            .then(|| part.parse::<u32>().ok())
            .flatten()
    };
    matches!(
        (number(year, 4), number(month, 2), number(day, 2)),
        (Some(_), Some(1..=12), Some(1..=31))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_and_dated_snapshots() {
        for model in [
            "gpt-realtime",
            "gpt-realtime-mini",
            "gpt-realtime-1.5",
            "gpt-realtime-2",
            "gpt-realtime-2.1",
            "gpt-realtime-2.1-mini",
            "gpt-realtime-2025-08-28",
            "gpt-realtime-mini-2025-10-06",
            "gpt-realtime-2-2026-05-07",
            "gpt-realtime-2.1-2026-09-01",
            "gpt-realtime-2099-01-01",
        ] {
            assert!(lookup(model).is_some(), "{model}");
        }
        for model in [
            "gpt-4o-realtime-preview",
            "gpt-4o-realtime-preview-2024-12-17",
            "gpt-realtime-3",
            "gpt-realtime-2.1-max",
            "gpt-realtime-2025-13-01",
            "gpt-realtime-",
            "",
        ] {
            assert!(lookup(model).is_none(), "{model}");
        }
    }

    #[test]
    fn only_2x_models_take_reasoning() {
        for model in [
            "gpt-realtime-2",
            "gpt-realtime-2.1",
            "gpt-realtime-2.1-mini",
            "gpt-realtime-2-2026-05-07",
            "gpt-realtime-2.1-2026-09-01",
        ] {
            assert!(takes_reasoning(model), "{model}");
        }
        for model in [
            "gpt-realtime",
            "gpt-realtime-mini",
            "gpt-realtime-1.5",
            "gpt-realtime-2025-08-28",
            "gpt-realtime-2099-01-01",
            "gpt-realtime-3",
            "unknown",
        ] {
            assert!(!takes_reasoning(model), "{model}");
        }
    }
}

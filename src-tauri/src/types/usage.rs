//! Token counts, for cost.

use serde::Serialize;

/// Tokens one response used (from `response.done`'s `usage`), for cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct TokenUsage {
    pub input_text: u64,
    pub input_audio: u64,
    /// Input tokens served from the cache (part of the two above).
    pub input_cached: u64,
    /// Of `input_cached`, text and audio (priced differently). When the server does not split them,
    /// the split is proportional to the input's text and audio.
    pub input_cached_text: u64,
    pub input_cached_audio: u64,
    pub output_text: u64,
    pub output_audio: u64,
}

//! What calls cost: a dated, user-editable price table ([`prices`]), the money spent in the last
//! 24 hours ([`ledger`]), and the budgets that wrap a call up and end it politely ([`budget`]).
//!
//! Money is counted in whole picodollars (10⁻¹² USD) so that a cost computed from token counts is
//! exact: a price of $0.40 per million tokens is 400 000 pico-USD per token, and sums never round.
//!
//! ```
//! use verbio::costs::{pico_to_usd, usd_to_pico};
//! assert_eq!(usd_to_pico(0.25), Some(250_000_000_000));
//! assert_eq!(pico_to_usd(1_500_000_000_000), 1.5);
//! ```

pub mod book;
pub mod budget;
pub mod ledger;
pub mod prices;

pub use book::CostBook;

use serde::Serialize;

/// Picodollars per US dollar.
pub const PICO_PER_USD: u64 = 1_000_000_000_000;

/// Dollars, for people and JSON (a float is fine for showing; sums are kept in picodollars).
pub fn pico_to_usd(pico: u64) -> f64 {
    pico as f64 / PICO_PER_USD as f64
}

/// Picodollars from dollars, if the amount is finite, not negative and below a million dollars.
pub fn usd_to_pico(usd: f64) -> Option<u64> {
    if !usd.is_finite() || !(0.0..1_000_000.0).contains(&usd) {
        return None;
    }
    Some((usd * PICO_PER_USD as f64).round() as u64)
}

/// What a cost was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CostSource {
    /// A Realtime response (`response.done`'s usage).
    Response,
    /// Transcribing the caller's turns (`input_audio_transcription.completed`'s usage).
    Transcription,
    /// The post-call summary (the Responses API's usage).
    Summary,
}

impl CostSource {
    pub fn as_str(self) -> &'static str {
        match self {
            CostSource::Response => "response",
            CostSource::Transcription => "transcription",
            CostSource::Summary => "summary",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "response" => Some(CostSource::Response),
            "transcription" => Some(CostSource::Transcription),
            "summary" => Some(CostSource::Summary),
            _ => None,
        }
    }
}

/// Counts that a cost was computed from (tokens; audio milliseconds for models priced per minute).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Metered {
    /// Input text tokens, cached ones included.
    pub input_text: u64,
    /// Input audio tokens, cached ones included.
    pub input_audio: u64,
    pub cached_text: u64,
    pub cached_audio: u64,
    pub output_text: u64,
    pub output_audio: u64,
    /// Audio length, for models priced per minute (`whisper-1`).
    pub audio_ms: u64,
}

impl From<crate::types::TokenUsage> for Metered {
    fn from(u: crate::types::TokenUsage) -> Self {
        Metered {
            input_text: u.input_text,
            input_audio: u.input_audio,
            cached_text: u.input_cached_text,
            cached_audio: u.input_cached_audio,
            output_text: u.output_text,
            output_audio: u.output_audio,
            audio_ms: 0,
        }
    }
}

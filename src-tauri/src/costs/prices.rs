//! The price table: US dollars per million tokens for each model family, dated, editable by the user
//! (prices change; the app never fetches them). A model is priced by its family
//! ([`crate::realtime::models::family`]): `gpt-realtime-2025-08-28` uses the `gpt-realtime` row.
//!
//! ```
//! use verbio::costs::{prices::PriceTable, Metered};
//! let table = PriceTable::default();
//! // 1 000 uncached audio input tokens and 500 audio output tokens on gpt-realtime:
//! // 1 000 × $32/M + 500 × $64/M = $0.064.
//! let usage = Metered { input_audio: 1_000, output_audio: 500, ..Metered::default() };
//! assert_eq!(table.price("gpt-realtime-2025-08-28", &usage), Some(64_000_000_000));
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Metered;
use crate::realtime::models::family;

/// One model's prices, in US dollars per million tokens (per minute of audio for `audio_per_minute`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelPrices {
    #[serde(default)]
    pub text_input: f64,
    #[serde(default)]
    pub text_cached_input: f64,
    #[serde(default)]
    pub text_output: f64,
    #[serde(default)]
    pub audio_input: f64,
    #[serde(default)]
    pub audio_cached_input: f64,
    #[serde(default)]
    pub audio_output: f64,
    /// Models billed by audio length (`whisper-1`), dollars per minute.
    #[serde(default)]
    pub audio_per_minute: Option<f64>,
    /// Where the row comes from, when it is not the table's source (an assumption, a plan).
    #[serde(default)]
    pub note: Option<String>,
}

/// The table, as the user sees and edits it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceTable {
    /// When these prices were read from `source` (YYYY-MM-DD).
    pub as_of: String,
    pub source: String,
    /// Only `USD`.
    pub currency: String,
    /// By model family.
    pub models: BTreeMap<String, ModelPrices>,
}

/// A table that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid price table: {0}")]
pub struct InvalidPrices(pub String);

/// Picodollars per token (or per minute) from dollars per million tokens: at most six decimals, so
/// every cost is an exact integer.
fn per_token(usd_per_million: f64) -> u64 {
    (usd_per_million * 1_000_000.0).round() as u64
}

const MAX_PRICE: f64 = 100_000.0;

fn check(model: &str, field: &str, value: f64) -> Result<(), InvalidPrices> {
    if !value.is_finite() || !(0.0..=MAX_PRICE).contains(&value) {
        return Err(InvalidPrices(format!(
            "{model}.{field} must be a price from 0 to {MAX_PRICE} (dollars per million tokens), not {value}"
        )));
    }
    let scaled = value * 1_000_000.0;
    if (scaled - scaled.round()).abs() > 1e-6 * scaled.max(1.0) {
        return Err(InvalidPrices(format!(
            "{model}.{field} has more than six decimals ({value})"
        )));
    }
    Ok(())
}

impl ModelPrices {
    fn validate(&self, model: &str) -> Result<(), InvalidPrices> {
        for (field, value) in [
            ("text_input", self.text_input),
            ("text_cached_input", self.text_cached_input),
            ("text_output", self.text_output),
            ("audio_input", self.audio_input),
            ("audio_cached_input", self.audio_cached_input),
            ("audio_output", self.audio_output),
        ] {
            check(model, field, value)?;
        }
        if let Some(per_minute) = self.audio_per_minute {
            check(model, "audio_per_minute", per_minute)?;
        }
        if self.note.as_ref().is_some_and(|n| n.len() > 500) {
            return Err(InvalidPrices(format!(
                "{model}.note is longer than 500 bytes"
            )));
        }
        Ok(())
    }

    /// The exact cost of `m`, in picodollars. Cached tokens are part of the input counts and are billed
    /// at the cached rate instead of the full one.
    pub fn cost(&self, m: &Metered) -> u64 {
        let uncached_text = m.input_text.saturating_sub(m.cached_text);
        let uncached_audio = m.input_audio.saturating_sub(m.cached_audio);
        let tokens = uncached_text.saturating_mul(per_token(self.text_input))
            + m.cached_text
                .saturating_mul(per_token(self.text_cached_input))
            + uncached_audio.saturating_mul(per_token(self.audio_input))
            + m.cached_audio
                .saturating_mul(per_token(self.audio_cached_input))
            + m.output_text.saturating_mul(per_token(self.text_output))
            + m.output_audio.saturating_mul(per_token(self.audio_output));
        let by_length = self.audio_per_minute.map_or(0, |usd| {
            // Picodollars per minute × ms / 60 000, rounded to the nearest picodollar.
            let per_minute = u128::from(per_token(usd)) * 1_000_000;
            ((per_minute * u128::from(m.audio_ms) + 30_000) / 60_000) as u64
        });
        tokens + by_length
    }
}

impl PriceTable {
    /// Rejects what would price wrongly: another currency, a bad date, negative or absurd prices.
    pub fn validate(&self) -> Result<(), InvalidPrices> {
        if self.currency != "USD" {
            return Err(InvalidPrices(format!(
                "currency must be USD, not {:?}",
                self.currency
            )));
        }
        if !is_date(&self.as_of) {
            return Err(InvalidPrices(format!(
                "as_of must be a date like 2025-08-28, not {:?}",
                self.as_of
            )));
        }
        if self.source.len() > 500 {
            return Err(InvalidPrices("source is longer than 500 bytes".into()));
        }
        if self.models.len() > 200 {
            return Err(InvalidPrices("more than 200 models".into()));
        }
        for (model, prices) in &self.models {
            if model.trim().is_empty() || model.len() > 100 {
                return Err(InvalidPrices(
                    "a model name must be 1–100 characters".into(),
                ));
            }
            prices.validate(model)?;
        }
        Ok(())
    }

    /// The row for `model`: its own name first, then its family (a dated snapshot's).
    pub fn row(&self, model: &str) -> Option<&ModelPrices> {
        self.models
            .get(model)
            .or_else(|| self.models.get(family(model)))
    }

    /// The exact cost of `usage` on `model`, in picodollars; `None` when the table has no row for it.
    pub fn price(&self, model: &str, usage: &Metered) -> Option<u64> {
        self.row(model).map(|row| row.cost(usage))
    }
}

/// `YYYY-MM-DD` with a month 01–12 and a day 01–31.
fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| r.clone().all(|i| b[i].is_ascii_digit());
    if b.len() != 10
        || b[4] != b'-'
        || b[7] != b'-'
        || !digits(0..4)
        || !digits(5..7)
        || !digits(8..10)
    {
        return false;
    }
    let month = (b[5] - b'0') * 10 + (b[6] - b'0');
    let day = (b[8] - b'0') * 10 + (b[9] - b'0');
    (1..=12).contains(&month) && (1..=31).contains(&day)
}

fn row(text: (f64, f64, f64), audio: (f64, f64, f64), note: Option<&str>) -> ModelPrices {
    ModelPrices {
        text_input: text.0,
        text_cached_input: text.1,
        text_output: text.2,
        audio_input: audio.0,
        audio_cached_input: audio.1,
        audio_output: audio.2,
        audio_per_minute: None,
        note: note.map(str::to_string),
    }
}

/// Not published when the table was dated: the row assumes its predecessor's prices until the user
/// types in the real ones.
const ASSUMED: &str =
    "assumed equal to gpt-realtime's published prices; check openai.com/api/pricing and edit";
const ASSUMED_MINI: &str =
    "assumed equal to gpt-realtime-mini's published prices; check openai.com/api/pricing and edit";

impl Default for PriceTable {
    /// OpenAI's list prices as published for the GA Realtime models (2025-08-28), the transcription
    /// models and the small text models the summary uses.
    fn default() -> Self {
        let realtime = ((4.0, 0.4, 16.0), (32.0, 0.4, 64.0));
        let realtime_mini = ((0.6, 0.06, 2.4), (10.0, 0.3, 20.0));
        let mut models = BTreeMap::new();
        models.insert("gpt-realtime".into(), row(realtime.0, realtime.1, None));
        models.insert(
            "gpt-realtime-mini".into(),
            row(realtime_mini.0, realtime_mini.1, None),
        );
        for assumed in ["gpt-realtime-1.5", "gpt-realtime-2", "gpt-realtime-2.1"] {
            models.insert(assumed.into(), row(realtime.0, realtime.1, Some(ASSUMED)));
        }
        models.insert(
            "gpt-realtime-2.1-mini".into(),
            row(realtime_mini.0, realtime_mini.1, Some(ASSUMED_MINI)),
        );
        // Transcription: audio in, text (a prompt) in, text out.
        models.insert(
            "gpt-4o-transcribe".into(),
            row((2.5, 2.5, 10.0), (6.0, 6.0, 0.0), None),
        );
        models.insert(
            "gpt-4o-mini-transcribe".into(),
            row((1.25, 1.25, 5.0), (3.0, 3.0, 0.0), None),
        );
        models.insert(
            "whisper-1".into(),
            ModelPrices {
                audio_per_minute: Some(0.006),
                ..ModelPrices::default()
            },
        );
        // Summaries (the Responses API).
        models.insert(
            "gpt-4.1-mini".into(),
            row((0.4, 0.1, 1.6), (0.0, 0.0, 0.0), None),
        );
        models.insert(
            "gpt-4o-mini".into(),
            row((0.15, 0.075, 0.6), (0.0, 0.0, 0.0), None),
        );
        models.insert(
            "gpt-5-mini".into(),
            row((0.25, 0.025, 2.0), (0.0, 0.0, 0.0), None),
        );
        PriceTable {
            as_of: "2025-08-28".into(),
            source: "https://openai.com/api/pricing".into(),
            currency: "USD".into(),
            models,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_is_priced_exactly_with_cached_tokens_at_their_rate() {
        let table = PriceTable::default();
        let usage = Metered {
            input_text: 1_200,
            input_audio: 3_000,
            cached_text: 1_024,
            cached_audio: 2_048,
            output_text: 40,
            output_audio: 400,
            audio_ms: 0,
        };
        // By hand, in dollars per million tokens on gpt-realtime:
        // text: 176 × 4 + 1 024 × 0.4 + 40 × 16 = 704 + 409.6 + 640 = 1 753.6
        // audio: 952 × 32 + 2 048 × 0.4 + 400 × 64 = 30 464 + 819.2 + 25 600 = 56 883.2
        // total 58 636.8 per million = $0.0586368 = 58 636 800 000 pico-USD.
        assert_eq!(table.price("gpt-realtime", &usage), Some(58_636_800_000));
        assert_eq!(
            table.price("gpt-realtime-2025-08-28", &usage),
            Some(58_636_800_000),
            "a snapshot is priced by its family"
        );
        assert_eq!(table.price("some-other-model", &usage), None);
    }

    #[test]
    fn whisper_is_priced_by_length() {
        let table = PriceTable::default();
        let usage = Metered {
            audio_ms: 90_000,
            ..Metered::default()
        };
        // 1.5 min × $0.006 = $0.009.
        assert_eq!(table.price("whisper-1", &usage), Some(9_000_000_000));
    }

    #[test]
    fn the_default_table_is_valid_and_bad_edits_are_refused() {
        let table = PriceTable::default();
        table.validate().unwrap();
        let mut t = table.clone();
        t.currency = "EUR".into();
        assert!(t.validate().unwrap_err().0.contains("USD"));
        let mut t = table.clone();
        t.as_of = "yesterday".into();
        assert!(t.validate().is_err());
        let mut t = table.clone();
        t.models.get_mut("gpt-realtime").unwrap().audio_output = -1.0;
        assert!(t
            .validate()
            .unwrap_err()
            .0
            .contains("gpt-realtime.audio_output"));
        let mut t = table.clone();
        t.models.get_mut("gpt-realtime").unwrap().text_input = 0.000_000_1;
        assert!(t.validate().unwrap_err().0.contains("six decimals"));
        let mut t = table;
        t.models.get_mut("gpt-realtime").unwrap().text_input = f64::NAN;
        assert!(t.validate().is_err());
    }

    #[test]
    fn the_table_round_trips_as_json_and_refuses_unknown_fields() {
        let table = PriceTable::default();
        let json = serde_json::to_string(&table).unwrap();
        let back: PriceTable = serde_json::from_str(&json).unwrap();
        assert_eq!(back, table);
        let bad = r#"{"as_of":"2025-08-28","source":"x","currency":"USD","models":{"m":{"text_inptu":1}}}"#;
        assert!(serde_json::from_str::<PriceTable>(bad).is_err());
    }
}

//! The post-call summary: after hang-up, a summary, a disposition from the user's list and the fields
//! the user defined, from the call's transcript, through the OpenAI Responses API with strict
//! structured output.
//!
//! This room is the protocol and the client only (it knows nothing of the store or the event bus, so
//! the session config can hold a [`SummaryConfig`]): [`config`] (the settings and the user's fields
//! schema), [`request`] (the request and its strict schema), [`client`] (the HTTP exchange), [`answer`]
//! (reading the Responses answer), [`validate`] (checking the text against the schema) and
//! [`summarise`], which runs them in order. `services::summary` runs it after each call and keeps the
//! result.

pub mod answer;
pub mod client;
pub mod config;
pub mod request;
pub mod validate;

use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use answer::SummaryUsage;
pub use client::{ClientError, ResponsesClient};
pub use config::SummaryConfig;

/// How a summary ended. Both problems are kept and shown; neither touches the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SummaryStatus {
    /// A summary that follows the schema.
    Done,
    /// No usable answer: the request failed, timed out, was refused or stopped short.
    Failed,
    /// An answer that does not follow the schema (not JSON, a disposition not in the list, a field of
    /// the wrong type, …).
    Invalid,
}

impl SummaryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SummaryStatus::Done => "done",
            SummaryStatus::Failed => "failed",
            SummaryStatus::Invalid => "invalid",
        }
    }

    pub fn parse(text: &str) -> Option<SummaryStatus> {
        [
            SummaryStatus::Done,
            SummaryStatus::Failed,
            SummaryStatus::Invalid,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// What one summary run produced.
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryOutcome {
    pub status: SummaryStatus,
    pub summary: Option<String>,
    pub disposition: Option<String>,
    pub fields: Option<Map<String, Value>>,
    /// Why it failed or is invalid, in a sentence (never the key, never the whole answer).
    pub error: Option<String>,
    pub model: String,
    /// Tokens billed (also for an invalid answer; `None` when no answer came back).
    pub usage: Option<SummaryUsage>,
    pub latency_ms: u64,
}

impl SummaryOutcome {
    /// A summary that could not be made (`failed`) or broke the schema (`invalid`), and why.
    pub fn problem(
        status: SummaryStatus,
        model: &str,
        error: String,
        usage: Option<SummaryUsage>,
        latency_ms: u64,
    ) -> Self {
        SummaryOutcome {
            status,
            summary: None,
            disposition: None,
            fields: None,
            error: Some(error),
            model: model.to_string(),
            usage,
            latency_ms,
        }
    }

    fn failed(model: &str, error: String, usage: Option<SummaryUsage>, started: Instant) -> Self {
        Self::problem(
            SummaryStatus::Failed,
            model,
            error,
            usage,
            elapsed_ms(started),
        )
    }
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Asks for a summary of `transcript` (see [`request::transcript_text`]) and checks the answer. Never
/// fails: every problem is an outcome with status `failed` or `invalid`.
pub async fn summarise(
    client: &ResponsesClient,
    config: &SummaryConfig,
    transcript: &str,
) -> SummaryOutcome {
    let started = Instant::now();
    let fields = match config.fields() {
        Ok(fields) => fields,
        Err(why) => {
            return SummaryOutcome::failed(
                &config.model,
                format!("the fields schema is not usable: {why}"),
                None,
                started,
            )
        }
    };
    let body = request::request_body(config, &fields, transcript);
    let raw = match client.create(&body).await {
        Ok(raw) => raw,
        Err(e) => return SummaryOutcome::failed(&config.model, e.to_string(), None, started),
    };
    let (answer, usage) = match answer::read(&raw.body) {
        Ok(read) => read,
        Err(e) => return SummaryOutcome::failed(&config.model, e.to_string(), None, started),
    };
    let text = match answer {
        answer::Answer::Text(text) => text,
        answer::Answer::Refused(words) => {
            let words: String = words.chars().take(200).collect();
            return SummaryOutcome::failed(
                &config.model,
                format!("the model refused: {words}"),
                usage,
                started,
            );
        }
        answer::Answer::NotDone(why) => {
            return SummaryOutcome::failed(&config.model, why, usage, started)
        }
    };
    match validate::validate(&text, &config.dispositions, &fields) {
        Ok(valid) => SummaryOutcome {
            status: SummaryStatus::Done,
            summary: Some(valid.summary),
            disposition: Some(valid.disposition),
            fields: Some(valid.fields),
            error: None,
            model: config.model.clone(),
            usage,
            latency_ms: elapsed_ms(started),
        },
        Err(e) => SummaryOutcome::problem(
            SummaryStatus::Invalid,
            &config.model,
            e.to_string(),
            usage,
            elapsed_ms(started),
        ),
    }
}

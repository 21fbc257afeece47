//! `GET /api/metrics`: the core's figures in the Prometheus text format, for users who run
//! `verbio serve` under their own monitoring. Built with `prometheus-client` (no global registry: each
//! running core has its own), fed from the call events.
//!
//! Calls (started, ended by outcome), call seconds, live calls, turn latency as heard (histogram,
//! and its parts), barge-ins and their reaction time, tool calls by outcome, model tokens by kind, and
//! money spent by source.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio::sync::broadcast;

use crate::events::CallEvent;

/// Turn latency buckets, seconds: what a caller notices starts around 0.8 s.
const LATENCY_BUCKETS: [f64; 10] = [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0];
/// Barge-in reaction buckets, seconds: the agent should stop within a few hundred ms.
const REACTION_BUCKETS: [f64; 8] = [0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 3.0];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Part {
    part: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Source {
    source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenKind {
    kind: String,
}

type Seconds = Counter<f64, AtomicU64>;

/// See the module docs.
pub struct Metrics {
    registry: Registry,
    calls_started: Counter,
    calls_ended: Family<Outcome, Counter>,
    call_seconds: Seconds,
    active_calls: Gauge,
    turn_latency: Histogram,
    turn_latency_parts: Family<Part, Histogram>,
    tool_calls: Family<Outcome, Counter>,
    tokens: Family<TokenKind, Counter>,
    barge_in_reaction: Histogram,
    cost: Family<Source, Seconds>,
    /// When each live call started (Unix ms), for its seconds at the end.
    started: Mutex<HashMap<String, i64>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let calls_started = Counter::default();
        registry.register(
            "verbio_calls_started",
            "Calls whose media stream started",
            calls_started.clone(),
        );
        let calls_ended = Family::<Outcome, Counter>::default();
        registry.register(
            "verbio_calls_ended",
            "Calls that ended, by outcome (ok, failed)",
            calls_ended.clone(),
        );
        let call_seconds = Seconds::default();
        registry.register(
            "verbio_call_seconds",
            "Seconds of calls that ended",
            call_seconds.clone(),
        );
        let active_calls = Gauge::default();
        registry.register(
            "verbio_active_calls",
            "Calls live now",
            active_calls.clone(),
        );
        let turn_latency = Histogram::new(LATENCY_BUCKETS);
        registry.register(
            "verbio_turn_latency_seconds",
            "From the end of the caller's speech to the answer playing at Twilio",
            turn_latency.clone(),
        );
        let turn_latency_parts =
            Family::<Part, Histogram>::new_with_constructor(|| Histogram::new(LATENCY_BUCKETS));
        registry.register(
            "verbio_turn_latency_part_seconds",
            "The parts of turn latency: endpointing, model, playout",
            turn_latency_parts.clone(),
        );
        let tool_calls = Family::<Outcome, Counter>::default();
        registry.register(
            "verbio_tool_calls",
            "Tool calls, by outcome (ok, failed, declined, cancelled)",
            tool_calls.clone(),
        );
        let tokens = Family::<TokenKind, Counter>::default();
        registry.register(
            "verbio_model_tokens",
            "Model tokens used, by kind",
            tokens.clone(),
        );
        let barge_in_reaction = Histogram::new(REACTION_BUCKETS);
        registry.register(
            "verbio_barge_in_reaction_seconds",
            "From the caller starting to talk over the agent to Twilio told to stop playing",
            barge_in_reaction.clone(),
        );
        let cost = Family::<Source, Seconds>::default();
        registry.register(
            "verbio_cost_usd",
            "Money spent, US dollars, by source (response, transcription, summary), at the price table's prices",
            cost.clone(),
        );
        Metrics {
            registry,
            barge_in_reaction,
            cost,
            calls_started,
            calls_ended,
            call_seconds,
            active_calls,
            turn_latency,
            turn_latency_parts,
            tool_calls,
            tokens,
            started: Mutex::new(HashMap::new()),
        }
    }

    /// Counts what `event` says.
    pub fn observe(&self, event: &CallEvent) {
        let started = || self.started.lock().unwrap_or_else(|p| p.into_inner());
        match event {
            CallEvent::CallStarted {
                call_sid, at_ms, ..
            } => {
                self.calls_started.inc();
                started().insert(call_sid.clone(), *at_ms);
            }
            CallEvent::CallEnded {
                call_sid,
                failed,
                at_ms,
                ..
            } => {
                let outcome = if *failed { "failed" } else { "ok" };
                self.calls_ended
                    .get_or_create(&Outcome {
                        outcome: outcome.into(),
                    })
                    .inc();
                if let Some(start) = started().remove(call_sid) {
                    self.call_seconds
                        .inc_by((at_ms - start).max(0) as f64 / 1000.0);
                }
            }
            CallEvent::TurnLatency {
                total_ms,
                endpointing_ms,
                model_ms,
                playout_ms,
                ..
            } => {
                self.turn_latency.observe(*total_ms as f64 / 1000.0);
                for (part, ms) in [
                    ("endpointing", endpointing_ms),
                    ("model", model_ms),
                    ("playout", playout_ms),
                ] {
                    self.turn_latency_parts
                        .get_or_create(&Part { part: part.into() })
                        .observe(*ms as f64 / 1000.0);
                }
            }
            CallEvent::BargeIn {
                reaction_ms: Some(ms),
                ..
            } => self.barge_in_reaction.observe(*ms as f64 / 1000.0),
            CallEvent::Cost {
                source, cost_usd, ..
            } => {
                self.cost
                    .get_or_create(&Source {
                        source: source.as_str().into(),
                    })
                    .inc_by(*cost_usd);
            }
            CallEvent::ToolFinished { outcome, .. } => {
                self.tool_calls
                    .get_or_create(&Outcome {
                        outcome: outcome.as_str().into(),
                    })
                    .inc();
            }
            CallEvent::ResponseDone {
                usage: Some(usage), ..
            } => {
                for (kind, n) in [
                    ("input_text", usage.input_text),
                    ("input_audio", usage.input_audio),
                    ("input_cached", usage.input_cached),
                    ("output_text", usage.output_text),
                    ("output_audio", usage.output_audio),
                ] {
                    self.tokens
                        .get_or_create(&TokenKind { kind: kind.into() })
                        .inc_by(n);
                }
            }
            _ => {}
        }
    }

    /// The figures in the Prometheus text format; `active_calls` is read now.
    pub fn render(&self, active_calls: usize) -> String {
        self.active_calls.set(active_calls as i64);
        let mut out = String::new();
        if let Err(e) = encode(&mut out, &self.registry) {
            tracing::warn!("cannot encode the metrics: {e}");
        }
        out
    }

    /// Follows the call events for as long as the bus lives (a listener that falls behind loses the
    /// missed events' counts, never slows a call).
    pub fn follow(self: &Arc<Self>, mut events: broadcast::Receiver<CallEvent>) {
        let metrics = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(event) => match metrics.upgrade() {
                        Some(m) => m.observe(&event),
                        None => return,
                    },
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "metrics fell behind the call events");
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::TokenUsage;

    #[test]
    fn events_become_prometheus_figures() {
        let m = Metrics::new();
        m.observe(&CallEvent::CallStarted {
            call_sid: "CA1".into(),
            stream_sid: "MZ1".into(),
            from: None,
            to: None,
            at_ms: 1_000,
        });
        m.observe(&CallEvent::TurnLatency {
            call_sid: "CA1".into(),
            offset_ms: 600,
            total_ms: 900,
            endpointing_ms: 500,
            model_ms: 300,
            playout_ms: 100,
            at_ms: 2_000,
        });
        m.observe(&CallEvent::ResponseDone {
            call_sid: "CA1".into(),
            response_id: None,
            status: "completed".into(),
            reason: None,
            usage: Some(TokenUsage {
                input_text: 10,
                input_audio: 20,
                input_cached: 5,
                output_text: 3,
                output_audio: 40,
                ..TokenUsage::default()
            }),
            at_ms: 2_000,
        });
        m.observe(&CallEvent::BargeIn {
            call_sid: "CA1".into(),
            item_id: "i1".into(),
            heard_ms: 500,
            offset_ms: 5_000,
            reaction_ms: Some(250),
            at_ms: 6_000,
        });
        m.observe(&CallEvent::Cost {
            call_sid: "CA1".into(),
            source: crate::costs::CostSource::Response,
            model: "gpt-realtime".into(),
            usage: crate::costs::Metered::default(),
            cost_pico: 2_500_000_000,
            cost_usd: 0.0025,
            call_total_usd: 0.0025,
            priced: true,
            at_ms: 6_000,
        });
        m.observe(&CallEvent::CallEnded {
            call_sid: "CA1".into(),
            reason: "caller hung up".into(),
            failed: false,
            at_ms: 31_000,
        });
        let text = m.render(2);
        for line in [
            "verbio_calls_started_total 1",
            "verbio_calls_ended_total{outcome=\"ok\"} 1",
            "verbio_call_seconds_total 30.0",
            "verbio_active_calls 2",
            "verbio_turn_latency_seconds_count 1",
            "verbio_turn_latency_seconds_bucket{le=\"1.0\"} 1",
            "verbio_turn_latency_seconds_bucket{le=\"0.75\"} 0",
            "verbio_turn_latency_part_seconds_sum{part=\"model\"} 0.3",
            "verbio_model_tokens_total{kind=\"output_audio\"} 40",
            "verbio_barge_in_reaction_seconds_bucket{le=\"0.3\"} 1",
            "verbio_barge_in_reaction_seconds_bucket{le=\"0.2\"} 0",
            "verbio_cost_usd_total{source=\"response\"} 0.0025",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }
}

//! The post-call summary, run after each call: it follows the event bus, remembers the summary
//! settings each call started with, and when a call ends (with a transcript, the summary on and a key
//! set) asks the Responses API in a task of its own, keeps the result with the call and announces it
//! (`CallEvent::Summary`). A failure is kept and announced the same way: visible, and never the call's
//! problem or another call's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;
use tracing::{info, warn};

use super::ServiceError;
use crate::calls::registry::CallRegistry;
use crate::calls::session_settings::SessionSettings;
use crate::costs::{pico_to_usd, CostBook, CostSource, Metered};
use crate::events::{CallEvent, EventBus};
use crate::realtime::session::SessionConfig;
use crate::store::summaries::SummaryRecord;
use crate::store::StoreHandle;
use crate::summary::request::{transcript_text, Line};
use crate::summary::{
    summarise, ClientError, ResponsesClient, SummaryConfig, SummaryOutcome, SummaryStatus,
};
use crate::types::{now_ms, Secret};

/// Runs and keeps post-call summaries. One per core.
pub struct SummaryDesk {
    store: StoreHandle,
    bus: EventBus,
    registry: CallRegistry,
    session: Arc<SessionSettings>,
    /// `Err` when the base URL is unusable: every summary then fails with that reason.
    client: Result<ResponsesClient, ClientError>,
    /// Prices the summary's own tokens (added to the call's cost and the day's).
    costs: Arc<CostBook>,
    /// The session each live call started with, for its summary settings (a call the app placed
    /// carries its own session; settings changed during a call apply to the next one). Shared, not
    /// copied: a copy per call was ~1 KiB of every live call's memory (heaptrack, issue 16).
    started: Mutex<HashMap<String, Arc<SessionConfig>>>,
}

impl SummaryDesk {
    /// A desk asking `base` (`https://api.openai.com` or a stand-in) with `key`.
    pub fn new(
        store: StoreHandle,
        bus: EventBus,
        registry: CallRegistry,
        session: Arc<SessionSettings>,
        base: &str,
        key: Secret,
        costs: Arc<CostBook>,
    ) -> Arc<SummaryDesk> {
        let client = ResponsesClient::new(base, key);
        if let Err(e) = &client {
            warn!("post-call summaries cannot run: {e}");
        }
        Arc::new(SummaryDesk {
            store,
            bus,
            registry,
            session,
            client,
            costs,
            started: Mutex::default(),
        })
    }

    /// Follows the call events until the bus closes or the desk is dropped.
    pub fn follow(self: &Arc<Self>, mut events: broadcast::Receiver<CallEvent>) {
        let desk = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(event) => match desk.upgrade() {
                        Some(d) => d.on_event(&event),
                        None => return,
                    },
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        warn!(
                            missed = n,
                            "post-call summaries fell behind the call events"
                        );
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
    }

    fn started(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<SessionConfig>>> {
        self.started.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn on_event(self: &Arc<Self>, event: &CallEvent) {
        match event {
            CallEvent::CallStarted { call_sid, .. } => {
                let session = match self.registry.placed_plan(call_sid) {
                    Some(plan) => plan.session.clone(),
                    None => self.session.current(),
                };
                self.started().insert(call_sid.clone(), session);
            }
            CallEvent::CallEnded { call_sid, .. } => {
                let session = self
                    .started()
                    .remove(call_sid)
                    // Started before this desk listened (or its start was missed): today's settings.
                    .unwrap_or_else(|| self.session.current());
                let config = &session.summary;
                let has_key = self.client.as_ref().is_ok_and(ResponsesClient::has_key);
                if !config.enabled || !has_key {
                    return;
                }
                let (desk, call_sid) = (self.clone(), call_sid.clone());
                // Its own task: never holds up the bus, another call or the next event.
                tokio::spawn(async move {
                    match desk.run(&call_sid, &session.summary).await {
                        Ok(Some(_)) | Ok(None) => {}
                        Err(e) => warn!(call_sid = %call_sid, "post-call summary not kept: {e}"),
                    }
                });
            }
            _ => {}
        }
    }

    /// Summarises `call_sid` with `config`, keeps the result and announces it. `None` when the call has
    /// no transcript line (nothing to summarise: nothing is asked, kept or announced).
    async fn run(
        &self,
        call_sid: &str,
        config: &SummaryConfig,
    ) -> Result<Option<SummaryRecord>, crate::store::StoreError> {
        let lines = self.store.transcripts(call_sid).await?;
        if lines.is_empty() {
            return Ok(None);
        }
        let transcript = transcript_text(lines.iter().map(|l| Line {
            speaker: l.speaker,
            text: &l.text,
            offset_ms: l.offset_ms,
        }));
        let outcome = match &self.client {
            Ok(client) => summarise(client, config, &transcript).await,
            Err(e) => SummaryOutcome::problem(
                SummaryStatus::Failed,
                &config.model,
                e.to_string(),
                None,
                0,
            ),
        };
        let usage = outcome.usage.unwrap_or_default();
        let record = SummaryRecord {
            call_sid: call_sid.to_string(),
            status: outcome.status,
            summary: outcome.summary,
            disposition: outcome.disposition,
            fields: outcome.fields,
            error: outcome.error,
            model: outcome.model,
            // cost: the summary's own tokens (input, cached, output) with its model, for the call's cost.
            input_tokens: usage.input_tokens,
            cached_tokens: usage.cached_tokens,
            output_tokens: usage.output_tokens,
            latency_ms: outcome.latency_ms,
            at_ms: now_ms(),
        };
        match &record.error {
            None => info!(
                call_sid,
                latency_ms = record.latency_ms,
                "post-call summary ready"
            ),
            Some(error) => {
                warn!(call_sid, status = record.status.as_str(), %error, "post-call summary problem")
            }
        }
        self.store.save_summary(record.clone()).await?;
        self.charge(&record).await?;
        self.bus.publish(CallEvent::Summary {
            call_sid: record.call_sid.clone(),
            status: record.status,
            summary: record.summary.clone(),
            disposition: record.disposition.clone(),
            fields: record.fields.clone(),
            error: record.error.clone(),
            at_ms: record.at_ms,
        });
        Ok(Some(record))
    }

    /// Adds the summary's own tokens to the call's cost (a `cost` event, kept in the call's ledger) and
    /// to the day's spend.
    async fn charge(&self, record: &SummaryRecord) -> Result<(), crate::store::StoreError> {
        let usage = Metered {
            input_text: record.input_tokens,
            cached_text: record.cached_tokens,
            output_text: record.output_tokens,
            ..Metered::default()
        };
        if usage == Metered::default() {
            return Ok(());
        }
        let at_ms = now_ms();
        let cost = self.costs.price(&record.model, &usage);
        if let Some(pico) = cost {
            self.costs.spend(at_ms, pico);
        } else {
            warn!(call_sid = %record.call_sid, model = %record.model, "the price table has no price for the summary's model");
        }
        // The ledger answers after every event before this one is written: the call's total so far.
        let before = self.store.call_cost(&record.call_sid).await?.total_pico;
        let event = CallEvent::Cost {
            call_sid: record.call_sid.clone(),
            source: CostSource::Summary,
            model: record.model.clone(),
            usage,
            cost_pico: cost.unwrap_or(0),
            cost_usd: pico_to_usd(cost.unwrap_or(0)),
            call_total_usd: pico_to_usd(before + cost.unwrap_or(0)),
            priced: cost.is_some(),
            at_ms,
        };
        self.store.apply(&event);
        self.bus.publish(event);
        Ok(())
    }

    /// A call's summary (`None`: the call has none).
    pub async fn summary(&self, call_sid: &str) -> Result<Option<SummaryRecord>, ServiceError> {
        if self.store.call(call_sid).await?.is_none() {
            return Err(ServiceError::UnknownCall(call_sid.to_string()));
        }
        Ok(self.store.summary(call_sid).await?)
    }

    /// Summarises a call again now, with the session's current summary settings (so a fixed schema or
    /// list takes effect), whether or not automatic summaries are on; the new result replaces the old.
    pub async fn rerun(&self, call_sid: &str) -> Result<SummaryRecord, ServiceError> {
        if self.store.call(call_sid).await?.is_none() {
            return Err(ServiceError::UnknownCall(call_sid.to_string()));
        }
        if self.registry.is_live(call_sid) {
            return Err(ServiceError::Invalid(format!(
                "call {call_sid} is still live: it is summarised when it ends"
            )));
        }
        match &self.client {
            Ok(c) if c.has_key() => {}
            Ok(_) => {
                return Err(ServiceError::NotConfigured(
                    "the post-call summary needs an OpenAI API key".into(),
                ))
            }
            Err(e) => return Err(ServiceError::NotConfigured(e.to_string())),
        }
        let config = self.session.current().summary.clone();
        self.run(call_sid, &config).await?.ok_or_else(|| {
            ServiceError::Invalid(format!("call {call_sid} has no transcript to summarise"))
        })
    }
}

//! The operations both doors (the local HTTP API and the desktop's Tauri commands) call. Neither door
//! holds logic of its own; the composition root (`app`) builds the services once.
//!
//! - this file: the façade (live calls, status, hang-up, the library's calls, session settings);
//! - [`outbound`]: the `Outbound` service: placing calls through Twilio, status and answering-machine
//!   callbacks, transfers;
//! - [`operator`]: the operator in the loop (whisper, take over, hand back);
//! - [`summary`]: the post-call summary (run after each call, kept, re-run on request);
//! - [`tools`]: tools that do real work (HTTP endpoints, MCP servers) and their approvals;
//! - [`reachability`]: where the app is reached (the live public URL); [`webhooks`]: pointing a
//!   number's webhook at it;
//! - `error.rs`: the errors both doors answer with; [`demo`] and [`private_line`]: the simulated call.

pub mod costs;
mod error;
pub mod operator;
pub mod outbound;
pub mod private_line;
pub mod reachability;
pub mod summary;
pub mod tools;
pub mod webhooks;

pub use error::{ErrorBody, ErrorKind, ServiceError};

use std::sync::Arc;

use serde::Serialize;
use tokio::sync::broadcast;
use tracing::warn;

use crate::calls::bridge::BridgeDeps;
use crate::calls::registry::{ActiveCall, CallControl, CallRegistry};
use crate::calls::session_settings::SessionSettings;
use crate::config::Config;
use crate::events::{CallEvent, EventBus};
use crate::store::StoreHandle;
use crate::telephony::twilio::webhooks::WebhookUrls;
use private_line::LineOpener;
use reachability::Reachability;

pub mod demo;
pub mod lifecycle;

/// Where the app can be reached.
#[derive(Debug, Clone, Serialize)]
pub struct AppStatus {
    /// The public listener on this machine (Twilio's routes; what a tunnel or proxy forwards to).
    pub local_url: String,
    /// The local API (`/api`), never reached through the tunnel.
    pub api_url: String,
    pub public_url: Option<String>,
    pub stream_url: Option<String>,
    pub model: String,
    pub active_calls: usize,
}

/// A call's status: live now, or as the library recorded it.
#[derive(Debug, Clone, Serialize)]
pub struct CallStatus {
    pub call_sid: String,
    pub live: bool,
    pub status: String,
    pub record: Option<crate::store::calls::CallRecord>,
}

/// A call's turn latency as heard (`None` figures: no answered turn yet).
#[derive(Debug, Clone, Serialize)]
pub struct CallLatency {
    pub p50_ms: Option<u64>,
    pub p95_ms: Option<u64>,
    pub max_ms: Option<u64>,
    pub turns: Vec<crate::store::latency::TurnLatencyRecord>,
    /// Each time the caller talked over the agent (a further item cut by the same one has no reaction).
    pub barge_ins: Vec<crate::store::latency::BargeInRecord>,
    /// How many times the caller talked over the agent.
    pub interruptions: usize,
}

/// A tool the agent can use.
#[derive(Debug, Clone, Serialize)]
pub struct ToolInfo {
    pub name: String,
    pub description: String,
    pub built_in: bool,
    /// What is behind it: `built_in`, `http` (the user's endpoint), `mcp` (an MCP server's tool, from
    /// a server that is up now), or `none` (offered to the model, answered "not available").
    pub kind: &'static str,
    pub needs_approval: bool,
    /// The MCP server, for `mcp` tools.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
}

/// The core's services: a small façade over the parts below, one per running app (no global state).
/// Built once by the composition root (`app`).
pub struct Services {
    pub config: Config,
    pub bus: EventBus,
    pub registry: CallRegistry,
    pub store: StoreHandle,
    pub bridge: Arc<BridgeDeps>,
    /// The session new calls start with (shared with the bridge).
    pub session: Arc<SessionSettings>,
    /// Recordings: library, playback, listen-in, Twilio copies (see `recording::library`).
    pub recordings: Arc<crate::recording::Library>,
    /// Where the app can be reached (local address, the live public URL).
    pub reachability: Arc<Reachability>,
    /// Calls the app places, Twilio's callbacks about them, transfers, hang-ups at Twilio.
    pub outbound: Arc<outbound::Outbound>,
    /// The operator in the loop: whispers, taking a call over with the microphone, handing it back.
    pub operator: Arc<operator::OperatorDesk>,
    /// Tools that do real work, and the operator's approvals of them.
    pub tools: Arc<tools::ToolDesk>,
    /// The figures `/api/metrics` serves (fed from the call events).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Prices, budgets, what calls cost and the library's day-by-day figures.
    pub costs: Arc<costs::CostDesk>,
    /// Post-call summaries (fed from the call events).
    pub summaries: Arc<summary::SummaryDesk>,
    /// Opens the demo call's private line (a build without the simulators has no demo call).
    #[cfg_attr(not(feature = "sim"), allow(dead_code))]
    lines: Arc<dyn LineOpener>,
    /// At most one simulated call at a time ([`demo`]).
    demo: demo::DemoGate,
}

/// Everything [`Services::new`] assembles (the event bus, the call registry and the session settings
/// are the bridge's own: one of each per core).
pub struct CoreParts {
    pub config: Config,
    pub tools: Arc<tools::ToolDesk>,
    pub store: StoreHandle,
    pub bridge: Arc<BridgeDeps>,
    pub recordings: Arc<crate::recording::Library>,
    pub reachability: Arc<Reachability>,
    pub outbound: Arc<outbound::Outbound>,
    pub lines: Arc<dyn LineOpener>,
}

impl Services {
    pub fn new(parts: CoreParts) -> Self {
        let operator = operator::OperatorDesk::new(
            parts.bridge.registry.clone(),
            parts.store.clone(),
            parts.recordings.clone(),
            &parts.bridge.bus,
        );
        let metrics = Arc::new(crate::metrics::Metrics::new());
        metrics.follow(parts.bridge.bus.subscribe());
        let costs = Arc::new(costs::CostDesk::new(
            parts.bridge.costs.clone(),
            parts.store.clone(),
        ));
        let summaries = summary::SummaryDesk::new(
            parts.store.clone(),
            parts.bridge.bus.clone(),
            parts.bridge.registry.clone(),
            parts.bridge.session.clone(),
            &parts.config.openai_api_base,
            parts.config.openai_api_key.clone(),
            parts.bridge.costs.clone(),
        );
        summaries.follow(parts.bridge.bus.subscribe());
        Services {
            operator,
            metrics,
            costs,
            summaries,
            tools: parts.tools,
            session: parts.bridge.session.clone(),
            bus: parts.bridge.bus.clone(),
            registry: parts.bridge.registry.clone(),
            config: parts.config,
            store: parts.store,
            bridge: parts.bridge,
            recordings: parts.recordings,
            reachability: parts.reachability,
            outbound: parts.outbound,
            lines: parts.lines,
            demo: demo::DemoGate::default(),
        }
    }

    /// The URL Twilio reaches this app at now (see [`Reachability`]).
    pub fn public_url(&self) -> Option<String> {
        self.reachability.public_url()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<CallEvent> {
        self.bus.subscribe()
    }

    pub fn active_calls(&self) -> Vec<ActiveCall> {
        self.registry.active()
    }

    pub fn status(&self) -> AppStatus {
        let public_url = self.public_url();
        AppStatus {
            local_url: self.reachability.local_url(),
            api_url: self.reachability.api_url(),
            stream_url: public_url
                .as_deref()
                .map(|p| WebhookUrls::new(p).media_stream()),
            public_url,
            // The live session (edited at run time), not the one the app started with.
            model: self.session.current().model.clone(),
            active_calls: self.registry.active_count(),
        }
    }

    /// Ends a call — the one hang-up both doors (`/api/call/{sid}/end`, the window and the tray) use: its
    /// stream, and at Twilio when the REST API is set up (a call the app placed
    /// that Twilio last reported as queued or ringing is cancelled, one answered before its stream
    /// started is completed). A call the library knows but that is no longer live is a conflict,
    /// not a 404.
    pub async fn end_call(&self, call_sid: &str) -> Result<(), ServiceError> {
        if self.registry.control(call_sid, CallControl::HangUp) {
            if let Ok(twilio) = self.outbound.twilio().cloned() {
                // The stream is closing either way (and with it, the call); the REST hang-up makes sure
                // and must not keep the caller of this method waiting.
                let sid = call_sid.to_string();
                tokio::spawn(async move {
                    if let Err(e) = twilio.hang_up(&sid, true).await {
                        warn!(call_sid = %sid, "hang-up at Twilio failed: {e}");
                    }
                });
            }
            return Ok(());
        }
        if self.outbound.is_pending(call_sid) {
            self.outbound.hang_up_at_twilio(call_sid).await?;
            return Ok(());
        }
        match self.store.call(call_sid).await? {
            Some(_) => Err(ServiceError::AlreadyEnded(call_sid.to_string())),
            None => Err(ServiceError::UnknownCall(call_sid.to_string())),
        }
    }

    pub async fn call_status(&self, call_sid: &str) -> Result<CallStatus, ServiceError> {
        let live = self
            .registry
            .active()
            .iter()
            .any(|c| c.call_sid == call_sid);
        let record = self.store.call(call_sid).await?;
        if !live && record.is_none() {
            return Err(ServiceError::UnknownCall(call_sid.to_string()));
        }
        let status = match (&record, live) {
            (_, true) => "in-progress".to_string(),
            (Some(r), false) => r.status.clone(),
            (None, false) => "unknown".to_string(),
        };
        Ok(CallStatus {
            call_sid: call_sid.to_string(),
            live,
            status,
            record,
        })
    }

    /// Past and present calls, newest first.
    pub async fn sessions(
        &self,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<crate::store::calls::CallRecord>, ServiceError> {
        if !(1..=500).contains(&limit) {
            return Err(ServiceError::Invalid(format!(
                "limit {limit} is outside 1–500"
            )));
        }
        Ok(self.store.list_calls(limit, offset).await?)
    }

    pub async fn transcriptions(
        &self,
        call_sid: &str,
    ) -> Result<Vec<crate::store::transcripts::TranscriptRecord>, ServiceError> {
        if self.store.call(call_sid).await?.is_none() {
            return Err(ServiceError::UnknownCall(call_sid.to_string()));
        }
        Ok(self.store.transcripts(call_sid).await?)
    }

    /// The core's figures in the Prometheus text format.
    pub fn metrics_text(&self) -> String {
        self.metrics.render(self.registry.active_count())
    }

    /// A call's turn latency as the caller heard it: every answered turn, and p50 / p95 / max.
    pub async fn turn_latency(&self, call_sid: &str) -> Result<CallLatency, ServiceError> {
        if self.store.call(call_sid).await?.is_none() {
            return Err(ServiceError::UnknownCall(call_sid.to_string()));
        }
        let turns = self.store.turn_latencies(call_sid).await?;
        let totals: Vec<u64> = turns.iter().map(|t| t.total_ms).collect();
        let summary = crate::types::percentiles::percentiles(&totals);
        let barge_ins = self.store.barge_ins(call_sid).await?;
        Ok(CallLatency {
            p50_ms: summary.map(|s| s.0),
            p95_ms: summary.map(|s| s.1),
            max_ms: summary.map(|s| s.2),
            turns,
            interruptions: barge_ins.iter().filter(|b| b.reaction_ms.is_some()).count(),
            barge_ins,
        })
    }

    /// A call's post-call summary (`None`: it has none, yet or at all).
    pub async fn call_summary(
        &self,
        call_sid: &str,
    ) -> Result<Option<crate::store::summaries::SummaryRecord>, ServiceError> {
        self.summaries.summary(call_sid).await
    }

    /// Makes a call's summary again now (after a failed or invalid one, or a changed schema).
    pub async fn rerun_summary(
        &self,
        call_sid: &str,
    ) -> Result<crate::store::summaries::SummaryRecord, ServiceError> {
        self.summaries.rerun(call_sid).await
    }

    /// A call's tool log (every tool call: arguments, result or error, latency, who approved).
    pub async fn tool_calls(
        &self,
        call_sid: &str,
    ) -> Result<Vec<crate::store::tool_calls::ToolCallRecord>, ServiceError> {
        if self.store.call(call_sid).await?.is_none() {
            return Err(ServiceError::UnknownCall(call_sid.to_string()));
        }
        Ok(self.store.tool_calls(call_sid).await?)
    }

    pub fn session_config(&self) -> crate::realtime::session::SessionConfig {
        self.session.current().as_ref().clone()
    }

    /// Sets the session for calls that start from now on; live calls keep theirs.
    pub fn update_session_config(
        &self,
        session: crate::realtime::session::SessionConfig,
    ) -> Result<crate::realtime::session::SessionConfig, ServiceError> {
        self.session
            .replace(session.clone())
            .map_err(|e| ServiceError::Invalid(e.to_string()))?;
        self.tools.configure_mcp(&session);
        Ok(session)
    }

    pub fn voices(&self) -> Vec<&'static str> {
        crate::realtime::session::Voice::ALL
            .iter()
            .map(|v| v.as_str())
            .collect()
    }

    pub fn models(&self) -> Vec<&'static str> {
        crate::realtime::session::KNOWN_MODELS.to_vec()
    }

    pub fn tools(&self) -> Vec<ToolInfo> {
        let session = self.session.current();
        let mut tools: Vec<ToolInfo> = crate::realtime::tools::offered(&session)
            .map(|t| ToolInfo {
                name: t.name.into(),
                description: t.label.into(),
                built_in: true,
                kind: "built_in",
                needs_approval: false,
                server: None,
            })
            .collect();
        tools.extend(session.tools.iter().map(|t| ToolInfo {
            name: t.name.clone(),
            description: t.description.clone(),
            built_in: false,
            kind: if t.endpoint.is_some() { "http" } else { "none" },
            needs_approval: t.needs_approval,
            server: None,
        }));
        tools.extend(self.tools.mcp_tools().into_iter().map(|t| ToolInfo {
            name: t.name,
            description: t.description,
            built_in: false,
            kind: "mcp",
            needs_approval: t.needs_approval,
            server: Some(t.server),
        }));
        tools
    }
}

//! The operations both doors (the local HTTP API and the desktop's Tauri commands) call, and the
//! start-up that wires the core together. Neither door holds logic of its own.

use std::net::SocketAddr;
use std::sync::Arc;

use serde::Serialize;
use tokio::sync::broadcast;
use tracing::{info, warn};

use crate::calls::bridge::{BridgeDeps, PersistFn};
use crate::calls::events::{CallEvent, EventBus};
use crate::calls::registry::{CallControl, CallRegistry};
use crate::config::Config;
use crate::realtime::client::{ModelConnector, RealtimeClient};
use crate::store::StoreHandle;

pub mod demo;
pub mod lifecycle;

/// A live call as the UI lists it.
#[derive(Debug, Clone, Serialize)]
pub struct ActiveCall {
    pub call_sid: String,
    pub stream_sid: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub started_at_ms: i64,
}

/// Where the app can be reached.
#[derive(Debug, Clone, Serialize)]
pub struct AppStatus {
    pub local_url: String,
    pub public_url: Option<String>,
    pub stream_url: Option<String>,
    pub model: String,
    pub active_calls: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("no call {0}")]
    UnknownCall(String),
    #[error("call {0} has already ended")]
    AlreadyEnded(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// A call's status: live now, or as the library recorded it.
#[derive(Debug, Clone, Serialize)]
pub struct CallStatus {
    pub call_sid: String,
    pub live: bool,
    pub status: String,
    pub record: Option<crate::store::calls::CallRecord>,
}

/// A tool the agent can use.
#[derive(Debug, Clone, Serialize)]
pub struct ToolInfo {
    pub name: String,
    pub description: String,
    pub built_in: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot open the call library: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("invalid session settings: {0}")]
    Session(#[from] crate::realtime::session::SessionConfigError),
}

/// The core's services. One per running app; no global state.
pub struct Services {
    pub config: Config,
    pub bus: EventBus,
    pub registry: CallRegistry,
    pub store: StoreHandle,
    pub bridge: Arc<BridgeDeps>,
    local_addr: SocketAddr,
    /// At most one simulated call at a time ([`demo`]).
    demo: demo::DemoGate,
}

impl Services {
    pub fn subscribe(&self) -> broadcast::Receiver<CallEvent> {
        self.bus.subscribe()
    }

    pub fn active_calls(&self) -> Vec<ActiveCall> {
        self.registry.active()
    }

    pub fn status(&self) -> AppStatus {
        AppStatus {
            local_url: format!("http://{}", self.local_addr),
            public_url: self.config.public_url.clone(),
            stream_url: self.config.public_stream_url(),
            model: self.config.session.model.clone(),
            active_calls: self.registry.active_count(),
        }
    }

    /// Ends a live call's stream (the REST hang-up comes with outbound calls).
    pub fn hang_up(&self, call_sid: &str) -> Result<(), ServiceError> {
        if self.registry.control(call_sid, CallControl::HangUp) {
            Ok(())
        } else {
            Err(ServiceError::UnknownCall(call_sid.to_string()))
        }
    }

    /// Ends a call; a call the library knows but that is no longer live is a conflict, not a 404.
    pub async fn end_call(&self, call_sid: &str) -> Result<(), ServiceError> {
        if self.registry.control(call_sid, CallControl::HangUp) {
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

    pub fn session_config(&self) -> crate::realtime::session::SessionConfig {
        self.bridge.current_session().as_ref().clone()
    }

    /// Sets the session for calls that start from now on; live calls keep theirs.
    pub fn update_session_config(
        &self,
        session: crate::realtime::session::SessionConfig,
    ) -> Result<crate::realtime::session::SessionConfig, ServiceError> {
        session
            .validate()
            .map_err(|e| ServiceError::Invalid(e.to_string()))?;
        self.bridge.set_session(session.clone());
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
        let mut tools = vec![ToolInfo {
            name: crate::realtime::session::END_CALL_TOOL.into(),
            description: "Hang up after saying goodbye".into(),
            built_in: true,
        }];
        tools.extend(
            self.bridge
                .current_session()
                .tools
                .iter()
                .map(|t| ToolInfo {
                    name: t.name.clone(),
                    description: t.description.clone(),
                    built_in: false,
                }),
        );
        tools
    }
}

/// A running core: HTTP server plus services. Call [`Running::shutdown`] to stop it.
pub struct Running {
    pub services: Arc<Services>,
    pub local_addr: SocketAddr,
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(());
        let _ = self.task.await;
    }
}

/// Starts the core with the real OpenAI client.
pub async fn start(config: Config) -> Result<Running, StartError> {
    let connector = Arc::new(RealtimeClient::new(
        config.realtime_url.clone(),
        config.openai_api_key.clone(),
    ));
    start_with_connector(config, connector).await
}

/// Starts the core: opens the library, binds `bind_host:port` and serves Twilio's routes.
pub async fn start_with_connector(
    config: Config,
    connector: Arc<dyn ModelConnector>,
) -> Result<Running, StartError> {
    config.session.validate()?;
    let store = StoreHandle::open(&config.database_path())?;
    let addr = format!("{}:{}", config.bind_host, config.port);
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|source| StartError::Bind {
            addr: addr.clone(),
            source,
        })?;
    let local_addr = listener
        .local_addr()
        .map_err(|source| StartError::Bind { addr, source })?;
    if config.twilio_auth_token.is_empty() {
        warn!("TWILIO_AUTH_TOKEN is not set: Twilio requests will be refused (signatures cannot be checked)");
    }
    let bus = EventBus::default();
    let registry = CallRegistry::new(config.bridge.token_ttl);
    let persist_store = store.clone();
    let persist: PersistFn = Arc::new(move |event: &CallEvent| persist_store.apply(event));
    let bridge = Arc::new(BridgeDeps {
        registry: registry.clone(),
        bus: bus.clone(),
        persist: Some(persist),
        connector,
        session: std::sync::RwLock::new(Arc::new(config.session.clone())),
        settings: config.bridge.clone(),
    });
    let services = Arc::new(Services {
        config,
        bus,
        registry,
        store,
        bridge,
        local_addr,
        demo: demo::DemoGate::default(),
    });
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let app = crate::server::router(services.clone());
    let task = tokio::spawn(async move {
        let served = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async {
            let _ = rx.await;
        })
        .await;
        if let Err(e) = served {
            warn!("HTTP server stopped: {e}");
        }
    });
    info!(%local_addr, "Verbio core listening");
    Ok(Running {
        services,
        local_addr,
        shutdown: tx,
        task,
    })
}

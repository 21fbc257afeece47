//! The operations both doors (the local HTTP API and the desktop's Tauri commands) call, and the
//! start-up that wires the core together. Neither door holds logic of its own.
//!
//! - this file: live calls, the library, session settings, start-up;
//! - [`outbound`]: placing calls through Twilio, status and answering-machine callbacks, transfers;
//! - [`webhooks`]: reaching Twilio (tunnel or public URL) and pointing a number's webhook at it.

mod error;
pub mod outbound;
pub mod webhooks;

pub use error::{ErrorBody, ErrorKind, ServiceError};

use std::net::SocketAddr;
use std::sync::Arc;

use serde::Serialize;
use tokio::sync::broadcast;
use tracing::{info, warn};

use crate::calls::bridge::{BridgeDeps, PersistFn};
use crate::calls::events::{CallEvent, EventBus};
use crate::calls::registry::{ActiveCall, CallControl, CallRegistry};
use crate::config::Config;
use crate::realtime::client::{ModelConnector, RealtimeClient};
use crate::store::StoreHandle;

pub mod demo;
pub mod lifecycle;

/// Where the app can be reached.
#[derive(Debug, Clone, Serialize)]
pub struct AppStatus {
    pub local_url: String,
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
    #[error(transparent)]
    Tunnel(#[from] crate::tunnel::TunnelError),
}

/// The core's services. One per running app; no global state.
pub struct Services {
    pub config: Config,
    pub bus: EventBus,
    pub registry: CallRegistry,
    pub store: StoreHandle,
    pub bridge: Arc<BridgeDeps>,
    /// Recordings: library, playback, listen-in, Twilio copies (see `recording::library`).
    pub recordings: Arc<crate::recording::Library>,
    local_addr: SocketAddr,
    /// `None` when the account SID or auth token is missing.
    twilio: Option<crate::telephony::twilio::rest::TwilioRest>,
    /// Plans of calls the app placed that have not finished, by CallSid (for AMD callbacks).
    outbound: std::sync::Mutex<outbound::OutboundPlans>,
    /// Where Twilio reaches the app now (a tunnel's URL or the user's), read by every webhook check.
    public_url: std::sync::RwLock<Option<String>>,
    /// The open tunnel, kept so it stays open.
    tunnel: std::sync::Mutex<Option<Box<dyn crate::tunnel::Tunnel>>>,
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
        let public_url = self.public_url();
        AppStatus {
            local_url: format!("http://{}", self.local_addr),
            stream_url: public_url.as_deref().map(crate::config::stream_url_for),
            public_url,
            // The live session (edited at run time), not the one the app started with.
            model: self.bridge.current_session().model.clone(),
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
            if let Some(twilio) = self.twilio.clone() {
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
        if self.is_pending_outbound(call_sid) {
            self.hang_up_at_twilio(call_sid).await?;
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
        let session = self.bridge.current_session();
        let mut tools: Vec<ToolInfo> = crate::realtime::tools::offered(&session)
            .map(|t| ToolInfo {
                name: t.name.into(),
                description: t.label.into(),
                built_in: true,
            })
            .collect();
        tools.extend(session.tools.iter().map(|t| ToolInfo {
            name: t.name.clone(),
            description: t.description.clone(),
            built_in: false,
        }));
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
    crate::tls::install_crypto_provider();
    config.session.validate()?;
    let store = StoreHandle::open(&config.database_path())?;
    let recorder = Arc::new(crate::recording::Recorder::new(
        config.recordings_dir(),
        store.clone(),
        config.recording.enabled,
        config.recording.recorder.clone(),
    ));
    // Before any call can start: fix what a crash left unfinished.
    match crate::recording::repair::repair_unfinished(&store, recorder.dir()).await {
        Ok(0) => {}
        Ok(n) => info!(recordings = n, "repaired recordings left unfinished"),
        Err(e) => warn!("could not check for unfinished recordings: {e}"),
    }
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
    let twilio = if config.twilio_account_sid.is_empty() || config.twilio_auth_token.is_empty() {
        None
    } else {
        match crate::telephony::twilio::rest::TwilioRest::new(
            config.telephony.api_base.clone(),
            config.twilio_account_sid.clone(),
            config.twilio_auth_token.clone(),
        ) {
            Ok(client) => Some(client),
            Err(e) => {
                warn!("Twilio REST API unavailable: {e}");
                None
            }
        }
    };
    let actions = twilio.clone().map(|twilio| {
        Arc::new(outbound::TwilioCallActions {
            twilio,
            apology_message: config.telephony.apology_message.clone(),
            record_inbound: config.recording.twilio_inbound,
        }) as Arc<dyn crate::calls::bridge::CallActions>
    });
    let tunnel =
        crate::tunnel::open(&config.tunnel, config.public_url.as_deref(), local_addr).await?;
    let public_url = tunnel.as_ref().map(|t| t.public_url().to_string());
    if let Some(t) = &tunnel {
        info!(kind = t.kind(), url = %t.public_url(), "Twilio reaches this app through a public URL");
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
        actions,
        recorder: Some(recorder.clone()),
    });
    let recordings = Arc::new(crate::recording::Library::new(
        store.clone(),
        recorder,
        config.recording.clone(),
        crate::recording::twilio_cloud::TwilioAuth {
            account_sid: config.twilio_account_sid.clone(),
            auth_token: config.twilio_auth_token.clone(),
            api_base: config.telephony.api_base.trim_end_matches('/').to_string(),
        },
    ));
    let services = Arc::new(Services {
        config,
        bus,
        registry,
        store,
        bridge,
        recordings,
        local_addr,
        twilio,
        outbound: std::sync::Mutex::default(),
        public_url: std::sync::RwLock::new(public_url),
        tunnel: std::sync::Mutex::new(tunnel),
        demo: demo::DemoGate::default(),
    });
    // In the background: a slow or unreachable Twilio must not hold up the app's start.
    let pointing = services.clone();
    tokio::spawn(async move { pointing.point_number_on_start().await });
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

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
    #[error("no active call {0}")]
    UnknownCall(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
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
        session: config.session.clone(),
        settings: config.bridge.clone(),
    });
    let services = Arc::new(Services {
        config,
        bus,
        registry,
        store,
        bridge,
        local_addr,
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

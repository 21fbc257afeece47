//! The operations both doors (the local HTTP API and the desktop's Tauri commands) call.
//! (Contract stub: the bridge fills these in.)

use std::net::SocketAddr;
use std::sync::Arc;

use serde::Serialize;
use tokio::sync::broadcast;

use crate::calls::events::{CallEvent, EventBus};
use crate::config::Config;

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
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot bind {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
}

pub struct Services {
    pub config: Config,
    pub bus: EventBus,
    local_addr: SocketAddr,
}

impl Services {
    pub fn subscribe(&self) -> broadcast::Receiver<CallEvent> {
        self.bus.subscribe()
    }
    pub fn active_calls(&self) -> Vec<ActiveCall> {
        Vec::new()
    }
    pub fn status(&self) -> AppStatus {
        AppStatus {
            local_url: format!("http://{}", self.local_addr),
            public_url: self.config.public_url.clone(),
            stream_url: self.config.public_stream_url(),
            model: self.config.session.model.clone(),
            active_calls: 0,
        }
    }
    pub fn hang_up(&self, call_sid: &str) -> Result<(), ServiceError> {
        Err(ServiceError::UnknownCall(call_sid.to_string()))
    }
}

/// A running core: HTTP server plus services. Dropping it does not stop the server; call [`Running::shutdown`].
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

/// Starts the core: binds `config.bind_host:config.port` and serves Twilio's routes and `/api`.
pub async fn start(config: Config) -> Result<Running, StartError> {
    let addr = format!("{}:{}", config.bind_host, config.port);
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|source| StartError::Bind { addr: addr.clone(), source })?;
    let local_addr = listener
        .local_addr()
        .map_err(|source| StartError::Bind { addr, source })?;
    let services = Arc::new(Services {
        config,
        bus: EventBus::default(),
        local_addr,
    });
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let router = axum::Router::new();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
    });
    Ok(Running {
        services,
        local_addr,
        shutdown: tx,
        task,
    })
}

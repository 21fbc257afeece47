//! The composition root: builds the core once from a [`Config`] — the call library, recorder, tunnel,
//! Twilio client, bridge and services — and serves its doors. `verbio serve`, the desktop app and the
//! demo call's private line are all assembled here, so they cannot drift apart.
//!
//! ```no_run
//! # async fn run() -> Result<(), verbio::app::StartError> {
//! let running = verbio::app::start(verbio::config::Config::default()).await?;
//! println!("listening on {}", running.local_addr);
//! running.shutdown().await;
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::sync::Arc;

use tracing::{info, warn};

use crate::calls::bridge::{BridgeDeps, CallActions, PersistFn};
use crate::calls::registry::CallRegistry;
use crate::calls::session_settings::SessionSettings;
use crate::config::Config;
use crate::events::{CallEvent, EventBus};
use crate::realtime::client::{ModelConnector, RealtimeClient};
use crate::services::outbound::{self, Outbound};
use crate::services::private_line::{LineOpener, LineSpec, Served};
use crate::services::reachability::Reachability;
use crate::services::{CoreParts, Services};
use crate::store::StoreHandle;
use crate::telephony::twilio::rest::TwilioRest;
use crate::types::Secret;

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

/// A running core: its services and the door they are served on. Call [`Running::shutdown`] to stop it.
pub struct Running {
    pub services: Arc<Services>,
    pub local_addr: SocketAddr,
    served: Served,
}

impl Running {
    pub async fn shutdown(self) {
        self.served.close().await;
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

/// Starts the core: opens the library, binds `bind_host:port` and serves Twilio's routes and `/api`.
pub async fn start_with_connector(
    config: Config,
    connector: Arc<dyn ModelConnector>,
) -> Result<Running, StartError> {
    crate::tls::install_crypto_provider();
    let session = Arc::new(SessionSettings::new(config.session.clone())?);
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
    let twilio = twilio_client(&config);
    let actions = twilio.clone().map(|twilio| {
        Arc::new(outbound::TwilioCallActions {
            twilio,
            apology_message: config.telephony.apology_message.clone(),
            record_inbound: config.recording.twilio_inbound,
        }) as Arc<dyn CallActions>
    });
    let tunnel =
        crate::tunnel::open(&config.tunnel, config.public_url.as_deref(), local_addr).await?;
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
        session,
        settings: config.bridge.clone(),
        actions,
        recorder: Some(recorder.clone()),
    });
    let recordings = Arc::new(crate::recording::Library::new(
        store.clone(),
        recorder,
        config.recording.clone(),
        twilio.clone(),
    ));
    let reachability = Arc::new(Reachability::new(local_addr, tunnel));
    let outbound = Arc::new(Outbound::new(
        twilio,
        reachability.clone(),
        bridge.clone(),
        store.clone(),
        config.telephony.clone(),
    ));
    let services = Arc::new(Services::new(CoreParts {
        config,
        bus,
        registry,
        store,
        bridge,
        recordings,
        reachability,
        outbound,
        lines: Arc::new(PrivateLines),
    }));
    // In the background: a slow or unreachable Twilio must not hold up the app's start.
    let pointing = services.clone();
    tokio::spawn(async move { pointing.point_number_on_start().await });
    let served = serve(services.clone(), listener);
    info!(%local_addr, "Verbio core listening");
    Ok(Running {
        services,
        local_addr,
        served,
    })
}

/// The REST client, when the account SID and auth token are both set.
fn twilio_client(config: &Config) -> Option<TwilioRest> {
    if config.twilio_account_sid.is_empty() || config.twilio_auth_token.is_empty() {
        return None;
    }
    match TwilioRest::new(
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
}

/// Serves the router (Twilio's routes and `/api`) for `services` on `listener` until closed.
fn serve(services: Arc<Services>, listener: tokio::net::TcpListener) -> Served {
    let local_addr = services.reachability.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let app = crate::server::router(services);
    let limits = crate::server::http::HttpLimits::default();
    let task = tokio::spawn(crate::server::http::serve(listener, app, limits, async {
        let _ = stopped.await;
    }));
    Served::new(local_addr, stop, task)
}

/// Opens private lines (the demo call's) into a running core, assembled from its own parts.
struct PrivateLines;

impl LineOpener for PrivateLines {
    fn open(&self, core: &Arc<Services>, spec: LineSpec) -> std::io::Result<Served> {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        std_listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(std_listener)?;
        let local_addr = listener.local_addr()?;
        let mut config = core.config.clone();
        config.twilio_auth_token = spec.twilio_token;
        config.twilio_signing_key = Secret::default();
        config.public_url = None;
        config.openai_api_key = Secret::default();
        config.api_key = Secret::default();
        let bridge = Arc::new(BridgeDeps {
            registry: core.registry.clone(),
            bus: core.bus.clone(),
            persist: core.bridge.persist.clone(),
            connector: spec.connector,
            session: core.session.clone(),
            settings: core.bridge.settings.clone(),
            // Nothing to ask of Twilio on a private line; recorded like any call.
            actions: None,
            recorder: core.bridge.recorder.clone(),
        });
        let reachability = Arc::new(Reachability::new(local_addr, None));
        // Nothing on a private line reaches Twilio.
        let outbound = Arc::new(Outbound::new(
            None,
            reachability.clone(),
            bridge.clone(),
            core.store.clone(),
            config.telephony.clone(),
        ));
        let line = Arc::new(Services::new(CoreParts {
            config,
            bus: core.bus.clone(),
            registry: core.registry.clone(),
            store: core.store.clone(),
            bridge,
            recordings: core.recordings.clone(),
            reachability,
            outbound,
            lines: Arc::new(PrivateLines),
        }));
        Ok(serve(line, listener))
    }
}

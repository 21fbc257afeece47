//! The composition root: builds the core once from a [`Config`] — the call library, recorder, tunnel,
//! Twilio client, bridge and services — and serves its doors. `verbio serve`, the desktop app and the
//! demo call's private line are all assembled here, so they cannot drift apart.
//!
//! Two listeners: the public one (`bind_host:port`, what a tunnel or proxy forwards to) serves only
//! Twilio's routes; the local one (`api_bind_host:api_port`, loopback unless the user says otherwise)
//! serves `/api`. The internet never reaches the API through the tunnel.
//!
//! ```no_run
//! # async fn run() -> Result<(), verbio::app::StartError> {
//! let running = verbio::app::start(verbio::config::Config::default()).await?;
//! println!("Twilio's routes on {}, the API on {}", running.local_addr, running.api_addr);
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
    /// Both listeners were given one port; the message names both settings.
    #[error("the API port (VERBIO_API_PORT) and the public port (VERBIO_PORT) are both {0}: give the API its own")]
    SamePort(u16),
    #[error("cannot open the call library: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("invalid session settings: {0}")]
    Session(#[from] crate::realtime::session::SessionConfigError),
    #[error(transparent)]
    Tunnel(#[from] crate::tunnel::TunnelError),
}

/// A running core: its services and the two listeners they are served on. Call [`Running::shutdown`] to
/// stop it.
pub struct Running {
    pub services: Arc<Services>,
    /// The public listener: Twilio's routes and a bare health check (what a tunnel forwards to).
    pub local_addr: SocketAddr,
    /// The local listener: `/api`, `/api/events` and the full health.
    pub api_addr: SocketAddr,
    public: Served,
    api: Served,
    _trimmer: crate::heap::Trimmer,
}

impl Running {
    pub async fn shutdown(self) {
        tokio::join!(
            self.public.close(),
            self.api.close(),
            self.services.tools.shutdown()
        );
        // The calls' last events may wait in the library's batch window: written before the process goes.
        if let Err(e) = self.services.store.flush().await {
            warn!("could not finish writing the call library: {e}");
        }
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

/// Starts the core: opens the library, binds `bind_host:port` for Twilio's routes and
/// `api_bind_host:api_port` for `/api`, and serves both.
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
    match crate::recording::repair::adopt_unlisted(&store, recorder.dir()).await {
        Ok(0) => {}
        Ok(n) => info!(
            recordings = n,
            "listed recordings found without a library entry"
        ),
        Err(e) => warn!("could not check for recordings without a library entry: {e}"),
    }
    if config.port != 0 && config.port == config.api_port {
        return Err(StartError::SamePort(config.port));
    }
    let (listener, local_addr) = bind(&config.bind_host, config.port).await?;
    let (api_listener, api_addr) = bind(&config.api_bind_host, config.api_port).await?;
    if !api_addr.ip().is_loopback() {
        warn!(%api_addr, "the local API is exposed beyond this machine (VERBIO_API_BIND): anyone who can reach it may try the API key; put it behind TLS");
    }
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
    let costs = Arc::new(crate::services::costs::open_cost_book(&store).await);
    let approvals = crate::calls::approvals::Approvals::default();
    let tool_desk = crate::services::tools::ToolDesk::new(
        approvals.clone(),
        registry.clone(),
        Arc::new(crate::secrets::Secrets::system()),
        &session.current(),
    );
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
        tools: Some(tool_desk.clone()),
        approvals: approvals.clone(),
        costs,
    });
    let recordings = Arc::new(crate::recording::Library::new(
        store.clone(),
        recorder,
        config.recording.clone(),
        twilio.clone(),
    ));
    let reachability = Arc::new(Reachability::new(local_addr, api_addr, tunnel));
    let outbound = Arc::new(Outbound::new(
        twilio,
        reachability.clone(),
        bridge.clone(),
        store.clone(),
        config.telephony.clone(),
    ));
    let services = Arc::new(Services::new(CoreParts {
        config,
        tools: tool_desk,
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
    let public = serve(
        crate::server::public_router(services.clone()),
        listener,
        local_addr,
    );
    let api = serve(
        crate::server::local_router(services.clone()),
        api_listener,
        api_addr,
    );
    info!(%local_addr, %api_addr, "Verbio core listening (Twilio's routes; the local API)");
    Ok(Running {
        services,
        local_addr,
        api_addr,
        public,
        api,
        _trimmer: crate::heap::spawn_trimmer(crate::heap::TRIM_EVERY),
    })
}

/// Binds `host:port`; the error names the address.
async fn bind(host: &str, port: u16) -> Result<(tokio::net::TcpListener, SocketAddr), StartError> {
    let addr = format!("{host}:{port}");
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|source| StartError::Bind {
            addr: addr.clone(),
            source,
        })?;
    let local_addr = listener
        .local_addr()
        .map_err(|source| StartError::Bind { addr, source })?;
    Ok((listener, local_addr))
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

/// Serves `app` on `listener` (bound to `local_addr`) until closed.
fn serve(app: axum::Router, listener: tokio::net::TcpListener, local_addr: SocketAddr) -> Served {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
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
        // The simulator signs for the line's own address; nothing in front of it to trust.
        config.trust_forwarded = false;
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
            tools: core.bridge.tools.clone(),
            approvals: core.bridge.approvals.clone(),
            costs: core.bridge.costs.clone(),
        });
        // The core's API: a line has none of its own.
        let reachability = Arc::new(Reachability::new(
            local_addr,
            core.reachability.api_addr(),
            None,
        ));
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
            tools: core.tools.clone(),
            store: core.store.clone(),
            bridge,
            recordings: core.recordings.clone(),
            reachability,
            outbound,
            lines: Arc::new(PrivateLines),
        }));
        // Only Twilio's routes: the simulated caller needs nothing else.
        Ok(serve(
            crate::server::public_router(line),
            listener,
            local_addr,
        ))
    }
}

//! Verbio's core: a Twilio Media Streams ⇄ OpenAI Realtime (GA) bridge for call agents.
//!
//! Rooms (see `docs/architecture.md`):
//! - [`app`]: the composition root: assembles the core once (serve, desktop, demo line).
//! - [`telephony`]: Twilio wire types, TwiML, request signatures. Knows nothing of OpenAI.
//! - [`realtime`]: OpenAI Realtime GA event types, session config, socket client. Knows nothing of Twilio.
//! - [`calls`]: the per-call bridge task, playout/truncation math, registry of live calls, event bus.
//! - [`audio`]: G.711 μ-law and signal helpers.
//! - [`recording`]: call recordings (WAV, library, Twilio copies, playback, listen-in).
//! - [`store`]: SQLite schema, migrations and queries. Never on the hot path.
//! - [`server`]: the axum router (Twilio routes, `/api`).
//! - [`services`]: the operations both doors (HTTP API and desktop) call.
//! - [`summary`]: the post-call summary's settings, request, Responses API client and checks.
//! - [`tunnel`]: how Twilio reaches a desktop (ngrok, or a user-supplied public URL).
//! - `sim` (feature `sim`): fake Realtime server and fake Twilio caller for tests, benchmarks and the demo call.

pub mod app;
pub mod audio;
#[cfg(feature = "sim")]
pub mod bench;
pub mod calls;
pub mod config;
pub mod costs;
#[cfg(feature = "desktop")]
pub mod desktop;
pub mod events;
pub mod heap;
pub mod huge_pages;
pub mod logging;
pub mod metrics;
pub mod onboarding;
pub mod realtime;
pub mod recording;
pub mod secrets;
pub mod server;
pub mod services;
pub mod settings_file;
#[cfg(feature = "sim")]
pub mod sim;
pub mod store;
pub mod summary;
pub mod telephony;
pub mod thread_sched;
pub mod tls;
pub mod tools;
pub mod tunnel;
pub mod types;
pub mod wire;

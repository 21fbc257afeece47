//! Shared harness for the integration tests: a real core (HTTP server, bridge, SQLite library) wired to
//! the simulator's fake Realtime server, and fake Twilio callers that call it over loopback.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use verbio::app::Running;
use verbio::config::Config;
use verbio::events::CallEvent;
use verbio::sim::realtime_server::{AgentTurn, SimRealtimeConfig, SimRealtimeServer};
use verbio::sim::twilio_caller::{CallerConfig, CallerStep};
use verbio::types::Secret;

pub const AUTH_TOKEN: &str = "tw-auth-token-for-tests-0001";
pub const ACCOUNT_SID: &str = "AC00000000000000000000000000000001";
pub const OPENAI_KEY: &str = "sk-test-openai-key-do-not-log-0001";

pub struct Harness {
    pub model: SimRealtimeServer,
    pub running: Running,
    /// The public listener: Twilio's routes (webhooks, media socket, callbacks).
    pub base: String,
    /// The local listener: `/api`, `/api/events`, the full health.
    pub api: String,
    pub data: tempfile::TempDir,
    events: tokio::sync::broadcast::Receiver<CallEvent>,
}

static CALLS: AtomicU32 = AtomicU32::new(1);

/// A unique CallSid per test call.
pub fn call_sid() -> String {
    format!(
        "CA{:032x}",
        CALLS.fetch_add(1, Ordering::Relaxed) as u128 + (std::process::id() as u128) * 1_000_000
    )
}

pub async fn start(model: SimRealtimeConfig, tweak: impl FnOnce(&mut Config)) -> Harness {
    let model = SimRealtimeServer::start(model)
        .await
        .expect("fake Realtime server starts");
    let data = tempfile::tempdir().expect("temp dir");
    let mut config = Config {
        port: 0,
        api_port: 0,
        data_dir: data.path().to_path_buf(),
        openai_api_key: Secret::new(OPENAI_KEY),
        realtime_url: model.url(),
        twilio_account_sid: ACCOUNT_SID.into(),
        twilio_auth_token: Secret::new(AUTH_TOKEN),
        ..Config::default()
    };
    config.bridge.reconnect_backoff = Duration::from_millis(50);
    // Tests never reach Twilio: a closed local port unless the test points the client at Prism.
    config.telephony.api_base = "http://127.0.0.1:9".into();
    tweak(&mut config);
    let running = verbio::app::start(config).await.expect("core starts");
    let base = format!("http://{}", running.local_addr);
    let api = format!("http://{}", running.api_addr);
    let events = running.services.subscribe();
    Harness {
        model,
        running,
        base,
        api,
        data,
        events,
    }
}

impl Harness {
    /// A request to the local API (`GET`, `PUT`, or `POST` for any other method) with the API key `key` and an
    /// optional JSON body: the status and the JSON answer (`Null` when it is not JSON).
    pub async fn api_call(
        &self,
        method: &str,
        path: &str,
        key: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let client = reqwest::Client::new();
        let url = format!("{}{path}", self.api);
        let mut request = match method {
            "GET" => client.get(url),
            "PUT" => client.put(url),
            _ => client.post(url),
        }
        .header("x-api-key", key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the local API answers");
        let status = response.status().as_u16();
        (
            status,
            response.json().await.unwrap_or(serde_json::Value::Null),
        )
    }

    pub fn caller(&self, call_sid: &str) -> CallerConfig {
        let mut config = CallerConfig::new(self.base.clone(), AUTH_TOKEN);
        config.account_sid = ACCOUNT_SID.into();
        config.call_sid = call_sid.into();
        config.from = "+14155550100".into();
        config.to = "+14155550199".into();
        config
    }

    /// Waits for the bus to report `call_sid` ended and returns that event.
    pub async fn ended(&mut self, call_sid: &str) -> CallEvent {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let next = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .expect("call ends within 15 s");
            match next {
                Ok(e @ CallEvent::CallEnded { .. }) if e.call_sid() == call_sid => return e,
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("event bus closed: {e}"),
            }
        }
    }

    pub fn db_path(&self) -> PathBuf {
        self.data.path().join("verbio.sqlite3")
    }

    /// Checks every client event the fake model received against the `openai` Python package's own
    /// GA types (`RealtimeClientEvent`), rejecting undeclared fields (see `validate_realtime_events.py`).
    pub fn validate_client_events(&self, name: &str) {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("client-events");
        std::fs::create_dir_all(&dir).expect("events dir");
        let mut out = String::new();
        for session in self.model.accepted_sessions() {
            for event in &session.client_events {
                out.push_str(&event.to_string());
                out.push('\n');
            }
        }
        let path = dir.join(format!("{name}.jsonl"));
        std::fs::write(&path, out).expect("write events");
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/validate_realtime_events.py"
        );
        let output = std::process::Command::new("python3")
            .arg(script)
            .arg(&path)
            .output()
            .expect("python3 runs (the test command installs the openai package)");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            output.status.success(),
            "client events of {name} fail the openai types:\n{text}"
        );
    }
}

/// The simulated caller speaks (a 440 Hz tone) for `ms`.
pub fn speak(ms: u32) -> CallerStep {
    CallerStep::Speak { tone_hz: 440.0, ms }
}

/// The simulated caller waits (sending silence) until `min_ms` of agent audio has played.
pub fn wait_agent(min_ms: u32) -> CallerStep {
    CallerStep::WaitForAgentAudio {
        min_ms,
        timeout: Duration::from_secs(10),
    }
}

/// A scripted answer of the simulated model: an 880 Hz tone of `tone_ms`, no tool call.
pub fn turn(text: &str, tone_ms: u32) -> AgentTurn {
    AgentTurn {
        text: text.into(),
        tone_hz: 880.0,
        tone_ms,
        call_tool: None,
    }
}

/// Polls `check` every 20 ms until it holds or `timeout` passes.
pub async fn eventually(timeout: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Where the test command runs Prism on Twilio's OpenAPI description (`scripts/prism.sh`).
pub fn prism_url() -> String {
    std::env::var("VERBIO_TEST_PRISM_URL").unwrap_or_else(|_| "http://127.0.0.1:4010".into())
}

/// A recording tap in front of Prism. Fails (never skips) when Prism is not running: the test command
/// starts it, and a test that quietly skipped would prove nothing.
pub async fn prism_tap() -> verbio::sim::twilio_rest_tap::RestTap {
    let url = prism_url();
    let reachable = reqwest::Client::new()
        .get(format!("{url}/2010-04-01/Accounts.json"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .is_ok();
    assert!(
        reachable,
        "Prism is not answering at {url}; start it with `bash scripts/prism.sh start` (the test command does)"
    );
    let spec = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/specs/twilio_api_v2010.json");
    verbio::sim::twilio_rest_tap::RestTap::start(url, &spec)
        .await
        .expect("REST tap starts")
}

/// The account's one phone number in [`numbers_page`].
pub const FROM_NUMBER: &str = "+14155550100";
pub const FROM_NUMBER_SID: &str = "PN0123456789abcdef0123456789abcdef";

/// A one-page `IncomingPhoneNumbers` list in Twilio's shape.
pub fn numbers_page() -> serde_json::Value {
    serde_json::json!({
        "incoming_phone_numbers": [{
            "sid": FROM_NUMBER_SID,
            "account_sid": ACCOUNT_SID,
            "phone_number": FROM_NUMBER,
            "friendly_name": "(415) 555-0100",
            "voice_url": null,
            "status_callback": null
        }],
        "next_page_uri": null,
        "page": 0,
        "page_size": 100
    })
}

/// Posts a form to `path` as Twilio would: signed with the auth token over `base + path`.
pub async fn post_signed_form(
    base: &str,
    path: &str,
    params: &[(&str, &str)],
) -> reqwest::Response {
    let url = format!("{base}{path}");
    let signature = verbio::telephony::twilio::signature::compute(AUTH_TOKEN, &url, params);
    reqwest::Client::new()
        .post(&url)
        .header("X-Twilio-Signature", signature)
        .form(params)
        .send()
        .await
        .expect("callback request")
}

/// The path part of a callback URL the app gave Twilio (`http://127.0.0.1:PORT/twilio/status` → `/twilio/status`).
pub fn path_of(url: &str) -> String {
    let parsed = url::Url::parse(url).expect("callback URL");
    parsed.path().to_string()
}

/// Posts a form to `local_base + path`, signed as Twilio signs it: over `signed_base + path` (the
/// public URL Twilio was given, which a tunnel forwards to the local server).
pub async fn post_form_signed_for(
    local_base: &str,
    signed_base: &str,
    path: &str,
    params: &[(&str, &str)],
) -> reqwest::Response {
    let signed = format!("{signed_base}{path}");
    let signature = verbio::telephony::twilio::signature::compute(AUTH_TOKEN, &signed, params);
    reqwest::Client::new()
        .post(format!("{local_base}{path}"))
        .header("X-Twilio-Signature", signature)
        .form(params)
        .send()
        .await
        .expect("callback request")
}

/// Reads what `verbio serve` prints once it listens: the public listener's base URL (Twilio's routes),
/// then the local API's.
pub fn served_on(stdout: std::process::ChildStdout) -> (String, String) {
    use std::io::BufRead;
    let mut lines = std::io::BufReader::new(stdout).lines();
    let mut next = |prefix: &str| {
        let line = lines
            .next()
            .expect("serve prints its addresses")
            .expect("stdout");
        line.trim()
            .strip_prefix(prefix)
            .unwrap_or_else(|| panic!("expected {prefix:?}…, got {line:?}"))
            .to_string()
    };
    let base = next("verbio serving on ");
    let api = next("verbio API on ");
    (base, api)
}

/// One second of a two-channel 8 kHz WAV (a 440 Hz tone, opposite phase on the right), as Twilio's
/// dual-channel recordings are.
pub fn small_wav() -> Vec<u8> {
    let mut cursor = std::io::Cursor::new(Vec::new());
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::new(&mut cursor, spec).expect("writer");
    for i in 0..8000 {
        let s = ((i as f64 * 440.0 * std::f64::consts::TAU / 8000.0).sin() * 12000.0) as i16;
        w.write_sample(s).expect("left");
        w.write_sample(-s).expect("right");
    }
    w.finalize().expect("finalize");
    cursor.into_inner()
}

/// Serves `app` (a stand-in for a remote service, such as Twilio's media host) on a free loopback
/// port for the rest of the test; returns its base URL.
pub async fn serve_on_loopback(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

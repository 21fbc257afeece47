//! Crash safety: `verbio serve` is killed with SIGKILL in the middle of a recorded call; after a
//! restart the library holds a playable WAV with all but at most the last second of the call.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{ACCOUNT_SID, AUTH_TOKEN, OPENAI_KEY};
use serde_json::Value;
use verbio::sim::realtime_server::{SimRealtimeConfig, SimRealtimeServer};
use verbio::sim::twilio_caller::{CallerConfig, CallerStep, SimCall};

const API_KEY: &str = "crash-test-local-api-key-0001-strong-enough";

/// A `verbio serve` child, its public base (Twilio's routes) and its API base.
fn serve(model_url: &str, data: &std::path::Path) -> (Child, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_verbio"))
        .args(["serve", "--port", "0", "--api-port", "0"])
        .env("VERBIO_REALTIME_URL", model_url)
        .env("OPENAI_API_KEY", OPENAI_KEY)
        .env("TWILIO_ACCOUNT_SID", ACCOUNT_SID)
        .env("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
        .env("VERBIO_API_KEY", API_KEY)
        .env("VERBIO_DATA_DIR", data)
        .env("VERBIO_CONFIG", data.join("absent.toml"))
        .env("VERBIO_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("verbio serve starts");
    let (base, api) = common::served_on(child.stdout.take().expect("stdout"));
    (child, base, api)
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(ok.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_leaves_a_playable_recording_missing_at_most_the_last_second() {
    let model = SimRealtimeServer::start(SimRealtimeConfig::default())
        .await
        .expect("fake Realtime server");
    let data = tempfile::tempdir().expect("temp dir");
    let (mut first, base, _) = serve(&model.url(), data.path());

    let mut caller = CallerConfig::new(base.clone(), AUTH_TOKEN);
    caller.account_sid = ACCOUNT_SID.into();
    let sid = caller.call_sid.clone();
    let steps = vec![
        CallerStep::Speak {
            tone_hz: 440.0,
            ms: 1000,
        },
        CallerStep::Silence(200),
        CallerStep::Speak {
            tone_hz: 440.0,
            ms: 20_000,
        },
    ];
    let call = SimCall::place(caller, steps).await.expect("call placed");
    tokio::time::sleep(Duration::from_millis(3000)).await;
    signal(&first, "-KILL");
    let status = first.wait().expect("killed");
    assert!(!status.success(), "SIGKILL is not a clean exit");
    let report = call.finish().await;
    assert!(report.server_closed, "the bridge went away mid-call");
    let stream_ms = report.media_frames_sent as i64 * 20;
    assert!(
        stream_ms >= 2500,
        "the call ran {stream_ms} ms before the kill"
    );

    let (mut second, _, api) = serve(&model.url(), data.path());
    let client = reqwest::Client::new();
    let get = |path: String| {
        client
            .get(format!("{api}{path}"))
            .header("X-API-Key", API_KEY)
    };
    let list: Vec<Value> = get("/api/recordings".into())
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(list.len(), 1, "{list:?}");
    let rec = &list[0];
    assert_eq!(rec["call_sid"], sid.as_str());
    assert_eq!(rec["status"], "repaired", "{rec}");
    assert!(
        rec["note"]
            .as_str()
            .is_some_and(|n| n.contains("stopped while recording")),
        "{rec}"
    );
    let audio = get(format!("/api/recording/{}/audio", rec["id"]))
        .send()
        .await
        .expect("audio");
    assert_eq!(audio.status(), 200);
    let bytes = audio.bytes().await.expect("body");
    let mut reader =
        hound::WavReader::new(std::io::Cursor::new(bytes.to_vec())).expect("playable WAV");
    let samples: Vec<i16> = reader
        .samples::<i16>()
        .map(|s| s.expect("sample"))
        .collect();
    let kept_ms = samples.len() as i64 / 2 / 8;
    eprintln!("crash: kept {kept_ms} ms of a {stream_ms} ms call");
    assert_eq!(rec["duration_ms"].as_i64(), Some(kept_ms));
    assert!(
        kept_ms >= stream_ms - 1000 && kept_ms <= stream_ms + 40,
        "kept {kept_ms} ms of a {stream_ms} ms call"
    );
    // The caller's first tone is there from the start, then the 200 ms pause.
    let caller: Vec<i16> = samples.iter().step_by(2).copied().collect();
    assert!(caller[80..7_900].iter().filter(|s| s.abs() > 4000).count() > 3000);
    assert!(
        caller[8_100..9_500].iter().all(|s| s.abs() < 100),
        "the pause is silent"
    );

    signal(&second, "-TERM");
    assert!(second.wait().expect("exit").success());
}

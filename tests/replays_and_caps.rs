//! Nobody can replay, run up or guess their way into calls: a captured webhook and stream upgrade open
//! no second model session, repeated callbacks change nothing, caps on calls protect the bill (and say
//! why), and the local API key must be strong.

mod common;

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{
    call_sid, eventually, post_signed_form, speak, start, turn, voice_params, ACCOUNT_SID,
};
use verbio::events::{CallCap, CallEvent};
use verbio::sim::realtime_server::SimRealtimeConfig;
use verbio::sim::twilio_caller::{CallerConfig, CallerStep, SimCall};
use verbio::sim::SimError;

const SECOND: Duration = Duration::from_secs(1);

/// Posts `caller`'s signed voice webhook and returns the TwiML.
async fn twiml(base: &str, caller: &CallerConfig) -> String {
    let response = post_signed_form(base, "/twiml", &voice_params(caller)).await;
    assert_eq!(response.status(), 200);
    response.text().await.expect("TwiML body")
}

/// The stream token in a `<Connect><Stream>` answer.
fn token_of(twiml: &str) -> Option<String> {
    let start = twiml.find("name=\"token\" value=\"")? + "name=\"token\" value=\"".len();
    let end = twiml[start..].find('"')? + start;
    Some(twiml[start..end].to_string())
}

/// Waits for the first bus event `pick` accepts.
async fn next_event<T>(
    events: &mut tokio::sync::broadcast::Receiver<CallEvent>,
    mut pick: impl FnMut(&CallEvent) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + 15 * SECOND;
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Ok(event)) => {
                if let Some(found) = pick(&event) {
                    return found;
                }
            }
            Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(e)) => panic!("event bus closed: {e}"),
            Err(_) => panic!("the expected event never came"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_twiml_and_upgrade_after_the_call_ended_open_no_model_session() {
    let mut h = start(
        SimRealtimeConfig {
            script: vec![turn("Hello.", 300)],
            ..SimRealtimeConfig::default()
        },
        |_| {},
    )
    .await;
    let sid = call_sid();
    let call = SimCall::place(
        h.caller(&sid),
        vec![speak(400), common::wait_agent(300), CallerStep::HangUp],
    )
    .await
    .expect("the real call streams");
    let captured = call.twiml().to_string();
    call.finish().await;
    h.ended(&sid).await;
    let sessions = h.model.accepted_sessions().len();
    assert_eq!(sessions, 1);

    // The captured webhook, replayed: TwiML that hangs up, with no token in it.
    let replayed = twiml(&h.base, &h.caller(&sid)).await;
    assert!(replayed.contains("<Hangup"), "{replayed}");
    assert_eq!(token_of(&replayed), None, "{replayed}");
    // Through the simulated Twilio: nothing to stream to.
    match SimCall::place(h.caller(&sid), vec![CallerStep::Silence(500)]).await {
        Err(SimError::Twiml { .. }) => {}
        other => panic!("expected no stream, got {:?}", other.map(|_| ())),
    }
    // The captured upgrade with the captured TwiML's (spent) token: closed before any session.
    let report = SimCall::answer(h.caller(&sid), captured, vec![CallerStep::Silence(1000)])
        .await
        .expect("the upgrade itself is signed")
        .finish()
        .await;
    assert_eq!(report.close_code, Some(1008));

    // Long after the registry forgot it, the call library still knows the call streamed: a core
    // started afresh on the same library refuses the replay too.
    let restarted = verbio::app::start(h.running.services.config.clone())
        .await
        .expect("a second core on the same library");
    let base = format!("http://{}", restarted.local_addr);
    let again = twiml(&base, &h.caller(&sid)).await;
    assert_eq!(token_of(&again), None, "{again}");
    restarted.shutdown().await;

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        h.model.accepted_sessions().len(),
        sessions,
        "no replay opened a model session"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_twiml_gets_the_same_token_and_the_call_streams_once() {
    let h = start(SimRealtimeConfig::default(), |_| {}).await;
    let sid = call_sid();
    let caller = h.caller(&sid);
    let first = twiml(&h.base, &caller).await;
    let second = twiml(&h.base, &caller).await;
    let token = token_of(&first).expect("a stream token");
    assert_eq!(
        token_of(&second).as_deref(),
        Some(token.as_str()),
        "Twilio's retry gets the token already issued, not a second one"
    );
    let report = SimCall::answer(caller.clone(), second, vec![CallerStep::Silence(300)])
        .await
        .expect("stream")
        .finish()
        .await;
    assert_ne!(report.close_code, Some(1008), "{:?}", report.errors);
    // The first answer's copy of the token is spent.
    let replay = SimCall::answer(caller, first, vec![CallerStep::Silence(500)])
        .await
        .expect("upgrade")
        .finish()
        .await;
    assert_eq!(replay.close_code, Some(1008));
    eventually(5 * SECOND, "one model session", || {
        h.model.accepted_sessions().len() == 1
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_concurrent_call_cap_the_caller_hears_why_and_an_event_says_so() {
    let mut h = start(SimRealtimeConfig::default(), |c| {
        c.bridge.max_concurrent_calls = 1;
    })
    .await;
    let mut events = h.running.services.subscribe();
    let first = call_sid();
    let live = SimCall::place(h.caller(&first), vec![CallerStep::Silence(20_000)])
        .await
        .expect("the first call streams");
    eventually(5 * SECOND, "one live call", || {
        h.running.services.active_calls().len() == 1
    })
    .await;

    let refused = call_sid();
    let answer = twiml(&h.base, &h.caller(&refused)).await;
    assert!(answer.contains("<Say"), "{answer}");
    assert!(answer.contains("all our lines are busy"), "{answer}");
    assert!(answer.contains("<Hangup"), "{answer}");
    assert_eq!(token_of(&answer), None);
    let (cap, message, from) = next_event(&mut events, |e| match e {
        CallEvent::CallCapped {
            call_sid,
            cap,
            message,
            from,
            ..
        } if *call_sid == refused => Some((*cap, message.clone(), from.clone())),
        _ => None,
    })
    .await;
    assert_eq!(cap, CallCap::ConcurrentCalls);
    assert!(message.contains("busy"), "{message}");
    assert_eq!(from.as_deref(), Some("+14155550100"));
    let store = &h.running.services.store;
    store.flush().await.expect("flush");
    let row = store.call(&refused).await.expect("query").expect("kept");
    assert_eq!(row.status, "refused");
    assert!(row
        .end_reason
        .as_deref()
        .unwrap_or_default()
        .contains("busy"));

    // Once the line is free, new calls stream again; the refused one stays refused (its webhook
    // replayed later mints nothing).
    live.hang_up_now();
    live.finish().await;
    h.ended(&first).await;
    eventually(5 * SECOND, "no live call", || {
        h.running.services.active_calls().is_empty()
    })
    .await;
    assert!(token_of(&twiml(&h.base, &h.caller(&call_sid())).await).is_some());
    assert_eq!(token_of(&twiml(&h.base, &h.caller(&refused)).await), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_used_up_daily_budget_refuses_new_calls() {
    let h = start(SimRealtimeConfig::default(), |c| {
        c.bridge.daily_minutes = Some(1);
    })
    .await;
    let mut events = h.running.services.subscribe();
    let now = verbio::types::now_ms();
    // A call that streamed 70 s earlier today.
    let store = &h.running.services.store;
    store.apply(&CallEvent::CallStarted {
        call_sid: call_sid(),
        stream_sid: "MZ1".into(),
        from: None,
        to: None,
        at_ms: now - 120_000,
    });
    let earlier = call_sid();
    store.apply(&CallEvent::CallStarted {
        call_sid: earlier.clone(),
        stream_sid: "MZ2".into(),
        from: None,
        to: None,
        at_ms: now - 120_000,
    });
    store.apply(&CallEvent::CallEnded {
        call_sid: earlier,
        reason: "caller hung up".into(),
        failed: false,
        at_ms: now - 50_000,
    });
    store.flush().await.expect("flush");
    let refused = call_sid();
    let answer = twiml(&h.base, &h.caller(&refused)).await;
    assert!(answer.contains("<Say"), "{answer}");
    assert!(answer.contains("<Hangup"), "{answer}");
    assert_eq!(token_of(&answer), None);
    let cap = next_event(&mut events, |e| match e {
        CallEvent::CallCapped { call_sid, cap, .. } if *call_sid == refused => Some(*cap),
        _ => None,
    })
    .await;
    assert_eq!(cap, CallCap::DailyMinutes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_that_reaches_its_maximum_length_ends_with_a_goodbye() {
    let mut h = start(
        SimRealtimeConfig {
            script: vec![turn("Goodbye, and thank you for calling.", 600)],
            ..SimRealtimeConfig::default()
        },
        |c| c.bridge.max_call_length = Duration::from_secs(2),
    )
    .await;
    let mut events = h.running.services.subscribe();
    let sid = call_sid();
    let started = tokio::time::Instant::now();
    let call = SimCall::place(h.caller(&sid), vec![CallerStep::Silence(30_000)])
        .await
        .expect("call placed");
    let message = next_event(&mut events, |e| match e {
        CallEvent::CallCapped {
            call_sid,
            cap: CallCap::CallLength,
            message,
            ..
        } if *call_sid == sid => Some(message.clone()),
        _ => None,
    })
    .await;
    assert!(message.contains("maximum length (2 s)"), "{message}");
    let report = call.finish().await;
    let ended = h.ended(&sid).await;
    let CallEvent::CallEnded { reason, failed, .. } = ended else {
        unreachable!()
    };
    assert_eq!(reason, "reached the maximum call length");
    assert!(!failed);
    assert!(report.server_closed, "the bridge ended the call");
    assert!(
        started.elapsed() < 15 * SECOND,
        "ended well before the caller would have hung up"
    );
    assert!(report.heard_ms >= 600, "the caller heard the goodbye");
    // The goodbye was asked for with no tools, so the model could not keep the call going.
    let asked = h
        .model
        .accepted_sessions()
        .iter()
        .flat_map(|s| s.response_requests.clone())
        .any(|r| {
            r["tool_choice"] == "none"
                && r["instructions"]
                    .as_str()
                    .is_some_and(|i| i.contains("maximum length"))
        });
    assert!(asked, "a goodbye response was asked for");
    let store = &h.running.services.store;
    store.flush().await.expect("flush");
    let issues = store.issues(&sid).await.expect("issues");
    assert!(issues.iter().any(|i| i.code == "call_length"), "{issues:?}");
}

/// A stand-in for Twilio's media host serving one recording; counts the downloads.
async fn recording_host(wav: Vec<u8>) -> (String, Arc<Mutex<u32>>) {
    use axum::routing::get;
    let downloads = Arc::new(Mutex::new(0u32));
    let counter = downloads.clone();
    let path = format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/RE0001.wav");
    let app = axum::Router::new().route(
        &path,
        get(move || {
            let counter = counter.clone();
            let wav = wav.clone();
            async move {
                *counter.lock().expect("lock") += 1;
                wav
            }
        }),
    );
    (common::serve_on_loopback(app).await, downloads)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_recording_callback_adds_no_row_and_downloads_nothing() {
    let (api_base, downloads) = recording_host(common::small_wav()).await;
    let h = start(SimRealtimeConfig::default(), |c| {
        c.telephony.api_base = api_base.clone();
    })
    .await;
    let sid = call_sid();
    let url = format!("{api_base}/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/RE0001");
    let params = [
        ("AccountSid", ACCOUNT_SID),
        ("CallSid", sid.as_str()),
        ("RecordingSid", "RE0001"),
        ("RecordingUrl", url.as_str()),
        ("RecordingStatus", "completed"),
        ("RecordingChannels", "2"),
    ];
    let library = &h.running.services.recordings;
    let post = || post_signed_form(&h.base, "/twilio/recording-status", &params);
    assert_eq!(post().await.status(), 204);
    let deadline = tokio::time::Instant::now() + 10 * SECOND;
    let first = loop {
        if let Some(r) = library
            .for_call(&sid)
            .await
            .ok()
            .and_then(|r| r.first().cloned())
        {
            break r;
        }
        assert!(tokio::time::Instant::now() < deadline, "never saved");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // Replayed (twice, at once): still one row and one download.
    let (a, b) = tokio::join!(post(), post());
    assert_eq!((a.status().as_u16(), b.status().as_u16()), (204, 204));
    tokio::time::sleep(Duration::from_millis(500)).await;
    h.running.services.store.flush().await.expect("flush");
    let rows = library.for_call(&sid).await.expect("rows");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(*downloads.lock().expect("lock"), 1);
    // Deleted by the user, then replayed: it stays deleted (and its file gone).
    library.delete(first.id, false).await.expect("delete");
    assert_eq!(post().await.status(), 204);
    tokio::time::sleep(Duration::from_millis(500)).await;
    h.running.services.store.flush().await.expect("flush");
    assert!(library
        .for_call(&sid)
        .await
        .map(|rows| rows.is_empty())
        .unwrap_or(true));
    assert_eq!(*downloads.lock().expect("lock"), 1);
}

/// `verbio serve` with `env` set: whether it is still serving after a while (it must not be) and what
/// it said on stderr.
fn serve_with(env: &[(&str, &str)]) -> (bool, String) {
    let data = tempfile::tempdir().expect("temp dir");
    let mut command = Command::new(env!("CARGO_BIN_EXE_verbio"));
    command
        .args(["serve", "--port", "0"])
        .env("VERBIO_DATA_DIR", data.path())
        .env("VERBIO_CONFIG", data.path().join("absent.toml"))
        .env("VERBIO_KEYCHAIN", "off")
        .env_remove("VERBIO_API_KEY")
        .env_remove("VERBIO_CORS_ORIGINS")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("verbio runs");
    let deadline = std::time::Instant::now() + 20 * SECOND;
    let serving = loop {
        match child.try_wait().expect("wait") {
            Some(status) => break status.success(),
            None if std::time::Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break true;
            }
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
    }
    (serving, stderr)
}

#[test]
fn a_weak_api_key_or_a_wildcard_origin_is_a_clear_error_at_start() {
    let (serving, stderr) = serve_with(&[("VERBIO_API_KEY", "hunter2-hunter2")]);
    assert!(!serving, "a weak key must not start the API");
    assert!(
        stderr.contains("invalid value for VERBIO_API_KEY: is too weak"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("hunter2-hunter2"),
        "the key is never printed: {stderr}"
    );

    let (serving, stderr) = serve_with(&[("VERBIO_CORS_ORIGINS", "*")]);
    assert!(!serving);
    assert!(
        stderr.contains("invalid value for VERBIO_CORS_ORIGINS"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

//! Outbound calls end to end: the real core places the call through the real Twilio REST client
//! against Prism (Twilio's OpenAPI description), then the simulator answers the inline TwiML as the
//! callee over the media stream, while the test plays Twilio's signed status and answering-machine
//! callbacks.

mod common;

use std::time::Duration;

use common::{post_signed_form, AUTH_TOKEN, FROM_NUMBER};
use serde_json::{json, Value};
use verbio::config::Config;
use verbio::events::CallEvent;
use verbio::sim::realtime_server::{AgentTurn, SimRealtimeConfig};
use verbio::sim::twilio_caller::{CallerStep, SimCall};
use verbio::sim::twilio_rest_tap::{RestTap, TappedRequest};
use verbio::types::Secret;

const API_KEY: &str = "local-api-key-for-outbound-0001";
const CALLEE: &str = "+14155550123";

struct Outbound {
    h: common::Harness,
    tap: RestTap,
}

async fn outbound(model: SimRealtimeConfig) -> Outbound {
    outbound_with(model, |_| {}).await
}

/// [`outbound`] with more settings changed by `tweak`.
async fn outbound_with(model: SimRealtimeConfig, tweak: impl FnOnce(&mut Config)) -> Outbound {
    let tap = common::prism_tap().await;
    tap.serve_json("/IncomingPhoneNumbers.json", common::numbers_page());
    let api_base = tap.url();
    let h = common::start(model, |c| {
        c.api_key = Secret::new(API_KEY);
        c.telephony.api_base = api_base;
        c.bridge.reconnect_attempts = 1;
        tweak(c);
    })
    .await;
    h.running
        .services
        .set_public_url(Some(&h.base))
        .expect("public URL");
    Outbound { h, tap }
}

impl Outbound {
    async fn place(&self, body: Value) -> reqwest::Response {
        reqwest::Client::new()
            .post(format!("{}/api/call/outbound", self.h.api))
            .header("X-API-Key", API_KEY)
            .json(&body)
            .send()
            .await
            .expect("outbound request")
    }

    /// A `/api` request with the key; the JSON answer.
    async fn api(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = reqwest::Client::new()
            .request(method, format!("{}{path}", self.h.api))
            .header("X-API-Key", API_KEY);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("API request");
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.expect("JSON answer")
    }

    /// The `POST Calls.json` the app sent.
    async fn create_request(&self) -> TappedRequest {
        self.tap
            .wait_for("call creation", Duration::from_secs(5), |r| {
                r.method == "POST" && r.path.ends_with("/Calls.json")
            })
            .await
            .expect("the app created the call")
    }

    /// Places a call to [`CALLEE`] with `extra` fields; its SID and the `POST Calls.json` sent.
    async fn placed(&self, extra: Value) -> (String, TappedRequest) {
        let mut body = json!({"to": CALLEE, "from": FROM_NUMBER});
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        let resp = self.place(body).await;
        assert_eq!(resp.status(), 201);
        let sid = resp.json::<Value>().await.expect("body")["call_sid"]
            .as_str()
            .expect("sid")
            .to_string();
        (sid, self.create_request().await)
    }

    /// Every `POST Calls/{sid}.json` (updates and hang-ups) so far, oldest first.
    fn updates(&self, sid: &str) -> Vec<TappedRequest> {
        self.tap
            .requests()
            .into_iter()
            .filter(|r| r.method == "POST" && r.path.ends_with(&format!("/Calls/{sid}.json")))
            .collect()
    }

    /// Twilio's callback for `call_sid` with `status`.
    async fn status(
        &self,
        create: &TappedRequest,
        call_sid: &str,
        status: &str,
        extra: &[(&str, &str)],
    ) {
        let url = create.field("StatusCallback").expect("StatusCallback");
        let mut params = vec![
            ("CallSid", call_sid),
            ("AccountSid", common::ACCOUNT_SID),
            ("CallStatus", status),
            ("Direction", "outbound-api"),
            ("From", FROM_NUMBER),
            ("To", CALLEE),
        ];
        params.extend_from_slice(extra);
        let resp = post_signed_form(&self.h.base, &common::path_of(url), &params).await;
        assert_eq!(resp.status(), 204, "status callback accepted");
    }

    /// Waits for the app to end `call_sid` at Twilio and returns that update (Prism's answer included).
    async fn hang_up_sent(&self, call_sid: &str) -> TappedRequest {
        let hang_up = self
            .tap
            .wait_for("hang-up", Duration::from_secs(5), |r| {
                r.method == "POST" && r.path.ends_with(&format!("/Calls/{call_sid}.json"))
            })
            .await
            .expect("hang-up sent to Twilio");
        assert_eq!(hang_up.field("Status"), Some("completed"));
        assert!(hang_up.status < 300, "Prism accepted the hang-up");
        hang_up
    }

    async fn amd(&self, create: &TappedRequest, call_sid: &str, answered_by: &str) -> Value {
        let url = create
            .field("AsyncAmdStatusCallback")
            .expect("AsyncAmdStatusCallback");
        let resp = post_signed_form(
            &self.h.base,
            &common::path_of(url),
            &[
                ("CallSid", call_sid),
                ("AccountSid", common::ACCOUNT_SID),
                ("AnsweredBy", answered_by),
                ("MachineDetectionDuration", "2300"),
            ],
        )
        .await;
        assert_eq!(resp.status(), 200, "AMD callback accepted");
        resp.json().await.expect("AMD answer")
    }

    /// The callee picks up: the simulator runs the call's inline TwiML.
    /// Waits until the app has a live call (the callee's stream has started).
    async fn stream_live(&self) {
        common::eventually(Duration::from_secs(5), "stream is live", || {
            !self.h.running.services.active_calls().is_empty()
        })
        .await;
    }

    async fn answer(
        &self,
        create: &TappedRequest,
        call_sid: &str,
        script: Vec<CallerStep>,
    ) -> SimCall {
        let mut caller = self.h.caller(call_sid);
        caller.from = FROM_NUMBER.into();
        caller.to = CALLEE.into();
        let twiml = create.field("Twiml").expect("inline TwiML").to_string();
        SimCall::answer(caller, twiml, script)
            .await
            .expect("the callee's stream connects")
    }
}

#[tokio::test]
async fn outbound_call_with_a_person_moves_through_its_states() {
    let o = outbound(SimRealtimeConfig {
        script: vec![AgentTurn::with_tone(
            "Hi, this is Verbio about your appointment.",
            700.0,
            800,
        )],
        ..SimRealtimeConfig::default()
    })
    .await;
    let mut events = o.h.running.services.subscribe();
    let resp = o
        .place(json!({
            "to": "+1 (415) 555-0123",
            "from": FROM_NUMBER,
            "instructions": "You are confirming a dentist appointment.",
            "voice": "cedar",
            "reasoning_effort": "medium",
            "speed": 1.1,
            "max_output_tokens": 400,
            "machine_policy": "voicemail",
            "twilio_recording": true,
        }))
        .await;
    assert_eq!(resp.status(), 201);
    let placed: Value = resp.json().await.expect("placed call");
    let sid = placed["call_sid"].as_str().expect("call_sid").to_string();
    assert_eq!(placed["to"], CALLEE, "the number is sent in E.164");

    let create = o.create_request().await;
    assert!(create.had_basic_auth);
    assert_eq!(
        create.status, 201,
        "Prism accepted the request as Twilio's API describes it"
    );
    assert_eq!(create.field("To"), Some(CALLEE));
    // A voicemail needs the end of a machine's greeting.
    assert_eq!(create.field("MachineDetection"), Some("DetectMessageEnd"));
    assert_eq!(create.field("AsyncAmd"), Some("true"));
    assert_eq!(create.field("Record"), Some("true"));
    assert_eq!(create.field("RecordingChannels"), Some("dual"));
    // Twilio's default on a call, `trim-silence`, would shift its copy against the transcript.
    assert_eq!(create.field("Trim"), Some("do-not-trim"));
    assert_eq!(
        create
            .field("RecordingStatusCallback")
            .map(common::path_of)
            .as_deref(),
        Some(verbio::telephony::twilio::webhooks::RECORDING_STATUS_PATH)
    );
    assert_eq!(
        create.fields("StatusCallbackEvent"),
        ["initiated", "ringing", "answered", "completed"]
    );
    let twiml = create.field("Twiml").expect("TwiML");
    assert!(twiml.contains("<Connect><Stream url=\"ws://"), "{twiml}");
    assert!(
        !twiml.contains("dentist"),
        "per-call instructions never travel in TwiML: {twiml}"
    );

    for status in ["initiated", "ringing"] {
        o.status(&create, &sid, status, &[]).await;
    }
    let call = o
        .answer(
            &create,
            &sid,
            vec![
                CallerStep::Speak {
                    tone_hz: 300.0,
                    ms: 600,
                },
                CallerStep::WaitForAgentAudio {
                    min_ms: 700,
                    timeout: Duration::from_secs(10),
                },
                CallerStep::Silence(300),
                CallerStep::HangUp,
            ],
        )
        .await;
    o.status(&create, &sid, "in-progress", &[]).await;
    let action = o.amd(&create, &sid, "human").await;
    assert_eq!(action["action"], "continue");
    let report = call.finish().await;
    assert!(
        report.heard_ms >= 700,
        "the callee heard the agent: {} ms",
        report.heard_ms
    );
    o.status(&create, &sid, "completed", &[("CallDuration", "7")])
        .await;
    o.h.running.services.store.flush().await.expect("flush");

    // The model got this call's session, not the app's.
    let sessions = o.h.model.accepted_sessions();
    let update = sessions[0]
        .client_events
        .iter()
        .find(|e| e["type"] == "session.update")
        .expect("session.update");
    assert_eq!(
        update["session"]["instructions"],
        "You are confirming a dentist appointment."
    );
    assert_eq!(update["session"]["audio"]["output"]["voice"], "cedar");
    assert_eq!(update["session"]["max_output_tokens"], 400);
    assert_eq!(
        sessions[0].response_creates, 0,
        "the agent waited for the callee"
    );

    let record =
        o.h.running
            .services
            .store
            .call(&sid)
            .await
            .expect("library")
            .expect("call row");
    assert_eq!(record.direction, "outbound");
    assert_eq!(record.status, "completed");
    assert_eq!(record.answered_by.as_deref(), Some("human"));
    assert_eq!(record.duration_secs, Some(7));
    // Recorded locally by default, as the request asked.
    let recordings =
        o.h.running
            .services
            .recordings
            .for_call(&sid)
            .await
            .expect("call recordings");
    assert_eq!(recordings.len(), 1, "one local recording");
    assert_eq!(recordings[0].source, "local");
    assert_eq!(record.to_number.as_deref(), Some(CALLEE));
    let history: Vec<String> =
        o.h.running
            .services
            .store
            .status_history(&sid)
            .await
            .expect("history")
            .into_iter()
            .map(|(s, _, _)| s)
            .collect();
    assert_eq!(
        history,
        [
            "queued",
            "initiated",
            "ringing",
            "in-progress",
            "amd:continue",
            "completed"
        ]
    );
    // The bus carried the same progress, for the UI.
    let mut seen = Vec::new();
    while let Ok(event) = events.try_recv() {
        if let CallEvent::CallStatus { status, .. } = event {
            seen.push(status);
        }
    }
    assert_eq!(
        seen,
        ["queued", "initiated", "ringing", "in-progress", "completed"]
    );
    o.h.validate_client_events("outbound_person");
}

#[tokio::test]
async fn machine_end_beep_leaves_the_voicemail_then_hangs_up() {
    let mut o = outbound(SimRealtimeConfig {
        script: vec![AgentTurn::with_tone(
            "Please call Verbio back.",
            600.0,
            1000,
        )],
        ..SimRealtimeConfig::default()
    })
    .await;
    let resp = o
        .place(json!({
            "to": CALLEE,
            "from": FROM_NUMBER,
            "machine_policy": "voicemail",
            "voicemail_message": "Please call Verbio back about your order.",
            "record": false,
        }))
        .await;
    assert_eq!(resp.status(), 201);
    let sid = resp.json::<Value>().await.expect("body")["call_sid"]
        .as_str()
        .expect("sid")
        .to_string();
    let create = o.create_request().await;
    assert_eq!(create.field("MachineDetection"), Some("DetectMessageEnd"));
    assert_eq!(
        create.field("Trim"),
        None,
        "no cloud recording was asked for"
    );
    // The machine's greeting plays, then silence while it records.
    let call = o
        .answer(
            &create,
            &sid,
            vec![
                CallerStep::Speak {
                    tone_hz: 400.0,
                    ms: 1500,
                },
                CallerStep::Silence(15_000),
            ],
        )
        .await;
    o.stream_live().await;
    // Should a `machine_start` come (Twilio does not send one with `DetectMessageEnd`), the voicemail
    // still waits for the end of the greeting.
    assert_eq!(
        o.amd(&create, &sid, "machine_start").await["action"],
        "wait"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!call.is_finished(), "the call goes on through the greeting");
    assert!(o.updates(&sid).is_empty(), "nothing asked of Twilio yet");
    let action = o.amd(&create, &sid, "machine_end_beep").await;
    assert_eq!(action["action"], "voicemail");
    let ended = o.h.ended(&sid).await;
    let CallEvent::CallEnded { reason, failed, .. } = ended else {
        unreachable!()
    };
    assert_eq!(reason, "voicemail left");
    assert!(!failed);
    let report = call.finish().await;
    assert!(
        report.heard_ms >= 1000,
        "the voicemail played in full: {} ms",
        report.heard_ms
    );
    let requests = o.h.model.accepted_sessions()[0].response_requests.clone();
    let voicemail = requests
        .iter()
        .find(|r| {
            r["instructions"]
                .as_str()
                .is_some_and(|i| i.contains("Please call Verbio back about your order."))
        })
        .expect("the agent was asked to say the voicemail message");
    assert_eq!(voicemail["tool_choice"], "none");
    // Then the app hung up at Twilio.
    o.hang_up_sent(&sid).await;
    // `"record": false` in the request: this call left no recording.
    o.h.running.services.store.flush().await.expect("flush");
    let recordings =
        o.h.running
            .services
            .recordings
            .for_call(&sid)
            .await
            .expect("call recordings");
    assert!(recordings.is_empty(), "{recordings:?}");
    o.h.validate_client_events("outbound_voicemail");
}

#[tokio::test]
async fn machine_with_hang_up_policy_ends_the_call_at_machine_start() {
    // With `MachineDetection=Enable` Twilio's verdict for a machine is `machine_start`, as soon as the
    // greeting begins: the call ends then, not after the agent has talked to the whole greeting.
    machine_verdict_hangs_up(json!({"machine_policy": "hang_up"}), "machine_start").await;
}

#[tokio::test]
async fn calls_hang_up_on_machines_by_default() {
    machine_verdict_hangs_up(json!({}), "machine_start").await;
}

/// A verdict that the call's policy (from `request`) answers by hanging up: the call was created with
/// `MachineDetection=Enable`, it ends and the app hangs up at Twilio.
async fn machine_verdict_hangs_up(request: Value, answered_by: &str) {
    let mut o = outbound(SimRealtimeConfig::default()).await;
    let (sid, create) = o.placed(request).await;
    assert_eq!(create.field("MachineDetection"), Some("Enable"));
    assert_eq!(create.field("AsyncAmd"), Some("true"));
    assert!(create.status < 300, "Prism accepted `Enable`: {create:?}");
    let call = o
        .answer(&create, &sid, vec![CallerStep::Silence(15_000)])
        .await;
    o.stream_live().await;
    assert_eq!(o.amd(&create, &sid, answered_by).await["action"], "hang_up");
    o.h.ended(&sid).await;
    call.finish().await;
    o.hang_up_sent(&sid).await;
}

#[tokio::test]
async fn bad_numbers_unknown_from_and_twilio_errors_are_clear_api_errors() {
    let o = outbound(SimRealtimeConfig::default()).await;
    let error = |v: Value| {
        (
            v["error"]["code"].as_str().unwrap_or_default().to_string(),
            v["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        )
    };

    let resp = o
        .place(json!({"to": "415-555-0123", "from": FROM_NUMBER}))
        .await;
    assert_eq!(resp.status(), 422);
    let (code, message) = error(resp.json().await.expect("body"));
    assert_eq!(code, "invalid_phone_number");
    assert!(message.contains("country code"), "{message}");

    let resp = o.place(json!({"to": CALLEE, "from": "+14155550999"})).await;
    assert_eq!(resp.status(), 422);
    let (code, message) = error(resp.json().await.expect("body"));
    assert_eq!(code, "unknown_from_number");
    assert!(
        message.contains(FROM_NUMBER),
        "lists the account's numbers: {message}"
    );

    let resp = o
        .place(json!({"to": CALLEE, "from": FROM_NUMBER, "speed": 9.0}))
        .await;
    assert_eq!(resp.status(), 422);

    o.tap.fail_next(
        "/Calls.json",
        400,
        21215,
        "Account not authorized to call +14155550123.",
    );
    let resp = o.place(json!({"to": CALLEE, "from": FROM_NUMBER})).await;
    assert_eq!(resp.status(), 502);
    let (code, message) = error(resp.json().await.expect("body"));
    assert_eq!(code, "twilio_refused");
    assert!(
        message.contains("21215") && message.contains("not authorized"),
        "{message}"
    );
    assert!(!message.contains(AUTH_TOKEN));
    // Nothing was placed, so no stream token is left behind and no call is listed.
    assert!(o.h.running.services.active_calls().is_empty());
}

/// The concurrent-call cap protects the bill whoever starts the call: a call the app places counts
/// (from the moment its stream token exists) and one over the cap is not placed at all.
#[tokio::test]
async fn placing_a_call_over_the_concurrent_call_cap_is_refused_before_twilio() {
    let o = outbound_with(SimRealtimeConfig::default(), |c| {
        c.bridge.max_concurrent_calls = 1;
    })
    .await;
    let first = o.place(json!({"to": CALLEE, "from": FROM_NUMBER})).await;
    assert_eq!(first.status(), 201);
    o.create_request().await;
    let second = o.place(json!({"to": CALLEE, "from": FROM_NUMBER})).await;
    assert_eq!(second.status(), 409);
    let body: Value = second.json().await.expect("body");
    assert_eq!(body["error"]["code"], "lines_busy", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("VERBIO_MAX_CALLS")),
        "{body}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        o.tap
            .requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/Calls.json"))
            .count(),
        1,
        "Twilio was asked to place only the first call"
    );
}

#[tokio::test]
async fn model_unreachable_on_an_answered_call_plays_the_apology() {
    let mut o = outbound(SimRealtimeConfig::default()).await;
    o.h.model.set_reject_connections(true);
    let sid = common::call_sid();
    let call = SimCall::place(o.h.caller(&sid), vec![CallerStep::Silence(10_000)])
        .await
        .expect("inbound call connects");
    let ended = o.h.ended(&sid).await;
    assert!(matches!(ended, CallEvent::CallEnded { failed: true, .. }));
    let update = o
        .tap
        .wait_for("apology", Duration::from_secs(5), |r| {
            r.path.ends_with(&format!("/Calls/{sid}.json"))
        })
        .await
        .expect("the call was updated with an apology");
    let twiml = update.field("Twiml").expect("TwiML");
    assert!(
        twiml.contains("<Say>Sorry, our assistant is unavailable"),
        "{twiml}"
    );
    assert!(twiml.ends_with("<Hangup /></Response>"), "{twiml}");
    assert!(update.status < 300, "Prism accepted the update");
    call.finish().await;
}

#[tokio::test]
async fn agent_transfers_the_call_to_a_person() {
    let mut o = outbound(SimRealtimeConfig {
        script: vec![AgentTurn {
            call_tool: Some((
                "transfer_call".into(),
                r#"{"reason":"wants a person"}"#.into(),
            )),
            ..AgentTurn::with_tone("Let me transfer you.", 650.0, 600)
        }],
        ..SimRealtimeConfig::default()
    })
    .await;
    let mut session = o.h.running.services.session_config();
    session.transfer_number = Some("+14155550199".into());
    o.h.running
        .services
        .update_session_config(session)
        .expect("session with a transfer number");
    let sid = common::call_sid();
    let call = SimCall::place(
        o.h.caller(&sid),
        vec![
            CallerStep::Speak {
                tone_hz: 300.0,
                ms: 600,
            },
            CallerStep::Silence(20_000),
        ],
    )
    .await
    .expect("call connects");
    let redirect = o
        .tap
        .wait_for("transfer", Duration::from_secs(10), |r| {
            r.path.ends_with(&format!("/Calls/{sid}.json"))
        })
        .await
        .expect("the call was redirected");
    assert!(
        call.played_ms() >= 600,
        "the agent's words played before the transfer"
    );
    let twiml = redirect.field("Twiml").expect("TwiML");
    assert!(
        twiml.contains("<Dial timeout=\"30\"><Number>+14155550199</Number></Dial>"),
        "{twiml}"
    );
    // Twilio leaves <Connect> for <Dial>: the stream stops.
    call.hang_up_now();
    let CallEvent::CallEnded { reason, .. } = o.h.ended(&sid).await else {
        unreachable!()
    };
    assert_eq!(reason, "transferred to +14155550199");
    call.finish().await;
    // The transfer tool is only offered because a number is set.
    let tools = &o.h.model.accepted_sessions()[0].client_events[0]["session"]["tools"];
    assert!(tools
        .as_array()
        .expect("tools")
        .iter()
        .any(|t| t["name"] == "transfer_call"));
}

#[tokio::test]
async fn unsigned_or_forged_callbacks_are_refused() {
    let o = outbound(SimRealtimeConfig::default()).await;
    for path in ["/twilio/status", "/twilio/amd"] {
        let resp = reqwest::Client::new()
            .post(format!("{}{path}", o.h.base))
            .form(&[
                ("CallSid", "CA1"),
                ("CallStatus", "completed"),
                ("AnsweredBy", "human"),
            ])
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), 403, "{path} without a signature");
        let resp = reqwest::Client::new()
            .post(format!("{}{path}", o.h.base))
            .header("X-Twilio-Signature", "AAAAAAAAAAAAAAAAAAAAAAAAAAA=")
            .form(&[("CallSid", "CA1"), ("CallStatus", "completed")])
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), 403, "{path} with a forged signature");
    }
    let resp = post_signed_form(&o.h.base, "/twilio/status", &[("CallSid", "CA1")]).await;
    assert_eq!(resp.status(), 400, "signed but without CallStatus");
    o.h.running.services.store.flush().await.expect("flush");
    assert!(o
        .h
        .running
        .services
        .store
        .call("CA1")
        .await
        .expect("library")
        .is_none());
}

#[tokio::test]
async fn numbers_and_webhook_setup_through_the_api() {
    let o = outbound(SimRealtimeConfig::default()).await;
    let numbers = o.api(reqwest::Method::GET, "/api/numbers", None).await;
    assert_eq!(numbers[0]["phone_number"], FROM_NUMBER);
    let setup = o.api(reqwest::Method::GET, "/api/webhooks", None).await;
    assert_eq!(setup["voice_url"], format!("{}/twiml", o.h.base));
    assert!(setup["mode"].is_null(), "not asked yet");
    let choice = json!({"mode": "auto", "number_sid": common::FROM_NUMBER_SID});
    let chosen = o
        .api(reqwest::Method::PUT, "/api/webhooks", Some(choice))
        .await;
    assert_eq!(chosen["mode"], "auto");
    let update = o
        .tap
        .wait_for("number update", Duration::from_secs(5), |r| {
            r.path.contains(&format!(
                "/IncomingPhoneNumbers/{}.json",
                common::FROM_NUMBER_SID
            ))
        })
        .await
        .expect("the number was pointed at the app");
    assert_eq!(
        update.field("VoiceUrl"),
        Some(format!("{}/twiml", o.h.base).as_str())
    );
    assert_eq!(update.status, 200, "Prism accepted the update");
    // Asked once, remembered.
    let again = o.api(reqwest::Method::GET, "/api/webhooks", None).await;
    assert_eq!(again["number_sid"], common::FROM_NUMBER_SID);
}

#[tokio::test]
async fn the_auto_webhook_choice_is_repeated_on_the_next_start() {
    let first = outbound(SimRealtimeConfig::default()).await;
    let choice = json!({"mode": "auto", "number_sid": common::FROM_NUMBER_SID});
    first
        .api(reqwest::Method::PUT, "/api/webhooks", Some(choice))
        .await;
    let data_dir = first.h.data.path().to_path_buf();
    first.h.running.services.store.flush().await.expect("flush");
    // The next run reaches Twilio through another URL (a new tunnel): the number must follow it.
    let tap = common::prism_tap().await;
    let api_base = tap.url();
    let second = common::start(SimRealtimeConfig::default(), |c| {
        c.data_dir = data_dir.clone();
        c.telephony.api_base = api_base;
        c.public_url = Some("https://calls.example.test".into());
    })
    .await;
    let update = tap
        .wait_for("number update on start", Duration::from_secs(5), |r| {
            r.path.contains("/IncomingPhoneNumbers/PN")
        })
        .await
        .expect("the remembered number was pointed at the new URL");
    assert_eq!(
        update.field("VoiceUrl"),
        Some("https://calls.example.test/twiml")
    );
    assert_eq!(
        update.field("StatusCallback"),
        Some("https://calls.example.test/twilio/status")
    );
    drop(second);
}

#[tokio::test]
async fn a_fax_is_hung_up_on_even_when_machines_get_the_agent() {
    machine_verdict_hangs_up(json!({"machine_policy": "continue"}), "fax").await;
}

#[tokio::test]
async fn machine_start_with_continue_policy_carries_on() {
    let o = outbound(SimRealtimeConfig {
        script: vec![AgentTurn::with_tone("Hello, this is Verbio.", 600.0, 800)],
        ..SimRealtimeConfig::default()
    })
    .await;
    let (sid, create) = o.placed(json!({"machine_policy": "continue"})).await;
    assert_eq!(create.field("MachineDetection"), Some("Enable"));
    let call = o
        .answer(
            &create,
            &sid,
            vec![
                CallerStep::Speak {
                    tone_hz: 400.0,
                    ms: 600,
                },
                CallerStep::WaitForAgentAudio {
                    min_ms: 700,
                    timeout: Duration::from_secs(10),
                },
                CallerStep::Silence(300),
                CallerStep::HangUp,
            ],
        )
        .await;
    o.stream_live().await;
    assert_eq!(
        o.amd(&create, &sid, "machine_start").await["action"],
        "continue"
    );
    let report = call.finish().await;
    assert!(
        report.heard_ms >= 700,
        "the agent talked to the machine: {} ms",
        report.heard_ms
    );
    assert!(
        o.updates(&sid).is_empty(),
        "the app did not end the call at Twilio: {:?}",
        o.updates(&sid)
    );
}

#[tokio::test]
async fn ending_a_ringing_outbound_call_cancels_it() {
    let o = outbound(SimRealtimeConfig::default()).await;
    let (sid, create) = o.placed(json!({})).await;
    for status in ["initiated", "ringing"] {
        o.status(&create, &sid, status, &[]).await;
    }
    let ended = o
        .api(reqwest::Method::POST, &format!("/api/call/{sid}/end"), None)
        .await;
    assert_eq!(ended["status"], "ending");
    // The cancel is sent before the API answers; Prism answers it with a final status.
    let updates = o.updates(&sid);
    assert_eq!(updates.len(), 1, "{updates:?}");
    assert_eq!(updates[0].field("Status"), Some("canceled"));
    assert!(updates[0].status < 300, "Prism accepted the cancel");
}

#[tokio::test]
async fn ending_an_answered_call_before_its_stream_starts_completes_it() {
    let o = outbound(SimRealtimeConfig::default()).await;
    let (sid, create) = o.placed(json!({})).await;
    // Answered, and a late `ringing` that must not take the call back to cancellable.
    for status in ["initiated", "ringing", "in-progress", "ringing"] {
        o.status(&create, &sid, status, &[]).await;
    }
    assert!(
        o.h.running.services.active_calls().is_empty(),
        "no stream yet"
    );
    o.api(reqwest::Method::POST, &format!("/api/call/{sid}/end"), None)
        .await;
    let updates = o.updates(&sid);
    assert_eq!(updates.len(), 1, "{updates:?}");
    assert_eq!(
        updates[0].field("Status"),
        Some("completed"),
        "Twilio ignores `canceled` on an answered call"
    );
    assert!(updates[0].status < 300, "Prism accepted the hang-up");
}

#[tokio::test]
async fn a_cancel_that_twilio_answers_as_in_progress_is_followed_by_completed() {
    let o = outbound(SimRealtimeConfig::default()).await;
    let (sid, create) = o.placed(json!({})).await;
    o.status(&create, &sid, "ringing", &[]).await;
    // The callee picked up just as the cancel went out: Twilio keeps the call and says so.
    o.tap.serve_json(
        &format!("/Calls/{sid}.json"),
        json!({"sid": sid, "status": "in-progress", "direction": "outbound-api"}),
    );
    o.api(reqwest::Method::POST, &format!("/api/call/{sid}/end"), None)
        .await;
    let statuses: Vec<String> = o
        .updates(&sid)
        .iter()
        .map(|r| r.field("Status").unwrap_or_default().to_string())
        .collect();
    assert_eq!(statuses, ["canceled", "completed"]);
}

#[tokio::test]
async fn transfer_by_hand_redirects_and_ends_the_call_as_transferred() {
    let mut o = outbound(SimRealtimeConfig::default()).await;
    let mut session = o.h.running.services.session_config();
    session.transfer_number = Some("+14155550199".into());
    o.h.running
        .services
        .update_session_config(session)
        .expect("session with a transfer number");
    let sid = common::call_sid();
    let call = SimCall::place(o.h.caller(&sid), vec![CallerStep::Silence(20_000)])
        .await
        .expect("call connects");
    o.stream_live().await;
    let url = format!("{}/api/call/{sid}/transfer", o.h.api);
    let client = reqwest::Client::new();
    // A body that is there but unusable is refused, never replaced by the session's number.
    for (content_type, body, status, code) in [
        (
            "text/plain",
            r#"{"to":"+14155550177"}"#,
            415,
            "unsupported_media_type",
        ),
        (
            "application/x-www-form-urlencoded",
            "to=%2B14155550177",
            415,
            "unsupported_media_type",
        ),
        (
            "application/json",
            r#"{"to": "+14155550177""#,
            400,
            "malformed_json",
        ),
        (
            "application/json",
            r#"{"to": 14155550177}"#,
            422,
            "invalid_value",
        ),
        (
            "application/json",
            r#"{"number": "+14155550177"}"#,
            422,
            "invalid_value",
        ),
    ] {
        let resp = client
            .post(&url)
            .header("X-API-Key", API_KEY)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await
            .expect("transfer request");
        assert_eq!(resp.status(), status, "{content_type} {body}");
        let error: Value = resp.json().await.expect("error body");
        assert_eq!(error["error"]["code"], code, "{content_type} {body}");
        assert!(
            error["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{error}"
        );
    }
    assert!(o.updates(&sid).is_empty(), "no transfer was attempted");
    assert_eq!(o.h.running.services.active_calls().len(), 1);

    let resp = client
        .post(&url)
        .header("X-API-Key", API_KEY)
        .json(&json!({"to": "+1 (415) 555-0177"}))
        .send()
        .await
        .expect("transfer request");
    assert_eq!(resp.status(), 202);
    let answer: Value = resp.json().await.expect("transfer answer");
    assert_eq!(answer["to"], "+14155550177");
    let updates = o.updates(&sid);
    assert_eq!(updates.len(), 1, "{updates:?}");
    let twiml = updates[0].field("Twiml").expect("TwiML");
    assert!(
        twiml.contains("<Dial timeout=\"30\"><Number>+14155550177</Number></Dial>"),
        "{twiml}"
    );
    assert!(updates[0].status < 300, "Prism accepted the redirect");
    // Twilio leaves <Connect> for <Dial>: the stream stops.
    call.hang_up_now();
    let CallEvent::CallEnded { reason, failed, .. } = o.h.ended(&sid).await else {
        unreachable!()
    };
    assert_eq!(reason, "transferred to +14155550177");
    assert!(!failed);
    call.finish().await;
    o.h.running.services.store.flush().await.expect("flush");
    let record =
        o.h.running
            .services
            .store
            .call(&sid)
            .await
            .expect("library")
            .expect("call row");
    assert_eq!(
        record.end_reason.as_deref(),
        Some("transferred to +14155550177")
    );
    assert!(!record.failed);
}

#[tokio::test]
async fn twilio_reaches_the_app_through_its_public_url() {
    const PUBLIC: &str = "https://calls.example.test";
    let mut o = outbound(SimRealtimeConfig::default()).await;
    o.h.running
        .services
        .set_public_url(Some(PUBLIC))
        .expect("public URL");
    let (sid, create) = o.placed(json!({})).await;
    let twiml = create.field("Twiml").expect("inline TwiML").to_string();
    assert!(
        twiml.contains("<Stream url=\"wss://calls.example.test/media-stream\""),
        "{twiml}"
    );
    assert_eq!(
        create.field("StatusCallback"),
        Some("https://calls.example.test/twilio/status")
    );
    assert_eq!(
        create.field("AsyncAmdStatusCallback"),
        Some("https://calls.example.test/twilio/amd")
    );

    // Callbacks reach the local server through the tunnel, signed for the public URL.
    let status = [
        ("CallSid", sid.as_str()),
        ("AccountSid", common::ACCOUNT_SID),
        ("CallStatus", "ringing"),
        ("Direction", "outbound-api"),
    ];
    let local = post_signed_form(&o.h.base, "/twilio/status", &status).await;
    assert_eq!(local.status(), 403, "signed for the local URL");
    let public = common::post_form_signed_for(&o.h.base, PUBLIC, "/twilio/status", &status).await;
    assert_eq!(public.status(), 204, "signed for the public URL");
    let amd = [
        ("CallSid", sid.as_str()),
        ("AccountSid", common::ACCOUNT_SID),
        ("AnsweredBy", "human"),
    ];
    let local = post_signed_form(&o.h.base, "/twilio/amd", &amd).await;
    assert_eq!(local.status(), 403, "AMD signed for the local URL");

    // A media stream signed over the local address is refused before the upgrade.
    {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let local_ws = format!("{}/media-stream", o.h.base.replacen("http://", "ws://", 1));
        let mut request = local_ws.as_str().into_client_request().expect("request");
        let signature =
            verbio::telephony::twilio::signature::compute::<&str, &str>(AUTH_TOKEN, &local_ws, &[]);
        request.headers_mut().insert(
            "X-Twilio-Signature",
            signature.parse().expect("header value"),
        );
        match tokio_tungstenite::connect_async(request).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 403)
            }
            other => panic!(
                "a stream signed for the local URL was not refused: {:?}",
                other.map(|_| ())
            ),
        }
    }

    // The callee's stream, signed over wss://calls.example.test/media-stream, is accepted.
    let mut caller = o.h.caller(&sid);
    caller.public_url = PUBLIC.into();
    caller.from = FROM_NUMBER.into();
    caller.to = CALLEE.into();
    let call = SimCall::answer(caller, twiml, vec![CallerStep::Silence(15_000)])
        .await
        .expect("the callee's stream connects");
    common::eventually(Duration::from_secs(5), "stream is live", || {
        o.h.running
            .services
            .active_calls()
            .iter()
            .any(|c| c.call_sid == sid)
    })
    .await;
    let amd = common::post_form_signed_for(&o.h.base, PUBLIC, "/twilio/amd", &amd).await;
    assert_eq!(amd.status(), 200, "AMD signed for the public URL");
    call.hang_up_now();
    let CallEvent::CallEnded { failed, .. } = o.h.ended(&sid).await else {
        unreachable!()
    };
    assert!(!failed);
    call.finish().await;
}

#[tokio::test]
async fn voicemail_during_a_running_answer_waits_for_the_cancel_to_finish() {
    // The real service finishes `response.cancel` asynchronously and refuses a `response.create`
    // until then: the voicemail must be asked for after the cancelled response's `response.done`.
    let o = outbound(SimRealtimeConfig {
        script: vec![
            AgentTurn::with_tone("A long answer to the machine's greeting.", 600.0, 8000),
            AgentTurn::with_tone("Please call Verbio back.", 700.0, 1000),
        ],
        ..SimRealtimeConfig::default()
    })
    .await;
    let (sid, create) = o
        .placed(json!({
            "machine_policy": "voicemail",
            "voicemail_message": "Please call Verbio back.",
            "record": false,
        }))
        .await;
    let call = o
        .answer(
            &create,
            &sid,
            vec![
                CallerStep::Speak {
                    tone_hz: 400.0,
                    ms: 800,
                },
                CallerStep::Silence(15_000),
            ],
        )
        .await;
    o.stream_live().await;
    // The agent is answering the greeting (8 s of audio, streamed over 4 s) when the beep comes.
    call.wait_played(300, Duration::from_secs(10))
        .await
        .expect("the agent's answer is playing");
    assert_eq!(
        o.amd(&create, &sid, "machine_end_beep").await["action"],
        "voicemail"
    );
    let mut h = o.h;
    let CallEvent::CallEnded { reason, .. } = h.ended(&sid).await else {
        unreachable!()
    };
    assert_eq!(reason, "voicemail left");
    let report = call.finish().await;
    let s = &h.model.accepted_sessions()[0];
    assert_eq!(
        s.response_creates_refused, 0,
        "the voicemail was not sent while the cancelled answer was still active"
    );
    assert_eq!(s.responses[0].status, "cancelled");
    let last = s.responses.last().expect("responses");
    assert_eq!(last.status, "completed", "{:?}", s.responses);
    assert!(
        report.heard_ms >= 300 + 1000,
        "the voicemail played after the cut: {} ms heard",
        report.heard_ms
    );
    h.validate_client_events("outbound_voicemail_during_answer");
}

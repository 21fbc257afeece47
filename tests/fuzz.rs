//! Property tests: random Twilio frames, model events and API bodies never panic the parsers or the
//! server, and never get a 5xx.

mod common;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use serde_json::{json, Value};
use verbio::realtime::events::parse_server_event;
use verbio::telephony::twilio::media::{base64_decoded_len, parse};

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::from),
        prop_oneof![
            Just("media"),
            Just("start"),
            Just("mark"),
            Just("stop"),
            Just("dtmf"),
            Just("connected")
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("event".to_string()),
                    Just("type".to_string()),
                    Just("media".to_string()),
                    Just("payload".to_string()),
                    Just("start".to_string()),
                    Just("delta".to_string()),
                    Just("item_id".to_string()),
                    "[a-z_]{1,12}"
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn twilio_frames_never_panic(text in ".{0,300}", value in json_value()) {
        let _ = parse(&text);
        let _ = parse(&value.to_string());
        let _ = base64_decoded_len(&text);
        if let Ok(verbio::telephony::twilio::media::Inbound::Media { media }) = parse(&value.to_string()) {
            let _ = media.timestamp_ms();
            let _ = base64_decoded_len(&media.payload);
        }
    }

    #[test]
    fn model_events_never_panic(text in ".{0,300}", value in json_value()) {
        let _ = parse_server_event(&text);
        let _ = parse_server_event(&value.to_string());
    }
}

#[test]
fn api_bodies_never_panic_or_fail_the_server() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let h = common::start(
            verbio::sim::realtime_server::SimRealtimeConfig::default(),
            |c| {
                c.api_key = verbio::types::Secret::new("fuzz-key");
                c.api_rate_per_minute = 100_000;
            },
        )
        .await;
        let client = reqwest::Client::new();
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(200));
        let strategy = (json_value(), ".{0,200}");
        for _ in 0..200 {
            let (value, raw) = strategy.new_tree(&mut runner).expect("case").current();
            for body in [value.to_string(), raw] {
                let resp = client
                    .put(format!("{}/api/settings/session", h.api))
                    .header("X-API-Key", "fuzz-key")
                    .header("Content-Type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                    .expect("server answers");
                assert!(
                    resp.status().as_u16() < 500,
                    "{} for body {body:?}",
                    resp.status()
                );
                let form = client
                    .post(format!("{}/twiml", h.base))
                    .header("X-Twilio-Signature", "bogus")
                    .body(body)
                    .send()
                    .await
                    .expect("server answers");
                assert_eq!(form.status(), 403);
            }
        }
    });
}

//! Twilio signatures at the HTTP door: JSON bodies with `bodySHA256`, and shared-key HMAC-SHA256 signing.

mod common;

use common::{call_sid, start, ACCOUNT_SID, AUTH_TOKEN};
use sha2::{Digest, Sha256};
use verbio::sim::realtime_server::SimRealtimeConfig;
use verbio::telephony::twilio::signature::{compute, compute_with, Algorithm};
use verbio::types::Secret;

const SIGNING_KEY: &str = "shared-webhook-signing-key-0001";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_webhook_is_checked_against_its_body_hash() {
    let h = start(SimRealtimeConfig::default(), |_| {}).await;
    let body = serde_json::json!({"CallSid": call_sid(), "AccountSid": ACCOUNT_SID}).to_string();
    let url = format!(
        "{}/twiml?bodySHA256={}",
        h.base,
        hex(&Sha256::digest(body.as_bytes()))
    );
    let sig = compute(AUTH_TOKEN, &url, &[] as &[(&str, &str)]);
    let post = |body: String| {
        reqwest::Client::new()
            .post(&url)
            .header("Content-Type", "application/json")
            .header("X-Twilio-Signature", &sig)
            .body(body)
            .send()
    };
    let ok = post(body.clone()).await.expect("send");
    assert_eq!(ok.status(), 200);
    assert!(ok.text().await.expect("twiml").contains("<Connect><Stream"));
    let tampered = body.replace(ACCOUNT_SID, "AC-someone-else");
    assert_eq!(post(tampered).await.expect("send").status(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_key_sha256_signatures_use_the_signing_key() {
    let h = start(SimRealtimeConfig::default(), |c| {
        c.twilio_signing_key = Secret::new(SIGNING_KEY)
    })
    .await;
    let url = format!("{}/twiml", h.base);
    let sid = call_sid();
    let params = [("AccountSid", ACCOUNT_SID), ("CallSid", sid.as_str())];
    let post = |key: &str| {
        let sig = compute_with(Algorithm::HmacSha256, key, &url, &params);
        reqwest::Client::new()
            .post(&url)
            .header("X-Twilio-Signature", sig)
            .header(
                "X-Twilio-Webhooks-Signature-Settings",
                "key=main,algorithm=HMAC_SHA256",
            )
            .form(&params)
            .send()
    };
    assert_eq!(post(SIGNING_KEY).await.expect("send").status(), 200);
    assert_eq!(
        post(AUTH_TOKEN).await.expect("send").status(),
        403,
        "the auth token is not the signing key"
    );
    assert!(h.model.accepted_sessions().is_empty());
}

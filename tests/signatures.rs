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

/// Every URL the app hands Twilio (built by `WebhookUrls` from the live public URL) reaches a route
/// of the router, with the method Twilio uses, and is checked against the signature Twilio makes
/// over that very URL: unsigned is 403; signed but empty is a 400 naming the missing parameter
/// (so the request got through the signature check to its parser); the media stream upgrades.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_webhook_url_the_app_hands_out_is_routed_and_checked_against_itself() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use verbio::telephony::twilio::webhooks::WebhookUrls;

    let h = start(SimRealtimeConfig::default(), |_| {}).await;
    let public = "https://pub.example/";
    h.running
        .services
        .set_public_url(Some(public))
        .expect("public URL");
    let urls = WebhookUrls::new(public);
    let client = reqwest::Client::new();
    for (url, missing) in [
        (urls.voice(), "CallSid"),
        (urls.status_callback(), "CallSid"),
        (urls.amd_callback(), "CallSid"),
        (urls.recording_status_callback(), "CallSid"),
    ] {
        assert!(url.starts_with("https://pub.example/"), "{url}");
        let local = format!("{}{}", h.base, common::path_of(&url));
        let unsigned = client.post(&local).form(&[("x", "1")]).send().await;
        assert_eq!(unsigned.expect("post").status(), 403, "{url} unsigned");
        let empty: [(&str, &str); 0] = [];
        let signed = client
            .post(&local)
            .header("X-Twilio-Signature", compute(AUTH_TOKEN, &url, &empty))
            .form(&empty)
            .send()
            .await
            .expect("post");
        assert_eq!(signed.status(), 400, "{url} signed but empty");
        let message = signed.text().await.expect("body");
        assert_eq!(message, format!("{missing} is required"), "{url}");
    }

    let stream = urls.media_stream();
    assert_eq!(stream, "wss://pub.example/media-stream");
    let local = format!(
        "{}{}",
        h.base.replace("http://", "ws://"),
        common::path_of(&stream)
    );
    let unsigned = tokio_tungstenite::connect_async(local.as_str()).await;
    assert!(
        matches!(&unsigned, Err(tokio_tungstenite::tungstenite::Error::Http(r)) if r.status() == 403),
        "unsigned stream: {unsigned:?}"
    );
    let mut request = local.as_str().into_client_request().expect("request");
    let sig = compute(AUTH_TOKEN, &stream, &[] as &[(&str, &str)]);
    request
        .headers_mut()
        .insert("X-Twilio-Signature", sig.parse().expect("header"));
    let (socket, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("a stream signed over the URL the app hands out is accepted");
    assert_eq!(response.status(), 101);
    drop(socket);
}

/// Without a public URL, `X-Forwarded-Host`/`-Proto` would let whoever sends the request choose the URL
/// a signature is checked against (a Twilio-signed request of the same account, made for another URL,
/// replayed here). They count only when the user says the proxy in front is trusted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signature_for_a_spoofed_forwarded_host_counts_only_behind_a_trusted_proxy() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    const SPOOFED: &str = "https://elsewhere.example";
    let post = |base: String, path: &'static str, signed_for: String| {
        let sid = call_sid();
        async move {
            let params = [("AccountSid", ACCOUNT_SID), ("CallSid", sid.as_str())];
            let sig = compute(AUTH_TOKEN, &format!("{signed_for}{path}"), &params);
            reqwest::Client::new()
                .post(format!("{base}{path}"))
                .header("X-Twilio-Signature", sig)
                .header("X-Forwarded-Proto", "https")
                .header("X-Forwarded-Host", "elsewhere.example")
                .form(&params)
                .send()
                .await
                .expect("post")
                .status()
        }
    };
    let upgrade = |base: &str, signed_for: &str| {
        let mut request = format!("{}/media-stream", base.replace("http://", "ws://"))
            .into_client_request()
            .expect("request");
        let sig = compute(
            AUTH_TOKEN,
            &format!(
                "{}/media-stream",
                signed_for
                    .replace("https://", "wss://")
                    .replace("http://", "ws://")
            ),
            &[] as &[(&str, &str)],
        );
        let headers = request.headers_mut();
        headers.insert("X-Twilio-Signature", sig.parse().expect("header"));
        headers.insert("X-Forwarded-Proto", "https".parse().expect("header"));
        headers.insert(
            "X-Forwarded-Host",
            "elsewhere.example".parse().expect("header"),
        );
        tokio_tungstenite::connect_async(request)
    };

    // Not trusted (the default): the request's own Host and scheme are what Twilio must have signed.
    let h = start(SimRealtimeConfig::default(), |_| {}).await;
    for path in [
        "/twiml",
        "/twilio/status",
        "/twilio/amd",
        "/twilio/recording-status",
    ] {
        assert_eq!(
            post(h.base.clone(), path, SPOOFED.into()).await,
            403,
            "{path} signed for the spoofed forwarded host"
        );
    }
    assert_eq!(
        post(h.base.clone(), "/twiml", h.base.clone()).await,
        200,
        "signed for the address it came to: the forwarded headers are ignored"
    );
    let refused = upgrade(&h.base, SPOOFED).await;
    assert!(
        matches!(&refused, Err(tokio_tungstenite::tungstenite::Error::Http(r)) if r.status() == 403),
        "stream signed for the spoofed host: {refused:?}"
    );

    // Trusted: the forwarded URL is the one Twilio signed, and only it.
    let trusted = start(SimRealtimeConfig::default(), |c| c.trust_forwarded = true).await;
    assert_eq!(
        post(trusted.base.clone(), "/twiml", SPOOFED.into()).await,
        200,
        "signed for the forwarded URL, behind a trusted proxy"
    );
    assert_eq!(
        post(trusted.base.clone(), "/twiml", trusted.base.clone()).await,
        403,
        "behind a trusted proxy the local address is not what Twilio signed"
    );
    let (socket, _) = upgrade(&trusted.base, SPOOFED)
        .await
        .expect("a stream signed for the forwarded URL is accepted behind a trusted proxy");
    drop(socket);
    assert!(h.model.accepted_sessions().is_empty());
}

//! Twilio's doors: the voice webhook (`POST /twiml`), the Media Streams socket (`GET /media-stream`)
//! and the status, AMD and recording-status callbacks, at the paths
//! [`crate::telephony::twilio::webhooks`] hands out.
//!
//! Every request is checked with `X-Twilio-Signature` against the public URL Twilio used before
//! anything else happens; a webhook's parameters are then read by `telephony::twilio::callbacks`
//! (the `Webhook` extractor does both), and the handler only calls a service. The stream
//! additionally needs the one-time token `/twiml` handed out for its call.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tracing::{debug, info, warn};

use crate::calls::admission;
use crate::calls::bridge;
use crate::calls::registry::Admission;
use crate::events::{CallCap, CallEvent};
use crate::server::limits::Refusal;
use crate::server::media_upgrade::MediaUpgrade;
use crate::server::public_url::SignedBase;
use crate::services::Services;
use crate::telephony::twilio::callbacks::{AmdCallback, FromForm, StatusCallback, VoiceWebhook};
use crate::telephony::twilio::form::{Form, FormError};
use crate::telephony::twilio::signature;
use crate::telephony::twilio::twiml;
use crate::telephony::twilio::webhooks::{
    AMD_CALLBACK_PATH, MEDIA_STREAM_PATH, RECORDING_STATUS_PATH, STATUS_CALLBACK_PATH, VOICE_PATH,
};
use crate::types::now_ms;
use crate::wire::ws::Limits;

/// Twilio's webhooks are small forms; anything larger is not Twilio.
const WEBHOOK_BODY_LIMIT: usize = 64 * 1024;

/// The largest frame or message read on a media stream, from the first frame (before the call's token
/// is seen). Twilio's largest message is `start` (a few KiB with custom parameters) and a media frame is
/// about 400 bytes, so 128 KiB leaves a wide margin; up to it, a malformed message is logged and ignored
/// (the call goes on), beyond it the socket is closed (1009) as soon as the frame header announces it,
/// so no socket makes the server reserve more (tungstenite's default would be 16 MiB per frame).
const MEDIA_MESSAGE_LIMIT: usize = 128 * 1024;

/// Twilio's routes, at the paths [`crate::telephony::twilio::webhooks::WebhookUrls`] hands out.
pub fn routes() -> Router<Arc<Services>> {
    Router::new()
        .route(VOICE_PATH, post(voice_webhook))
        .route(MEDIA_STREAM_PATH, get(media_stream))
        .route(STATUS_CALLBACK_PATH, post(status_callback))
        .route(AMD_CALLBACK_PATH, post(amd_callback))
        .route(
            RECORDING_STATUS_PATH,
            post(crate::server::twilio_recordings::recording_status),
        )
        .layer(DefaultBodyLimit::max(WEBHOOK_BODY_LIMIT))
}

/// A refused signature, marked so the limiter counts it as untrusted and the log rate-limits it.
fn forbidden(reason: &'static str) -> Response {
    Refusal::Signature(reason).mark(
        crate::server::errors::ApiError::new(StatusCode::FORBIDDEN, "forbidden", reason)
            .into_response(),
    )
}

/// The 400 for a webhook whose parameters cannot be used (the error names the parameter).
fn bad_request(e: FormError) -> Response {
    (StatusCode::BAD_REQUEST, e.to_string()).into_response()
}

/// What Twilio signed: form parameters, or (for JSON bodies) the body, whose hash is in the URL.
enum Signed<'a> {
    Form(&'a [(String, String)]),
    Json(&'a [u8]),
}

/// Checks `X-Twilio-Signature` against the public `url`. HMAC-SHA1 with the auth token, or HMAC-SHA256
/// with the webhook signing key when `X-Twilio-Webhooks-Signature-Settings` announces it.
/// Refusals are logged without the signature, token or key: here at debug level, one line each; at
/// info, by the request log, rate-limited (`limits::RefusalLog`).
fn check_signature(
    services: &Services,
    headers: &HeaderMap,
    url: &str,
    signed: Signed<'_>,
    what: &str,
) -> Result<(), &'static str> {
    let algorithm = signature::Algorithm::from_headers(headers);
    let key = match algorithm {
        signature::Algorithm::HmacSha256 => &services.config.twilio_signing_key,
        signature::Algorithm::HmacSha1 => &services.config.twilio_auth_token,
    };
    if key.is_empty() {
        debug!(%what, ?algorithm, "refused: no key configured to check this Twilio signature");
        return Err("Twilio signature cannot be checked: no key configured");
    }
    let Some(sig) = headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
    else {
        debug!(%what, "refused: missing X-Twilio-Signature");
        return Err("missing X-Twilio-Signature");
    };
    let (form_params, json_body) = match signed {
        Signed::Form(params) => (params, None),
        Signed::Json(body) => (&[][..], Some(body)),
    };
    let request = signature::SignedRequest {
        url,
        form_params,
        json_body,
        signature: sig,
        algorithm,
    };
    signature::verify(key.expose(), &request).map_err(|e| {
        debug!(%what, reason = %e, "refused: bad Twilio signature");
        "invalid X-Twilio-Signature"
    })
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// A Twilio webhook, extracted: its signature checked against the live public URL, then its
/// parameters read into `T`. Refused with 403 (signature) or 400 (naming the parameter), so handlers
/// only get what they can act on.
pub(super) struct Webhook<T>(pub T);

impl<T: FromForm> FromRequest<Arc<Services>> for Webhook<T> {
    type Rejection = Response;

    async fn from_request(req: Request, services: &Arc<Services>) -> Result<Self, Response> {
        let (parts, body) = req.into_parts();
        // Within `WEBHOOK_BODY_LIMIT` (the router's layer).
        let body = Bytes::from_request(Request::from_parts(parts.clone(), body), services)
            .await
            .map_err(IntoResponse::into_response)?;
        let form = signed_form(services, &parts.headers, &parts.uri, &body, T::WHAT)
            .map_err(|refusal| *refusal)?;
        T::from_form(&form).map(Webhook).map_err(bad_request)
    }
}

/// A webhook's parameters once its signature has been checked. Twilio's webhooks are forms; a
/// signed JSON body is accepted for its string fields.
fn signed_form(
    services: &Services,
    headers: &HeaderMap,
    uri: &Uri,
    body: &[u8],
    what: &str,
) -> Result<Form, Box<Response>> {
    let url = SignedBase::of(services, headers).webhook_url(uri);
    if is_json(headers) {
        check_signature(services, headers, &url, Signed::Json(body), what)
            .map_err(|reason| Box::new(forbidden(reason)))?;
        Form::from_json(body).map_err(|e| Box::new(bad_request(e)))
    } else {
        let form = Form::parse(body);
        check_signature(services, headers, &url, Signed::Form(form.pairs()), what)
            .map_err(|reason| Box::new(forbidden(reason)))?;
        Ok(form)
    }
}

/// Twilio's call status callback (`StatusCallback`): the call's progress into the library and the bus.
async fn status_callback(
    State(services): State<Arc<Services>>,
    Webhook(report): Webhook<StatusCallback>,
) -> Response {
    services.outbound.on_call_status(report);
    StatusCode::NO_CONTENT.into_response()
}

/// Asynchronous answering-machine detection (`AsyncAmdStatusCallback`): `AnsweredBy` for a call the
/// app placed, and the call's machine policy applied.
async fn amd_callback(
    State(services): State<Arc<Services>>,
    Webhook(verdict): Webhook<AmdCallback>,
) -> Response {
    let action = services
        .outbound
        .on_machine_detection(&verdict.call_sid, verdict.answered_by)
        .await;
    (
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({"action": action.as_str()}).to_string(),
    )
        .into_response()
}

/// Twilio's voice webhook: answers with `<Connect><Stream>` and a one-time token bound to the CallSid,
/// if [`admission`] lets the call stream. Every answer is TwiML, so a real caller never hears Twilio's
/// "application error": a replay (the call already streamed or was refused) gets a bare `<Hangup/>`
/// and mints nothing; a call over a cap hears why, then is hung up, and the refusal is an event.
async fn voice_webhook(
    State(services): State<Arc<Services>>,
    headers: HeaderMap,
    Webhook(call): Webhook<VoiceWebhook>,
) -> Response {
    let admitted = admission::admit(
        &services.registry,
        &services.store,
        &services.bridge.settings,
        &services.bridge.costs,
        &call.call_sid,
        call.from.clone(),
        call.to.clone(),
    )
    .await;
    let cap = match admitted {
        Admission::Stream(token) => {
            let urls = SignedBase::of(&services, &headers).webhook_urls();
            info!(call_sid = %call.call_sid, "voice webhook answered with a media stream");
            return twiml_response(twiml::Response::new().connect_stream(twiml::Stream {
                url: urls.media_stream(),
                parameters: vec![("token".into(), token)],
                status_callback: None,
                status_callback_method: None,
            }));
        }
        Admission::Replayed => {
            warn!(call_sid = %call.call_sid, "voice webhook for a call already answered: no stream (a replay?)");
            return twiml_response(twiml::Response::new().hangup());
        }
        Admission::Busy => CallCap::ConcurrentCalls,
        Admission::OverBudget => CallCap::DailyMinutes,
        Admission::MoneySpent => CallCap::DailyBudget,
    };
    let message = admission::refusal_message(cap);
    warn!(call_sid = %call.call_sid, cap = cap.as_str(), "call refused to protect the bill");
    services.bridge.emit(CallEvent::CallCapped {
        call_sid: call.call_sid,
        cap,
        message: message.into(),
        from: call.from,
        to: call.to,
        at_ms: now_ms(),
    });
    twiml_response(
        twiml::Response::new()
            .say(message, twiml::SayOptions::default())
            .hangup(),
    )
}

fn twiml_response(response: twiml::Response) -> Response {
    (
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        response.to_xml(),
    )
        .into_response()
}

/// The Media Streams socket. Signature first; the token is checked against `start.callSid` by the bridge.
async fn media_stream(
    State(services): State<Arc<Services>>,
    headers: HeaderMap,
    uri: Uri,
    upgrade: MediaUpgrade,
) -> Response {
    let base = SignedBase::of(&services, &headers);
    let url = base.websocket_url(&uri);
    if let Err(reason) =
        check_signature(&services, &headers, &url, Signed::Form(&[]), "media stream")
    {
        return forbidden(reason);
    }
    let deps = services.bridge.clone();
    let public_base = base.as_str().to_string();
    let limits = Limits {
        max_message: MEDIA_MESSAGE_LIMIT,
        max_frame: MEDIA_MESSAGE_LIMIT,
    };
    upgrade.on_upgrade(limits, move |socket| {
        bridge::handle_media_socket(deps, socket, public_base)
    })
}

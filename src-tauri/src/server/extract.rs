//! `/api`'s extractors: axum's `Json`, `Path` and `Query` whose rejections are [`ApiError`]s, so a
//! handler takes its inputs already checked and a bad request is answered in the API's own shape.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::server::errors::ApiError;

/// A JSON body (`Content-Type: application/json`).
#[derive(Debug, FromRequest)]
#[from_request(via(Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// Path parameters.
#[derive(Debug, FromRequestParts)]
#[from_request(via(Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// Query parameters.
#[derive(Debug, FromRequestParts)]
#[from_request(via(Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// A body that may be left out: empty (or only whitespace) is `None`; one that is there must be JSON
/// of the right shape, so a malformed body fails instead of being read as "nothing asked".
#[derive(Debug)]
pub struct OptionalApiJson<T>(pub Option<T>);

impl<S, T> FromRequest<S> for OptionalApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let json = is_json(request.headers());
        let body = Bytes::from_request(request, state)
            .await
            .map_err(bytes_rejection)?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalApiJson(None));
        }
        if !json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Expected request with `Content-Type: application/json`",
            ));
        }
        let Json(value) = Json::<T>::from_bytes(&body)?;
        Ok(OptionalApiJson(Some(value)))
    }
}

fn bytes_rejection(r: BytesRejection) -> ApiError {
    let status = r.status();
    let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
        "body_too_large"
    } else {
        "bad_request"
    };
    ApiError::new(status, code, r.body_text())
}

/// `Content-Type: application/json` (parameters allowed) or a `+json` type, as axum's `Json` checks.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// A recording's id in a path: a positive number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct RecordingId(pub i64);

impl TryFrom<String> for RecordingId {
    type Error = &'static str;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value
            .parse::<i64>()
            .ok()
            .filter(|n| *n > 0)
            .map(RecordingId)
            .ok_or("recording ids are positive numbers")
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use axum::body::Body;
    use axum::routing::{get, post};
    use axum::Router;
    use serde_json::Value;
    use tower::ServiceExt;

    use super::*;
    use crate::types::CallSid;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body1 {
        n: u32,
    }

    async fn sid(ApiPath(sid): ApiPath<CallSid>) -> String {
        sid.to_string()
    }

    async fn recording(ApiPath(RecordingId(id)): ApiPath<RecordingId>) -> String {
        id.to_string()
    }

    async fn query(ApiQuery(q): ApiQuery<HashMap<String, u32>>) -> String {
        format!("{q:?}")
    }

    async fn json(ApiJson(b): ApiJson<Body1>) -> String {
        b.n.to_string()
    }

    async fn optional(OptionalApiJson(b): OptionalApiJson<Body1>) -> String {
        format!("{:?}", b.map(|b| b.n))
    }

    fn app() -> Router {
        Router::new()
            .route("/call/{sid}", get(sid))
            .route("/recording/{id}", get(recording))
            .route("/query", get(query))
            .route("/json", post(json))
            .route("/optional", post(optional))
    }

    async fn send(request: axum::http::Request<Body>) -> (StatusCode, String) {
        let response = app().oneshot(request).await.expect("infallible");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    fn get_req(uri: &str) -> axum::http::Request<Body> {
        axum::http::Request::get(uri)
            .body(Body::empty())
            .expect("request")
    }

    fn post_req(uri: &str, content_type: Option<&str>, body: &str) -> axum::http::Request<Body> {
        let mut request = axum::http::Request::post(uri);
        if let Some(ct) = content_type {
            request = request.header(header::CONTENT_TYPE, ct);
        }
        request.body(Body::from(body.to_string())).expect("request")
    }

    /// The API's error shape, nothing more: `(code, message)`.
    fn error_of(body: &str) -> (String, String) {
        let v: Value = serde_json::from_str(body).expect("a JSON error body");
        let object = v.as_object().expect("an object");
        assert_eq!(object.len(), 1, "only `error`: {body}");
        let error = v["error"].as_object().expect("error object");
        assert_eq!(error.len(), 2, "only code and message: {body}");
        let code = error["code"].as_str().expect("code").to_string();
        let message = error["message"].as_str().expect("message").to_string();
        (code, message)
    }

    #[tokio::test]
    async fn a_bad_call_sid_is_a_bad_path() {
        assert_eq!(
            send(get_req("/call/CA-1_x")).await,
            (StatusCode::OK, "CA-1_x".into())
        );
        let (status, body) = send(get_req("/call/CA%2F1")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            error_of(&body),
            (
                "bad_path".into(),
                "call SIDs are 1 to 64 letters, digits, - or _".into()
            )
        );
    }

    #[tokio::test]
    async fn a_bad_recording_id_is_a_bad_path() {
        assert_eq!(
            send(get_req("/recording/7")).await,
            (StatusCode::OK, "7".into())
        );
        for bad in ["0", "-3", "abc", "CA123"] {
            let (status, body) = send(get_req(&format!("/recording/{bad}"))).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
            assert_eq!(
                error_of(&body),
                (
                    "bad_path".into(),
                    "recording ids are positive numbers".into()
                )
            );
        }
    }

    #[tokio::test]
    async fn a_bad_query_is_a_bad_query() {
        assert_eq!(send(get_req("/query?a=1")).await.0, StatusCode::OK);
        let (status, body) = send(get_req("/query?a=x")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(error_of(&body).0, "bad_query");
    }

    #[tokio::test]
    async fn json_rejections_keep_their_codes() {
        let json = Some("application/json");
        assert_eq!(
            send(post_req("/json", json, r#"{"n":3}"#)).await,
            (StatusCode::OK, "3".into())
        );
        for (content_type, body, status, code) in [
            (json, "{nope", StatusCode::BAD_REQUEST, "malformed_json"),
            (
                json,
                r#"{"n":"x"}"#,
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_value",
            ),
            (
                json,
                r#"{"n":1,"m":2}"#,
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_value",
            ),
            (
                None,
                r#"{"n":3}"#,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
            ),
            (
                Some("text/plain"),
                r#"{"n":3}"#,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
            ),
        ] {
            let (got, text) = send(post_req("/json", content_type, body)).await;
            assert_eq!((got, error_of(&text).0.as_str()), (status, code), "{body}");
        }
    }

    #[tokio::test]
    async fn an_optional_body_may_be_empty_but_not_wrong() {
        let json = Some("application/json");
        assert_eq!(
            send(post_req("/optional", None, "")).await,
            (StatusCode::OK, "None".into())
        );
        assert_eq!(
            send(post_req("/optional", json, " \n")).await,
            (StatusCode::OK, "None".into())
        );
        assert_eq!(
            send(post_req(
                "/optional",
                Some("application/merge-patch+json"),
                r#"{"n":4}"#
            ))
            .await,
            (StatusCode::OK, "Some(4)".into())
        );
        for (content_type, body, status, code) in [
            (
                None,
                r#"{"n":3}"#,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
            ),
            (json, "{nope", StatusCode::BAD_REQUEST, "malformed_json"),
            (
                json,
                r#"{"m":1}"#,
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_value",
            ),
        ] {
            let (got, text) = send(post_req("/optional", content_type, body)).await;
            assert_eq!((got, error_of(&text).0.as_str()), (status, code), "{body}");
        }
    }
}

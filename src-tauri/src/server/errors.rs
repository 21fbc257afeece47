//! The local API's error shape: `{"error": {"code", "message"}}` with the matching HTTP status. Service
//! failures go through the services' one table ([`ServiceError::kind`]), the same the desktop's commands
//! use; the codes here are the HTTP door's own (a request that is not well formed).

use axum::extract::path::ErrorKind as PathErrorKind;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::recording::LibraryError;
use crate::services::{ErrorBody, ServiceError};

/// What an `/api` handler returns.
pub type ApiResult<T> = Result<Json<T>, ApiError>;

/// An error `/api` answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// A request that did not match what the route takes (its path, query or body).
    fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            code: self.code,
            message: self.message,
        };
        (self.status, Json(serde_json::json!({ "error": body }))).into_response()
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        let ErrorBody { code, message } = e.body();
        ApiError::new(e.kind().status(), code, message)
    }
}

impl From<LibraryError> for ApiError {
    fn from(e: LibraryError) -> Self {
        ServiceError::from(e).into()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let (status, code) = match &r {
            JsonRejection::JsonSyntaxError(_) => (StatusCode::BAD_REQUEST, "malformed_json"),
            JsonRejection::JsonDataError(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_value"),
            JsonRejection::MissingJsonContentType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            _ if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large")
            }
            _ => (StatusCode::BAD_REQUEST, "bad_request"),
        };
        ApiError::new(status, code, r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::bad_request("bad_query", r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        // A path type's own message (e.g. what a call SID looks like) says it best on its own.
        let message = match &r {
            PathRejection::FailedToDeserializePathParams(e) => match e.kind() {
                PathErrorKind::Message(m) | PathErrorKind::DeserializeError { message: m, .. } => {
                    m.clone()
                }
                _ => r.body_text(),
            },
            _ => r.body_text(),
        };
        ApiError::bad_request("bad_path", message)
    }
}

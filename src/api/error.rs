//! Maps every module's error to an HTTP status and a JSON body `{"error": "…"}`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use crate::chain::eth2::request::RequestError;
use crate::keys::BackendError;
use crate::protection::ProtectionError;

/// An error answered to an HTTP client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: malformed request.
    #[error(transparent)]
    BadRequest(#[from] RequestError),
    /// 400: anything else the client got wrong (message given).
    #[error("{0}")]
    Invalid(String),
    /// 401: no bearer token (Keymanager API).
    #[error("{0}")]
    Unauthorized(String),
    /// 403: not allowed for this client.
    #[error("{0}")]
    Forbidden(String),
    /// 404: no key for the identifier.
    #[error("no key for identifier {0}")]
    UnknownKey(String),
    /// 413: body over the limit.
    #[error("request body is larger than {0} bytes")]
    TooLarge(usize),
    /// 412 / 503 / 400 from slashing protection.
    #[error(transparent)]
    Protection(#[from] ProtectionError),
    /// 500: the signing backend failed.
    #[error(transparent)]
    Sign(#[from] BackendError),
    /// 503: the signing backend did not answer within its timeout (milliseconds).
    #[error("signing backend did not answer within {0} ms")]
    BackendTimeout(u128),
    /// 500: an internal fault.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<super::BodyError> for ApiError {
    fn from(e: super::BodyError) -> Self {
        match e {
            super::BodyError::TooLarge(n) => ApiError::TooLarge(n),
            super::BodyError::Read(m) => {
                ApiError::Invalid(format!("cannot read request body: {m}"))
            }
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) | ApiError::Invalid(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::UnknownKey(_) => StatusCode::NOT_FOUND,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Protection(p) => protection_status(p),
            ApiError::BackendTimeout(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Sign(_) | ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code())
            .json(serde_json::json!({ "error": self.to_string() }))
    }
}

/// The HTTP status of a protection error, by [`ProtectionError::outcome`] (the one place that
/// classifies them).
pub fn protection_status(e: &ProtectionError) -> StatusCode {
    StatusCode::from_u16(e.outcome().status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// JSON error for actix's own extractor failures (bad path, bad JSON config), so that no
/// error leaves as plain text.
pub fn json_error(status: StatusCode, message: impl Into<String>) -> HttpResponse {
    HttpResponse::build(status).json(serde_json::json!({ "error": message.into() }))
}

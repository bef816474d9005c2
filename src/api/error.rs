//! The HTTP layer's error: every failure is `{"error": {"code", "message"}}`
//! ([`ErrorBody`]) with the matching status; a request shed under load (503
//! `overloaded`) also carries `Retry-After`. The reusable responses below
//! are how the OpenAPI document names them (`openapi.rs`).

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

/// What a shed request is told to wait before it asks again.
pub(super) const RETRY_AFTER_SECONDS: &str = "1";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    /// A body that is not `application/json`.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Well-formed but invalid input; the message names the field.
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    NotReady(String),
    /// More requests at once than `api.max_concurrent`: 503 with `Retry-After`.
    #[error("{0}")]
    Overloaded(String),
    #[error("internal error: {0}")]
    Internal(String),
}

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ErrorBody {
    pub(super) error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ErrorDetail {
    pub(super) code: ErrorCode,
    /// For people: names the field or the id at fault; its wording may change.
    pub(super) message: String,
}

/// What went wrong, for programs: one code per status, except 503, which
/// is `not_ready` (not ready yet, or the store cannot answer) or
/// `overloaded` (shed under load; ask again after `Retry-After`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum ErrorCode {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    Conflict,
    TooLarge,
    UnsupportedMediaType,
    Invalid,
    NotReady,
    Overloaded,
    Internal,
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, ErrorCode) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, ErrorCode::BadRequest),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, ErrorCode::Forbidden),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, ErrorCode::NotFound),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, ErrorCode::Conflict),
            ApiError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::TooLarge),
            ApiError::UnsupportedMediaType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::UnsupportedMediaType,
            ),
            ApiError::Unprocessable(_) => (StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::Invalid),
            ApiError::NotReady(_) => (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::NotReady),
            ApiError::Overloaded(_) => (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Overloaded),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let body = ErrorBody {
            error: ErrorDetail {
                code,
                message: self.to_string(),
            },
        };
        if let ApiError::Overloaded(_) = self {
            // Whole seconds (RFC 9110 §10.2.3): a second is long against the
            // time a request takes, short against a person's patience.
            return (
                status,
                [(header::RETRY_AFTER, RETRY_AFTER_SECONDS)],
                Json(body),
            )
                .into_response();
        }
        (status, Json(body)).into_response()
    }
}

impl From<QueryRejection> for ApiError {
    fn from(e: QueryRejection) -> Self {
        ApiError::BadRequest(e.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(e: PathRejection) -> Self {
        ApiError::BadRequest(e.body_text())
    }
}

pub(super) use responses::*;

/// The error answers as the OpenAPI document names them, one per status; each
/// operation lists those it can give. Never built: `ApiError` makes the
/// answers, these only describe them.
#[allow(dead_code)]
mod responses {
    use utoipa::ToResponse;

    /// `bad_request`: a query parameter that is unknown or out of range, an
    /// unknown district or cabinet as a filter, a malformed time, an id that is
    /// not UTF-8, or a body that is not one JSON document.
    #[derive(ToResponse)]
    pub(in crate::api) struct BadRequest(#[to_schema] super::ErrorBody);

    /// `unauthorized`: no `Authorization: Bearer` header, another scheme, or an
    /// unknown token.
    #[derive(ToResponse)]
    pub(in crate::api) struct Unauthorized(#[to_schema] super::ErrorBody);

    /// `forbidden`: the token's role may not do this.
    #[derive(ToResponse)]
    pub(in crate::api) struct Forbidden(#[to_schema] super::ErrorBody);

    /// `not_found`: no such id, or one of another district to a district token.
    #[derive(ToResponse)]
    pub(in crate::api) struct NotFound(#[to_schema] super::ErrorBody);

    /// `conflict`: the gateway cannot do it in the state it is in (a reload
    /// without a settings file), or the settings file owns it (a group of
    /// `[[control.groups]]`).
    #[derive(ToResponse)]
    pub(in crate::api) struct Conflict(#[to_schema] super::ErrorBody);

    /// `internal`: the change could not be kept on disk (the message names
    /// the file), so it was not made.
    #[derive(ToResponse)]
    pub(in crate::api) struct Internal(#[to_schema] super::ErrorBody);

    /// `too_large`: a body over 2 MB.
    #[derive(ToResponse)]
    pub(in crate::api) struct TooLarge(#[to_schema] super::ErrorBody);

    /// `unsupported_media_type`: a body not sent as `application/json` (or a
    /// `+json` type).
    #[derive(ToResponse)]
    pub(in crate::api) struct UnsupportedMediaType(#[to_schema] super::ErrorBody);

    /// `invalid`: well-formed but invalid input; the message names the field.
    #[derive(ToResponse)]
    pub(in crate::api) struct Invalid(#[to_schema] super::ErrorBody);

    /// `overloaded`: `api.max_concurrent` requests are being answered already;
    /// ask again after `Retry-After` seconds. `not_ready`: the store is not
    /// configured or cannot answer now (routes that read it).
    #[derive(ToResponse)]
    #[response(headers(
        ("Retry-After" = u32, description = "With `overloaded`: seconds to wait before asking again")
    ))]
    pub(in crate::api) struct Unavailable(#[to_schema] super::ErrorBody);
}

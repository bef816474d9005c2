//! The TALQ layer's error: every failure is the array of `TALQErrorMessage`
//! the specification gives each error response (`[{key, description}]`),
//! with the key it recommends for the case, so a CMS can act on it.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum TalqError {
    /// The `talq-api-version` header (or another) is absent.
    #[error("{0}")]
    HeaderMissing(String),
    #[error("{0}")]
    HeaderValueNotValid(String),
    /// A required query parameter (`clientAddress`, `talqRequestId`) is absent.
    #[error("{0}")]
    ParameterMissing(String),
    #[error("{0}")]
    ParameterValueNotValid(String),
    /// A body that is not the JSON the specification defines.
    #[error("{0}")]
    Payload(String),
    #[error("{0}")]
    NotFound(String),
    /// No or an unknown token, or one the `[talq] cms_tokens` do not list.
    #[error("{0}")]
    Unauthorized(String),
    /// The token's role may not do this (a viewer's override).
    #[error("{0}")]
    Forbidden(String),
    /// An override the actuator cannot carry out.
    #[error("{0}")]
    OverrideNotValid(String),
    /// An override addressed to something without a lamp actuator.
    #[error("{0}")]
    OverrideAddressNotValid(String),
    /// A write to an attribute the gateway keeps read-only.
    #[error("{0}")]
    ReadOnly(String),
    /// A calendar or program that exists already (`POST`).
    #[error("{0}")]
    Conflict(String),
    /// Well-formed TALQ the book refuses (the message names the field).
    #[error("{0}")]
    Invalid(String),
    /// A program a calendar names, or a calendar an assign names, that is
    /// not here.
    #[error("{0}")]
    RelatedNotFound(String),
    /// A calendar an assignment names, or a program a calendar names,
    /// asked to be deleted.
    #[error("{0}")]
    Referred(String),
    /// A TALQ feature beyond what `ControlService` advertises.
    #[error("{0}")]
    Unsupported(String),
    /// An assign of something other than a calendar, or of a calendar
    /// whose programs TALQ cannot express.
    #[error("{0}")]
    AssignmentEntityNotValid(String),
    /// An assign to something without a lamp actuator.
    #[error("{0}")]
    AssignmentAddressNotValid(String),
    /// A TALQ method this gateway does not serve (commissioning).
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    Internal(String),
}

/// One `TALQErrorMessage`.
#[derive(Debug, Serialize)]
struct Message {
    key: &'static str,
    description: String,
}

impl TalqError {
    fn status_and_key(&self) -> (StatusCode, &'static str) {
        use TalqError::*;
        match self {
            HeaderMissing(_) => (StatusCode::BAD_REQUEST, "headerMissing"),
            HeaderValueNotValid(_) => (StatusCode::BAD_REQUEST, "headerValueNotValid"),
            ParameterMissing(_) => (StatusCode::BAD_REQUEST, "parameterMissing"),
            ParameterValueNotValid(_) => (StatusCode::BAD_REQUEST, "parameterValueNotValid"),
            Payload(_) => (StatusCode::BAD_REQUEST, "payloadError"),
            NotFound(_) => (StatusCode::NOT_FOUND, "resourceNotFound"),
            // Authentication is outside the TALQ document (TLS and the
            // token are the deployment's); the key is its fallback.
            Unauthorized(_) => (StatusCode::UNAUTHORIZED, "genericError"),
            Forbidden(_) => (StatusCode::FORBIDDEN, "genericError"),
            OverrideNotValid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "overrideCommandNotValid"),
            OverrideAddressNotValid(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "overrideAddressNotValid")
            }
            ReadOnly(_) => (StatusCode::UNPROCESSABLE_ENTITY, "payloadError"),
            Conflict(_) => (StatusCode::CONFLICT, "resourceConflict"),
            Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "payloadError"),
            RelatedNotFound(_) => (StatusCode::UNPROCESSABLE_ENTITY, "relatedResourceNotFound"),
            Referred(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "deletingResourceIsReferred",
            ),
            Unsupported(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "serviceConstraintExceeded",
            ),
            AssignmentEntityNotValid(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "assignmentEntityNotValid")
            }
            AssignmentAddressNotValid(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "assignmentAddressNotValid",
            ),
            MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, "genericError"),
            Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "genericError"),
        }
    }
}

impl IntoResponse for TalqError {
    fn into_response(self) -> Response {
        let (status, key) = self.status_and_key();
        if status.is_server_error() {
            tracing::error!(error = %self, "TALQ request failed");
        }
        let body = [Message {
            key,
            description: self.to_string(),
        }];
        (status, Json(body)).into_response()
    }
}

impl From<crate::control::ControlError> for TalqError {
    fn from(e: crate::control::ControlError) -> Self {
        use crate::control::ControlError;
        match e {
            ControlError::NotFound(m) => TalqError::NotFound(m),
            ControlError::Forbidden(m) => TalqError::Forbidden(m),
            ControlError::Invalid(m) => TalqError::OverrideNotValid(m),
            // Group definitions only; TALQ's routes do not make those.
            ControlError::Conflict(m) | ControlError::Storage(m) => TalqError::Internal(m),
        }
    }
}

/// The book's own refusals (the API's rules of who edits what, and its
/// checks), in TALQ's terms.
impl From<crate::api::ApiError> for TalqError {
    fn from(e: crate::api::ApiError) -> Self {
        use crate::api::ApiError;
        match e {
            ApiError::Forbidden(m) => TalqError::Forbidden(m),
            ApiError::NotFound(m) => TalqError::NotFound(m),
            ApiError::Conflict(m) => TalqError::Conflict(m),
            ApiError::Unprocessable(m) | ApiError::BadRequest(m) => TalqError::Invalid(m),
            ApiError::Unauthorized(m) => TalqError::Unauthorized(m),
            e => TalqError::Internal(e.to_string()),
        }
    }
}

impl From<crate::schedule::ScheduleError> for TalqError {
    fn from(e: crate::schedule::ScheduleError) -> Self {
        use crate::schedule::ScheduleError;
        match e {
            ScheduleError::Invalid(m) => TalqError::Invalid(m),
            e => TalqError::Internal(e.to_string()),
        }
    }
}

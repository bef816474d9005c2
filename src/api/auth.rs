//! The axum layer that turns `Authorization: Bearer …` into a [`Principal`].

use super::ApiError;
use crate::auth::{Principal, Tokens};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;

pub(super) async fn require_token(
    State(tokens): State<Arc<Tokens>>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let principal = principal(&tokens, req.headers())?.ok_or_else(|| {
        ApiError::Unauthorized("an `Authorization: Bearer <token>` header is required".into())
    })?;
    req.extensions_mut().insert(principal);
    Ok(next.run(req).await)
}

/// The caller a request's `Authorization` header names: `None` without the
/// header, 401 for another scheme or an unknown token. The scheme is matched
/// without regard to case (RFC 7235 §2.1), so `bearer` and `BEARER` work.
pub(crate) fn principal(
    tokens: &Tokens,
    headers: &HeaderMap,
) -> Result<Option<Principal>, ApiError> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|h| h.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .ok_or_else(|| {
            ApiError::Unauthorized("an `Authorization: Bearer <token>` header is required".into())
        })?;
    tokens
        .check(token)
        .cloned()
        .map(Some)
        .ok_or_else(|| ApiError::Unauthorized("unknown token".into()))
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| ApiError::Unauthorized("no credentials".into()))
    }
}

//! The axum layer that turns `Authorization: Bearer …` into a [`Principal`].

use super::ApiError;
use crate::auth::{Principal, Tokens};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;

pub(super) async fn require_token(
    State(tokens): State<Arc<Tokens>>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let header = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let Some(token) = header.and_then(|h| h.strip_prefix("Bearer ")) else {
        return Err(ApiError::Unauthorized(
            "an `Authorization: Bearer <token>` header is required".into(),
        ));
    };
    let principal = tokens
        .check(token.trim())
        .cloned()
        .ok_or_else(|| ApiError::Unauthorized("unknown token".into()))?;
    req.extensions_mut().insert(principal);
    Ok(next.run(req).await)
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

//! The caller of an `/api` route: the verified claims of the `Authorization: Bearer` token.
//! Taking a [`Caller`] as a handler argument is what makes a route require a login: a token
//! that is well signed, unexpired, and not revoked since ([`super::revocation`]).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};

use super::jwt::{Claims, TokenError};
use super::revocation::Revoked;
use crate::error::ApiError;
use crate::state::AppState;

/// A logged-in staff member, as their token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller(pub Claims);

impl Caller {
    pub fn claims(&self) -> &Claims {
        &self.0
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer_token(&parts.headers)?;
        let claims = match state.tokens().verify(token) {
            Ok(claims) => claims,
            Err(TokenError::Expired) => {
                return Err(ApiError::unauthorized(
                    "the access token has expired; log in again",
                ));
            }
            Err(TokenError::Invalid) => {
                return Err(ApiError::unauthorized("the access token is invalid"));
            }
        };
        match state.revocations().check(&claims) {
            Ok(()) => Ok(Caller(claims)),
            Err(Revoked::NotLoaded) => Err(ApiError::service_unavailable(
                Revoked::NotLoaded.to_string(),
            )),
            Err(revoked) => Err(ApiError::unauthorized(revoked.to_string())),
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header (the scheme is case-insensitive).
fn bearer_token(headers: &HeaderMap) -> Result<&str, ApiError> {
    let value = headers.get(header::AUTHORIZATION).ok_or_else(|| {
        ApiError::unauthorized("this request needs an access token: log in first")
    })?;
    let malformed = || ApiError::unauthorized("the Authorization header must be: Bearer <token>");
    let text = value.to_str().map_err(|_| malformed())?.trim();
    let (scheme, token) = text.split_once(' ').ok_or_else(malformed)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || token.contains(' ') {
        return Err(malformed());
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_authorization(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn the_bearer_token_is_read_whatever_the_scheme_case() {
        assert_eq!(
            bearer_token(&with_authorization("Bearer abc")).unwrap(),
            "abc"
        );
        assert_eq!(
            bearer_token(&with_authorization("bearer  abc ")).unwrap(),
            "abc"
        );
    }

    #[test]
    fn missing_or_malformed_authorization_is_unauthorized() {
        assert!(bearer_token(&HeaderMap::new()).is_err());
        for bad in ["Bearer", "Bearer ", "Basic abc", "abc", "Bearer a b"] {
            let error = bearer_token(&with_authorization(bad)).unwrap_err();
            assert_eq!(
                error.status(),
                axum::http::StatusCode::UNAUTHORIZED,
                "{bad:?}"
            );
        }
    }
}

//! `POST /auth/login`: the staff service checks the username and password; the gateway signs
//! the access token. Failed logins are limited per username and per client address by the
//! staff service, which counts them in its database so every gateway instance shares the limit
//! (`staff_service::login_limits`); the gateway passes the client address along and answers
//! the service's refusal as 429 with `Retry-After`.

use std::net::IpAddr;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Map, Value};
use shared_events::subjects::{action, service};
use shared_events::{Authenticate, Authenticated};

use super::body::{LOGIN_FIELDS, required_strings};
use super::jwt::IssuedToken;
use crate::audit::Origin;
use crate::error::ApiError;
use crate::extract::JsonObject;
use crate::nats_call::{command_headers, decode_reply, send_command};
use crate::request::RequestId;
use crate::state::AppState;

/// The one answer to a failed login: whether the user exists is not the client's business.
const BAD_CREDENTIALS: &str = "invalid username or password";

pub async fn login(
    State(state): State<AppState>,
    request_id: RequestId,
    origin: Origin,
    JsonObject(body): JsonObject,
) -> Result<Json<IssuedToken>, ApiError> {
    let address = origin.client_addr.map(|addr| addr.ip());
    let credentials = credentials(&body, address)?;
    let reply = send_command(
        state.nats(),
        service::STAFF,
        action::AUTHENTICATE,
        command_headers(&request_id),
        &credentials,
    )
    .await
    .map_err(|error| {
        if error.status() == StatusCode::UNAUTHORIZED {
            tracing::info!(username = %credentials.username, ?address, "login failed");
            ApiError::unauthorized(BAD_CREDENTIALS)
        } else {
            // Also the staff service's 429 with its Retry-After, which it logs itself.
            error
        }
    })?;
    let who: Authenticated = decode_reply(service::STAFF, &reply)?;
    let token = state.tokens().issue(&who).map_err(ApiError::internal)?;
    tracing::info!(staff_id = %who.staff_id, role = who.role.as_str(), "logged in");
    Ok(Json(token))
}

/// The username (trimmed) and password (exactly as typed) of a login body, from `address`.
fn credentials(
    body: &Map<String, Value>,
    address: Option<IpAddr>,
) -> Result<Authenticate, ApiError> {
    let [username, password] = required_strings(body, LOGIN_FIELDS)?;
    Ok(Authenticate {
        username: username.trim().to_owned(),
        password,
        client_address: address,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn credentials_are_read_with_the_username_trimmed() {
        let from = "10.1.2.3".parse().ok();
        let read = credentials(
            &body(json!({"username": " admin ", "password": " pw "})),
            from,
        )
        .unwrap();
        assert_eq!(read.username, "admin");
        assert_eq!(read.password, " pw ");
        assert_eq!(read.client_address, from);
    }

    #[test]
    fn every_missing_credential_is_named() {
        let error = credentials(&body(json!({"username": 7})), None).unwrap_err();
        assert_eq!(error.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let fields: Vec<(&str, &str)> = error
            .fields()
            .iter()
            .map(|f| (f.field.as_str(), f.message.as_str()))
            .collect();
        assert_eq!(
            fields,
            [
                ("username", "must be a string"),
                ("password", "is required")
            ]
        );
    }
}

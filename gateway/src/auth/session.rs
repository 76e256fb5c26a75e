//! The session routes of a logged-in caller: `POST /auth/logout` revokes the token it is
//! called with; `POST /auth/password` changes the caller's own password (checked and stored by
//! the staff service) and answers a fresh token, since the change revokes every earlier one.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Map, Value};
use shared_events::subjects::{action, service};
use shared_events::{Authenticated, ChangePassword};

use super::body::required_strings;
use super::caller::Caller;
use super::jwt::IssuedToken;
use super::revocation::Revoked;
use crate::error::ApiError;
use crate::extract::JsonObject;
use crate::nats_call::{CommandContext, decode_reply, send_command};
use crate::state::AppState;

pub async fn logout(State(state): State<AppState>, caller: Caller) -> Result<StatusCode, ApiError> {
    let claims = caller.claims();
    state
        .revocations()
        .revoke(state.jetstream(), claims)
        .await
        .map_err(|error| {
            tracing::error!(%error, "a logout could not be shared with the other gateways");
            ApiError::service_unavailable(
                "the logout could not be recorded; try again shortly (the token still works elsewhere)",
            )
        })?;
    tracing::info!(staff_id = %claims.sub, "logged out");
    Ok(StatusCode::NO_CONTENT)
}

pub async fn change_password(
    State(state): State<AppState>,
    context: CommandContext,
    JsonObject(body): JsonObject,
) -> Result<Json<IssuedToken>, ApiError> {
    let command = password_change(&body)?;
    let reply = send_command(
        state.nats(),
        service::STAFF,
        action::CHANGE_PASSWORD,
        context.headers(),
        &command,
    )
    .await?;
    let who: Authenticated = decode_reply(service::STAFF, &reply)?;
    let claims = context.caller.claims();
    // The password_changed event revokes this token on every gateway; here at once.
    state
        .revocations()
        .revoke_locally(claims.jti, claims.exp, Revoked::PasswordChanged);
    let token = state.tokens().issue(&who).map_err(ApiError::internal)?;
    tracing::info!(staff_id = %who.staff_id, "changed their password");
    Ok(Json(token))
}

/// Both passwords, as strings; how strong the new one must be is the staff service's rule.
fn password_change(body: &Map<String, Value>) -> Result<ChangePassword, ApiError> {
    let [current_password, new_password] =
        required_strings(body, ["current_password", "new_password"])?;
    Ok(ChangePassword {
        current_password,
        new_password,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn both_passwords_are_required_as_strings() {
        let body = json!({"current_password": "x", "new_password": 5, "colour": "red"});
        let error = password_change(body.as_object().unwrap()).unwrap_err();
        let fields: Vec<&str> = error.fields().iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["new_password", "colour"]);
        let body = json!({"current_password": "a", "new_password": "b"});
        assert!(password_change(body.as_object().unwrap()).is_ok());
    }
}

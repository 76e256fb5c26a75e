//! Command bodies shared by every aggregate-owning service. Replies to `get`, `create` and
//! `update` carry the aggregate's state; `list` answers a [`Page`]; `delete` answers the final
//! (deleted) state. Failures are a [`crate::ServiceError`] (see [`crate::headers::ERROR`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

/// `hospital.<service>.get`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GetById {
    pub id: Uuid,
}

/// `hospital.<service>.list`: keyset paging by id (ids are UUID v7, so id order is creation
/// order), which stays fast however many rows there are.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ListQuery {
    /// Case-insensitive name search (each word matches the start of a word of the name), or an
    /// exact identifier such as a medical record number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
    /// Page size; the service applies its default (50) and maximum (500).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// Return items after this id (the previous page's `next_after`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Uuid>,
    /// Every other query parameter, as sent (`patient_id`, `status`, `from`, ...). The owning
    /// service knows its filters: it checks them and refuses unknown ones.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub filters: BTreeMap<String, String>,
}

impl ListQuery {
    pub const DEFAULT_LIMIT: u32 = 50;
    pub const MAX_LIMIT: u32 = 500;

    /// The page size to use, within bounds.
    pub fn effective_limit(&self) -> u32 {
        self.limit
            .unwrap_or(Self::DEFAULT_LIMIT)
            .clamp(1, Self::MAX_LIMIT)
    }
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Present when there may be more: pass it as `after` to get the next page.
    pub next_after: Option<Uuid>,
}

/// `hospital.<service>.create`: the fields exactly as the client sent them. The owning service
/// validates them and names every bad field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Create {
    pub fields: Map<String, Value>,
}

/// `hospital.<service>.update`: a full replacement of the writable fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Update {
    pub id: Uuid,
    /// From `If-Match`: refuse the change unless this is the current version.
    #[serde(default)]
    pub expected_version: Option<i64>,
    pub fields: Map<String, Value>,
}

/// `hospital.<service>.delete`: a soft delete; the row and its history are kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delete {
    pub id: Uuid,
    #[serde(default)]
    pub expected_version: Option<i64>,
}

/// `hospital.staff.authenticate`: check a login. The staff service counts failed logins per
/// username and per client address, and refuses with
/// [`ErrorCode::TooManyRequests`](crate::ErrorCode::TooManyRequests) (its wait in
/// [`ServiceError::retry_after_secs`](crate::ServiceError::retry_after_secs)) once either is
/// over its limit, before checking the password.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Authenticate {
    pub username: String,
    pub password: String,
    /// Where the login came from, as the gateway sees its client; `None` when unknown (then
    /// only the username's limit applies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_address: Option<std::net::IpAddr>,
}

impl std::fmt::Debug for Authenticate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticate")
            .field("username", &self.username)
            .field("password", &"***")
            .field("client_address", &self.client_address)
            .finish()
    }
}

/// `hospital.staff.change_password`: the acting staff member (from the command headers) changes
/// their own password. Answers [`Authenticated`]; the account's earlier tokens are revoked by
/// the `password_changed` event it publishes.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangePassword {
    pub current_password: String,
    pub new_password: String,
}

impl std::fmt::Debug for ChangePassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangePassword").finish_non_exhaustive()
    }
}

/// The reply to a successful [`Authenticate`]: who logged in, and as what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Authenticated {
    pub staff_id: Uuid,
    pub name: String,
    pub role: crate::staff::StaffRole,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_limit_defaults_and_is_bounded() {
        assert_eq!(ListQuery::default().effective_limit(), 50);
        let big = ListQuery {
            limit: Some(10_000),
            ..Default::default()
        };
        assert_eq!(big.effective_limit(), 500);
        let zero = ListQuery {
            limit: Some(0),
            ..Default::default()
        };
        assert_eq!(zero.effective_limit(), 1);
    }

    #[test]
    fn authenticate_debug_hides_the_password() {
        let cmd = Authenticate {
            username: "admin".into(),
            password: "secret-secret".into(),
            client_address: None,
        };
        assert!(!format!("{cmd:?}").contains("secret-secret"));
    }

    #[test]
    fn authenticate_carries_the_client_address_when_known() {
        let from: Authenticate = serde_json::from_str(
            r#"{"username": "ada", "password": "pw", "client_address": "10.0.0.7"}"#,
        )
        .unwrap();
        assert_eq!(from.client_address, Some("10.0.0.7".parse().unwrap()));
        let unknown: Authenticate =
            serde_json::from_str(r#"{"username": "ada", "password": "pw"}"#).unwrap();
        assert_eq!(unknown.client_address, None);
        assert!(
            !serde_json::to_string(&unknown)
                .unwrap()
                .contains("client_address")
        );
    }
}

//! The staff aggregate as replies and events carry it. Owned by the staff service, which also
//! holds the login accounts (a password hash never leaves it).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum StaffRole {
    Doctor,
    Nurse,
    Receptionist,
    Admin,
}

impl StaffRole {
    pub const ALL: [StaffRole; 4] = [
        StaffRole::Doctor,
        StaffRole::Nurse,
        StaffRole::Receptionist,
        StaffRole::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StaffRole::Doctor => "doctor",
            StaffRole::Nurse => "nurse",
            StaffRole::Receptionist => "receptionist",
            StaffRole::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<StaffRole> {
        StaffRole::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

/// A staff member's full state. The password is write-only: it is never part of this (the
/// gateway's document adds it to the schema as a `writeOnly` property).
///
/// The `openapi` schema attributes restate the staff service's validation
/// (`services/staff/src/domain.rs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "id": "01a212c5-f83e-72e7-b82a-c74fdb81c453", "name": "Dr Meredith Grey", "role": "doctor",
    "specialization": "General surgery", "phone": null, "email": "mgrey@example.org",
    "username": "mgrey", "version": 1, "created_at": "2026-11-25T12:54:53.758255Z",
    "updated_at": "2026-11-25T12:54:53.758255Z"})))]
pub struct Staff {
    #[cfg_attr(feature = "openapi", schema(read_only))]
    pub id: Uuid,
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 200, pattern = r"\S")
    )]
    pub name: String,
    pub role: StaffRole,
    #[cfg_attr(feature = "openapi", schema(max_length = 200))]
    pub specialization: Option<String>,
    /// Digits and `+ - ( ) .` or spaces, 5 to 20 digits.
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 40, pattern = "^[0-9 +().-]*$")
    )]
    pub phone: Option<String>,
    #[cfg_attr(feature = "openapi", schema(format = Email, max_length = 254))]
    pub email: Option<String>,
    /// The login name, when this staff member can log in. On update, leaving it out keeps
    /// the login as it is and `null` removes it. Sent in any case, kept in lower case.
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 3, max_length = 64, pattern = "^[A-Za-z][A-Za-z0-9._-]*$")
    )]
    pub username: Option<String>,
    #[cfg_attr(feature = "openapi", schema(read_only, minimum = 1))]
    pub version: i64,
    #[cfg_attr(feature = "openapi", schema(read_only))]
    pub created_at: DateTime<Utc>,
    #[cfg_attr(feature = "openapi", schema(read_only))]
    pub updated_at: DateTime<Utc>,
    /// Never in an answer: a deleted staff member is not found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(ignore))]
    pub deleted_at: Option<DateTime<Utc>>,
}

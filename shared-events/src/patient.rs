//! The patient aggregate as replies and events carry it. Owned by the patient service.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Administrative sex as recorded at registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    Female,
    Male,
    Other,
    Unknown,
}

impl Sex {
    pub const ALL: [Sex; 4] = [Sex::Female, Sex::Male, Sex::Other, Sex::Unknown];

    pub fn as_str(self) -> &'static str {
        match self {
            Sex::Female => "female",
            Sex::Male => "male",
            Sex::Other => "other",
            Sex::Unknown => "unknown",
        }
    }

    pub fn parse(text: &str) -> Option<Sex> {
        Sex::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// A patient's full state.
///
/// The `openapi` schema attributes restate the patient service's validation
/// (`services/patient/src/domain.rs`): text is trimmed first, blank optional text means none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "id": "01a212c5-f770-74c3-9610-fe436217a339", "mrn": "8815022549", "name": "Grace Hopper",
    "birth_date": "1976-12-09", "sex": "female", "phone": "+1 555 0100", "email": null,
    "address": null, "version": 1, "created_at": "2026-11-25T12:54:53.552593Z",
    "updated_at": "2026-11-25T12:54:53.552593Z"})))]
pub struct Patient {
    #[cfg_attr(feature = "openapi", schema(read_only))]
    pub id: Uuid,
    /// Medical record number: generated, unique, never changes.
    #[cfg_attr(feature = "openapi", schema(read_only, pattern = "^[0-9]{10}$"))]
    pub mrn: String,
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 200, pattern = r"\S")
    )]
    pub name: String,
    /// Not in the future, not before 1880-01-01.
    pub birth_date: NaiveDate,
    pub sex: Sex,
    /// Digits and `+ - ( ) .` or spaces, 5 to 20 digits.
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 40, pattern = "^[0-9 +().-]*$")
    )]
    pub phone: Option<String>,
    #[cfg_attr(feature = "openapi", schema(format = Email, max_length = 254))]
    pub email: Option<String>,
    #[cfg_attr(feature = "openapi", schema(max_length = 500))]
    pub address: Option<String>,
    #[cfg_attr(feature = "openapi", schema(read_only, minimum = 1))]
    pub version: i64,
    #[cfg_attr(feature = "openapi", schema(read_only))]
    pub created_at: DateTime<Utc>,
    #[cfg_attr(feature = "openapi", schema(read_only))]
    pub updated_at: DateTime<Utc>,
    /// Set when the patient was (soft) deleted; the row and its history are kept.
    /// Never in an answer: a deleted patient is not found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(ignore))]
    pub deleted_at: Option<DateTime<Utc>>,
}

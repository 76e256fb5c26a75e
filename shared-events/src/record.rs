//! The medical record aggregate as replies and events carry it. Owned by the record service.
//! A record is never silently overwritten: every change is an amendment with a new version, and
//! every version stays readable ([`RecordVersion`]).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::envelope::Actor;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    Note,
    Diagnosis,
    Vitals,
    Prescription,
    Allergy,
}

impl RecordKind {
    pub const ALL: [RecordKind; 5] = [
        RecordKind::Note,
        RecordKind::Diagnosis,
        RecordKind::Vitals,
        RecordKind::Prescription,
        RecordKind::Allergy,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Note => "note",
            RecordKind::Diagnosis => "diagnosis",
            RecordKind::Vitals => "vitals",
            RecordKind::Prescription => "prescription",
            RecordKind::Allergy => "allergy",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// `active`, or `entered_in_error`: kept with its history, but out of the default lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RecordStatus {
    Active,
    EnteredInError,
}

impl RecordStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordStatus::Active => "active",
            RecordStatus::EnteredInError => "entered_in_error",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [RecordStatus::Active, RecordStatus::EnteredInError]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// An ICD-10 code (format-checked) and its description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Diagnosis {
    /// ICD-10, such as `J30.2` (any case; answered in upper case).
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = "^[A-TV-Za-tv-z][0-9][0-9ABab](\\.[0-9A-TV-Za-tv-z]{1,4})?$",
            example = "J30.2"
        )
    )]
    pub code: String,
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 500,
            pattern = r"\S",
            example = "Other seasonal allergic rhinitis"
        )
    )]
    pub description: String,
}

/// Vital signs; each is optional and range-checked (`services/record/src/vitals.rs`), and
/// `diastolic_mmhg` must be below `systolic_mmhg`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Vitals {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 25.0, maximum = 45.0))]
    pub temperature_c: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 20, maximum = 250))]
    pub pulse_bpm: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 50, maximum = 260))]
    pub systolic_mmhg: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 20, maximum = 160))]
    pub diastolic_mmhg: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 4, maximum = 60))]
    pub respiratory_rate: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 50, maximum = 100))]
    pub spo2_percent: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0.2, maximum = 500.0))]
    pub weight_kg: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 20.0, maximum = 260.0))]
    pub height_cm: Option<f64>,
}

/// A medical record's current state.
///
/// The `openapi` schema attributes restate the record service's validation
/// (`services/record/src/details.rs`, `diagnoses.rs`, `vitals.rs`): a diagnosis record needs a
/// diagnosis, a vitals record a vital sign; an amendment may leave `patient_id` out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "id": "01a212e0-872c-737d-b527-d4ea04788353", "patient_id": "01a212e0-6a92-73d0-bc13-52d56e178112",
    "author_id": "01a212e0-3b26-74df-936f-132e3cb9c5ba", "kind": "diagnosis",
    "title": "Seasonal allergy", "body": "Sneezing since March.",
    "diagnoses": [{"code": "J30.2", "description": "Other seasonal allergic rhinitis"}],
    "vitals": {"temperature_c": 36.9, "pulse_bpm": 72}, "recorded_at": "2026-11-25T13:23:54.284257Z",
    "status": "active", "version": 1, "created_at": "2026-11-25T13:23:54.284257Z",
    "updated_at": "2026-11-25T13:23:54.284257Z"})))]
pub struct MedicalRecord {
    #[cfg_attr(feature = "openapi", schema(read_only))]
    pub id: Uuid,
    pub patient_id: Uuid,
    /// The staff member who wrote the first version: the caller.
    #[cfg_attr(feature = "openapi", schema(read_only))]
    pub author_id: Uuid,
    /// An appointment of the same patient.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appointment_id: Option<Uuid>,
    pub kind: RecordKind,
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 200, pattern = r"\S")
    )]
    pub title: String,
    #[cfg_attr(feature = "openapi", schema(max_length = 20000))]
    pub body: Option<String>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 50))]
    pub diagnoses: Vec<Diagnosis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vitals: Option<Vitals>,
    /// When the observation was made (may be before it was written down; default now).
    #[cfg_attr(feature = "openapi", schema(required = false))]
    pub recorded_at: DateTime<Utc>,
    /// `DELETE` marks a record `entered_in_error`.
    // Read-only: a `$ref` cannot say so, so the gateway's document inlines the enum here.
    #[cfg_attr(feature = "openapi", schema(read_only))]
    pub status: RecordStatus,
    #[cfg_attr(feature = "openapi", schema(read_only, minimum = 1))]
    pub version: i64,
    #[cfg_attr(feature = "openapi", schema(read_only))]
    pub created_at: DateTime<Utc>,
    #[cfg_attr(feature = "openapi", schema(read_only))]
    pub updated_at: DateTime<Utc>,
}

/// One version of a record, as `GET /api/records/{id}/history` lists them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecordVersion {
    pub version: i64,
    /// `created`, `amended` or `entered_in_error`.
    pub change: String,
    pub changed_by: Actor,
    pub changed_at: DateTime<Utc>,
    pub record: MedicalRecord,
}

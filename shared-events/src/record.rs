//! The medical record aggregate as replies and events carry it. Owned by the record service.
//! A record is never silently overwritten: every change is an amendment with a new version, and
//! every version stays readable ([`RecordVersion`]).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::envelope::Actor;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
pub struct Diagnosis {
    pub code: String,
    pub description: String,
}

/// Vital signs; each is optional and range-checked.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Vitals {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature_c: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pulse_bpm: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systolic_mmhg: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diastolic_mmhg: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub respiratory_rate: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spo2_percent: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_kg: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height_cm: Option<f64>,
}

/// A medical record's current state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MedicalRecord {
    pub id: Uuid,
    pub patient_id: Uuid,
    /// The staff member who wrote the first version.
    pub author_id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appointment_id: Option<Uuid>,
    pub kind: RecordKind,
    pub title: String,
    pub body: Option<String>,
    #[serde(default)]
    pub diagnoses: Vec<Diagnosis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vitals: Option<Vitals>,
    /// When the observation was made (may be before it was written down).
    pub recorded_at: DateTime<Utc>,
    pub status: RecordStatus,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One version of a record, as `GET /api/records/{id}/history` lists them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordVersion {
    pub version: i64,
    /// `created`, `amended` or `entered_in_error`.
    pub change: String,
    pub changed_by: Actor,
    pub changed_at: DateTime<Utc>,
    pub record: MedicalRecord,
}

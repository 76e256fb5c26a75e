//! The appointment aggregate as replies and events carry it. Owned by the appointment service.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Where an appointment is in its life:
/// `booked → checked_in → fulfilled`, `booked | checked_in → cancelled`, `booked → noshow`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AppointmentStatus {
    #[serde(rename = "booked")]
    Booked,
    #[serde(rename = "checked_in")]
    CheckedIn,
    #[serde(rename = "fulfilled")]
    Fulfilled,
    #[serde(rename = "cancelled")]
    Cancelled,
    #[serde(rename = "noshow")]
    NoShow,
}

impl AppointmentStatus {
    pub const ALL: [AppointmentStatus; 5] = [
        AppointmentStatus::Booked,
        AppointmentStatus::CheckedIn,
        AppointmentStatus::Fulfilled,
        AppointmentStatus::Cancelled,
        AppointmentStatus::NoShow,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AppointmentStatus::Booked => "booked",
            AppointmentStatus::CheckedIn => "checked_in",
            AppointmentStatus::Fulfilled => "fulfilled",
            AppointmentStatus::Cancelled => "cancelled",
            AppointmentStatus::NoShow => "noshow",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Active appointments hold their slot: no other active appointment of the same doctor or
    /// patient may overlap them.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            AppointmentStatus::Booked | AppointmentStatus::CheckedIn
        )
    }
}

/// An appointment's full state. Times are UTC; `end` is `start + duration_minutes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Appointment {
    pub id: Uuid,
    pub patient_id: Uuid,
    /// A staff member whose role is doctor.
    pub doctor_id: Uuid,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub duration_minutes: i64,
    pub reason: Option<String>,
    pub status: AppointmentStatus,
    pub notes: Option<String>,
    /// Why it was cancelled, when it was (by a person or by the system after a delete).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancellation_reason: Option<String>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

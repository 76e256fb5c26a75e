//! The appointment aggregate as replies and events carry it. Owned by the appointment service.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Where an appointment is in its life:
/// `booked → checked_in → fulfilled`, `booked | checked_in → cancelled`, `booked → noshow`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
///
/// The `openapi` schema attributes restate the appointment service's validation
/// (`services/appointment/src/domain/request.rs`). `duration_minutes` and `status` are always
/// answered but may be left out when writing, so the schema does not require them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "id": "01a212e0-6bde-7727-9e83-d27a8cf6c034", "patient_id": "01a212e0-6a92-73d0-bc13-52d56e178112",
    "doctor_id": "01a212e0-6b04-715e-8134-73c19ea6d7d7", "start": "2026-12-01T08:00:00Z",
    "end": "2026-12-01T08:30:00Z", "duration_minutes": 30, "reason": "Follow-up",
    "status": "booked", "notes": null, "version": 1, "created_at": "2026-11-25T13:23:47.294514Z",
    "updated_at": "2026-11-25T13:23:47.294514Z"})))]
pub struct Appointment {
    #[cfg_attr(feature = "openapi", schema(read_only))]
    pub id: Uuid,
    /// An active patient; cannot change after booking.
    pub patient_id: Uuid,
    /// A staff member whose role is doctor.
    pub doctor_id: Uuid,
    /// RFC 3339 with an offset; answered in UTC. A new booking may not start in the past.
    pub start: DateTime<Utc>,
    #[cfg_attr(feature = "openapi", schema(read_only))]
    pub end: DateTime<Utc>,
    #[cfg_attr(
        feature = "openapi",
        schema(required = false, minimum = 5, maximum = 480, default = 30)
    )]
    pub duration_minutes: i64,
    #[cfg_attr(feature = "openapi", schema(max_length = 500))]
    pub reason: Option<String>,
    /// `booked → checked_in → fulfilled`, `booked | checked_in → cancelled`, `booked → noshow`.
    /// A new appointment is `booked`.
    #[cfg_attr(feature = "openapi", schema(required = false))]
    pub status: AppointmentStatus,
    #[cfg_attr(feature = "openapi", schema(max_length = 2000))]
    pub notes: Option<String>,
    /// Why it was cancelled, when it was (by a person or by the system after a delete).
    /// Written only by a change to `cancelled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 500))]
    pub cancellation_reason: Option<String>,
    #[cfg_attr(feature = "openapi", schema(read_only, minimum = 1))]
    pub version: i64,
    #[cfg_attr(feature = "openapi", schema(read_only))]
    pub created_at: DateTime<Utc>,
    #[cfg_attr(feature = "openapi", schema(read_only))]
    pub updated_at: DateTime<Utc>,
}

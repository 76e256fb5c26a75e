//! An appointment as a row of the `appointments` table: times as UTC text in
//! `format_timestamp` form (so text order is time order), ids as text.

use kit::events::{format_timestamp, parse_timestamp, storage_failure};
use shared_events::ServiceError;
use shared_events::appointment::{Appointment, AppointmentStatus};
use sqlx::SqliteConnection;
use uuid::Uuid;

/// The columns of a full row, in [`AppointmentRow`]'s order.
pub(super) const COLUMNS: &str = "id, patient_id, doctor_id, start_at, end_at, duration_minutes, \
    reason, status, notes, cancellation_reason, version, created_at, updated_at";

#[derive(sqlx::FromRow)]
pub(super) struct AppointmentRow {
    id: String,
    patient_id: String,
    doctor_id: String,
    start_at: String,
    end_at: String,
    duration_minutes: i64,
    reason: Option<String>,
    status: String,
    notes: Option<String>,
    cancellation_reason: Option<String>,
    version: i64,
    created_at: String,
    updated_at: String,
}

impl AppointmentRow {
    pub(super) fn into_appointment(self) -> Result<Appointment, String> {
        let id = |text: &str, what: &str| {
            Uuid::try_parse(text).map_err(|e| format!("{what} {text}: {e}"))
        };
        let time = |text: &str, what: &str| {
            parse_timestamp(text).map_err(|e| format!("{what} {text}: {e}"))
        };
        Ok(Appointment {
            id: id(&self.id, "id")?,
            patient_id: id(&self.patient_id, "patient_id")?,
            doctor_id: id(&self.doctor_id, "doctor_id")?,
            start: time(&self.start_at, "start_at")?,
            end: time(&self.end_at, "end_at")?,
            duration_minutes: self.duration_minutes,
            reason: self.reason,
            status: AppointmentStatus::parse(&self.status)
                .ok_or_else(|| format!("status {:?}", self.status))?,
            notes: self.notes,
            cancellation_reason: self.cancellation_reason,
            version: self.version,
            created_at: time(&self.created_at, "created_at")?,
            updated_at: time(&self.updated_at, "updated_at")?,
        })
    }
}

pub(super) fn into_appointments(
    rows: Vec<AppointmentRow>,
) -> Result<Vec<Appointment>, ServiceError> {
    rows.into_iter()
        .map(AppointmentRow::into_appointment)
        .collect::<Result<Vec<_>, _>>()
        .map_err(storage_failure)
}

/// Inserts or replaces the row of `a` (inside the caller's transaction).
pub(crate) async fn write_row(
    conn: &mut SqliteConnection,
    a: &Appointment,
    insert: bool,
) -> Result<(), sqlx::Error> {
    let sql = if insert {
        "INSERT INTO appointments (id, patient_id, doctor_id, start_at, end_at, duration_minutes, reason,
                                   status, notes, cancellation_reason, version, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
    } else {
        "UPDATE appointments SET patient_id = $2, doctor_id = $3, start_at = $4, end_at = $5,
                duration_minutes = $6, reason = $7, status = $8, notes = $9, cancellation_reason = $10,
                version = $11, created_at = $12, updated_at = $13
         WHERE id = $1"
    };
    sqlx::query(sql)
        .bind(a.id.to_string())
        .bind(a.patient_id.to_string())
        .bind(a.doctor_id.to_string())
        .bind(format_timestamp(a.start))
        .bind(format_timestamp(a.end))
        .bind(a.duration_minutes)
        .bind(&a.reason)
        .bind(a.status.as_str())
        .bind(&a.notes)
        .bind(&a.cancellation_reason)
        .bind(a.version)
        .bind(format_timestamp(a.created_at))
        .bind(format_timestamp(a.updated_at))
        .execute(conn)
        .await?;
    Ok(())
}

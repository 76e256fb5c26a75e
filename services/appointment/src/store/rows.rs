//! An appointment as a row of the `appointments` table: times as UTC text in
//! `format_timestamp` form (so text order is time order), ids as text.

use kit::events::{format_timestamp, parse_timestamp, storage_failure};
use kit::handle::{Db, WriteError};
use shared_events::ServiceError;
use shared_events::appointment::{Appointment, AppointmentStatus};
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
    /// The row as read inside a write (on the handle), from the columns in [`COLUMNS`] order.
    pub(super) fn from_rusqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(AppointmentRow {
            id: row.get(0)?,
            patient_id: row.get(1)?,
            doctor_id: row.get(2)?,
            start_at: row.get(3)?,
            end_at: row.get(4)?,
            duration_minutes: row.get(5)?,
            reason: row.get(6)?,
            status: row.get(7)?,
            notes: row.get(8)?,
            cancellation_reason: row.get(9)?,
            version: row.get(10)?,
            created_at: row.get(11)?,
            updated_at: row.get(12)?,
        })
    }

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
pub(crate) fn write_row(db: &Db, a: &Appointment, insert: bool) -> Result<(), WriteError> {
    let sql = if insert {
        "INSERT INTO appointments (id, patient_id, doctor_id, start_at, end_at, duration_minutes, reason,
                                   status, notes, cancellation_reason, version, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
    } else {
        "UPDATE appointments SET patient_id = ?2, doctor_id = ?3, start_at = ?4, end_at = ?5,
                duration_minutes = ?6, reason = ?7, status = ?8, notes = ?9, cancellation_reason = ?10,
                version = ?11, created_at = ?12, updated_at = ?13
         WHERE id = ?1"
    };
    db.prepare_cached(sql)?.execute((
        a.id.to_string(),
        a.patient_id.to_string(),
        a.doctor_id.to_string(),
        format_timestamp(a.start),
        format_timestamp(a.end),
        a.duration_minutes,
        &a.reason,
        a.status.as_str(),
        &a.notes,
        &a.cancellation_reason,
        a.version,
        format_timestamp(a.created_at),
        format_timestamp(a.updated_at),
    ))?;
    Ok(())
}

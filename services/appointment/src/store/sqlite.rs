//! The appointment store on SQLite. Every change writes the appointment row and its
//! event (the outbox row) in one immediate transaction. A change that claims a slot first checks,
//! in that same transaction, that the people are still there and that no active appointment of
//! the doctor or the patient overlaps it; a trigger in the schema refuses any write that slips
//! past, so no two concurrent bookings can both take a slot.

use kit::RequestContext;
use kit::events::{format_timestamp, new_event, storage_failure};
use kit::group_commit::Writer;
use kit::handle::{Db, WriteError};
use kit::idempotency;
use kit::listing::into_page;
use kit::outbox::{self, OutboxRow};
use rusqlite::OptionalExtension;
use shared_events::appointment::Appointment;
use shared_events::{Aggregate, ListQuery, Page, ServiceError};
use sqlx::{QueryBuilder, Sqlite, SqlitePool};
use uuid::Uuid;

use super::rows::{AppointmentRow, COLUMNS, into_appointments, write_row};
use super::{Committed, Party};
use crate::domain::{self, CREATED, Revision};
use crate::filters::AppointmentFilter;

/// The message of the schema's overlap trigger (`RAISE(ABORT, 'appointment overlap')`).
const OVERLAP_TRIGGER: &str = "appointment overlap";

/// The appointment tables of one SQLite database. Cheap to clone (the pool is shared).
#[derive(Clone)]
pub struct SqliteAppointments {
    pool: SqlitePool,
    /// Every change goes through the group committer (see `kit::group_commit`).
    writer: Writer,
}

impl SqliteAppointments {
    /// `writer` is the database's one group committer (`kit::database::Database::Sqlite`).
    pub fn new(pool: SqlitePool, writer: Writer) -> Self {
        SqliteAppointments { writer, pool }
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Any appointment, cancelled ones included: they stay readable.
    pub async fn get(&self, id: Uuid) -> Result<Option<Appointment>, ServiceError> {
        let sql = format!("SELECT {COLUMNS} FROM appointments WHERE id = $1");
        let row: Option<AppointmentRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(storage_failure)?;
        row.map(AppointmentRow::into_appointment)
            .transpose()
            .map_err(storage_failure)
    }

    /// One page in start order (then id), continuing after the appointment `query.after`.
    pub async fn list(
        &self,
        filter: &AppointmentFilter,
        query: &ListQuery,
    ) -> Result<Page<Appointment>, ServiceError> {
        let mut sql =
            QueryBuilder::<Sqlite>::new(format!("SELECT {COLUMNS} FROM appointments WHERE 1 = 1"));
        if let Some(after) = query.after {
            let start_at: Option<String> =
                sqlx::query_scalar("SELECT start_at FROM appointments WHERE id = $1")
                    .bind(after.to_string())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(storage_failure)?;
            let start_at = start_at.ok_or_else(|| {
                ServiceError::bad_request("after must be an id from a previous page")
            })?;
            sql.push(" AND (start_at, id) > (")
                .push_bind(start_at)
                .push(", ")
                .push_bind(after.to_string())
                .push(")");
        }
        if let Some(patient_id) = filter.patient_id {
            sql.push(" AND patient_id = ")
                .push_bind(patient_id.to_string());
        }
        if let Some(doctor_id) = filter.doctor_id {
            sql.push(" AND doctor_id = ")
                .push_bind(doctor_id.to_string());
        }
        if let Some(status) = filter.status {
            sql.push(" AND status = ").push_bind(status.as_str());
        }
        if let Some(from) = filter.from {
            sql.push(" AND start_at >= ")
                .push_bind(format_timestamp(from));
        }
        if let Some(to) = filter.to {
            sql.push(" AND start_at < ").push_bind(format_timestamp(to));
        }
        sql.push(" ORDER BY start_at, id LIMIT ")
            .push_bind(i64::from(query.effective_limit()) + 1);
        let rows: Vec<AppointmentRow> = sql
            .build_query_as()
            .fetch_all(&self.pool)
            .await
            .map_err(storage_failure)?;
        Ok(into_page(into_appointments(rows)?, query, |a| a.id))
    }

    /// Books `appointment`: checks its people and its slot and inserts it with its `created`
    /// event, all in one write transaction.
    pub async fn book(
        &self,
        appointment: Appointment,
        context: &RequestContext,
    ) -> Result<Committed, ServiceError> {
        let context = context.clone();
        self.writer
            .write(move |db| {
                check_people(db, &appointment)?;
                refuse_double_booking(db, &appointment)?;
                write_row(db, &appointment, true).map_err(write_failure)?;
                let event = append_event(db, &appointment, CREATED, &context)?;
                idempotency::remember(db, &context, &appointment)?;
                Ok(Committed {
                    appointment,
                    event: Some(event),
                })
            })
            .await
    }

    /// Loads an appointment, lets `decide` produce its next state (or `None` for no change),
    /// and stores it with its event, all in one write transaction: concurrent changes to one
    /// appointment are serialised and `If-Match` checks see the latest version.
    pub async fn change(
        &self,
        id: Uuid,
        context: &RequestContext,
        decide: impl FnOnce(&Appointment) -> Result<Option<Revision>, ServiceError> + Send + 'static,
    ) -> Result<Committed, ServiceError> {
        let context = context.clone();
        self.writer
            .write(move |db| {
                let current = read_row(db, id)
                    .map_err(storage_failure)?
                    .ok_or_else(|| ServiceError::not_found("appointment"))?
                    .into_appointment()
                    .map_err(storage_failure)?;
                let Some(revision) = decide(&current)? else {
                    return Ok(Committed {
                        appointment: current,
                        event: None,
                    });
                };
                if revision.claims_slot {
                    check_people(db, &revision.appointment)?;
                    refuse_double_booking(db, &revision.appointment)?;
                }
                let event = record_revision(db, &revision, &context).map_err(write_failure)?;
                idempotency::remember(db, &context, &revision.appointment)?;
                Ok(Committed {
                    appointment: revision.appointment,
                    event: Some(event),
                })
            })
            .await
    }
}

/// The row of appointment `id`, read inside a write.
fn read_row(db: &Db, id: Uuid) -> rusqlite::Result<Option<AppointmentRow>> {
    let sql = format!("SELECT {COLUMNS} FROM appointments WHERE id = ?1");
    db.prepare_cached(&sql)?
        .query_row([id.to_string()], AppointmentRow::from_rusqlite)
        .optional()
}

/// The booked appointments of a patient or a doctor that start after `after`, inside the
/// caller's transaction.
pub fn future_bookings(
    db: &Db,
    party: Party,
    person: Uuid,
    after: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<Appointment>, WriteError> {
    let column = match party {
        Party::Patient => "patient_id",
        Party::Doctor => "doctor_id",
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM appointments
         WHERE {column} = ?1 AND status = 'booked' AND start_at > ?2 ORDER BY start_at, id"
    );
    let rows = db
        .prepare_cached(&sql)?
        .query_map(
            (person.to_string(), format_timestamp(after)),
            AppointmentRow::from_rusqlite,
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter()
        .map(|row| row.into_appointment().map_err(WriteError::Corrupt))
        .collect()
}

/// Writes a decided change and appends its event, inside the caller's transaction.
pub fn record_revision(
    db: &Db,
    revision: &Revision,
    context: &RequestContext,
) -> Result<OutboxRow, WriteError> {
    write_row(db, &revision.appointment, false)?;
    append_event(db, &revision.appointment, revision.verb, context)
}

fn append_event(
    db: &Db,
    appointment: &Appointment,
    verb: &str,
    context: &RequestContext,
) -> Result<OutboxRow, WriteError> {
    let event = new_event(
        Aggregate::Appointment,
        appointment.id,
        appointment.version,
        verb,
        context,
        appointment.updated_at,
        appointment,
    );
    outbox::append(db, &event)
}

/// The people of a slot-claiming change, as the directory holds them in this transaction: the
/// read-model commits its changes (and cascades) under the same write lock, so a patient deleted
/// a moment ago is seen here, or their cancellation cascade will see this booking.
fn check_people(db: &Db, appointment: &Appointment) -> Result<(), ServiceError> {
    let patient: Option<(String, bool, i64)> = db
        .prepare_cached("SELECT name, deleted, version FROM directory_patients WHERE id = ?1")
        .and_then(|mut select| {
            select
                .query_row([appointment.patient_id.to_string()], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                })
                .optional()
        })
        .map_err(storage_failure)?;
    let doctor: Option<(String, String, bool, i64)> = db
        .prepare_cached("SELECT name, role, deleted, version FROM directory_staff WHERE id = ?1")
        .and_then(|mut select| {
            select
                .query_row([appointment.doctor_id.to_string()], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
                })
                .optional()
        })
        .map_err(storage_failure)?;
    super::check_people_rows(appointment, patient, doctor)
}

/// Refuses `candidate` when an active appointment of its doctor or patient overlaps it.
fn refuse_double_booking(db: &Db, candidate: &Appointment) -> Result<(), ServiceError> {
    // The doctor's and the patient's appointments that can overlap: through their (id, start)
    // indexes, from the longest appointment before the candidate's start (an unbounded
    // `start_at < end` would read every earlier appointment, ever more as the calendar fills).
    // The doctor's first: a clash with the doctor is the one to name.
    let sql = format!(
        "SELECT * FROM (SELECT {COLUMNS} FROM appointments
             WHERE doctor_id = ?2 AND start_at > ?6 AND start_at < ?4 AND end_at > ?5
               AND status IN ('booked', 'checked_in') AND id <> ?1
             ORDER BY start_at LIMIT 1)
         UNION ALL
         SELECT * FROM (SELECT {COLUMNS} FROM appointments
             WHERE patient_id = ?3 AND start_at > ?6 AND start_at < ?4 AND end_at > ?5
               AND status IN ('booked', 'checked_in') AND id <> ?1
             ORDER BY start_at LIMIT 1)"
    );
    let earliest = candidate.start - chrono::Duration::minutes(domain::MAX_DURATION_MINUTES + 1);
    let rows = db
        .prepare_cached(&sql)
        .and_then(|mut select| {
            select
                .query_map(
                    (
                        candidate.id.to_string(),
                        candidate.doctor_id.to_string(),
                        candidate.patient_id.to_string(),
                        format_timestamp(candidate.end),
                        format_timestamp(candidate.start),
                        format_timestamp(earliest),
                    ),
                    AppointmentRow::from_rusqlite,
                )?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(storage_failure)?;
    match into_appointments(rows)?
        .iter()
        .find_map(|existing| domain::double_booking(candidate, existing))
    {
        Some(conflict) => Err(conflict),
        None => Ok(()),
    }
}

/// A failed write: the overlap trigger is a double-booking (409), anything else is internal.
fn write_failure(error: WriteError) -> ServiceError {
    if error.is_raised(OVERLAP_TRIGGER) {
        ServiceError::conflict(super::OVERLAP)
    } else {
        storage_failure(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::BookingRequest;
    use crate::store::MIGRATOR;

    /// The trigger's refusal, raised on the handle, is still the 409 of a double booking.
    #[tokio::test]
    async fn the_overlap_trigger_is_a_conflict() {
        let dir = tempfile::tempdir().unwrap();
        let url = kit::config::sqlite_url_in(dir.path(), "appointment");
        let pool = kit::sqlite::open(&url, &MIGRATOR).await.unwrap();
        let booking = |patient_id| {
            domain::book(
                BookingRequest {
                    patient_id,
                    doctor_id: Uuid::nil(),
                    start: kit::events::now() + chrono::Duration::days(1),
                    duration_minutes: 30,
                    reason: None,
                    notes: None,
                },
                kit::events::now(),
            )
        };
        let (first, second) = (booking(Uuid::now_v7()), booking(Uuid::now_v7()));
        let mut conn = pool.acquire().await.unwrap();
        let written = kit::handle::with_handle(&mut conn, |db| {
            write_row(db, &first, true)?;
            write_row(db, &second, true)
        })
        .await
        .unwrap();
        let error = written.unwrap_err();
        assert!(error.is_raised(OVERLAP_TRIGGER), "{error}");
        assert_eq!(write_failure(error).code.http_status(), 409);
    }
}

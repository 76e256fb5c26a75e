//! The appointment store on PostgreSQL. Several instances may share the database: each change is
//! one transaction.
//!
//! - A change locks its appointment's row (`FOR UPDATE`): concurrent changes to one appointment
//!   queue, and each sees the version the previous one committed.
//! - A change that claims a slot reads its patient and doctor from the directory `FOR SHARE`:
//!   the read-model changes a directory row (a patient deleted) and cancels that person's future
//!   bookings in one transaction, so either it waits for this booking to commit and then
//!   cancels it too, or this booking waits for it and sees the person gone.
//! - The overlap check names the appointment in the way; two bookings that each checked before
//!   the other committed are stopped by the exclusion constraints (SQLSTATE 23P01), which wait
//!   for the other to commit first: the loser then looks again, outside its failed
//!   transaction, and names the winner too, as on SQLite.

use chrono::{DateTime, Utc};
use kit::RequestContext;
use kit::events::{new_event, storage_failure};
use kit::idempotency;
use kit::listing::into_page;
use kit::outbox::{self, OutboxRow};
use kit::postgres::{failure, is_refused_with, sqlstate};
use shared_events::appointment::{Appointment, AppointmentStatus};
use shared_events::{Aggregate, ListQuery, Page, ServiceError};
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use super::rows::COLUMNS;
use super::{Committed, OVERLAP, Party};
use crate::domain::{self, CREATED, Revision};
use crate::filters::AppointmentFilter;

#[derive(sqlx::FromRow)]
struct AppointmentRow {
    id: Uuid,
    patient_id: Uuid,
    doctor_id: Uuid,
    start_at: DateTime<Utc>,
    end_at: DateTime<Utc>,
    duration_minutes: i64,
    reason: Option<String>,
    status: String,
    notes: Option<String>,
    cancellation_reason: Option<String>,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl AppointmentRow {
    fn into_appointment(self) -> Result<Appointment, ServiceError> {
        Ok(Appointment {
            status: AppointmentStatus::parse(&self.status).ok_or_else(|| {
                storage_failure(format!("appointment {}: status {:?}", self.id, self.status))
            })?,
            id: self.id,
            patient_id: self.patient_id,
            doctor_id: self.doctor_id,
            start: self.start_at,
            end: self.end_at,
            duration_minutes: self.duration_minutes,
            reason: self.reason,
            notes: self.notes,
            cancellation_reason: self.cancellation_reason,
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

fn into_appointments(rows: Vec<AppointmentRow>) -> Result<Vec<Appointment>, ServiceError> {
    rows.into_iter()
        .map(AppointmentRow::into_appointment)
        .collect()
}

/// The appointment tables of one PostgreSQL database. Cheap to clone (the pool is shared).
#[derive(Clone)]
pub struct PgAppointments {
    pool: PgPool,
}

impl PgAppointments {
    pub fn new(pool: PgPool) -> Self {
        PgAppointments { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub async fn get(&self, id: Uuid) -> Result<Option<Appointment>, ServiceError> {
        let sql = format!("SELECT {COLUMNS} FROM appointments WHERE id = $1");
        let row: Option<AppointmentRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(failure)?;
        row.map(AppointmentRow::into_appointment).transpose()
    }

    pub async fn list(
        &self,
        filter: &AppointmentFilter,
        query: &ListQuery,
    ) -> Result<Page<Appointment>, ServiceError> {
        let mut sql =
            QueryBuilder::<Postgres>::new(format!("SELECT {COLUMNS} FROM appointments WHERE TRUE"));
        if let Some(after) = query.after {
            let start_at: Option<DateTime<Utc>> =
                sqlx::query_scalar("SELECT start_at FROM appointments WHERE id = $1")
                    .bind(after)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(failure)?;
            let start_at = start_at.ok_or_else(|| {
                ServiceError::bad_request("after must be an id from a previous page")
            })?;
            sql.push(" AND (start_at, id) > (")
                .push_bind(start_at)
                .push(", ")
                .push_bind(after)
                .push(")");
        }
        if let Some(patient_id) = filter.patient_id {
            sql.push(" AND patient_id = ").push_bind(patient_id);
        }
        if let Some(doctor_id) = filter.doctor_id {
            sql.push(" AND doctor_id = ").push_bind(doctor_id);
        }
        if let Some(status) = filter.status {
            sql.push(" AND status = ").push_bind(status.as_str());
        }
        if let Some(from) = filter.from {
            sql.push(" AND start_at >= ").push_bind(from);
        }
        if let Some(to) = filter.to {
            sql.push(" AND start_at < ").push_bind(to);
        }
        sql.push(" ORDER BY start_at, id LIMIT ")
            .push_bind(i64::from(query.effective_limit()) + 1);
        let rows: Vec<AppointmentRow> = sql
            .build_query_as()
            .fetch_all(&self.pool)
            .await
            .map_err(failure)?;
        Ok(into_page(into_appointments(rows)?, query, |a| a.id))
    }

    pub async fn book(
        &self,
        appointment: Appointment,
        context: &RequestContext,
    ) -> Result<Committed, ServiceError> {
        let mut tx = self.pool.begin().await.map_err(failure)?;
        check_people(&mut tx, &appointment).await?;
        refuse_double_booking(&mut tx, &appointment).await?;
        if let Err(error) = write_row(&mut tx, &appointment, true).await {
            drop(tx);
            return Err(self.write_failure(error, &appointment).await);
        }
        let event = append_event(&mut tx, &appointment, CREATED, context)
            .await
            .map_err(failure)?;
        idempotency::remember_pg(&mut tx, context, &appointment)
            .await
            .map_err(failure)?;
        tx.commit().await.map_err(failure)?;
        Ok(Committed {
            appointment,
            event: Some(event),
        })
    }

    pub async fn change(
        &self,
        id: Uuid,
        context: &RequestContext,
        decide: impl FnOnce(&Appointment) -> Result<Option<Revision>, ServiceError> + Send + 'static,
    ) -> Result<Committed, ServiceError> {
        let mut tx = self.pool.begin().await.map_err(failure)?;
        let sql = format!("SELECT {COLUMNS} FROM appointments WHERE id = $1 FOR UPDATE");
        let current = sqlx::query_as::<_, AppointmentRow>(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(failure)?
            .ok_or_else(|| ServiceError::not_found("appointment"))?
            .into_appointment()?;
        // An error (or no change) drops the transaction: rolled back, the row lock released.
        let Some(revision) = decide(&current)? else {
            return Ok(Committed {
                appointment: current,
                event: None,
            });
        };
        if revision.claims_slot {
            check_people(&mut tx, &revision.appointment).await?;
            refuse_double_booking(&mut tx, &revision.appointment).await?;
        }
        let event = match record_revision(&mut tx, &revision, context).await {
            Ok(event) => event,
            Err(error) => {
                drop(tx);
                return Err(self.write_failure(error, &revision.appointment).await);
            }
        };
        idempotency::remember_pg(&mut tx, context, &revision.appointment)
            .await
            .map_err(failure)?;
        tx.commit().await.map_err(failure)?;
        Ok(Committed {
            appointment: revision.appointment,
            event: Some(event),
        })
    }
}

/// The booked appointments of a patient or a doctor that start after `after`, locked for the
/// rest of the caller's transaction (a cascade cancels them).
pub async fn future_bookings(
    conn: &mut PgConnection,
    party: Party,
    person: Uuid,
    after: DateTime<Utc>,
) -> Result<Vec<Appointment>, sqlx::Error> {
    let column = match party {
        Party::Patient => "patient_id",
        Party::Doctor => "doctor_id",
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM appointments
         WHERE {column} = $1 AND status = 'booked' AND start_at > $2 ORDER BY start_at, id
         FOR UPDATE"
    );
    let rows: Vec<AppointmentRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(person)
        .bind(after)
        .fetch_all(conn)
        .await?;
    rows.into_iter()
        .map(|row| {
            row.into_appointment()
                .map_err(|error| sqlx::Error::Decode(error.message.into()))
        })
        .collect()
}

/// Writes a decided change and appends its event, inside the caller's transaction.
pub async fn record_revision(
    conn: &mut PgConnection,
    revision: &Revision,
    context: &RequestContext,
) -> Result<OutboxRow, sqlx::Error> {
    write_row(conn, &revision.appointment, false).await?;
    append_event(conn, &revision.appointment, revision.verb, context).await
}

async fn append_event(
    conn: &mut PgConnection,
    appointment: &Appointment,
    verb: &str,
    context: &RequestContext,
) -> Result<OutboxRow, sqlx::Error> {
    let event = new_event(
        Aggregate::Appointment,
        appointment.id,
        appointment.version,
        verb,
        context,
        appointment.updated_at,
        appointment,
    );
    outbox::append_pg(conn, &event).await
}

/// The people of a slot-claiming change, as the directory holds them, their rows shared-locked
/// until the transaction ends (see the module's documentation).
async fn check_people(
    conn: &mut PgConnection,
    appointment: &Appointment,
) -> Result<(), ServiceError> {
    let patient: Option<(String, bool, i64)> = sqlx::query_as(
        "SELECT name, deleted, version FROM directory_patients WHERE id = $1 FOR SHARE",
    )
    .bind(appointment.patient_id)
    .fetch_optional(&mut *conn)
    .await
    .map_err(failure)?;
    let doctor: Option<(String, String, bool, i64)> = sqlx::query_as(
        "SELECT name, role, deleted, version FROM directory_staff WHERE id = $1 FOR SHARE",
    )
    .bind(appointment.doctor_id)
    .fetch_optional(&mut *conn)
    .await
    .map_err(failure)?;
    super::check_people_rows(appointment, patient, doctor)
}

/// Refuses `candidate` when an active appointment of its doctor or patient overlaps it, naming
/// that appointment (the doctor's first).
async fn refuse_double_booking(
    conn: &mut PgConnection,
    candidate: &Appointment,
) -> Result<(), ServiceError> {
    let sql = format!(
        "(SELECT {COLUMNS} FROM appointments
             WHERE doctor_id = $2 AND tstzrange(start_at, end_at) && tstzrange($4, $5)
               AND status IN ('booked', 'checked_in') AND id <> $1
             ORDER BY start_at LIMIT 1)
         UNION ALL
         (SELECT {COLUMNS} FROM appointments
             WHERE patient_id = $3 AND tstzrange(start_at, end_at) && tstzrange($4, $5)
               AND status IN ('booked', 'checked_in') AND id <> $1
             ORDER BY start_at LIMIT 1)"
    );
    let rows: Vec<AppointmentRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(candidate.id)
        .bind(candidate.doctor_id)
        .bind(candidate.patient_id)
        .bind(candidate.start)
        .bind(candidate.end)
        .fetch_all(&mut *conn)
        .await
        .map_err(failure)?;
    match into_appointments(rows)?
        .iter()
        .find_map(|existing| domain::double_booking(candidate, existing))
    {
        Some(conflict) => Err(conflict),
        None => Ok(()),
    }
}

/// Inserts or replaces the row of `a` (inside the caller's transaction); also the restore's.
pub(crate) async fn write_row(
    conn: &mut PgConnection,
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
        .bind(a.id)
        .bind(a.patient_id)
        .bind(a.doctor_id)
        .bind(a.start)
        .bind(a.end)
        .bind(a.duration_minutes)
        .bind(&a.reason)
        .bind(a.status.as_str())
        .bind(&a.notes)
        .bind(&a.cancellation_reason)
        .bind(a.version)
        .bind(a.created_at)
        .bind(a.updated_at)
        .execute(conn)
        .await?;
    Ok(())
}

impl PgAppointments {
    /// A failed write of `candidate` (its transaction rolled back): the exclusion constraints'
    /// refusal is a double booking (409), naming the appointment that took the slot, which has
    /// committed by now; anything else as [`failure`] says.
    async fn write_failure(&self, error: sqlx::Error, candidate: &Appointment) -> ServiceError {
        if !is_refused_with(&error, sqlstate::EXCLUSION_VIOLATION) {
            return failure(error);
        }
        tracing::info!(%error, "a concurrent booking took the slot first");
        let named = match self.pool.acquire().await {
            Ok(mut conn) => refuse_double_booking(&mut conn, candidate).await,
            Err(error) => Err(failure(error)),
        };
        match named {
            Err(conflict) if conflict.code.http_status() == 409 => conflict,
            // The winner is gone again (cancelled meanwhile) or could not be read: still a 409.
            _ => ServiceError::conflict(OVERLAP),
        }
    }
}

//! The directory: a read-model of the patients and staff members that other services refer to
//! (id, name, role, deleted or not, version), built from their events. The appointment and record
//! services validate references against it, never by calling the owning service.
//!
//! Applying an event is idempotent: a row changes only when the event's aggregate version is
//! newer than the stored one, so redeliveries and out-of-order delivery are harmless.
//!
//! A service with a directory has these tables in its migrations:
//! `directory_patients(id TEXT PRIMARY KEY, name TEXT, deleted INTEGER, version INTEGER)` and
//! `directory_staff(id TEXT PRIMARY KEY, name TEXT, role TEXT, deleted INTEGER, version INTEGER)`.

use std::time::Duration;

use serde::Deserialize;

use shared_events::patient::Patient;
use shared_events::staff::{Staff, StaffRole};
use shared_events::subjects::events_of;
use shared_events::{Aggregate, EventEnvelope, ServiceError};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection, SqlitePool};
use uuid::Uuid;

use crate::events::storage_failure;
use crate::read_model::CatchUp;

/// How long a service waits for its read-model to catch up before deciding that an id is unknown.
pub const CATCH_UP_PATIENCE: Duration = Duration::from_secs(2);

/// The subjects the directory consumes.
pub fn subjects() -> Vec<String> {
    vec![events_of(Aggregate::Patient), events_of(Aggregate::Staff)]
}

/// What the directory knows of a patient.
#[derive(Debug, Clone, PartialEq)]
pub struct KnownPatient {
    pub id: Uuid,
    pub name: String,
    pub deleted: bool,
    pub version: i64,
}

/// What the directory knows of a staff member.
#[derive(Debug, Clone, PartialEq)]
pub struct KnownStaff {
    pub id: Uuid,
    pub name: String,
    pub role: StaffRole,
    pub deleted: bool,
    pub version: i64,
}

/// What applying an event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The row changed (or was created).
    Changed,
    /// The event was not newer than what the directory holds (a redelivery), or not for it.
    Skipped,
}

/// Applies a patient or staff event; other events are [`Applied::Skipped`].
pub async fn apply(
    conn: &mut SqliteConnection,
    event: &EventEnvelope,
) -> Result<Applied, sqlx::Error> {
    let result = match event.aggregate {
        Aggregate::Patient => {
            let patient = decode::<Patient>(event, "patient")?;
            sqlx::query(
                "INSERT INTO directory_patients (id, name, deleted, version) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, deleted = excluded.deleted,
                                                version = excluded.version
                 WHERE excluded.version > directory_patients.version",
            )
            .bind(patient.id.to_string())
            .bind(&patient.name)
            .bind(patient.deleted_at.is_some())
            .bind(event.aggregate_version)
            .execute(conn)
            .await?
        }
        Aggregate::Staff => {
            let staff = decode::<Staff>(event, "staff member")?;
            sqlx::query(
                "INSERT INTO directory_staff (id, name, role, deleted, version) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, role = excluded.role,
                                                deleted = excluded.deleted, version = excluded.version
                 WHERE excluded.version > directory_staff.version",
            )
            .bind(staff.id.to_string())
            .bind(&staff.name)
            .bind(staff.role.as_str())
            .bind(staff.deleted_at.is_some())
            .bind(event.aggregate_version)
            .execute(conn)
            .await?
        }
        Aggregate::Appointment | Aggregate::Record => return Ok(Applied::Skipped),
    };
    Ok(if result.rows_affected() > 0 {
        Applied::Changed
    } else {
        Applied::Skipped
    })
}

/// Applies many patient and staff events in order, in a few multi-row statements (a rebuild):
/// the same result as [`apply`] on each, since every row keeps its newest version. Other
/// events are ignored.
pub async fn apply_many(
    conn: &mut SqliteConnection,
    events: &[&EventEnvelope],
) -> Result<(), sqlx::Error> {
    const ROWS: usize = 200;
    let mut patients = Vec::new();
    let mut staff = Vec::new();
    for event in events {
        match event.aggregate {
            Aggregate::Patient => {
                let patient = decode::<Patient>(event, "patient")?;
                patients.push((patient, event.aggregate_version));
            }
            Aggregate::Staff => {
                let member = decode::<Staff>(event, "staff member")?;
                staff.push((member, event.aggregate_version));
            }
            Aggregate::Appointment | Aggregate::Record => {}
        }
    }
    for chunk in patients.chunks(ROWS) {
        let mut sql = QueryBuilder::<Sqlite>::new(
            "INSERT INTO directory_patients (id, name, deleted, version) ",
        );
        sql.push_values(chunk, |mut row, (patient, version)| {
            row.push_bind(patient.id.to_string())
                .push_bind(&patient.name)
                .push_bind(patient.deleted_at.is_some())
                .push_bind(*version);
        });
        sql.push(
            " ON CONFLICT (id) DO UPDATE SET name = excluded.name, deleted = excluded.deleted,
                                            version = excluded.version
              WHERE excluded.version > directory_patients.version",
        );
        sql.build().execute(&mut *conn).await?;
    }
    for chunk in staff.chunks(ROWS) {
        let mut sql = QueryBuilder::<Sqlite>::new(
            "INSERT INTO directory_staff (id, name, role, deleted, version) ",
        );
        sql.push_values(chunk, |mut row, (member, version)| {
            row.push_bind(member.id.to_string())
                .push_bind(&member.name)
                .push_bind(member.role.as_str())
                .push_bind(member.deleted_at.is_some())
                .push_bind(*version);
        });
        sql.push(
            " ON CONFLICT (id) DO UPDATE SET name = excluded.name, role = excluded.role,
                                            deleted = excluded.deleted, version = excluded.version
              WHERE excluded.version > directory_staff.version",
        );
        sql.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Decodes an event's `data` (without copying it). A failure is `sqlx::Error::Decode`, which
/// the read-model runner treats as permanent and parks the event.
pub fn decode<'a, T: Deserialize<'a>>(
    event: &'a EventEnvelope,
    what: &str,
) -> Result<T, sqlx::Error> {
    T::deserialize(&event.data).map_err(|error| {
        sqlx::Error::Decode(
            format!(
                "{} event {} does not carry a {what}: {error}",
                event.aggregate.as_str(),
                event.event_id
            )
            .into(),
        )
    })
}

/// Empties the directory tables (a rebuild starts from nothing).
pub async fn reset(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM directory_patients")
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM directory_staff")
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Looks people up in the directory, waiting for the read-model to catch up when an id is not
/// known yet (read-your-writes for a client that has just created it).
#[derive(Clone)]
pub struct Directory {
    pool: SqlitePool,
    catch_up: CatchUp,
}

impl Directory {
    pub fn new(pool: SqlitePool, catch_up: CatchUp) -> Self {
        Directory { pool, catch_up }
    }

    pub async fn patient(&self, id: Uuid) -> Result<Option<KnownPatient>, ServiceError> {
        if let Some(known) = self.patient_now(id).await? {
            return Ok(Some(known));
        }
        self.catch_up.wait(CATCH_UP_PATIENCE).await;
        self.patient_now(id).await
    }

    pub async fn staff(&self, id: Uuid) -> Result<Option<KnownStaff>, ServiceError> {
        if let Some(known) = self.staff_now(id).await? {
            return Ok(Some(known));
        }
        self.catch_up.wait(CATCH_UP_PATIENCE).await;
        self.staff_now(id).await
    }

    /// What the directory holds right now, without waiting.
    pub async fn patient_now(&self, id: Uuid) -> Result<Option<KnownPatient>, ServiceError> {
        let row: Option<(String, bool, i64)> =
            sqlx::query_as("SELECT name, deleted, version FROM directory_patients WHERE id = $1")
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await
                .map_err(storage_failure)?;
        Ok(row.map(|(name, deleted, version)| KnownPatient {
            id,
            name,
            deleted,
            version,
        }))
    }

    pub async fn staff_now(&self, id: Uuid) -> Result<Option<KnownStaff>, ServiceError> {
        let row: Option<(String, String, bool, i64)> = sqlx::query_as(
            "SELECT name, role, deleted, version FROM directory_staff WHERE id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(storage_failure)?;
        row.map(|(name, role, deleted, version)| {
            let role =
                StaffRole::parse(&role).ok_or_else(|| storage_failure(format!("role {role:?}")))?;
            Ok(KnownStaff {
                id,
                name,
                role,
                deleted,
                version,
            })
        })
        .transpose()
    }

    pub fn catch_up(&self) -> &CatchUp {
        &self.catch_up
    }
}

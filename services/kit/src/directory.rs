//! The directory: a read-model of the patients and staff members that other services refer to
//! (id, name, role, deleted or not, version), built from their events. The appointment and record
//! services validate references against it, never by calling the owning service.
//!
//! Applying an event is idempotent: a row changes only when the event's aggregate version is
//! newer than the stored one, so redeliveries and out-of-order delivery are harmless.
//!
//! A service with a directory has these tables in its migrations:
//! `directory_patients(id TEXT PRIMARY KEY, name TEXT, deleted INTEGER, version INTEGER)` and
//! `directory_staff(id TEXT PRIMARY KEY, name TEXT, role TEXT, deleted INTEGER, version INTEGER)`
//! (on PostgreSQL `id` is a uuid, `deleted` a boolean, `version` a bigint). Applying events is
//! written once per backend, in [`sqlite`] and [`postgres`] (for each backend's projections);
//! the lookups ([`Directory`]) serve both.

pub mod postgres;
pub mod sqlite;

use std::time::Duration;

use serde::Deserialize;

use shared_events::patient::Patient;
use shared_events::staff::{Staff, StaffRole};
use shared_events::subjects::events_of;
use shared_events::{Aggregate, EventEnvelope, ServiceError};
use sqlx::{PgPool, SqlitePool};
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

/// An event's `data`, decoded for the directory.
enum Decoded {
    Patient(Patient),
    Staff(Staff),
    /// Not a patient or staff event: nothing for the directory.
    Other,
}

fn decode_event(event: &EventEnvelope) -> Result<Decoded, sqlx::Error> {
    Ok(match event.aggregate {
        Aggregate::Patient => Decoded::Patient(decode(event, "patient")?),
        Aggregate::Staff => Decoded::Staff(decode(event, "staff member")?),
        Aggregate::Appointment | Aggregate::Record => Decoded::Other,
    })
}

/// The patients and staff members of `events`, in order, each with its event's version.
type PeopleEvents = (Vec<(Patient, i64)>, Vec<(Staff, i64)>);

fn decode_events(events: &[&EventEnvelope]) -> Result<PeopleEvents, sqlx::Error> {
    let mut patients = Vec::new();
    let mut staff = Vec::new();
    for event in events {
        match decode_event(event)? {
            Decoded::Patient(patient) => patients.push((patient, event.aggregate_version)),
            Decoded::Staff(member) => staff.push((member, event.aggregate_version)),
            Decoded::Other => {}
        }
    }
    Ok((patients, staff))
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

/// The directory tables to read, on either backend.
#[derive(Clone)]
pub enum DirectoryTables {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl From<SqlitePool> for DirectoryTables {
    fn from(pool: SqlitePool) -> Self {
        DirectoryTables::Sqlite(pool)
    }
}

impl From<&crate::database::Database> for DirectoryTables {
    fn from(database: &crate::database::Database) -> Self {
        match database {
            crate::database::Database::Sqlite { pool, .. } => DirectoryTables::Sqlite(pool.clone()),
            crate::database::Database::Postgres(pool) => DirectoryTables::Postgres(pool.clone()),
        }
    }
}

impl From<PgPool> for DirectoryTables {
    fn from(pool: PgPool) -> Self {
        DirectoryTables::Postgres(pool)
    }
}

/// Looks people up in the directory, waiting for the read-model to catch up when an id is not
/// known yet (read-your-writes for a client that has just created it).
#[derive(Clone)]
pub struct Directory {
    tables: DirectoryTables,
    catch_up: CatchUp,
}

impl Directory {
    /// The directory in `tables` (a SQLite or PostgreSQL pool).
    pub fn new(tables: impl Into<DirectoryTables>, catch_up: CatchUp) -> Self {
        Directory {
            tables: tables.into(),
            catch_up,
        }
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
        let row = match &self.tables {
            DirectoryTables::Sqlite(pool) => sqlite::patient(pool, id).await,
            DirectoryTables::Postgres(pool) => postgres::patient(pool, id).await,
        }
        .map_err(storage_failure)?;
        Ok(row.map(|(name, deleted, version)| KnownPatient {
            id,
            name,
            deleted,
            version,
        }))
    }

    pub async fn staff_now(&self, id: Uuid) -> Result<Option<KnownStaff>, ServiceError> {
        let row = match &self.tables {
            DirectoryTables::Sqlite(pool) => sqlite::staff(pool, id).await,
            DirectoryTables::Postgres(pool) => postgres::staff(pool, id).await,
        }
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

//! The appointment service's store: one interface ([`AppointmentStore`]) over its two
//! implementations, SQLite ([`sqlite`], the default) and PostgreSQL ([`postgres`], the
//! scale-out mode). Both keep the same promises: a change and its event (the outbox row) and
//! its `Idempotency-Key` are committed together or not at all; a change that claims a slot
//! checks, in its own transaction, that its people are still there and that no active
//! appointment of the doctor or the patient overlaps it; and the database itself refuses any
//! overlap that slips past (a trigger on SQLite, exclusion constraints on PostgreSQL), so no two
//! concurrent bookings can both take a slot.

pub mod postgres;
pub(crate) mod rows;
pub mod sqlite;

use kit::RequestContext;
use kit::database::{Database, Migrations};
use kit::directory::{KnownPatient, KnownStaff};
use kit::events::storage_failure;
use kit::outbox::OutboxRow;
use shared_events::appointment::Appointment;
use shared_events::staff::StaffRole;
use shared_events::subjects::service;
use shared_events::{ListQuery, Page, ServiceError};
use sqlx::SqlitePool;
use uuid::Uuid;

use crate::domain::{self, Revision};
use crate::filters::AppointmentFilter;

pub use postgres::PgAppointments;
pub use sqlite::{SqliteAppointments, future_bookings, record_revision};

pub static MIGRATOR: sqlx::migrate::Migrator =
    sqlx::migrate!("../../migrations/appointment/sqlite");
pub static PG_MIGRATOR: sqlx::migrate::Migrator =
    sqlx::migrate!("../../migrations/appointment/postgres");

/// The appointment database's migrations on both backends.
pub const MIGRATIONS: Migrations = Migrations {
    service: service::APPOINTMENT,
    sqlite: &MIGRATOR,
    postgres: &PG_MIGRATOR,
};

/// The message both backends give a booking refused by the database's own overlap rule.
const OVERLAP: &str =
    "the appointment overlaps another active appointment of the doctor or the patient";

/// A committed change: the new state and the event to publish (none when nothing changed).
pub struct Committed {
    pub appointment: Appointment,
    pub event: Option<OutboxRow>,
}

/// Whose appointments a cascade looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Party {
    Patient,
    Doctor,
}

/// A directory row of a patient: (name, deleted, version).
type PatientRow = (String, bool, i64);
/// A directory row of a staff member: (name, role, deleted, version).
type StaffRow = (String, String, bool, i64);

/// Checks the people of a slot-claiming change from their directory rows as its transaction
/// read them: a 422 naming each problem (unknown, deleted, not a doctor), on either backend.
fn check_people_rows(
    appointment: &Appointment,
    patient: Option<PatientRow>,
    doctor: Option<StaffRow>,
) -> Result<(), ServiceError> {
    let patient = patient.map(|(name, deleted, version)| KnownPatient {
        id: appointment.patient_id,
        name,
        deleted,
        version,
    });
    let doctor = doctor
        .map(|(name, role, deleted, version)| {
            let role =
                StaffRole::parse(&role).ok_or_else(|| storage_failure(format!("role {role:?}")))?;
            Ok::<_, ServiceError>(KnownStaff {
                id: appointment.doctor_id,
                name,
                role,
                deleted,
                version,
            })
        })
        .transpose()?;
    let problems: Vec<_> = [
        domain::patient_problem(patient.as_ref()),
        domain::doctor_problem(doctor.as_ref()),
    ]
    .into_iter()
    .flatten()
    .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ServiceError::validation(problems))
    }
}

/// The appointment tables, on whichever backend the service's database is. Cheap to clone.
#[derive(Clone)]
pub enum AppointmentStore {
    Sqlite(SqliteAppointments),
    Postgres(PgAppointments),
}

impl AppointmentStore {
    /// The store of a SQLite database; `writer` is its one group committer.
    pub fn new(pool: SqlitePool, writer: kit::group_commit::Writer) -> Self {
        AppointmentStore::Sqlite(SqliteAppointments::new(pool, writer))
    }

    pub fn from_database(database: &Database) -> Self {
        match database {
            Database::Sqlite { pool, writer } => {
                AppointmentStore::new(pool.clone(), writer.clone())
            }
            Database::Postgres(pool) => {
                AppointmentStore::Postgres(PgAppointments::new(pool.clone()))
            }
        }
    }

    /// Any appointment, cancelled ones included: they stay readable.
    pub async fn get(&self, id: Uuid) -> Result<Option<Appointment>, ServiceError> {
        match self {
            AppointmentStore::Sqlite(store) => store.get(id).await,
            AppointmentStore::Postgres(store) => store.get(id).await,
        }
    }

    /// One page in start order (then id), continuing after the appointment `query.after`.
    pub async fn list(
        &self,
        filter: &AppointmentFilter,
        query: &ListQuery,
    ) -> Result<Page<Appointment>, ServiceError> {
        match self {
            AppointmentStore::Sqlite(store) => store.list(filter, query).await,
            AppointmentStore::Postgres(store) => store.list(filter, query).await,
        }
    }

    /// Books `appointment`: checks its people and its slot and inserts it with its `created`
    /// event, all in one transaction.
    pub async fn book(
        &self,
        appointment: Appointment,
        context: &RequestContext,
    ) -> Result<Committed, ServiceError> {
        match self {
            AppointmentStore::Sqlite(store) => store.book(appointment, context).await,
            AppointmentStore::Postgres(store) => store.book(appointment, context).await,
        }
    }

    /// Loads an appointment, lets `decide` produce its next state (or `None` for no change),
    /// and stores it with its event, all in one transaction: concurrent changes to one
    /// appointment are serialised and `If-Match` checks see the latest version.
    pub async fn change(
        &self,
        id: Uuid,
        context: &RequestContext,
        decide: impl FnOnce(&Appointment) -> Result<Option<Revision>, ServiceError> + Send + 'static,
    ) -> Result<Committed, ServiceError> {
        match self {
            AppointmentStore::Sqlite(store) => store.change(id, context, decide).await,
            AppointmentStore::Postgres(store) => store.change(id, context, decide).await,
        }
    }
}

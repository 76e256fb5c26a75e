//! The patient service's store: one interface ([`PatientStore`]) over its two implementations,
//! SQLite ([`sqlite`], the default) and PostgreSQL ([`postgres`], the scale-out mode), chosen by
//! `DATABASE_URL_PATIENT`. Both keep the same promises: a change, its search words, its event
//! (the outbox row) and its `Idempotency-Key` are committed together or not at all, and
//! concurrent changes to one patient are serialised, so `If-Match` sees the latest version.

pub mod postgres;
pub mod sqlite;

use kit::RequestContext;
use kit::database::{Database, Migrations};
use kit::listing::SearchableTable;
use kit::outbox::OutboxRow;
use shared_events::patient::Patient;
use shared_events::subjects::service;
use shared_events::{ListQuery, Page, ServiceError};
use uuid::Uuid;

pub use postgres::PgPatients;
pub use sqlite::SqlitePatients;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/patient/sqlite");
pub static PG_MIGRATOR: sqlx::migrate::Migrator =
    sqlx::migrate!("../../migrations/patient/postgres");

/// The patient database's migrations on both backends.
pub const MIGRATIONS: Migrations = Migrations {
    service: service::PATIENT,
    sqlite: &MIGRATOR,
    postgres: &PG_MIGRATOR,
};

const COLUMNS: &str = "id, mrn, name, birth_date, sex, phone, email, address, version, created_at, updated_at, deleted_at";

pub(crate) const PATIENTS: SearchableTable = SearchableTable {
    table: "patients",
    columns: COLUMNS,
    words_table: "patient_name_words",
    words_owner: "patient_id",
    exact_column: Some("mrn"),
};

/// How many fresh MRNs to try before giving up (a collision is a one-in-a-billion event per row).
const MRN_ATTEMPTS: usize = 5;

/// A committed change: the new state and the event to publish.
pub struct Committed {
    pub patient: Patient,
    pub event: Option<OutboxRow>,
}

/// The patient tables, on whichever backend the service's database is. Cheap to clone.
#[derive(Clone)]
pub enum PatientStore {
    Sqlite(SqlitePatients),
    Postgres(PgPatients),
}

impl PatientStore {
    pub fn new(database: &Database) -> Self {
        match database {
            Database::Sqlite { pool, writer } => {
                PatientStore::Sqlite(SqlitePatients::new(pool.clone(), writer.clone()))
            }
            Database::Postgres(pool) => PatientStore::Postgres(PgPatients::new(pool.clone())),
        }
    }

    /// A live (not deleted) patient.
    pub async fn get(&self, id: Uuid) -> Result<Option<Patient>, ServiceError> {
        match self {
            PatientStore::Sqlite(store) => store.get(id).await,
            PatientStore::Postgres(store) => store.get(id).await,
        }
    }

    /// One page of live patients, searched by name words or an exact MRN.
    pub async fn list(&self, query: &ListQuery) -> Result<Page<Patient>, ServiceError> {
        match self {
            PatientStore::Sqlite(store) => store.list(query).await,
            PatientStore::Postgres(store) => store.list(query).await,
        }
    }

    /// Registers a new patient made by `make` from a fresh MRN, retrying with another MRN on
    /// the (rare) collision.
    pub async fn create(
        &self,
        context: &RequestContext,
        make: impl Fn(String) -> Patient,
    ) -> Result<Committed, ServiceError> {
        match self {
            PatientStore::Sqlite(store) => store.create(context, make).await,
            PatientStore::Postgres(store) => store.create(context, make).await,
        }
    }

    /// Loads a live patient, lets `decide` produce its next state (or `None` for no change), and
    /// stores it with a `verb` event, all in one transaction.
    pub async fn change(
        &self,
        id: Uuid,
        verb: &'static str,
        context: &RequestContext,
        decide: impl FnOnce(&Patient) -> Result<Option<Patient>, ServiceError> + Send + 'static,
    ) -> Result<Committed, ServiceError> {
        match self {
            PatientStore::Sqlite(store) => store.change(id, verb, context, decide).await,
            PatientStore::Postgres(store) => store.change(id, verb, context, decide).await,
        }
    }
}

//! The record service's store: one interface ([`RecordStore`]) over its two implementations,
//! SQLite ([`sqlite`], the default) and PostgreSQL ([`postgres`], the scale-out mode). Both keep
//! the same promises: a change writes the record's current state, its new version in
//! `record_versions` (append-only) and its event (the outbox row) in one transaction, with its
//! `Idempotency-Key`; concurrent amendments of one record are serialised, so `If-Match` sees
//! the latest version.

pub mod postgres;
pub mod sqlite;

use kit::RequestContext;
use kit::database::{Database, Migrations};
use kit::outbox::OutboxRow;
use shared_events::record::{MedicalRecord, RecordVersion};
use shared_events::subjects::service;
use shared_events::{ListQuery, Page, ServiceError};
use sqlx::SqlitePool;
use uuid::Uuid;

use crate::domain::Change;
use crate::timeline::RecordFilter;

pub use postgres::PgRecords;
pub use sqlite::SqliteRecords;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/record/sqlite");
pub static PG_MIGRATOR: sqlx::migrate::Migrator =
    sqlx::migrate!("../../migrations/record/postgres");

/// The record database's migrations on both backends.
pub const MIGRATIONS: Migrations = Migrations {
    service: service::RECORD,
    sqlite: &MIGRATOR,
    postgres: &PG_MIGRATOR,
};

const COLUMNS: &str = "id, patient_id, author_id, appointment_id, kind, title, body, diagnoses, vitals, recorded_at, status, version, created_at, updated_at";

/// What `write_version` (either backend's) does when the version is already stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VersionRepeat {
    /// A change: the version must be new (the primary key refuses a repeat).
    Refuse,
    /// A restore from events, which may hold a repeat: keep what is stored.
    Ignore,
}

/// A committed change: the new state and the event to publish (none when nothing changed).
pub struct Committed {
    pub record: MedicalRecord,
    pub event: Option<OutboxRow>,
}

/// The record tables, on whichever backend the service's database is. Cheap to clone.
#[derive(Clone)]
pub enum RecordStore {
    Sqlite(SqliteRecords),
    Postgres(PgRecords),
}

impl RecordStore {
    /// The store of a SQLite database; `writer` is its one group committer.
    pub fn new(pool: SqlitePool, writer: kit::group_commit::Writer) -> Self {
        RecordStore::Sqlite(SqliteRecords::new(pool, writer))
    }

    pub fn from_database(database: &Database) -> Self {
        match database {
            Database::Sqlite { pool, writer } => RecordStore::new(pool.clone(), writer.clone()),
            Database::Postgres(pool) => RecordStore::Postgres(PgRecords::new(pool.clone())),
        }
    }

    /// A record in any status: an entered-in-error record is still shown when asked for by id.
    pub async fn get(&self, id: Uuid) -> Result<Option<MedicalRecord>, ServiceError> {
        match self {
            RecordStore::Sqlite(store) => store.get(id).await,
            RecordStore::Postgres(store) => store.get(id).await,
        }
    }

    /// One page of a timeline, newest first.
    pub async fn list(
        &self,
        filter: &RecordFilter,
        query: &ListQuery,
    ) -> Result<Page<MedicalRecord>, ServiceError> {
        match self {
            RecordStore::Sqlite(store) => store.list(filter, query).await,
            RecordStore::Postgres(store) => store.list(filter, query).await,
        }
    }

    /// Every version of a record, oldest first; empty when there is no such record.
    pub async fn history(&self, id: Uuid) -> Result<Vec<RecordVersion>, ServiceError> {
        match self {
            RecordStore::Sqlite(store) => store.history(id).await,
            RecordStore::Postgres(store) => store.history(id).await,
        }
    }

    /// Stores a new record with its first version and its `created` event.
    pub async fn create(
        &self,
        record: MedicalRecord,
        context: &RequestContext,
    ) -> Result<Committed, ServiceError> {
        match self {
            RecordStore::Sqlite(store) => store.create(record, context).await,
            RecordStore::Postgres(store) => store.create(record, context).await,
        }
    }

    /// Loads a record, lets `decide` produce its next state (or `None` for no change), and
    /// stores it as a `change`, all in one transaction.
    pub async fn change(
        &self,
        id: Uuid,
        change: Change,
        context: &RequestContext,
        decide: impl FnOnce(&MedicalRecord) -> Result<Option<MedicalRecord>, ServiceError>
        + Send
        + 'static,
    ) -> Result<Committed, ServiceError> {
        match self {
            RecordStore::Sqlite(store) => store.change(id, change, context, decide).await,
            RecordStore::Postgres(store) => store.change(id, change, context, decide).await,
        }
    }
}

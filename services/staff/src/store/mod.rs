//! The staff service's store: one interface ([`StaffStore`]) over its two implementations,
//! SQLite ([`sqlite`], the default) and PostgreSQL ([`postgres`], the scale-out mode), chosen by
//! `DATABASE_URL_STAFF`. Both keep the same promises: a change, its search words, its event (the
//! outbox row) and its `Idempotency-Key` are committed together or not at all; concurrent
//! changes to one staff member are serialised, so `If-Match` sees the latest version; and a
//! username belongs to one active staff member (a taken one is the client's 409).

pub mod postgres;
pub mod sqlite;

use kit::RequestContext;
use kit::database::{Database, Migrations};
use kit::listing::SearchableTable;
use kit::outbox::OutboxRow;
use shared_events::staff::{Staff, StaffRole};
use shared_events::subjects::service;
use shared_events::{ListQuery, Page, ServiceError};
use uuid::Uuid;

pub use postgres::PgStaff;
pub use sqlite::SqliteStaff;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/staff/sqlite");
pub static PG_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/staff/postgres");

/// The staff database's migrations on both backends.
pub const MIGRATIONS: Migrations = Migrations {
    service: service::STAFF,
    sqlite: &MIGRATOR,
    postgres: &PG_MIGRATOR,
};

const COLUMNS: &str = "id, name, role, specialization, phone, email, username, version, created_at, updated_at, deleted_at";

pub(crate) const STAFF: SearchableTable = SearchableTable {
    table: "staff",
    columns: COLUMNS,
    words_table: "staff_name_words",
    words_owner: "staff_id",
    exact_column: Some("username"),
};

/// What the store does with the password hash as part of a change.
#[derive(Debug, Clone, PartialEq)]
pub enum HashUpdate {
    Keep,
    Clear,
    /// An argon2id PHC string.
    Set(String),
}

/// A committed change: the new state and the event to publish.
#[derive(Debug)]
pub struct Committed {
    pub staff: Staff,
    pub event: Option<OutboxRow>,
}

/// A login that may be checked: the hash and who it belongs to.
pub struct Account {
    pub staff_id: Uuid,
    pub name: String,
    pub role: StaffRole,
    pub password_hash: String,
}

/// The staff tables, on whichever backend the service's database is. Cheap to clone.
#[derive(Clone)]
pub enum StaffStore {
    Sqlite(SqliteStaff),
    Postgres(PgStaff),
}

impl StaffStore {
    pub fn new(database: &Database) -> Self {
        match database {
            Database::Sqlite { pool, writer } => {
                StaffStore::Sqlite(SqliteStaff::new(pool.clone(), writer.clone()))
            }
            Database::Postgres(pool) => StaffStore::Postgres(PgStaff::new(pool.clone())),
        }
    }

    /// A live (not deleted) staff member.
    pub async fn get(&self, id: Uuid) -> Result<Option<Staff>, ServiceError> {
        match self {
            StaffStore::Sqlite(store) => store.get(id).await,
            StaffStore::Postgres(store) => store.get(id).await,
        }
    }

    /// One page of live staff members, searched by name words or an exact username.
    pub async fn list(&self, query: &ListQuery) -> Result<Page<Staff>, ServiceError> {
        match self {
            StaffStore::Sqlite(store) => store.list(query).await,
            StaffStore::Postgres(store) => store.list(query).await,
        }
    }

    /// The account behind an active staff member's username.
    pub async fn account(&self, username: &str) -> Result<Option<Account>, ServiceError> {
        match self {
            StaffStore::Sqlite(store) => store.account(username).await,
            StaffStore::Postgres(store) => store.account(username).await,
        }
    }

    /// Whether any active administrator can log in.
    pub async fn has_admin_login(&self) -> Result<bool, ServiceError> {
        match self {
            StaffStore::Sqlite(store) => store.has_admin_login().await,
            StaffStore::Postgres(store) => store.has_admin_login().await,
        }
    }

    /// Registers a new staff member, with `password_hash` when they get a login.
    pub async fn create(
        &self,
        staff: Staff,
        password_hash: Option<String>,
        context: &RequestContext,
    ) -> Result<Committed, ServiceError> {
        match self {
            StaffStore::Sqlite(store) => store.create(staff, password_hash, context).await,
            StaffStore::Postgres(store) => store.create(staff, password_hash, context).await,
        }
    }

    /// Loads a live staff member, lets `decide` produce the next state (or `None` for no
    /// change), and stores it with a `verb` event, all in one transaction.
    pub async fn change(
        &self,
        id: Uuid,
        verb: &'static str,
        context: &RequestContext,
        decide: impl FnOnce(&Staff) -> Result<Option<(Staff, HashUpdate)>, ServiceError>
        + Send
        + 'static,
    ) -> Result<Committed, ServiceError> {
        match self {
            StaffStore::Sqlite(store) => store.change(id, verb, context, decide).await,
            StaffStore::Postgres(store) => store.change(id, verb, context, decide).await,
        }
    }
}

/// The client's error for a username another active staff member has.
fn username_taken(username: Option<&str>) -> ServiceError {
    ServiceError::conflict(format!(
        "the username {:?} is already taken",
        username.unwrap_or_default()
    ))
}

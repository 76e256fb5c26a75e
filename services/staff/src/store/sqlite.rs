//! The staff store on SQLite. Every change writes the staff row, its search words and its event
//! (the outbox row) in one immediate transaction.

use kit::RequestContext;
use kit::events::{format_timestamp, new_event, parse_timestamp, storage_failure};
use kit::group_commit::{Db, WriteError, Writer};
use kit::idempotency;
use kit::listing::into_page;
use kit::outbox::{self, OutboxRow};
use shared_events::staff::{Staff, StaffRole};
use shared_events::{Aggregate, ListQuery, Page, ServiceError};
use sqlx::SqlitePool;
use uuid::Uuid;

use super::{Account, Committed, HashUpdate, STAFF, username_taken};

#[derive(sqlx::FromRow)]
struct StaffRow {
    id: String,
    name: String,
    role: String,
    specialization: Option<String>,
    phone: Option<String>,
    email: Option<String>,
    username: Option<String>,
    version: i64,
    created_at: String,
    updated_at: String,
    deleted_at: Option<String>,
}

impl StaffRow {
    /// The row as read inside a write, columns in [`super::COLUMNS`] order.
    fn from_handle(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(StaffRow {
            id: row.get(0)?,
            name: row.get(1)?,
            role: row.get(2)?,
            specialization: row.get(3)?,
            phone: row.get(4)?,
            email: row.get(5)?,
            username: row.get(6)?,
            version: row.get(7)?,
            created_at: row.get(8)?,
            updated_at: row.get(9)?,
            deleted_at: row.get(10)?,
        })
    }

    fn into_staff(self) -> Result<Staff, String> {
        Ok(Staff {
            id: self
                .id
                .parse()
                .map_err(|e| format!("id {}: {e}", self.id))?,
            role: StaffRole::parse(&self.role).ok_or_else(|| format!("role {:?}", self.role))?,
            created_at: parse_timestamp(&self.created_at)
                .map_err(|e| format!("created_at: {e}"))?,
            updated_at: parse_timestamp(&self.updated_at)
                .map_err(|e| format!("updated_at: {e}"))?,
            deleted_at: self
                .deleted_at
                .as_deref()
                .map(parse_timestamp)
                .transpose()
                .map_err(|e| format!("deleted_at: {e}"))?,
            name: self.name,
            specialization: self.specialization,
            phone: self.phone,
            email: self.email,
            username: self.username,
            version: self.version,
        })
    }
}

/// The staff tables of one SQLite database. Cheap to clone (the pool is shared).
#[derive(Clone)]
pub struct SqliteStaff {
    pool: SqlitePool,
    /// Every change goes through the group committer (see `kit::group_commit`).
    writer: Writer,
}

impl SqliteStaff {
    /// `writer` is the database's one group committer (`kit::database::Database::Sqlite`).
    pub fn new(pool: SqlitePool, writer: Writer) -> Self {
        SqliteStaff { writer, pool }
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    pub async fn get(&self, id: Uuid) -> Result<Option<Staff>, ServiceError> {
        let row: Option<StaffRow> = STAFF
            .live_row(&self.pool, id)
            .await
            .map_err(storage_failure)?;
        row.map(StaffRow::into_staff)
            .transpose()
            .map_err(storage_failure)
    }

    pub async fn list(&self, query: &ListQuery) -> Result<Page<Staff>, ServiceError> {
        let rows: Vec<StaffRow> = STAFF
            .page_rows(&self.pool, query)
            .await
            .map_err(storage_failure)?;
        let staff = rows
            .into_iter()
            .map(StaffRow::into_staff)
            .collect::<Result<Vec<_>, _>>();
        Ok(into_page(staff.map_err(storage_failure)?, query, |s| s.id))
    }

    /// The account behind an active staff member's username.
    pub async fn account(&self, username: &str) -> Result<Option<Account>, ServiceError> {
        let row: Option<(String, String, String, String)> = sqlx::query_as(
            "SELECT id, name, role, password_hash FROM staff
             WHERE username = $1 AND deleted_at IS NULL AND password_hash IS NOT NULL",
        )
        .bind(username)
        .fetch_optional(&self.pool)
        .await
        .map_err(storage_failure)?;
        row.map(|(id, name, role, password_hash)| {
            Ok(Account {
                staff_id: id.parse().map_err(storage_failure)?,
                role: StaffRole::parse(&role)
                    .ok_or_else(|| storage_failure(format!("role {role:?}")))?,
                name,
                password_hash,
            })
        })
        .transpose()
    }

    /// Whether any active administrator can log in.
    pub async fn has_admin_login(&self) -> Result<bool, ServiceError> {
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM staff WHERE role = 'admin' AND deleted_at IS NULL AND username IS NOT NULL",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(storage_failure)?;
        Ok(count > 0)
    }

    pub async fn create(
        &self,
        staff: Staff,
        password_hash: Option<String>,
        context: &RequestContext,
    ) -> Result<Committed, ServiceError> {
        let context = context.clone();
        self.writer
            .write(move |db| {
                let hash = password_hash.map_or(HashUpdate::Keep, HashUpdate::Set);
                let event = insert_staff(db, &staff, &hash, &context)
                    .map_err(|e| username_conflict(e, staff.username.as_deref()))?;
                Ok(Committed {
                    staff,
                    event: Some(event),
                })
            })
            .await
    }

    /// Loads a live staff member, lets `decide` produce the next state, and stores it with a
    /// `verb` event in one write transaction.
    pub async fn change(
        &self,
        id: Uuid,
        verb: &'static str,
        context: &RequestContext,
        decide: impl FnOnce(&Staff) -> Result<Option<(Staff, HashUpdate)>, ServiceError>
        + Send
        + 'static,
    ) -> Result<Committed, ServiceError> {
        let context = context.clone();
        self.writer
            .write(move |db| {
                let current = STAFF
                    .live_row_in(db, id, StaffRow::from_handle)
                    .map_err(storage_failure)?
                    .ok_or_else(|| ServiceError::not_found("staff member"))?
                    .into_staff()
                    .map_err(storage_failure)?;
                let Some((next, hash)) = decide(&current)? else {
                    return Ok(Committed {
                        staff: current,
                        event: None,
                    });
                };
                let event = update_staff(db, &current, &next, &hash, verb, &context)
                    .map_err(|e| username_conflict(e, next.username.as_deref()))?;
                Ok(Committed {
                    staff: next,
                    event: Some(event),
                })
            })
            .await
    }
}

fn insert_staff(
    db: &Db,
    staff: &Staff,
    hash: &HashUpdate,
    context: &RequestContext,
) -> Result<OutboxRow, WriteError> {
    write_row(db, staff, hash, true)?;
    STAFF.index_new_name(db, staff.id, &staff.name)?;
    let event = new_event(
        Aggregate::Staff,
        staff.id,
        1,
        "created",
        context,
        staff.updated_at,
        staff,
    );
    let row = outbox::append(db, &event)?;
    idempotency::remember(db, context, staff)?;
    Ok(row)
}

fn update_staff(
    db: &Db,
    current: &Staff,
    next: &Staff,
    hash: &HashUpdate,
    verb: &str,
    context: &RequestContext,
) -> Result<OutboxRow, WriteError> {
    write_row(db, next, hash, false)?;
    if next.name != current.name {
        STAFF.index_name(db, next.id, &next.name)?;
    }
    let event = new_event(
        Aggregate::Staff,
        next.id,
        next.version,
        verb,
        context,
        next.updated_at,
        next,
    );
    let row = outbox::append(db, &event)?;
    idempotency::remember(db, context, next)?;
    Ok(row)
}

/// A taken username is the client's conflict; anything else is ours.
fn username_conflict(error: WriteError, username: Option<&str>) -> ServiceError {
    if error.is_unique_violation() {
        return username_taken(username);
    }
    error.into()
}

/// Writes the row; the username and its password hash change in the same statement, so the
/// table's rule "a username always has a hash" holds after every statement.
pub(crate) fn write_row(
    db: &Db,
    s: &Staff,
    hash: &HashUpdate,
    insert: bool,
) -> rusqlite::Result<()> {
    let (new_hash, clear) = match hash {
        HashUpdate::Keep => (None, false),
        HashUpdate::Clear => (None, true),
        HashUpdate::Set(h) => (Some(h.as_str()), false),
    };
    let id = s.id.to_string();
    let created_at = format_timestamp(s.created_at);
    let updated_at = format_timestamp(s.updated_at);
    let deleted_at = s.deleted_at.map(format_timestamp);
    if insert {
        db.prepare_cached(
            "INSERT INTO staff (id, name, role, specialization, phone, email, username, password_hash,
                                version, created_at, updated_at, deleted_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )?
        .execute((
            id, &s.name, s.role.as_str(), &s.specialization, &s.phone, &s.email, &s.username,
            new_hash, s.version, created_at, updated_at, deleted_at,
        ))?;
    } else {
        db.prepare_cached(
            "UPDATE staff SET name = ?2, role = ?3, specialization = ?4, phone = ?5, email = ?6, username = ?7,
                    password_hash = CASE WHEN ?13 THEN NULL ELSE COALESCE(?8, password_hash) END,
                    version = ?9, created_at = ?10, updated_at = ?11, deleted_at = ?12
             WHERE id = ?1",
        )?
        .execute((
            id, &s.name, s.role.as_str(), &s.specialization, &s.phone, &s.email, &s.username,
            new_hash, s.version, created_at, updated_at, deleted_at, clear,
        ))?;
    }
    Ok(())
}

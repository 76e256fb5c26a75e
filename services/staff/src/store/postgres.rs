//! The staff store on PostgreSQL. Several instances may share the database: each change is one
//! transaction that locks the staff member's row (`FOR UPDATE`), so concurrent changes to one
//! staff member queue behind each other and each sees the version the previous one committed.
//! The partial unique index `staff_username_active` keeps a username to one active member.

use chrono::{DateTime, Utc};
use kit::RequestContext;
use kit::events::{new_event, storage_failure};
use kit::idempotency;
use kit::listing::into_page;
use kit::outbox::{self, OutboxRow};
use kit::postgres::{failure, is_unique_violation_of};
use shared_events::staff::{Staff, StaffRole};
use shared_events::{Aggregate, ListQuery, Page, ServiceError};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{Account, Committed, HashUpdate, STAFF, username_taken};

/// The unique index that refuses a username another active staff member has.
const USERNAME_INDEX: &str = "staff_username_active";

#[derive(sqlx::FromRow)]
struct StaffRow {
    id: Uuid,
    name: String,
    role: String,
    specialization: Option<String>,
    phone: Option<String>,
    email: Option<String>,
    username: Option<String>,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    deleted_at: Option<DateTime<Utc>>,
}

impl StaffRow {
    fn into_staff(self) -> Result<Staff, ServiceError> {
        Ok(Staff {
            role: parse_role(self.id, &self.role)?,
            id: self.id,
            name: self.name,
            specialization: self.specialization,
            phone: self.phone,
            email: self.email,
            username: self.username,
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
            deleted_at: self.deleted_at,
        })
    }
}

fn parse_role(id: Uuid, role: &str) -> Result<StaffRole, ServiceError> {
    StaffRole::parse(role).ok_or_else(|| storage_failure(format!("staff {id}: role {role:?}")))
}

/// The staff tables of one PostgreSQL database. Cheap to clone (the pool is shared).
#[derive(Clone)]
pub struct PgStaff {
    pool: PgPool,
}

impl PgStaff {
    pub fn new(pool: PgPool) -> Self {
        PgStaff { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub async fn get(&self, id: Uuid) -> Result<Option<Staff>, ServiceError> {
        let row: Option<StaffRow> = STAFF
            .live_row_pg(&self.pool, id, false)
            .await
            .map_err(failure)?;
        row.map(StaffRow::into_staff).transpose()
    }

    pub async fn list(&self, query: &ListQuery) -> Result<Page<Staff>, ServiceError> {
        let rows: Vec<StaffRow> = STAFF
            .page_rows_pg(&self.pool, query)
            .await
            .map_err(failure)?;
        let staff = rows
            .into_iter()
            .map(StaffRow::into_staff)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(into_page(staff, query, |s| s.id))
    }

    pub async fn account(&self, username: &str) -> Result<Option<Account>, ServiceError> {
        // PostgreSQL text cannot hold NUL (the query would fail with 22021): no username has
        // one, so a login that types one has no account, as on SQLite.
        if username.contains('\0') {
            return Ok(None);
        }
        let row: Option<(Uuid, String, String, String)> = sqlx::query_as(
            "SELECT id, name, role, password_hash FROM staff
             WHERE username = $1 AND deleted_at IS NULL AND password_hash IS NOT NULL",
        )
        .bind(username)
        .fetch_optional(&self.pool)
        .await
        .map_err(failure)?;
        row.map(|(staff_id, name, role, password_hash)| {
            Ok(Account {
                role: parse_role(staff_id, &role)?,
                staff_id,
                name,
                password_hash,
            })
        })
        .transpose()
    }

    pub async fn has_admin_login(&self) -> Result<bool, ServiceError> {
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM staff
                            WHERE role = 'admin' AND deleted_at IS NULL AND username IS NOT NULL)",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(failure)
    }

    pub async fn create(
        &self,
        staff: Staff,
        password_hash: Option<String>,
        context: &RequestContext,
    ) -> Result<Committed, ServiceError> {
        let hash = password_hash.map_or(HashUpdate::Keep, HashUpdate::Set);
        let event = self
            .insert(&staff, &hash, context)
            .await
            .map_err(|e| username_conflict(e, staff.username.as_deref()))?;
        Ok(Committed {
            staff,
            event: Some(event),
        })
    }

    async fn insert(
        &self,
        staff: &Staff,
        hash: &HashUpdate,
        context: &RequestContext,
    ) -> Result<OutboxRow, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        write_row(&mut tx, staff, hash, true).await?;
        STAFF
            .index_new_name_pg(&mut tx, staff.id, &staff.name)
            .await?;
        let event = new_event(
            Aggregate::Staff,
            staff.id,
            staff.version,
            "created",
            context,
            staff.updated_at,
            staff,
        );
        let row = outbox::append_pg(&mut tx, &event).await?;
        idempotency::remember_pg(&mut tx, context, staff).await?;
        tx.commit().await?;
        Ok(row)
    }

    pub async fn change(
        &self,
        id: Uuid,
        verb: &'static str,
        context: &RequestContext,
        decide: impl FnOnce(&Staff) -> Result<Option<(Staff, HashUpdate)>, ServiceError>
        + Send
        + 'static,
    ) -> Result<Committed, ServiceError> {
        let mut tx = self.pool.begin().await.map_err(failure)?;
        let current = STAFF
            .live_row_pg::<StaffRow, _>(&mut *tx, id, true)
            .await
            .map_err(failure)?
            .ok_or_else(|| ServiceError::not_found("staff member"))?
            .into_staff()?;
        // An error (or no change) drops the transaction: rolled back, the row lock released.
        let Some((next, hash)) = decide(&current)? else {
            return Ok(Committed {
                staff: current,
                event: None,
            });
        };
        let event = store_change(&mut tx, &current, &next, &hash, verb, context)
            .await
            .map_err(|e| username_conflict(e, next.username.as_deref()))?;
        tx.commit().await.map_err(failure)?;
        Ok(Committed {
            staff: next,
            event: Some(event),
        })
    }
}

/// Writes `next` over `current` with its `verb` event.
async fn store_change(
    conn: &mut PgConnection,
    current: &Staff,
    next: &Staff,
    hash: &HashUpdate,
    verb: &str,
    context: &RequestContext,
) -> Result<OutboxRow, sqlx::Error> {
    write_row(conn, next, hash, false).await?;
    if next.name != current.name {
        STAFF.index_name_pg(conn, next.id, &next.name).await?;
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
    let row = outbox::append_pg(conn, &event).await?;
    idempotency::remember_pg(conn, context, next).await?;
    Ok(row)
}

/// A taken username is the client's conflict; anything else is [`failure`]'s to judge.
fn username_conflict(error: sqlx::Error, username: Option<&str>) -> ServiceError {
    if is_unique_violation_of(&error, USERNAME_INDEX) {
        return username_taken(username);
    }
    failure(error)
}

/// Writes the row; the username and its password hash change in the same statement, so the
/// constraint `staff_username_has_password_hash` holds after every statement. Also the restore's.
pub(crate) async fn write_row(
    conn: &mut PgConnection,
    s: &Staff,
    hash: &HashUpdate,
    insert: bool,
) -> Result<(), sqlx::Error> {
    let (new_hash, clear) = match hash {
        HashUpdate::Keep => (None, false),
        HashUpdate::Clear => (None, true),
        HashUpdate::Set(h) => (Some(h.as_str()), false),
    };
    let sql = if insert {
        "INSERT INTO staff (id, name, role, specialization, phone, email, username, password_hash,
                            version, created_at, updated_at, deleted_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    } else {
        "UPDATE staff SET name = $2, role = $3, specialization = $4, phone = $5, email = $6, username = $7,
                password_hash = CASE WHEN $13 THEN NULL ELSE COALESCE($8, password_hash) END,
                version = $9, created_at = $10, updated_at = $11, deleted_at = $12
         WHERE id = $1"
    };
    let mut query = sqlx::query(sql)
        .bind(s.id)
        .bind(&s.name)
        .bind(s.role.as_str())
        .bind(&s.specialization)
        .bind(&s.phone)
        .bind(&s.email)
        .bind(&s.username)
        .bind(new_hash)
        .bind(s.version)
        .bind(s.created_at)
        .bind(s.updated_at)
        .bind(s.deleted_at);
    if !insert {
        query = query.bind(clear);
    }
    query.execute(conn).await?;
    Ok(())
}

//! Restoring the staff tables from the staff events (`hospital restore staff`), on either
//! backend. A staff event never carries the password hash (by design), so a restored account
//! that has a username gets [`RESTORED_HASH`], which no password matches: it cannot log in until
//! an administrator sets a password. `hospital restore staff` then sets the administrator's
//! password (from `HOSPITAL_ADMIN_PASSWORD`, or a generated one it prints once) with
//! [`set_admin_password`] (or [`set_admin_password_pg`]).

use kit::directory::decode;
use kit::handle::{WriteError, with_handle};
use kit::outbox::OutboxRow;
use kit::read_model::Projection;
use shared_events::staff::Staff;
use shared_events::{Aggregate, EventEnvelope};
use sqlx::{PgConnection, PgPool, Postgres, Sqlite, SqliteConnection, SqlitePool};

use crate::store::{HashUpdate, STAFF, postgres, sqlite};

/// Not a PHC string: argon2 refuses to verify any password against it.
pub const RESTORED_HASH: &str = "!restored-without-password";

/// The restorer handed to `kit::read_model::restore`.
pub struct StaffRestore;

/// What one event does to the stored staff member: the same decision on both backends.
enum Step {
    /// Not stored yet: insert it and index its name.
    Insert,
    /// A newer version: replace the row, and index the name again if it changed.
    Update { renamed: bool },
    /// This version or a newer one is stored already.
    Skip,
}

impl Step {
    /// `current` is the stored version and name, if any.
    fn of(current: Option<(i64, String)>, staff: &Staff) -> Step {
        match current {
            None => Step::Insert,
            Some((version, name)) if staff.version > version => Step::Update {
                renamed: name != staff.name,
            },
            Some(_) => Step::Skip,
        }
    }

    /// The password hash to write: [`RESTORED_HASH`] with a username, none without one (a
    /// username and its hash come and go together).
    fn hash(&self, staff: &Staff) -> HashUpdate {
        match (&staff.username, self) {
            (Some(_), _) => HashUpdate::Set(RESTORED_HASH.to_owned()),
            // A new row has no hash to clear.
            (None, Step::Insert) => HashUpdate::Keep,
            (None, _) => HashUpdate::Clear,
        }
    }
}

/// The staff member an event carries, or `None` for another aggregate's event.
fn staff_of(event: &EventEnvelope) -> Result<Option<Staff>, sqlx::Error> {
    if event.aggregate != Aggregate::Staff {
        return Ok(None);
    }
    decode(event, "staff member").map(Some)
}

const CURRENT: &str = "SELECT version, name FROM staff WHERE id = $1";

impl Projection<Sqlite> for StaffRestore {
    async fn apply(
        &self,
        conn: &mut SqliteConnection,
        event: &EventEnvelope,
    ) -> Result<Vec<OutboxRow>, sqlx::Error> {
        let Some(staff) = staff_of(event)? else {
            return Ok(Vec::new());
        };
        let current = sqlx::query_as(CURRENT)
            .bind(staff.id.to_string())
            .fetch_optional(&mut *conn)
            .await?;
        let step = Step::of(current, &staff);
        let hash = step.hash(&staff);
        with_handle(conn, |db| -> Result<(), WriteError> {
            match step {
                Step::Insert => {
                    sqlite::write_row(db, &staff, &hash, true)?;
                    STAFF.index_name(db, staff.id, &staff.name)?;
                }
                Step::Update { renamed } => {
                    sqlite::write_row(db, &staff, &hash, false)?;
                    if renamed {
                        STAFF.index_name(db, staff.id, &staff.name)?;
                    }
                }
                Step::Skip => {}
            }
            Ok(())
        })
        .await??;
        Ok(Vec::new())
    }

    /// A restore goes into an empty database only.
    async fn reset(&self, _conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
        Ok(())
    }
}

impl Projection<Postgres> for StaffRestore {
    async fn apply(
        &self,
        conn: &mut PgConnection,
        event: &EventEnvelope,
    ) -> Result<Vec<OutboxRow>, sqlx::Error> {
        let Some(staff) = staff_of(event)? else {
            return Ok(Vec::new());
        };
        let current = sqlx::query_as(CURRENT)
            .bind(staff.id)
            .fetch_optional(&mut *conn)
            .await?;
        let step = Step::of(current, &staff);
        let hash = step.hash(&staff);
        match step {
            Step::Insert => {
                postgres::write_row(conn, &staff, &hash, true).await?;
                STAFF.index_new_name_pg(conn, staff.id, &staff.name).await?;
            }
            Step::Update { renamed } => {
                postgres::write_row(conn, &staff, &hash, false).await?;
                if renamed {
                    STAFF.index_name_pg(conn, staff.id, &staff.name).await?;
                }
            }
            Step::Skip => {}
        }
        Ok(Vec::new())
    }

    /// A restore goes into an empty database only.
    async fn reset(&self, _conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        Ok(())
    }
}

/// The administrator whose password a restore sets.
const ADMIN: &str = "SELECT username FROM staff
     WHERE role = 'admin' AND deleted_at IS NULL AND username IS NOT NULL
     ORDER BY username <> 'admin', id LIMIT 1";
const SET_HASH: &str =
    "UPDATE staff SET password_hash = $1 WHERE username = $2 AND deleted_at IS NULL";

/// Sets the password of the restored administrator: the active `admin` account, else the first
/// active administrator with a username. Changes only the hash
/// (which no event carries), so the row's version and events stay as they were. Returns the
/// username, or `None` when there is no administrator (the service's bootstrap then creates
/// `admin` at its next start).
pub async fn set_admin_password(
    pool: &SqlitePool,
    password_hash: &str,
) -> Result<Option<String>, sqlx::Error> {
    let username: Option<String> = sqlx::query_scalar(ADMIN).fetch_optional(pool).await?;
    if let Some(username) = &username {
        sqlx::query(SET_HASH)
            .bind(password_hash)
            .bind(username)
            .execute(pool)
            .await?;
    }
    Ok(username)
}

/// [`set_admin_password`] on PostgreSQL.
pub async fn set_admin_password_pg(
    pool: &PgPool,
    password_hash: &str,
) -> Result<Option<String>, sqlx::Error> {
    let username: Option<String> = sqlx::query_scalar(ADMIN).fetch_optional(pool).await?;
    if let Some(username) = &username {
        sqlx::query(SET_HASH)
            .bind(password_hash)
            .bind(username)
            .execute(pool)
            .await?;
    }
    Ok(username)
}

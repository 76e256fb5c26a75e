//! Restoring the staff tables from the staff events (`hospital restore staff`). A staff event
//! never carries the password hash (by design), so a restored account that has a username gets
//! [`RESTORED_HASH`], which no password matches: it cannot log in until an administrator sets a
//! password. `hospital restore staff` then sets the administrator's password (from
//! `HOSPITAL_ADMIN_PASSWORD`, or a generated one it prints once) with [`set_admin_password`].

use kit::directory::decode;
use kit::handle::{WriteError, with_handle};
use kit::outbox::OutboxRow;
use kit::read_model::Projection;
use shared_events::staff::Staff;
use shared_events::{Aggregate, EventEnvelope};
use sqlx::{SqliteConnection, SqlitePool};

use crate::store::sqlite::write_row;
use crate::store::{HashUpdate, STAFF};

/// Not a PHC string: argon2 refuses to verify any password against it.
pub const RESTORED_HASH: &str = "!restored-without-password";

/// The restorer handed to `kit::read_model::restore`.
pub struct StaffRestore;

impl Projection for StaffRestore {
    async fn apply(
        &self,
        conn: &mut SqliteConnection,
        event: &EventEnvelope,
    ) -> Result<Vec<OutboxRow>, sqlx::Error> {
        if event.aggregate != Aggregate::Staff {
            return Ok(Vec::new());
        }
        let staff: Staff = decode(event, "staff member")?;
        let current: Option<(i64, String)> =
            sqlx::query_as("SELECT version, name FROM staff WHERE id = $1")
                .bind(staff.id.to_string())
                .fetch_optional(&mut *conn)
                .await?;
        let hash = match staff.username {
            Some(_) => HashUpdate::Set(RESTORED_HASH.to_owned()),
            None => HashUpdate::Clear,
        };
        with_handle(conn, |db| -> Result<(), WriteError> {
            match current {
                None => {
                    let hash = match hash {
                        HashUpdate::Clear => HashUpdate::Keep,
                        set => set,
                    };
                    write_row(db, &staff, &hash, true)?;
                    STAFF.index_name(db, staff.id, &staff.name)?;
                    Ok(())
                }
                Some((version, name)) if staff.version > version => {
                    write_row(db, &staff, &hash, false)?;
                    if name != staff.name {
                        STAFF.index_name(db, staff.id, &staff.name)?;
                    }
                    Ok(())
                }
                Some(_) => Ok(()),
            }
        })
        .await??;
        Ok(Vec::new())
    }

    /// A restore goes into an empty database only.
    async fn reset(&self, _conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
        Ok(())
    }
}

/// Sets the password of the restored administrator: the active `admin` account, else the first
/// active administrator with a username. Changes only the hash (which no event carries), so
/// the row's version and events stay as they were. Returns the username, or `None` when there
/// is no administrator (the service's bootstrap then creates `admin` at its next start).
pub async fn set_admin_password(
    pool: &SqlitePool,
    password_hash: &str,
) -> Result<Option<String>, sqlx::Error> {
    let username: Option<String> = sqlx::query_scalar(
        "SELECT username FROM staff
         WHERE role = 'admin' AND deleted_at IS NULL AND username IS NOT NULL
         ORDER BY username <> 'admin', id LIMIT 1",
    )
    .fetch_optional(pool)
    .await?;
    if let Some(username) = &username {
        sqlx::query(
            "UPDATE staff SET password_hash = $1 WHERE username = $2 AND deleted_at IS NULL",
        )
        .bind(password_hash)
        .bind(username)
        .execute(pool)
        .await?;
    }
    Ok(username)
}

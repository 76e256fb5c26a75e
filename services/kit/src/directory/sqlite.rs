//! The directory tables on SQLite: ids as text, `deleted` as an integer.

use shared_events::EventEnvelope;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection, SqlitePool};
use uuid::Uuid;

use super::{Applied, Decoded, decode_event, decode_events};

/// Applies a patient or staff event; other events are [`Applied::Skipped`].
pub async fn apply(
    conn: &mut SqliteConnection,
    event: &EventEnvelope,
) -> Result<Applied, sqlx::Error> {
    let result = match decode_event(event)? {
        Decoded::Patient(patient) => {
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
        Decoded::Staff(staff) => {
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
        Decoded::Other => return Ok(Applied::Skipped),
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
    let (patients, staff) = decode_events(events)?;
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

/// A patient's row: name, deleted, version.
pub(super) async fn patient(
    pool: &SqlitePool,
    id: Uuid,
) -> Result<Option<(String, bool, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT name, deleted, version FROM directory_patients WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(pool)
        .await
}

/// A staff member's row: name, role, deleted, version.
pub(super) async fn staff(
    pool: &SqlitePool,
    id: Uuid,
) -> Result<Option<(String, String, bool, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT name, role, deleted, version FROM directory_staff WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(pool)
        .await
}

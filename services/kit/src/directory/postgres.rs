//! The directory tables on PostgreSQL (`migrations/<service>/postgres`): ids as uuid, `deleted`
//! as a boolean.

use std::collections::HashMap;

use shared_events::EventEnvelope;
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use super::{Applied, Decoded, decode_event, decode_events};

/// Applies a patient or staff event; other events are [`Applied::Skipped`].
pub async fn apply(conn: &mut PgConnection, event: &EventEnvelope) -> Result<Applied, sqlx::Error> {
    let result = match decode_event(event)? {
        Decoded::Patient(patient) => {
            sqlx::query(
                "INSERT INTO directory_patients (id, name, deleted, version) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, deleted = excluded.deleted,
                                                version = excluded.version
                 WHERE excluded.version > directory_patients.version",
            )
            .bind(patient.id)
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
            .bind(staff.id)
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
    conn: &mut PgConnection,
    events: &[&EventEnvelope],
) -> Result<(), sqlx::Error> {
    const ROWS: usize = 200;
    let (patients, staff) = decode_events(events)?;
    // PostgreSQL refuses a statement that upserts one row twice (SQLSTATE 21000), so only each
    // id's newest event goes in: what applying them one by one would have left.
    let patients = newest_only(patients, |patient| patient.id);
    let staff = newest_only(staff, |member| member.id);
    for chunk in patients.chunks(ROWS) {
        let mut sql = QueryBuilder::<Postgres>::new(
            "INSERT INTO directory_patients (id, name, deleted, version) ",
        );
        sql.push_values(chunk, |mut row, (patient, version)| {
            row.push_bind(patient.id)
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
        let mut sql = QueryBuilder::<Postgres>::new(
            "INSERT INTO directory_staff (id, name, role, deleted, version) ",
        );
        sql.push_values(chunk, |mut row, (member, version)| {
            row.push_bind(member.id)
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

/// One row per id, the one of the highest version (of equal versions the first, as the
/// version check would keep it), in the order the ids first appeared.
fn newest_only<T>(rows: Vec<(T, i64)>, id: impl Fn(&T) -> Uuid) -> Vec<(T, i64)> {
    let mut at: HashMap<Uuid, usize> = HashMap::with_capacity(rows.len());
    let mut kept: Vec<(T, i64)> = Vec::with_capacity(rows.len());
    for (row, version) in rows {
        match at.get(&id(&row)) {
            Some(&i) if kept[i].1 < version => kept[i] = (row, version),
            Some(_) => {}
            None => {
                at.insert(id(&row), kept.len());
                kept.push((row, version));
            }
        }
    }
    kept
}

/// Empties the directory tables (a rebuild starts from nothing).
pub async fn reset(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
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
    pool: &PgPool,
    id: Uuid,
) -> Result<Option<(String, bool, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT name, deleted, version FROM directory_patients WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// A staff member's row: name, role, deleted, version.
pub(super) async fn staff(
    pool: &PgPool,
    id: Uuid,
) -> Result<Option<(String, String, bool, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT name, role, deleted, version FROM directory_staff WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await
}

#[cfg(test)]
mod tests {
    use super::newest_only;
    use uuid::Uuid;

    #[test]
    fn only_each_ids_newest_row_is_kept_in_first_seen_order() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let rows = vec![
            ((a, "a1"), 1),
            ((b, "b2"), 2),
            ((a, "a3"), 3),
            ((b, "b1"), 1),
            ((a, "a3 again"), 3),
        ];
        let kept = newest_only(rows, |(id, _)| *id);
        assert_eq!(kept, vec![((a, "a3"), 3), ((b, "b2"), 2)]);
    }
}

//! The record store on PostgreSQL. Several instances may share the database: each change is one
//! transaction that locks the record's row (`FOR UPDATE`), so concurrent amendments of one
//! record queue behind each other and each sees the version the previous one committed. The
//! structured parts (diagnoses, vitals, each version's state) are jsonb, written from and read
//! back as JSON text, so the service decodes them into its own types as on SQLite.

use chrono::{DateTime, Utc};
use kit::RequestContext;
use kit::events::{new_event, storage_failure};
use kit::idempotency;
use kit::listing::into_page;
use kit::outbox::{self, OutboxRow};
use kit::postgres::failure;
use shared_events::record::{MedicalRecord, RecordKind, RecordStatus, RecordVersion};
use shared_events::{Actor, Aggregate, ListQuery, Page, ServiceError};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{Committed, VersionRepeat};
use crate::domain::Change;
use crate::timeline::RecordFilter;

/// The columns of a full row, jsonb read back as text, in [`RecordRow`]'s order.
const COLUMNS: &str = "id, patient_id, author_id, appointment_id, kind, title, body, \
    diagnoses::text AS diagnoses, vitals::text AS vitals, recorded_at, status, version, created_at, updated_at";

#[derive(sqlx::FromRow)]
struct RecordRow {
    id: Uuid,
    patient_id: Uuid,
    author_id: Uuid,
    appointment_id: Option<Uuid>,
    kind: String,
    title: String,
    body: Option<String>,
    diagnoses: String,
    vitals: Option<String>,
    recorded_at: DateTime<Utc>,
    status: String,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl RecordRow {
    fn into_record(self) -> Result<MedicalRecord, ServiceError> {
        let corrupt = |what: String| storage_failure(format!("record {}: {what}", self.id));
        Ok(MedicalRecord {
            kind: RecordKind::parse(&self.kind)
                .ok_or_else(|| corrupt(format!("kind {:?}", self.kind)))?,
            diagnoses: serde_json::from_str(&self.diagnoses)
                .map_err(|e| corrupt(format!("diagnoses: {e}")))?,
            vitals: self
                .vitals
                .as_deref()
                .map(serde_json::from_str)
                .transpose()
                .map_err(|e| corrupt(format!("vitals: {e}")))?,
            status: RecordStatus::parse(&self.status)
                .ok_or_else(|| corrupt(format!("status {:?}", self.status)))?,
            id: self.id,
            patient_id: self.patient_id,
            author_id: self.author_id,
            appointment_id: self.appointment_id,
            title: self.title,
            body: self.body,
            recorded_at: self.recorded_at,
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// The record tables of one PostgreSQL database. Cheap to clone (the pool is shared).
#[derive(Clone)]
pub struct PgRecords {
    pool: PgPool,
}

impl PgRecords {
    pub fn new(pool: PgPool) -> Self {
        PgRecords { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub async fn get(&self, id: Uuid) -> Result<Option<MedicalRecord>, ServiceError> {
        let sql = format!("SELECT {COLUMNS} FROM records WHERE id = $1");
        let row: Option<RecordRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(failure)?;
        row.map(RecordRow::into_record).transpose()
    }

    pub async fn list(
        &self,
        filter: &RecordFilter,
        query: &ListQuery,
    ) -> Result<Page<MedicalRecord>, ServiceError> {
        let rows: Vec<RecordRow> = filter
            .page_query_pg(COLUMNS, query)
            .build_query_as()
            .fetch_all(&self.pool)
            .await
            .map_err(failure)?;
        let records = rows
            .into_iter()
            .map(RecordRow::into_record)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(into_page(records, query, |r| r.id))
    }

    pub async fn history(&self, id: Uuid) -> Result<Vec<RecordVersion>, ServiceError> {
        let rows: Vec<(i64, String, String, String, DateTime<Utc>, String)> = sqlx::query_as(
            "SELECT version, change, changed_by_id, changed_by_role, changed_at, state::text
             FROM record_versions WHERE record_id = $1 ORDER BY version",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await
        .map_err(failure)?;
        rows.into_iter()
            .map(|(version, change, id, role, changed_at, state)| {
                Ok(RecordVersion {
                    version,
                    change,
                    changed_by: Actor { id, role },
                    changed_at,
                    record: serde_json::from_str(&state).map_err(storage_failure)?,
                })
            })
            .collect()
    }

    pub async fn create(
        &self,
        record: MedicalRecord,
        context: &RequestContext,
    ) -> Result<Committed, ServiceError> {
        let mut tx = self.pool.begin().await.map_err(failure)?;
        let event = write_change(&mut tx, &record, Change::Created, context)
            .await
            .map_err(failure)?;
        idempotency::remember_pg(&mut tx, context, &record)
            .await
            .map_err(failure)?;
        tx.commit().await.map_err(failure)?;
        Ok(Committed {
            record,
            event: Some(event),
        })
    }

    pub async fn change(
        &self,
        id: Uuid,
        change: Change,
        context: &RequestContext,
        decide: impl FnOnce(&MedicalRecord) -> Result<Option<MedicalRecord>, ServiceError>
        + Send
        + 'static,
    ) -> Result<Committed, ServiceError> {
        let mut tx = self.pool.begin().await.map_err(failure)?;
        let sql = format!("SELECT {COLUMNS} FROM records WHERE id = $1 FOR UPDATE");
        let current = sqlx::query_as::<_, RecordRow>(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(failure)?
            .ok_or_else(|| ServiceError::not_found("record"))?
            .into_record()?;
        // An error (or no change) drops the transaction: rolled back, the row lock released.
        let Some(next) = decide(&current)? else {
            return Ok(Committed {
                record: current,
                event: None,
            });
        };
        let event = write_change(&mut tx, &next, change, context)
            .await
            .map_err(failure)?;
        idempotency::remember_pg(&mut tx, context, &next)
            .await
            .map_err(failure)?;
        tx.commit().await.map_err(failure)?;
        Ok(Committed {
            record: next,
            event: Some(event),
        })
    }
}

/// Writes `record` as the current state, appends it as a version and its event to the outbox.
async fn write_change(
    conn: &mut PgConnection,
    record: &MedicalRecord,
    change: Change,
    context: &RequestContext,
) -> Result<OutboxRow, sqlx::Error> {
    write_current(conn, record).await?;
    write_version(conn, record, change, &context.actor, VersionRepeat::Refuse).await?;
    let event = new_event(
        Aggregate::Record,
        record.id,
        record.version,
        change.verb(),
        context,
        record.updated_at,
        record,
    );
    outbox::append_pg(conn, &event).await
}

fn json<T: serde::Serialize>(value: &T) -> Result<String, sqlx::Error> {
    serde_json::to_string(value).map_err(|e| sqlx::Error::Encode(Box::new(e)))
}

/// Stores `record` as the current row, unless the row already holds that version or a newer one.
pub(crate) async fn write_current(
    conn: &mut PgConnection,
    record: &MedicalRecord,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO records (id, patient_id, author_id, appointment_id, kind, title, body, diagnoses,
                              vitals, recorded_at, status, version, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9::jsonb, $10, $11, $12, $13, $14)
         ON CONFLICT (id) DO UPDATE SET
             appointment_id = excluded.appointment_id, kind = excluded.kind, title = excluded.title,
             body = excluded.body, diagnoses = excluded.diagnoses, vitals = excluded.vitals,
             recorded_at = excluded.recorded_at, status = excluded.status,
             version = excluded.version, updated_at = excluded.updated_at
         WHERE excluded.version > records.version",
    )
    .bind(record.id)
    .bind(record.patient_id)
    .bind(record.author_id)
    .bind(record.appointment_id)
    .bind(record.kind.as_str())
    .bind(&record.title)
    .bind(&record.body)
    .bind(json(&record.diagnoses)?)
    .bind(record.vitals.as_ref().map(json).transpose()?)
    .bind(record.recorded_at)
    .bind(record.status.as_str())
    .bind(record.version)
    .bind(record.created_at)
    .bind(record.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Appends `record` to its version history, as changed by `by`.
pub(crate) async fn write_version(
    conn: &mut PgConnection,
    record: &MedicalRecord,
    change: Change,
    by: &Actor,
    repeat: VersionRepeat,
) -> Result<(), sqlx::Error> {
    let sql = match repeat {
        VersionRepeat::Refuse => {
            "INSERT INTO record_versions (record_id, version, change, changed_by_id, changed_by_role,
                                          changed_at, state)
             VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)"
        }
        VersionRepeat::Ignore => {
            "INSERT INTO record_versions (record_id, version, change, changed_by_id, changed_by_role,
                                          changed_at, state)
             VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)
             ON CONFLICT (record_id, version) DO NOTHING"
        }
    };
    sqlx::query(sql)
        .bind(record.id)
        .bind(record.version)
        .bind(change.as_str())
        .bind(&by.id)
        .bind(&by.role)
        .bind(record.updated_at)
        .bind(json(record)?)
        .execute(conn)
        .await?;
    Ok(())
}

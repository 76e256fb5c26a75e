//! The record store on SQLite. Every change writes the record's current state, its new
//! version in `record_versions` and its event (the outbox row) in one immediate transaction: the
//! version and the event exist if and only if the change does.

use kit::RequestContext;
use kit::events::{format_timestamp, new_event, parse_timestamp, storage_failure};
use kit::group_commit::Writer;
use kit::handle::{Db, WriteError};
use kit::idempotency;
use kit::listing::into_page;
use kit::outbox::{self, OutboxRow};
use rusqlite::OptionalExtension;
use shared_events::record::{MedicalRecord, RecordKind, RecordStatus, RecordVersion};
use shared_events::{Actor, Aggregate, ListQuery, Page, ServiceError};
use sqlx::SqlitePool;
use uuid::Uuid;

use super::{COLUMNS, Committed, VersionRepeat};
use crate::domain::Change;
use crate::timeline::RecordFilter;

#[derive(sqlx::FromRow)]
struct RecordRow {
    id: String,
    patient_id: String,
    author_id: String,
    appointment_id: Option<String>,
    kind: String,
    title: String,
    body: Option<String>,
    diagnoses: String,
    vitals: Option<String>,
    recorded_at: String,
    status: String,
    version: i64,
    created_at: String,
    updated_at: String,
}

impl RecordRow {
    /// The same row read inside a write (on the handle), from the columns in [`COLUMNS`] order.
    fn from_rusqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(RecordRow {
            id: row.get(0)?,
            patient_id: row.get(1)?,
            author_id: row.get(2)?,
            appointment_id: row.get(3)?,
            kind: row.get(4)?,
            title: row.get(5)?,
            body: row.get(6)?,
            diagnoses: row.get(7)?,
            vitals: row.get(8)?,
            recorded_at: row.get(9)?,
            status: row.get(10)?,
            version: row.get(11)?,
            created_at: row.get(12)?,
            updated_at: row.get(13)?,
        })
    }

    fn into_record(self) -> Result<MedicalRecord, String> {
        let uuid = |name: &str, text: &str| -> Result<Uuid, String> {
            text.parse().map_err(|e| format!("{name} {text}: {e}"))
        };
        let time = |name: &str, text: &str| {
            parse_timestamp(text).map_err(|e| format!("{name} {text}: {e}"))
        };
        Ok(MedicalRecord {
            id: uuid("id", &self.id)?,
            patient_id: uuid("patient_id", &self.patient_id)?,
            author_id: uuid("author_id", &self.author_id)?,
            appointment_id: self
                .appointment_id
                .as_deref()
                .map(|text| uuid("appointment_id", text))
                .transpose()?,
            kind: RecordKind::parse(&self.kind).ok_or_else(|| format!("kind {:?}", self.kind))?,
            diagnoses: serde_json::from_str(&self.diagnoses)
                .map_err(|e| format!("diagnoses: {e}"))?,
            vitals: self
                .vitals
                .as_deref()
                .map(serde_json::from_str)
                .transpose()
                .map_err(|e| format!("vitals: {e}"))?,
            recorded_at: time("recorded_at", &self.recorded_at)?,
            status: RecordStatus::parse(&self.status)
                .ok_or_else(|| format!("status {:?}", self.status))?,
            created_at: time("created_at", &self.created_at)?,
            updated_at: time("updated_at", &self.updated_at)?,
            title: self.title,
            body: self.body,
            version: self.version,
        })
    }
}

/// The record tables of one SQLite database. Cheap to clone (the pool is shared).
#[derive(Clone)]
pub struct SqliteRecords {
    pool: SqlitePool,
    /// Every change goes through the group committer (see `kit::group_commit`).
    writer: Writer,
}

impl SqliteRecords {
    /// `writer` is the database's one group committer (`kit::database::Database::Sqlite`).
    pub fn new(pool: SqlitePool, writer: Writer) -> Self {
        SqliteRecords { writer, pool }
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// A record in any status: an entered-in-error record is still shown when asked for by id.
    pub async fn get(&self, id: Uuid) -> Result<Option<MedicalRecord>, ServiceError> {
        let sql = format!("SELECT {COLUMNS} FROM records WHERE id = $1");
        let row: Option<RecordRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(storage_failure)?;
        row.map(RecordRow::into_record)
            .transpose()
            .map_err(storage_failure)
    }

    pub async fn list(
        &self,
        filter: &RecordFilter,
        query: &ListQuery,
    ) -> Result<Page<MedicalRecord>, ServiceError> {
        let rows: Vec<RecordRow> = filter
            .page_query(COLUMNS, query)
            .build_query_as()
            .fetch_all(&self.pool)
            .await
            .map_err(storage_failure)?;
        let records = rows
            .into_iter()
            .map(RecordRow::into_record)
            .collect::<Result<Vec<_>, _>>()
            .map_err(storage_failure)?;
        Ok(into_page(records, query, |r| r.id))
    }

    /// Every version of a record, oldest first; empty when there is no such record.
    pub async fn history(&self, id: Uuid) -> Result<Vec<RecordVersion>, ServiceError> {
        let rows: Vec<(i64, String, String, String, String, String)> = sqlx::query_as(
            "SELECT version, change, changed_by_id, changed_by_role, changed_at, state
             FROM record_versions WHERE record_id = $1 ORDER BY version",
        )
        .bind(id.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(storage_failure)?;
        rows.into_iter()
            .map(|(version, change, id, role, changed_at, state)| {
                Ok(RecordVersion {
                    version,
                    change,
                    changed_by: Actor { id, role },
                    changed_at: parse_timestamp(&changed_at).map_err(storage_failure)?,
                    record: serde_json::from_str(&state).map_err(storage_failure)?,
                })
            })
            .collect()
    }

    /// Stores a new record with its first version and its `created` event.
    pub async fn create(
        &self,
        record: MedicalRecord,
        context: &RequestContext,
    ) -> Result<Committed, ServiceError> {
        let context = context.clone();
        self.writer
            .write(move |db| {
                let event = write_change(db, &record, Change::Created, &context)?;
                idempotency::remember(db, &context, &record)?;
                Ok(Committed {
                    record,
                    event: Some(event),
                })
            })
            .await
    }

    /// Loads a record, lets `decide` produce its next state (or `None` for no change), and stores
    /// it as a `change`, all in one write transaction, so concurrent amendments of the same
    /// record are serialised and `If-Match` checks see the latest version.
    pub async fn change(
        &self,
        id: Uuid,
        change: Change,
        context: &RequestContext,
        decide: impl FnOnce(&MedicalRecord) -> Result<Option<MedicalRecord>, ServiceError>
        + Send
        + 'static,
    ) -> Result<Committed, ServiceError> {
        let context = context.clone();
        self.writer
            .write(move |db| {
                let row = db
                    .prepare_cached(&format!("SELECT {COLUMNS} FROM records WHERE id = ?1"))
                    .and_then(|mut select| {
                        select
                            .query_row([id.to_string()], RecordRow::from_rusqlite)
                            .optional()
                    })
                    .map_err(WriteError::from)?;
                let current = row
                    .ok_or_else(|| ServiceError::not_found("record"))?
                    .into_record()
                    .map_err(storage_failure)?;
                let Some(next) = decide(&current)? else {
                    return Ok(Committed {
                        record: current,
                        event: None,
                    });
                };
                let event = write_change(db, &next, change, &context)?;
                idempotency::remember(db, &context, &next)?;
                Ok(Committed {
                    record: next,
                    event: Some(event),
                })
            })
            .await
    }
}

/// Writes `record` as the current state, appends it as a version and its event to the outbox.
fn write_change(
    db: &Db,
    record: &MedicalRecord,
    change: Change,
    context: &RequestContext,
) -> Result<OutboxRow, WriteError> {
    write_current(db, record)?;
    write_version(db, record, change, &context.actor, VersionRepeat::Refuse)?;
    let event = new_event(
        Aggregate::Record,
        record.id,
        record.version,
        change.verb(),
        context,
        record.updated_at,
        record,
    );
    outbox::append(db, &event)
}

/// Stores `record` as the current row, unless the row already holds that version or a newer one.
pub(crate) fn write_current(db: &Db, record: &MedicalRecord) -> Result<(), WriteError> {
    db.prepare_cached(
        "INSERT INTO records (id, patient_id, author_id, appointment_id, kind, title, body, diagnoses,
                              vitals, recorded_at, status, version, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
         ON CONFLICT (id) DO UPDATE SET
             appointment_id = excluded.appointment_id, kind = excluded.kind, title = excluded.title,
             body = excluded.body, diagnoses = excluded.diagnoses, vitals = excluded.vitals,
             recorded_at = excluded.recorded_at, status = excluded.status,
             version = excluded.version, updated_at = excluded.updated_at
         WHERE excluded.version > records.version",
    )?
    .execute((
        record.id.to_string(),
        record.patient_id.to_string(),
        record.author_id.to_string(),
        record.appointment_id.map(|id| id.to_string()),
        record.kind.as_str(),
        &record.title,
        &record.body,
        serde_json::to_string(&record.diagnoses)?,
        record.vitals.as_ref().map(serde_json::to_string).transpose()?,
        format_timestamp(record.recorded_at),
        record.status.as_str(),
        record.version,
        format_timestamp(record.created_at),
        format_timestamp(record.updated_at),
    ))?;
    Ok(())
}

/// Appends `record` to its version history, as changed by `by`.
pub(crate) fn write_version(
    db: &Db,
    record: &MedicalRecord,
    change: Change,
    by: &Actor,
    repeat: VersionRepeat,
) -> Result<(), WriteError> {
    let sql = match repeat {
        VersionRepeat::Refuse => {
            "INSERT INTO record_versions (record_id, version, change, changed_by_id, changed_by_role,
                                          changed_at, state)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
        }
        VersionRepeat::Ignore => {
            "INSERT OR IGNORE INTO record_versions (record_id, version, change, changed_by_id,
                                                    changed_by_role, changed_at, state)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
        }
    };
    db.prepare_cached(sql)?.execute((
        record.id.to_string(),
        record.version,
        change.as_str(),
        &by.id,
        &by.role,
        format_timestamp(record.updated_at),
        serde_json::to_string(record)?,
    ))?;
    Ok(())
}

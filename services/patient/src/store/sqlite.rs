//! The patient store on SQLite. Every change writes the patient row, its search words and its
//! event (the outbox row) in one immediate transaction: the event exists if and only if the
//! change does.

use kit::RequestContext;
use kit::events::{format_timestamp, new_event, parse_timestamp, storage_failure};
use kit::group_commit::{Db, WriteError, Writer};
use kit::idempotency;
use kit::listing::into_page;
use kit::outbox::{self, OutboxRow};
use shared_events::patient::{Patient, Sex};
use shared_events::{Aggregate, ListQuery, Page, ServiceError};
use sqlx::SqlitePool;
use uuid::Uuid;

use super::{Committed, MRN_ATTEMPTS, PATIENTS};

#[derive(sqlx::FromRow)]
struct PatientRow {
    id: String,
    mrn: String,
    name: String,
    birth_date: String,
    sex: String,
    phone: Option<String>,
    email: Option<String>,
    address: Option<String>,
    version: i64,
    created_at: String,
    updated_at: String,
    deleted_at: Option<String>,
}

impl PatientRow {
    /// The row as read inside a write, columns in [`COLUMNS`] order.
    fn from_handle(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(PatientRow {
            id: row.get(0)?,
            mrn: row.get(1)?,
            name: row.get(2)?,
            birth_date: row.get(3)?,
            sex: row.get(4)?,
            phone: row.get(5)?,
            email: row.get(6)?,
            address: row.get(7)?,
            version: row.get(8)?,
            created_at: row.get(9)?,
            updated_at: row.get(10)?,
            deleted_at: row.get(11)?,
        })
    }

    fn into_patient(self) -> Result<Patient, String> {
        Ok(Patient {
            id: self
                .id
                .parse()
                .map_err(|e| format!("id {}: {e}", self.id))?,
            birth_date: self
                .birth_date
                .parse()
                .map_err(|e| format!("birth_date: {e}"))?,
            sex: Sex::parse(&self.sex).ok_or_else(|| format!("sex {:?}", self.sex))?,
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
            mrn: self.mrn,
            name: self.name,
            phone: self.phone,
            email: self.email,
            address: self.address,
            version: self.version,
        })
    }
}

/// The patient tables of one SQLite database. Cheap to clone (the pool is shared).
#[derive(Clone)]
pub struct SqlitePatients {
    pool: SqlitePool,
    /// Every change goes through the group committer (see `kit::group_commit`).
    writer: Writer,
}

impl SqlitePatients {
    /// `writer` is the database's one group committer (`kit::database::Database::Sqlite`).
    pub fn new(pool: SqlitePool, writer: Writer) -> Self {
        SqlitePatients { writer, pool }
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// A live (not deleted) patient.
    pub async fn get(&self, id: Uuid) -> Result<Option<Patient>, ServiceError> {
        let row: Option<PatientRow> = PATIENTS
            .live_row(&self.pool, id)
            .await
            .map_err(storage_failure)?;
        row.map(PatientRow::into_patient)
            .transpose()
            .map_err(storage_failure)
    }

    pub async fn list(&self, query: &ListQuery) -> Result<Page<Patient>, ServiceError> {
        let rows: Vec<PatientRow> = PATIENTS
            .page_rows(&self.pool, query)
            .await
            .map_err(storage_failure)?;
        let patients = rows
            .into_iter()
            .map(PatientRow::into_patient)
            .collect::<Result<Vec<_>, _>>();
        Ok(into_page(patients.map_err(storage_failure)?, query, |p| {
            p.id
        }))
    }

    /// Registers a new patient made by `make` from a fresh MRN, retrying with another MRN on
    /// the (rare) collision.
    pub async fn create(
        &self,
        context: &RequestContext,
        make: impl Fn(String) -> Patient,
    ) -> Result<Committed, ServiceError> {
        for _ in 0..MRN_ATTEMPTS {
            let patient = make(crate::domain::new_mrn());
            match self.insert(&patient, context).await {
                Ok(event) => {
                    return Ok(Committed {
                        patient,
                        event: Some(event),
                    });
                }
                Err(error) if error.is_unique_violation() => continue,
                Err(error) => return Err(error.into()),
            }
        }
        Err(storage_failure(
            "no free medical record number after several attempts",
        ))
    }

    async fn insert(
        &self,
        patient: &Patient,
        context: &RequestContext,
    ) -> Result<OutboxRow, WriteError> {
        let patient = patient.clone();
        let context = context.clone();
        self.writer
            .write(move |db| {
                write_row(db, &patient, true)?;
                PATIENTS.index_new_name(db, patient.id, &patient.name)?;
                let event = new_event(
                    Aggregate::Patient,
                    patient.id,
                    patient.version,
                    "created",
                    &context,
                    patient.updated_at,
                    &patient,
                );
                let row = outbox::append(db, &event)?;
                idempotency::remember(db, &context, &patient)?;
                Ok(row)
            })
            .await
    }

    /// Loads a live patient, lets `decide` produce its next state (or `None` for no change), and
    /// stores it with a `verb` event, all in one write transaction, so concurrent changes to the
    /// same patient are serialised and `If-Match` checks see the latest version.
    pub async fn change(
        &self,
        id: Uuid,
        verb: &'static str,
        context: &RequestContext,
        decide: impl FnOnce(&Patient) -> Result<Option<Patient>, ServiceError> + Send + 'static,
    ) -> Result<Committed, ServiceError> {
        let context = context.clone();
        self.writer
            .write(move |db| {
                let current = PATIENTS
                    .live_row_in(db, id, PatientRow::from_handle)
                    .map_err(storage_failure)?
                    .ok_or_else(|| ServiceError::not_found("patient"))?
                    .into_patient()
                    .map_err(storage_failure)?;
                let Some(next) = decide(&current)? else {
                    return Ok(Committed {
                        patient: current,
                        event: None,
                    });
                };
                let event = store_change(db, &current, &next, verb, &context)?;
                Ok(Committed {
                    patient: next,
                    event: Some(event),
                })
            })
            .await
    }
}

/// Writes `next` over `current` with its `verb` event.
fn store_change(
    db: &Db,
    current: &Patient,
    next: &Patient,
    verb: &str,
    context: &RequestContext,
) -> Result<OutboxRow, WriteError> {
    write_row(db, next, false)?;
    if next.name != current.name {
        PATIENTS.index_name(db, next.id, &next.name)?;
    }
    let event = new_event(
        Aggregate::Patient,
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

pub(crate) fn write_row(db: &Db, p: &Patient, insert: bool) -> rusqlite::Result<()> {
    let sql = if insert {
        "INSERT INTO patients (id, mrn, name, birth_date, sex, phone, email, address, version, created_at, updated_at, deleted_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
    } else {
        "UPDATE patients SET mrn = ?2, name = ?3, birth_date = ?4, sex = ?5, phone = ?6, email = ?7, address = ?8,
                version = ?9, created_at = ?10, updated_at = ?11, deleted_at = ?12
         WHERE id = ?1"
    };
    db.prepare_cached(sql)?.execute((
        p.id.to_string(),
        &p.mrn,
        &p.name,
        p.birth_date.to_string(),
        p.sex.as_str(),
        &p.phone,
        &p.email,
        &p.address,
        p.version,
        format_timestamp(p.created_at),
        format_timestamp(p.updated_at),
        p.deleted_at.map(format_timestamp),
    ))?;
    Ok(())
}

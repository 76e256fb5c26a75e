//! The patient store on PostgreSQL. Several instances may share the database: each change is
//! one transaction that locks the patient's row (`FOR UPDATE`), so concurrent changes to one
//! patient queue behind each other and each sees the version the previous one committed.

use chrono::{DateTime, NaiveDate, Utc};
use kit::RequestContext;
use kit::events::new_event;
use kit::listing::into_page;
use kit::outbox::{self, OutboxRow};
use kit::postgres::{failure, is_unique_violation_of};
use kit::{events::storage_failure, idempotency};
use shared_events::patient::{Patient, Sex};
use shared_events::{Aggregate, ListQuery, Page, ServiceError};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{Committed, MRN_ATTEMPTS, PATIENTS};

#[derive(sqlx::FromRow)]
struct PatientRow {
    id: Uuid,
    mrn: String,
    name: String,
    birth_date: NaiveDate,
    sex: String,
    phone: Option<String>,
    email: Option<String>,
    address: Option<String>,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    deleted_at: Option<DateTime<Utc>>,
}

impl PatientRow {
    fn into_patient(self) -> Result<Patient, ServiceError> {
        Ok(Patient {
            sex: Sex::parse(&self.sex).ok_or_else(|| {
                storage_failure(format!("patient {}: sex {:?}", self.id, self.sex))
            })?,
            id: self.id,
            mrn: self.mrn,
            name: self.name,
            birth_date: self.birth_date,
            phone: self.phone,
            email: self.email,
            address: self.address,
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
            deleted_at: self.deleted_at,
        })
    }
}

/// The patient tables of one PostgreSQL database. Cheap to clone (the pool is shared).
#[derive(Clone)]
pub struct PgPatients {
    pool: PgPool,
}

impl PgPatients {
    pub fn new(pool: PgPool) -> Self {
        PgPatients { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub async fn get(&self, id: Uuid) -> Result<Option<Patient>, ServiceError> {
        let row: Option<PatientRow> = PATIENTS
            .live_row_pg(&self.pool, id, false)
            .await
            .map_err(failure)?;
        row.map(PatientRow::into_patient).transpose()
    }

    pub async fn list(&self, query: &ListQuery) -> Result<Page<Patient>, ServiceError> {
        let rows: Vec<PatientRow> = PATIENTS
            .page_rows_pg(&self.pool, query)
            .await
            .map_err(failure)?;
        let patients = rows
            .into_iter()
            .map(PatientRow::into_patient)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(into_page(patients, query, |p| p.id))
    }

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
                Err(error) if is_unique_violation_of(&error, "patients_mrn_key") => continue,
                Err(error) => return Err(failure(error)),
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
    ) -> Result<OutboxRow, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        write_row(&mut tx, patient, true).await?;
        PATIENTS
            .index_new_name_pg(&mut tx, patient.id, &patient.name)
            .await?;
        let event = new_event(
            Aggregate::Patient,
            patient.id,
            patient.version,
            "created",
            context,
            patient.updated_at,
            patient,
        );
        let row = outbox::append_pg(&mut tx, &event).await?;
        idempotency::remember_pg(&mut tx, context, patient).await?;
        tx.commit().await?;
        Ok(row)
    }

    pub async fn change(
        &self,
        id: Uuid,
        verb: &'static str,
        context: &RequestContext,
        decide: impl FnOnce(&Patient) -> Result<Option<Patient>, ServiceError> + Send + 'static,
    ) -> Result<Committed, ServiceError> {
        let mut tx = self.pool.begin().await.map_err(failure)?;
        let current = PATIENTS
            .live_row_pg::<PatientRow, _>(&mut *tx, id, true)
            .await
            .map_err(failure)?
            .ok_or_else(|| ServiceError::not_found("patient"))?
            .into_patient()?;
        // An error (or no change) drops the transaction: rolled back, the row lock released.
        let Some(next) = decide(&current)? else {
            return Ok(Committed {
                patient: current,
                event: None,
            });
        };
        let event = store_change(&mut tx, &current, &next, verb, context)
            .await
            .map_err(failure)?;
        tx.commit().await.map_err(failure)?;
        Ok(Committed {
            patient: next,
            event: Some(event),
        })
    }
}

/// Writes `next` over `current` with its `verb` event.
async fn store_change(
    conn: &mut PgConnection,
    current: &Patient,
    next: &Patient,
    verb: &str,
    context: &RequestContext,
) -> Result<OutboxRow, sqlx::Error> {
    write_row(conn, next, false).await?;
    if next.name != current.name {
        PATIENTS.index_name_pg(conn, next.id, &next.name).await?;
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
    let row = outbox::append_pg(conn, &event).await?;
    idempotency::remember_pg(conn, context, next).await?;
    Ok(row)
}

/// Inserts or replaces the row of `p` (inside the caller's transaction); also the restore's.
pub(crate) async fn write_row(
    conn: &mut PgConnection,
    p: &Patient,
    insert: bool,
) -> Result<(), sqlx::Error> {
    let sql = if insert {
        "INSERT INTO patients (id, mrn, name, birth_date, sex, phone, email, address, version, created_at, updated_at, deleted_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    } else {
        "UPDATE patients SET mrn = $2, name = $3, birth_date = $4, sex = $5, phone = $6, email = $7, address = $8,
                version = $9, created_at = $10, updated_at = $11, deleted_at = $12
         WHERE id = $1"
    };
    sqlx::query(sql)
        .bind(p.id)
        .bind(&p.mrn)
        .bind(&p.name)
        .bind(p.birth_date)
        .bind(p.sex.as_str())
        .bind(&p.phone)
        .bind(&p.email)
        .bind(&p.address)
        .bind(p.version)
        .bind(p.created_at)
        .bind(p.updated_at)
        .bind(p.deleted_at)
        .execute(conn)
        .await?;
    Ok(())
}

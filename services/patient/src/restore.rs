//! Restoring the patient tables from the patient events (`hospital restore patient`), on either
//! backend: each event carries the patient's whole state, so the newest version of each is
//! written with the store's own row and name-index code, and nothing goes to the outbox (the
//! events exist).

use kit::directory::decode;
use kit::handle::{WriteError, with_handle};
use kit::outbox::OutboxRow;
use kit::read_model::Projection;
use shared_events::patient::Patient;
use shared_events::{Aggregate, EventEnvelope};
use sqlx::{PgConnection, Postgres, Sqlite, SqliteConnection};

use crate::store::{PATIENTS, postgres, sqlite};

/// The restorer handed to `kit::read_model::restore`.
pub struct PatientRestore;

/// What one event does to the stored patient: the same decision on both backends.
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
    fn of(current: Option<(i64, String)>, patient: &Patient) -> Step {
        match current {
            None => Step::Insert,
            Some((version, name)) if patient.version > version => Step::Update {
                renamed: name != patient.name,
            },
            Some(_) => Step::Skip,
        }
    }
}

/// The patient an event carries, or `None` for another aggregate's event.
fn patient_of(event: &EventEnvelope) -> Result<Option<Patient>, sqlx::Error> {
    if event.aggregate != Aggregate::Patient {
        return Ok(None);
    }
    decode(event, "patient").map(Some)
}

const CURRENT: &str = "SELECT version, name FROM patients WHERE id = $1";

impl Projection<Sqlite> for PatientRestore {
    async fn apply(
        &self,
        conn: &mut SqliteConnection,
        event: &EventEnvelope,
    ) -> Result<Vec<OutboxRow>, sqlx::Error> {
        let Some(patient) = patient_of(event)? else {
            return Ok(Vec::new());
        };
        let current = sqlx::query_as(CURRENT)
            .bind(patient.id.to_string())
            .fetch_optional(&mut *conn)
            .await?;
        let step = Step::of(current, &patient);
        with_handle(conn, |db| -> Result<(), WriteError> {
            match step {
                Step::Insert => {
                    sqlite::write_row(db, &patient, true)?;
                    PATIENTS.index_name(db, patient.id, &patient.name)?;
                }
                Step::Update { renamed } => {
                    sqlite::write_row(db, &patient, false)?;
                    if renamed {
                        PATIENTS.index_name(db, patient.id, &patient.name)?;
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

impl Projection<Postgres> for PatientRestore {
    async fn apply(
        &self,
        conn: &mut PgConnection,
        event: &EventEnvelope,
    ) -> Result<Vec<OutboxRow>, sqlx::Error> {
        let Some(patient) = patient_of(event)? else {
            return Ok(Vec::new());
        };
        let current = sqlx::query_as(CURRENT)
            .bind(patient.id)
            .fetch_optional(&mut *conn)
            .await?;
        match Step::of(current, &patient) {
            Step::Insert => {
                postgres::write_row(conn, &patient, true).await?;
                PATIENTS
                    .index_new_name_pg(conn, patient.id, &patient.name)
                    .await?;
            }
            Step::Update { renamed } => {
                postgres::write_row(conn, &patient, false).await?;
                if renamed {
                    PATIENTS
                        .index_name_pg(conn, patient.id, &patient.name)
                        .await?;
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

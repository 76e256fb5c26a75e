//! Restoring the patient tables from the patient events (`hospital restore patient`): each
//! event carries the patient's whole state, so the newest version of each is written with the
//! store's own row and name-index code, and nothing goes to the outbox (the events exist).

use kit::directory::decode;
use kit::handle::{WriteError, with_handle};
use kit::outbox::OutboxRow;
use kit::read_model::Projection;
use shared_events::patient::Patient;
use shared_events::{Aggregate, EventEnvelope};
use sqlx::SqliteConnection;

use crate::store::PATIENTS;
use crate::store::sqlite::write_row;

/// The restorer handed to `kit::read_model::restore`.
pub struct PatientRestore;

impl Projection for PatientRestore {
    async fn apply(
        &self,
        conn: &mut SqliteConnection,
        event: &EventEnvelope,
    ) -> Result<Vec<OutboxRow>, sqlx::Error> {
        if event.aggregate != Aggregate::Patient {
            return Ok(Vec::new());
        }
        let patient: Patient = decode(event, "patient")?;
        let current: Option<(i64, String)> =
            sqlx::query_as("SELECT version, name FROM patients WHERE id = $1")
                .bind(patient.id.to_string())
                .fetch_optional(&mut *conn)
                .await?;
        with_handle(conn, |db| -> Result<(), WriteError> {
            match current {
                None => {
                    write_row(db, &patient, true)?;
                    PATIENTS.index_name(db, patient.id, &patient.name)?;
                    Ok(())
                }
                Some((version, name)) if patient.version > version => {
                    write_row(db, &patient, false)?;
                    if name != patient.name {
                        PATIENTS.index_name(db, patient.id, &patient.name)?;
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

//! Restoring the appointment table from the appointment events (`hospital restore
//! appointment`): the newest version of each appointment, written with the store's own row
//! code; nothing goes to the outbox (the events exist). The directory is a read-model: rebuild
//! it afterwards with `hospital replay appointment`.

use kit::directory::decode;
use kit::handle::{WriteError, with_handle};
use kit::outbox::OutboxRow;
use kit::read_model::Projection;
use rusqlite::OptionalExtension;
use shared_events::appointment::Appointment;
use shared_events::{Aggregate, EventEnvelope};
use sqlx::SqliteConnection;

use crate::store::rows::write_row;

/// The restorer handed to `kit::read_model::restore`.
pub struct AppointmentRestore;

impl Projection for AppointmentRestore {
    async fn apply(
        &self,
        conn: &mut SqliteConnection,
        event: &EventEnvelope,
    ) -> Result<Vec<OutboxRow>, sqlx::Error> {
        if event.aggregate != Aggregate::Appointment {
            return Ok(Vec::new());
        }
        let appointment: Appointment = decode(event, "appointment")?;
        with_handle(conn, |db| -> Result<(), WriteError> {
            let current: Option<i64> = db
                .prepare_cached("SELECT version FROM appointments WHERE id = ?1")?
                .query_row([appointment.id.to_string()], |row| row.get(0))
                .optional()?;
            match current {
                None => write_row(db, &appointment, true),
                Some(version) if appointment.version > version => {
                    write_row(db, &appointment, false)
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

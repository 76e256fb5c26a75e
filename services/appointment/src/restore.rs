//! Restoring the appointment table from the appointment events (`hospital restore
//! appointment`): the newest version of each appointment, written with the store's own row
//! code; nothing goes to the outbox (the events exist). The directory is a read-model: rebuild
//! it afterwards with `hospital replay appointment`.

use kit::directory::decode;
use kit::outbox::OutboxRow;
use kit::read_model::Projection;
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
        let current: Option<i64> =
            sqlx::query_scalar("SELECT version FROM appointments WHERE id = $1")
                .bind(appointment.id.to_string())
                .fetch_optional(&mut *conn)
                .await?;
        match current {
            None => write_row(conn, &appointment, true).await?,
            Some(version) if appointment.version > version => {
                write_row(conn, &appointment, false).await?
            }
            Some(_) => {}
        }
        Ok(Vec::new())
    }

    /// A restore goes into an empty database only.
    async fn reset(&self, _conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
        Ok(())
    }
}

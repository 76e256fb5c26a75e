//! Restoring the appointment table from the appointment events (`hospital restore
//! appointment`), on either backend: the newest version of each appointment, written with the
//! store's own row code; nothing goes to the outbox (the events exist). The directory is a
//! read-model: rebuild it afterwards with `hospital replay appointment`.

use kit::directory::decode;
use kit::handle::{WriteError, with_handle};
use kit::outbox::OutboxRow;
use kit::read_model::Projection;
use rusqlite::OptionalExtension;
use shared_events::appointment::Appointment;
use shared_events::{Aggregate, EventEnvelope};
use sqlx::{PgConnection, Postgres, Sqlite, SqliteConnection};

use crate::store::{postgres, rows};

/// The restorer handed to `kit::read_model::restore`.
pub struct AppointmentRestore;

/// The appointment an event carries, or `None` for another aggregate's event.
fn appointment_of(event: &EventEnvelope) -> Result<Option<Appointment>, sqlx::Error> {
    if event.aggregate != Aggregate::Appointment {
        return Ok(None);
    }
    decode(event, "appointment").map(Some)
}

impl Projection<Sqlite> for AppointmentRestore {
    async fn apply(
        &self,
        conn: &mut SqliteConnection,
        event: &EventEnvelope,
    ) -> Result<Vec<OutboxRow>, sqlx::Error> {
        let Some(appointment) = appointment_of(event)? else {
            return Ok(Vec::new());
        };
        with_handle(conn, |db| -> Result<(), WriteError> {
            let current: Option<i64> = db
                .prepare_cached("SELECT version FROM appointments WHERE id = ?1")?
                .query_row([appointment.id.to_string()], |row| row.get(0))
                .optional()?;
            match current {
                None => rows::write_row(db, &appointment, true),
                Some(version) if appointment.version > version => {
                    rows::write_row(db, &appointment, false)
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

impl Projection<Postgres> for AppointmentRestore {
    async fn apply(
        &self,
        conn: &mut PgConnection,
        event: &EventEnvelope,
    ) -> Result<Vec<OutboxRow>, sqlx::Error> {
        let Some(appointment) = appointment_of(event)? else {
            return Ok(Vec::new());
        };
        let current: Option<i64> =
            sqlx::query_scalar("SELECT version FROM appointments WHERE id = $1")
                .bind(appointment.id)
                .fetch_optional(&mut *conn)
                .await?;
        match current {
            None => postgres::write_row(conn, &appointment, true).await?,
            Some(version) if appointment.version > version => {
                postgres::write_row(conn, &appointment, false).await?
            }
            Some(_) => {}
        }
        Ok(Vec::new())
    }

    /// A restore goes into an empty database only.
    async fn reset(&self, _conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        Ok(())
    }
}

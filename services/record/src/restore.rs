//! Restoring the record tables from the record events (`hospital restore record`), on either
//! backend: every event carries the record as it was after that version, so each one becomes its
//! `record_versions` row (who changed it comes from the event's actor) and the newest becomes the
//! current row. Nothing goes to the outbox (the events exist). The read-models are rebuilt
//! afterwards with `hospital replay record`.

use kit::directory::decode;
use kit::handle::with_handle;
use kit::outbox::OutboxRow;
use kit::read_model::Projection;
use shared_events::record::MedicalRecord;
use shared_events::{Aggregate, EventEnvelope};
use sqlx::{PgConnection, Postgres, Sqlite, SqliteConnection};

use crate::domain::Change;
use crate::store::{VersionRepeat, postgres, sqlite};

/// The restorer handed to `kit::read_model::restore`.
pub struct RecordRestore;

/// The record an event carries and the change its verb names, or `None` for another
/// aggregate's event.
fn record_of(event: &EventEnvelope) -> Result<Option<(MedicalRecord, Change)>, sqlx::Error> {
    if event.aggregate != Aggregate::Record {
        return Ok(None);
    }
    let record: MedicalRecord = decode(event, "medical record")?;
    // An entry in error is published as `deleted`.
    let change = match event.verb() {
        "created" => Change::Created,
        "amended" => Change::Amended,
        _ => Change::EnteredInError,
    };
    Ok(Some((record, change)))
}

impl Projection<Sqlite> for RecordRestore {
    async fn apply(
        &self,
        conn: &mut SqliteConnection,
        event: &EventEnvelope,
    ) -> Result<Vec<OutboxRow>, sqlx::Error> {
        let Some((record, change)) = record_of(event)? else {
            return Ok(Vec::new());
        };
        // The store's own write functions, run on the handle inside the restore's transaction.
        with_handle(conn, |db| {
            sqlite::write_current(db, &record)?;
            sqlite::write_version(db, &record, change, &event.actor, VersionRepeat::Ignore)
        })
        .await??;
        Ok(Vec::new())
    }

    /// A restore goes into an empty database only.
    async fn reset(&self, _conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
        Ok(())
    }
}

impl Projection<Postgres> for RecordRestore {
    async fn apply(
        &self,
        conn: &mut PgConnection,
        event: &EventEnvelope,
    ) -> Result<Vec<OutboxRow>, sqlx::Error> {
        let Some((record, change)) = record_of(event)? else {
            return Ok(Vec::new());
        };
        postgres::write_current(conn, &record).await?;
        postgres::write_version(conn, &record, change, &event.actor, VersionRepeat::Ignore).await?;
        Ok(Vec::new())
    }

    /// A restore goes into an empty database only.
    async fn reset(&self, _conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        Ok(())
    }
}

//! Restoring the record tables from the record events (`hospital restore record`): every event
//! carries the record as it was after that version, so each one becomes its `record_versions`
//! row (who changed it comes from the event's actor) and the newest becomes the current row.
//! Nothing goes to the outbox (the events exist). The read-models are rebuilt afterwards with
//! `hospital replay record`.

use kit::directory::decode;
use kit::handle::with_handle;
use kit::outbox::OutboxRow;
use kit::read_model::Projection;
use shared_events::record::MedicalRecord;
use shared_events::{Aggregate, EventEnvelope};
use sqlx::SqliteConnection;

use crate::domain::Change;
use crate::store::{VersionRepeat, write_current, write_version};

/// The restorer handed to `kit::read_model::restore`.
pub struct RecordRestore;

impl Projection for RecordRestore {
    async fn apply(
        &self,
        conn: &mut SqliteConnection,
        event: &EventEnvelope,
    ) -> Result<Vec<OutboxRow>, sqlx::Error> {
        if event.aggregate != Aggregate::Record {
            return Ok(Vec::new());
        }
        let record: MedicalRecord = decode(event, "medical record")?;
        // The event's verb names the change; an entry in error is published as `deleted`.
        let change = match event.verb() {
            "created" => Change::Created,
            "amended" => Change::Amended,
            _ => Change::EnteredInError,
        };
        // The store's own write functions, run on the handle inside the restore's transaction.
        with_handle(conn, |db| {
            write_current(db, &record)?;
            write_version(db, &record, change, &event.actor, VersionRepeat::Ignore)
        })
        .await??;
        Ok(Vec::new())
    }

    /// A restore goes into an empty database only.
    async fn reset(&self, _conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
        Ok(())
    }
}

//! Restoring the record tables from the record events (`hospital restore record`): every event
//! carries the record as it was after that version, so each one becomes its `record_versions`
//! row (who changed it comes from the event's actor) and the newest becomes the current row.
//! Nothing goes to the outbox (the events exist). The read-models are rebuilt afterwards with
//! `hospital replay record`.

use kit::directory::decode;
use kit::events::format_timestamp;
use kit::outbox::OutboxRow;
use kit::read_model::Projection;
use shared_events::record::MedicalRecord;
use shared_events::{Aggregate, EventEnvelope};
use sqlx::SqliteConnection;

/// The restorer handed to `kit::read_model::restore`.
pub struct RecordRestore;

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, sqlx::Error> {
    serde_json::to_string(value).map_err(|e| sqlx::Error::Encode(Box::new(e)))
}

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
        sqlx::query(
            "INSERT INTO records (id, patient_id, author_id, appointment_id, kind, title, body, diagnoses,
                                  vitals, recorded_at, status, version, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
             ON CONFLICT (id) DO UPDATE SET
                 appointment_id = excluded.appointment_id, kind = excluded.kind, title = excluded.title,
                 body = excluded.body, diagnoses = excluded.diagnoses, vitals = excluded.vitals,
                 recorded_at = excluded.recorded_at, status = excluded.status,
                 version = excluded.version, updated_at = excluded.updated_at
             WHERE excluded.version > records.version",
        )
        .bind(record.id.to_string())
        .bind(record.patient_id.to_string())
        .bind(record.author_id.to_string())
        .bind(record.appointment_id.map(|id| id.to_string()))
        .bind(record.kind.as_str())
        .bind(&record.title)
        .bind(&record.body)
        .bind(to_json(&record.diagnoses)?)
        .bind(record.vitals.as_ref().map(to_json).transpose()?)
        .bind(format_timestamp(record.recorded_at))
        .bind(record.status.as_str())
        .bind(record.version)
        .bind(format_timestamp(record.created_at))
        .bind(format_timestamp(record.updated_at))
        .execute(&mut *conn)
        .await?;
        // The event's verb names the change; an entry in error is published as `deleted`.
        let change = match event.verb() {
            "created" => "created",
            "amended" => "amended",
            _ => "entered_in_error",
        };
        sqlx::query(
            "INSERT OR IGNORE INTO record_versions (record_id, version, change, changed_by_id,
                                                   changed_by_role, changed_at, state)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(record.id.to_string())
        .bind(record.version)
        .bind(change)
        .bind(&event.actor.id)
        .bind(&event.actor.role)
        .bind(format_timestamp(record.updated_at))
        .bind(to_json(&record)?)
        .execute(conn)
        .await?;
        Ok(Vec::new())
    }

    /// A restore goes into an empty database only.
    async fn reset(&self, _conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
        Ok(())
    }
}

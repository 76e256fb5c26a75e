//! What the record service knows of other services, built from `HOSPITAL_EVENTS` by one durable
//! consumer (`record-read-model`): the patients and staff of [`kit::directory`], and the
//! appointments a record may belong to. Applying is idempotent: a row changes only when the
//! event's aggregate version is newer than the stored one. Written for both backends (SQLite and
//! PostgreSQL, `kit::database`).

use serde::Deserialize;
use shared_events::subjects::events_of;
use shared_events::{Aggregate, EventEnvelope, ServiceError};
use sqlx::{PgConnection, PgPool, Postgres, Sqlite, SqliteConnection, SqlitePool};
use uuid::Uuid;

use kit::database::Database;
use kit::directory::{self, CATCH_UP_PATIENCE};
use kit::events::storage_failure;
use kit::outbox::OutboxRow;
use kit::postgres::failure;
use kit::read_model::{CatchUp, Projection, Subscription};

/// The durable consumer's name: one per service, never one per instance.
pub const CONSUMER: &str = "record-read-model";

/// Patient and staff events for the directory, appointment events for [`KnownAppointment`]s.
pub fn subscription() -> Subscription {
    let mut subjects = directory::subjects();
    subjects.push(events_of(Aggregate::Appointment));
    Subscription {
        consumer: CONSUMER.to_owned(),
        subjects,
    }
}

/// Applies the events of [`subscription`] to the read-model tables.
pub struct RecordReadModel;

impl Projection<Sqlite> for RecordReadModel {
    async fn apply(
        &self,
        conn: &mut SqliteConnection,
        event: &EventEnvelope,
    ) -> Result<Vec<OutboxRow>, sqlx::Error> {
        match event.aggregate {
            Aggregate::Patient | Aggregate::Staff => {
                directory::sqlite::apply(conn, event).await?;
            }
            Aggregate::Appointment => apply_appointment(conn, event).await?,
            Aggregate::Record => {}
        }
        // Records are kept whatever happens to their patient: nothing cascades from here.
        Ok(Vec::new())
    }

    /// Patients and staff in a few multi-row statements, appointments one by one.
    async fn apply_batch(
        &self,
        conn: &mut SqliteConnection,
        events: &[&EventEnvelope],
    ) -> Result<(), sqlx::Error> {
        directory::sqlite::apply_many(&mut *conn, events).await?;
        for event in events {
            if event.aggregate == Aggregate::Appointment {
                apply_appointment(&mut *conn, event).await?;
            }
        }
        Ok(())
    }

    async fn reset(&self, conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
        directory::sqlite::reset(&mut *conn).await?;
        sqlx::query("DELETE FROM known_appointments")
            .execute(conn)
            .await?;
        Ok(())
    }
}

impl Projection<Postgres> for RecordReadModel {
    async fn apply(
        &self,
        conn: &mut PgConnection,
        event: &EventEnvelope,
    ) -> Result<Vec<OutboxRow>, sqlx::Error> {
        match event.aggregate {
            Aggregate::Patient | Aggregate::Staff => {
                directory::postgres::apply(conn, event).await?;
            }
            Aggregate::Appointment => apply_appointment_pg(conn, event).await?,
            Aggregate::Record => {}
        }
        Ok(Vec::new())
    }

    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[&EventEnvelope],
    ) -> Result<(), sqlx::Error> {
        directory::postgres::apply_many(&mut *conn, events).await?;
        for event in events {
            if event.aggregate == Aggregate::Appointment {
                apply_appointment_pg(&mut *conn, event).await?;
            }
        }
        Ok(())
    }

    async fn reset(&self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        directory::postgres::reset(&mut *conn).await?;
        sqlx::query("DELETE FROM known_appointments")
            .execute(conn)
            .await?;
        Ok(())
    }
}

/// The part of an appointment event a record needs.
#[derive(Deserialize)]
struct AppointmentReference {
    patient_id: Uuid,
    status: String,
}

async fn apply_appointment(
    conn: &mut SqliteConnection,
    event: &EventEnvelope,
) -> Result<(), sqlx::Error> {
    let appointment: AppointmentReference = directory::decode(event, "appointment")?;
    sqlx::query(
        "INSERT INTO known_appointments (id, patient_id, status, version) VALUES ($1, $2, $3, $4)
         ON CONFLICT (id) DO UPDATE SET patient_id = excluded.patient_id, status = excluded.status,
                                        version = excluded.version
         WHERE excluded.version > known_appointments.version",
    )
    .bind(event.aggregate_id.to_string())
    .bind(appointment.patient_id.to_string())
    .bind(appointment.status)
    .bind(event.aggregate_version)
    .execute(conn)
    .await?;
    Ok(())
}

async fn apply_appointment_pg(
    conn: &mut PgConnection,
    event: &EventEnvelope,
) -> Result<(), sqlx::Error> {
    let appointment: AppointmentReference = directory::decode(event, "appointment")?;
    sqlx::query(
        "INSERT INTO known_appointments (id, patient_id, status, version) VALUES ($1, $2, $3, $4)
         ON CONFLICT (id) DO UPDATE SET patient_id = excluded.patient_id, status = excluded.status,
                                        version = excluded.version
         WHERE excluded.version > known_appointments.version",
    )
    .bind(event.aggregate_id)
    .bind(appointment.patient_id)
    .bind(appointment.status)
    .bind(event.aggregate_version)
    .execute(conn)
    .await?;
    Ok(())
}

/// What the read-model knows of an appointment.
#[derive(Debug, Clone, PartialEq)]
pub struct KnownAppointment {
    pub id: Uuid,
    pub patient_id: Uuid,
    pub status: String,
    pub version: i64,
}

/// Looks appointments up, waiting for the read-model to catch up when an id is not known yet
/// (a record written right after its appointment was booked).
#[derive(Clone)]
pub struct KnownAppointments {
    tables: Tables,
    catch_up: CatchUp,
}

/// Where the `known_appointments` table is.
#[derive(Clone)]
enum Tables {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl KnownAppointments {
    pub fn new(database: &Database, catch_up: CatchUp) -> Self {
        let tables = match database {
            Database::Sqlite { pool, .. } => Tables::Sqlite(pool.clone()),
            Database::Postgres(pool) => Tables::Postgres(pool.clone()),
        };
        KnownAppointments { tables, catch_up }
    }

    pub async fn get(&self, id: Uuid) -> Result<Option<KnownAppointment>, ServiceError> {
        if let Some(known) = self.get_now(id).await? {
            return Ok(Some(known));
        }
        self.catch_up.wait(CATCH_UP_PATIENCE).await;
        self.get_now(id).await
    }

    /// What the read-model holds right now, without waiting.
    pub async fn get_now(&self, id: Uuid) -> Result<Option<KnownAppointment>, ServiceError> {
        const SQL: &str =
            "SELECT patient_id, status, version FROM known_appointments WHERE id = $1";
        let row: Option<(String, String, i64)> = match &self.tables {
            Tables::Sqlite(pool) => sqlx::query_as(SQL)
                .bind(id.to_string())
                .fetch_optional(pool)
                .await
                .map_err(storage_failure)?,
            Tables::Postgres(pool) => sqlx::query_as(
                "SELECT patient_id::text, status, version FROM known_appointments WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await
            .map_err(failure)?,
        };
        row.map(|(patient_id, status, version)| {
            Ok(KnownAppointment {
                id,
                patient_id: patient_id.parse().map_err(storage_failure)?,
                status,
                version,
            })
        })
        .transpose()
    }
}

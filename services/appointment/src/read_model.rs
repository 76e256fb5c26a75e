//! The appointment service's read-model of patients and staff (DESIGN.md, "Reads across
//! services"), and the cascade it drives: when a patient or a doctor is deleted, their future
//! booked appointments are cancelled, each with its own `cancelled` event.
//!
//! The runner (`kit::read_model::ReadModel`) hands each patient or staff event to
//! [`PeopleProjection::apply`] inside one transaction that also stores the consumer position,
//! so the directory row, the cancellations, their outbox rows and the position commit together.
//! The projection is written for both backends (SQLite and PostgreSQL, `kit::database`).

use kit::RequestContext;
use kit::directory::{self, Applied};
use kit::events::now;
use kit::handle::{WriteError, with_handle};
use kit::outbox::OutboxRow;
use kit::read_model::{Projection, Subscription};
use shared_events::{Actor, Aggregate, EventEnvelope};
use sqlx::{PgConnection, Postgres, Sqlite, SqliteConnection};
use uuid::Uuid;

use crate::domain::{self, DOCTOR_DELETED, PATIENT_DELETED};
use crate::store::{self, Party};

/// The durable consumer of the appointment service: one per service, never one per instance.
pub const CONSUMER: &str = "appointment-read-model";

/// What the read-model consumes: every patient and staff event.
pub fn subscription() -> Subscription {
    Subscription {
        consumer: CONSUMER.to_owned(),
        subjects: directory::subjects(),
    }
}

/// The directory of patients and staff, cancelling the future bookings of those deleted.
#[derive(Debug, Clone, Copy, Default)]
pub struct PeopleProjection;

/// What a directory change that was applied asks of the appointments: the cancellation of a
/// deleted person's future bookings (whose, why, and as whom), or nothing.
struct Cascade {
    party: Party,
    person: Uuid,
    reason: &'static str,
    context: RequestContext,
}

impl Cascade {
    fn of(applied: Applied, event: &EventEnvelope) -> Option<Cascade> {
        // A redelivered or older event changes nothing, so it cancels nothing either.
        if applied != Applied::Changed || event.verb() != "deleted" {
            return None;
        }
        let (party, reason) = match event.aggregate {
            Aggregate::Patient => (Party::Patient, PATIENT_DELETED),
            Aggregate::Staff => (Party::Doctor, DOCTOR_DELETED),
            Aggregate::Appointment | Aggregate::Record => return None,
        };
        Some(Cascade {
            party,
            person: event.aggregate_id,
            reason,
            // The system acts, and the delete event is what caused it.
            context: RequestContext {
                actor: Actor::system(),
                request_id: Some(event.event_id.to_string()),
                idempotency_key: None,
                idempotency: None,
            },
        })
    }

    fn log(&self, event: &EventEnvelope, cancelled: usize) {
        if cancelled > 0 {
            tracing::info!(
                cancelled,
                aggregate = event.aggregate.as_str(),
                id = %event.aggregate_id,
                "cancelled the future bookings of a deleted person"
            );
        }
    }
}

impl Projection<Sqlite> for PeopleProjection {
    async fn apply(
        &self,
        conn: &mut SqliteConnection,
        event: &EventEnvelope,
    ) -> Result<Vec<OutboxRow>, sqlx::Error> {
        let applied = directory::sqlite::apply(conn, event).await?;
        let Some(cascade) = Cascade::of(applied, event) else {
            return Ok(Vec::new());
        };
        let Cascade {
            party,
            person,
            reason,
            ref context,
        } = cascade;
        let at = now();
        // The whole cascade in one go on the handle: the bookings, their rows and their events.
        let caused = with_handle(conn, |db| -> Result<Vec<OutboxRow>, WriteError> {
            let mut caused = Vec::new();
            for booking in store::future_bookings(db, party, person, at)? {
                if let Ok(Some(revision)) = domain::cancel(&booking, None, Some(reason), at) {
                    caused.push(store::record_revision(db, &revision, context)?);
                }
            }
            Ok(caused)
        })
        .await?
        .map_err(sqlx::Error::from)?;
        cascade.log(event, caused.len());
        Ok(caused)
    }

    /// Runs of events are upserted together; each delete goes through [`Self::apply`] in its
    /// place in the order, for its cascade.
    async fn apply_batch(
        &self,
        conn: &mut SqliteConnection,
        events: &[&EventEnvelope],
    ) -> Result<(), sqlx::Error> {
        let mut run = Vec::new();
        for event in events {
            if event.verb() == "deleted" {
                directory::sqlite::apply_many(&mut *conn, &run).await?;
                run.clear();
                Projection::<Sqlite>::apply(self, &mut *conn, event).await?;
            } else {
                run.push(*event);
            }
        }
        directory::sqlite::apply_many(conn, &run).await
    }

    async fn reset(&self, conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
        directory::sqlite::reset(conn).await
    }
}

/// The same on PostgreSQL. The directory row's update locks it until the commit, and a booking
/// reads that row `FOR SHARE` (`store::postgres`): a booking committed first is found and
/// cancelled here; one that comes after sees the person deleted.
impl Projection<Postgres> for PeopleProjection {
    async fn apply(
        &self,
        conn: &mut PgConnection,
        event: &EventEnvelope,
    ) -> Result<Vec<OutboxRow>, sqlx::Error> {
        let applied = directory::postgres::apply(conn, event).await?;
        let Some(cascade) = Cascade::of(applied, event) else {
            return Ok(Vec::new());
        };
        let at = now();
        let mut caused = Vec::new();
        let bookings =
            store::postgres::future_bookings(conn, cascade.party, cascade.person, at).await?;
        for booking in bookings {
            if let Ok(Some(revision)) = domain::cancel(&booking, None, Some(cascade.reason), at) {
                caused.push(
                    store::postgres::record_revision(conn, &revision, &cascade.context).await?,
                );
            }
        }
        cascade.log(event, caused.len());
        Ok(caused)
    }

    /// As on SQLite: runs of events upserted together, each delete applied in its place.
    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[&EventEnvelope],
    ) -> Result<(), sqlx::Error> {
        let mut run = Vec::new();
        for event in events {
            if event.verb() == "deleted" {
                directory::postgres::apply_many(&mut *conn, &run).await?;
                run.clear();
                Projection::<Postgres>::apply(self, &mut *conn, event).await?;
            } else {
                run.push(*event);
            }
        }
        directory::postgres::apply_many(conn, &run).await
    }

    async fn reset(&self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        directory::postgres::reset(conn).await
    }
}

//! The appointment tables on a real SQLite file: the double-booking guarantee under concurrency
//! and beneath the service (the trigger), the read-model projection and its cascade, paging.

use std::sync::Arc;

use appointment_service::domain::{self, BookingRequest, PATIENT_DELETED};
use appointment_service::filters::AppointmentFilter;
use appointment_service::read_model::PeopleProjection;
use appointment_service::store::{AppointmentStore, MIGRATOR};
use chrono::{DateTime, Duration, DurationRound, Utc};
use kit::RequestContext;
use kit::read_model::Projection;
use serde_json::json;
use shared_events::appointment::{Appointment, AppointmentStatus};
use shared_events::{Actor, Aggregate, EventEnvelope, ListQuery};
use sqlx::SqlitePool;
use uuid::Uuid;

struct Clinic {
    _dir: tempfile::TempDir,
    pool: SqlitePool,
    store: AppointmentStore,
    doctor: Uuid,
}

async fn clinic() -> Clinic {
    let dir = tempfile::tempdir().unwrap();
    let url = kit::config::sqlite_url_in(dir.path(), "appointment");
    let pool = kit::sqlite::open(&url, &MIGRATOR).await.unwrap();
    let clinic = Clinic {
        _dir: dir,
        store: AppointmentStore::new(pool.clone(), kit::group_commit::Writer::start(pool.clone())),
        pool,
        doctor: Uuid::now_v7(),
    };
    clinic
        .apply(&staff_event(clinic.doctor, 1, "doctor", false))
        .await;
    clinic
}

impl Clinic {
    /// Applies one event as the read-model runner would: in a write transaction.
    async fn apply(&self, event: &EventEnvelope) -> usize {
        let mut tx = kit::sqlite::begin_write(&self.pool).await.unwrap();
        let caused = Projection::<sqlx::Sqlite>::apply(&PeopleProjection, &mut tx, event)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        caused.len()
    }

    async fn new_patient(&self) -> Uuid {
        let id = Uuid::now_v7();
        self.apply(&patient_event(id, 1, false)).await;
        id
    }

    async fn book(&self, patient: Uuid, start: DateTime<Utc>) -> Result<Appointment, u16> {
        let request = BookingRequest {
            patient_id: patient,
            doctor_id: self.doctor,
            start,
            duration_minutes: 30,
            reason: None,
            notes: None,
        };
        let appointment = domain::book(request, kit::events::now());
        self.store
            .book(appointment, &RequestContext::system())
            .await
            .map(|committed| committed.appointment)
            .map_err(|e| e.code.http_status())
    }

    async fn outbox_subjects(&self) -> Vec<String> {
        sqlx::query_scalar("SELECT subject FROM outbox ORDER BY seq")
            .fetch_all(&self.pool)
            .await
            .unwrap()
    }
}

fn envelope(
    aggregate: Aggregate,
    id: Uuid,
    version: i64,
    deleted: bool,
    data: serde_json::Value,
) -> EventEnvelope {
    let verb = match (deleted, version) {
        (true, _) => "deleted",
        (false, 1) => "created",
        _ => "updated",
    };
    EventEnvelope {
        event_id: Uuid::now_v7(),
        event_type: format!("{}.{verb}", aggregate.as_str()),
        aggregate,
        aggregate_id: id,
        aggregate_version: version,
        occurred_at: Utc::now(),
        actor: Actor::system(),
        correlation_id: None,
        data,
    }
}

fn patient_event(id: Uuid, version: i64, deleted: bool) -> EventEnvelope {
    let now = Utc::now();
    let data = json!({"id": id, "mrn": "0000000000", "name": "Ada", "birth_date": "1990-01-01",
                      "sex": "female", "phone": null, "email": null, "address": null,
                      "version": version, "created_at": now, "updated_at": now,
                      "deleted_at": if deleted { Some(now) } else { None }});
    envelope(Aggregate::Patient, id, version, deleted, data)
}

fn staff_event(id: Uuid, version: i64, role: &str, deleted: bool) -> EventEnvelope {
    let now = Utc::now();
    let data = json!({"id": id, "name": "Dr Quinn", "role": role, "specialization": null,
                      "phone": null, "email": null, "username": null, "version": version,
                      "created_at": now, "updated_at": now,
                      "deleted_at": if deleted { Some(now) } else { None }});
    envelope(Aggregate::Staff, id, version, deleted, data)
}

/// Tomorrow at `hour`:00 UTC.
fn tomorrow(hour: i64) -> DateTime<Utc> {
    (Utc::now() + Duration::days(1))
        .duration_trunc(Duration::days(1))
        .unwrap()
        + Duration::hours(hour)
}

#[tokio::test]
async fn of_fifty_concurrent_bookings_of_one_slot_exactly_one_commits() {
    let clinic = Arc::new(clinic().await);
    let mut patients = Vec::new();
    for _ in 0..50 {
        patients.push(clinic.new_patient().await);
    }
    let attempts = patients.into_iter().map(|patient| {
        let clinic = clinic.clone();
        tokio::spawn(async move { clinic.book(patient, tomorrow(9)).await })
    });
    let mut outcomes: Vec<Result<(), u16>> = Vec::new();
    for attempt in attempts.collect::<Vec<_>>() {
        outcomes.push(attempt.await.unwrap().map(|_| ()));
    }
    assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 1);
    assert_eq!(outcomes.iter().filter(|o| **o == Err(409)).count(), 49);
    assert_eq!(
        clinic.outbox_subjects().await.len(),
        1,
        "one event, for the one booking"
    );
}

#[tokio::test]
async fn the_trigger_refuses_an_overlap_written_past_the_service() {
    let clinic = clinic().await;
    let patient = clinic.new_patient().await;
    let booked = clinic.book(patient, tomorrow(9)).await.unwrap();
    let insert = |id: Uuid, patient: &str, doctor: &str, start: DateTime<Utc>, status: &str| {
        let start_at = kit::events::format_timestamp(start);
        let end_at = kit::events::format_timestamp(start + Duration::minutes(30));
        sqlx::query(
            "INSERT INTO appointments (id, patient_id, doctor_id, start_at, end_at, duration_minutes,
                                       status, version, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, 30, $6, 1, $4, $4)",
        )
        .bind(id.to_string())
        .bind(patient.to_owned())
        .bind(doctor.to_owned())
        .bind(start_at)
        .bind(end_at)
        .bind(status.to_owned())
        .execute(&clinic.pool)
    };
    let (doctor, someone, other_doctor) = (
        clinic.doctor.to_string(),
        Uuid::now_v7().to_string(),
        Uuid::now_v7().to_string(),
    );
    let refused = |result: Result<_, sqlx::Error>| matches!(result, Err(sqlx::Error::Database(e)) if e.message() == "appointment overlap");
    assert!(refused(
        insert(
            Uuid::now_v7(),
            &someone,
            &doctor,
            tomorrow(9) + Duration::minutes(15),
            "booked"
        )
        .await
    ));
    assert!(refused(
        insert(
            Uuid::now_v7(),
            &patient.to_string(),
            &other_doctor,
            tomorrow(9),
            "checked_in"
        )
        .await
    ));
    assert!(
        insert(Uuid::now_v7(), &someone, &doctor, tomorrow(9), "cancelled")
            .await
            .is_ok()
    );
    let later = Uuid::now_v7();
    assert!(
        insert(
            later,
            &someone,
            &doctor,
            tomorrow(9) + Duration::minutes(30),
            "booked"
        )
        .await
        .is_ok()
    );
    // Moving the later one back onto the first is refused too.
    let moved = sqlx::query("UPDATE appointments SET start_at = $2 WHERE id = $1")
        .bind(later.to_string())
        .bind(kit::events::format_timestamp(
            tomorrow(9) + Duration::minutes(20),
        ))
        .execute(&clinic.pool)
        .await;
    assert!(refused(moved));
    // The first appointment itself can still be written (it does not overlap itself).
    sqlx::query("UPDATE appointments SET notes = 'x' WHERE id = $1")
        .bind(booked.id.to_string())
        .execute(&clinic.pool)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_delete_applied_twice_cancels_future_bookings_once() {
    let clinic = clinic().await;
    let patient = clinic.new_patient().await;
    let first = clinic.book(patient, tomorrow(9)).await.unwrap();
    let second = clinic.book(patient, tomorrow(11)).await.unwrap();
    let deleted = patient_event(patient, 2, true);
    assert_eq!(clinic.apply(&deleted).await, 2);
    assert_eq!(
        clinic.apply(&deleted).await,
        0,
        "a redelivery changes nothing"
    );
    assert_eq!(
        clinic.apply(&patient_event(patient, 1, false)).await,
        0,
        "an older event neither"
    );
    for booking in [first, second] {
        let now = clinic.store.get(booking.id).await.unwrap().unwrap();
        assert_eq!(now.status, AppointmentStatus::Cancelled);
        assert_eq!(now.cancellation_reason.as_deref(), Some(PATIENT_DELETED));
        assert_eq!(now.version, 2);
    }
    let subjects = clinic.outbox_subjects().await;
    assert_eq!(
        subjects
            .iter()
            .filter(|s| s.ends_with(".cancelled"))
            .count(),
        2
    );
    assert_eq!(
        clinic.book(patient, tomorrow(14)).await,
        Err(422),
        "a deleted patient cannot book"
    );
}

#[tokio::test]
async fn pages_run_in_start_order_then_id() {
    let clinic = clinic().await;
    let mut booked = Vec::new();
    for hour in [15, 9, 12, 10, 11] {
        let patient = clinic.new_patient().await;
        booked.push(clinic.book(patient, tomorrow(hour)).await.unwrap());
    }
    booked.sort_by_key(|a| (a.start, a.id));
    let mut query = ListQuery {
        limit: Some(2),
        ..Default::default()
    };
    let mut seen = Vec::new();
    loop {
        let page = clinic
            .store
            .list(&AppointmentFilter::default(), &query)
            .await
            .unwrap();
        seen.extend(page.items.iter().map(|a| a.id));
        match page.next_after {
            Some(after) => query.after = Some(after),
            None => break,
        }
    }
    assert_eq!(seen, booked.iter().map(|a| a.id).collect::<Vec<_>>());
    query.after = Some(Uuid::now_v7());
    let unknown = clinic
        .store
        .list(&AppointmentFilter::default(), &query)
        .await
        .unwrap_err();
    assert_eq!(unknown.code.http_status(), 400);
}

//! The appointment store on a real PostgreSQL database shared by two "instances" (two pools):
//! the double-booking guarantee under a burst of concurrent bookings for one slot, the people
//! checks, changes and paging. The directory rows are written as the read-model would.

use appointment_service::domain::{self, BookingRequest};
use appointment_service::filters::AppointmentFilter;
use appointment_service::store::{AppointmentStore, PG_MIGRATOR, PgAppointments};
use chrono::{DateTime, Duration, DurationRound, Utc};
use futures::future::join_all;
use kit::RequestContext;
use kit::postgres_test::FreshDatabase;
use shared_events::ListQuery;
use shared_events::appointment::{Appointment, AppointmentStatus};
use uuid::Uuid;

const BURST: usize = 50;

struct Clinic {
    database: FreshDatabase,
    /// Two instances of the service on the one database.
    instances: [AppointmentStore; 2],
    doctor: Uuid,
}

async fn clinic() -> Clinic {
    let database = FreshDatabase::migrated(&PG_MIGRATOR).await;
    let instance = async || {
        AppointmentStore::Postgres(PgAppointments::new(
            kit::postgres::open(database.url(), &PG_MIGRATOR)
                .await
                .unwrap(),
        ))
    };
    let clinic = Clinic {
        instances: [instance().await, instance().await],
        doctor: Uuid::now_v7(),
        database,
    };
    clinic.know_staff(clinic.doctor, "doctor", false).await;
    clinic
}

impl Clinic {
    async fn know_patient(&self, id: Uuid, deleted: bool) {
        sqlx::query(
            "INSERT INTO directory_patients (id, name, deleted, version) VALUES ($1, 'Ada', $2, 1)",
        )
        .bind(id)
        .bind(deleted)
        .execute(self.database.pool())
        .await
        .unwrap();
    }

    async fn know_staff(&self, id: Uuid, role: &str, deleted: bool) {
        sqlx::query(
            "INSERT INTO directory_staff (id, name, role, deleted, version) VALUES ($1, 'Dr Quinn', $2, $3, 1)",
        )
        .bind(id)
        .bind(role)
        .bind(deleted)
        .execute(self.database.pool())
        .await
        .unwrap();
    }

    async fn new_patient(&self) -> Uuid {
        let id = Uuid::now_v7();
        self.know_patient(id, false).await;
        id
    }

    async fn book_on(
        &self,
        instance: usize,
        patient: Uuid,
        doctor: Uuid,
        start: DateTime<Utc>,
    ) -> Result<Appointment, u16> {
        let request = BookingRequest {
            patient_id: patient,
            doctor_id: doctor,
            start,
            duration_minutes: 30,
            reason: None,
            notes: None,
        };
        self.instances[instance % 2]
            .book(
                domain::book(request, kit::events::now()),
                &RequestContext::system(),
            )
            .await
            .map(|committed| committed.appointment)
            .map_err(|e| e.code.http_status())
    }
}

fn tomorrow_at(hour: i64) -> DateTime<Utc> {
    (Utc::now() + Duration::days(1))
        .duration_trunc(Duration::days(1))
        .unwrap()
        + Duration::hours(hour)
}

#[tokio::test]
async fn a_burst_of_bookings_for_one_slot_on_two_instances_gets_exactly_one() {
    let clinic = clinic().await;
    let mut patients = Vec::new();
    for _ in 0..BURST {
        patients.push(clinic.new_patient().await);
    }
    let slot = tomorrow_at(9);
    let outcomes = join_all(
        patients
            .iter()
            .enumerate()
            .map(|(i, patient)| clinic.book_on(i, *patient, clinic.doctor, slot)),
    )
    .await;
    let booked = outcomes.iter().filter(|o| o.is_ok()).count();
    let refused: Vec<u16> = outcomes.iter().filter_map(|o| o.clone().err()).collect();
    assert_eq!(booked, 1, "{outcomes:?}");
    assert!(refused.iter().all(|status| *status == 409), "{refused:?}");

    let active: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM appointments WHERE doctor_id = $1 AND status = 'booked'",
    )
    .bind(clinic.doctor)
    .fetch_one(clinic.database.pool())
    .await
    .unwrap();
    assert_eq!(active, 1);
    let events: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox")
        .fetch_one(clinic.database.pool())
        .await
        .unwrap();
    assert_eq!(events, 1, "one event, for the one booking");
    clinic.database.drop().await;
}

#[tokio::test]
async fn a_patient_is_never_in_two_places_and_back_to_back_slots_are_fine() {
    let clinic = clinic().await;
    let other_doctor = Uuid::now_v7();
    clinic.know_staff(other_doctor, "doctor", false).await;
    let patient = clinic.new_patient().await;
    let first = clinic
        .book_on(0, patient, clinic.doctor, tomorrow_at(10))
        .await
        .unwrap();
    // The same patient, another doctor, overlapping by 15 minutes: refused on the other instance.
    let overlapping = tomorrow_at(10) + Duration::minutes(15);
    assert_eq!(
        clinic
            .book_on(1, patient, other_doctor, overlapping)
            .await
            .unwrap_err(),
        409
    );
    // Right after the first one ends: fine ([start, end) ranges).
    let next = clinic
        .book_on(1, patient, other_doctor, first.end)
        .await
        .unwrap();
    assert_eq!(next.start, first.end);
    // Cancelled, the first slot is free again.
    let cancelled = clinic.instances[1]
        .change(first.id, &RequestContext::system(), |current| {
            domain::cancel(current, Some(1), Some("changed plans"), kit::events::now())
        })
        .await
        .unwrap();
    assert_eq!(cancelled.appointment.status, AppointmentStatus::Cancelled);
    assert_eq!(cancelled.appointment.version, 2);
    clinic
        .book_on(
            0,
            clinic.new_patient().await,
            clinic.doctor,
            tomorrow_at(10),
        )
        .await
        .unwrap();
    // A stale If-Match is refused with the current version.
    let stale = clinic.instances[0]
        .change(first.id, &RequestContext::system(), |current| {
            domain::cancel(current, Some(1), None, kit::events::now())
        })
        .await
        .err()
        .map(|e| e.code.http_status());
    assert_eq!(stale, Some(412));
    clinic.database.drop().await;
}

#[tokio::test]
async fn unknown_deleted_or_wrong_people_are_refused_with_422() {
    let clinic = clinic().await;
    let deleted = Uuid::now_v7();
    clinic.know_patient(deleted, true).await;
    let nurse = Uuid::now_v7();
    clinic.know_staff(nurse, "nurse", false).await;
    let slot = tomorrow_at(11);
    for (patient, doctor) in [
        (deleted, clinic.doctor),
        (Uuid::now_v7(), clinic.doctor),
        (clinic.new_patient().await, nurse),
        (clinic.new_patient().await, Uuid::now_v7()),
    ] {
        assert_eq!(
            clinic.book_on(0, patient, doctor, slot).await.unwrap_err(),
            422,
            "patient {patient}, doctor {doctor}"
        );
    }
    clinic.database.drop().await;
}

#[tokio::test]
async fn lists_page_in_start_order_with_filters() {
    let clinic = clinic().await;
    let patient = clinic.new_patient().await;
    let mut booked = Vec::new();
    for hour in [13, 9, 11, 15, 10] {
        let patient = if hour == 11 {
            patient
        } else {
            clinic.new_patient().await
        };
        booked.push(
            clinic
                .book_on(0, patient, clinic.doctor, tomorrow_at(hour))
                .await
                .unwrap(),
        );
    }
    booked.sort_by_key(|a| a.start);
    let mut query = ListQuery {
        limit: Some(2),
        ..Default::default()
    };
    let mut seen = Vec::new();
    loop {
        let page = clinic.instances[1]
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
    let filter = AppointmentFilter {
        patient_id: Some(patient),
        ..Default::default()
    };
    let mine = clinic.instances[0]
        .list(&filter, &ListQuery::default())
        .await
        .unwrap();
    assert_eq!(mine.items.len(), 1);
    assert_eq!(mine.items[0].start, tomorrow_at(11));
    let stale = ListQuery {
        after: Some(Uuid::now_v7()),
        ..Default::default()
    };
    assert_eq!(
        clinic.instances[0]
            .list(&AppointmentFilter::default(), &stale)
            .await
            .err()
            .map(|e| e.code.http_status()),
        Some(400)
    );
    clinic.database.drop().await;
}

//! The appointment service's PostgreSQL schema (migrations/appointment/postgres) on a real
//! server: it applies, applies again as a no-op, and holds the invariant by itself: no two
//! overlapping active appointments for one doctor or for one patient (DESIGN.md, "Invariants").
//! The PostgreSQL store is not written yet (issue #9); these inserts are what it will rely on.

use kit::postgres_test::{
    FreshDatabase, refused,
    sqlstate::{CHECK_VIOLATION, EXCLUSION_VIOLATION},
};
use sqlx::PgPool;
use uuid::Uuid;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/appointment/postgres");

const DOCTOR_CONSTRAINT: &str = "appointments_doctor_never_double_booked";
const PATIENT_CONSTRAINT: &str = "appointments_patient_never_double_booked";

/// An appointment row as the store would write it.
#[derive(Debug, Clone)]
struct Slot {
    id: Uuid,
    patient: Uuid,
    doctor: Uuid,
    /// UTC, RFC 3339.
    start: &'static str,
    minutes: i64,
    status: &'static str,
}

fn slot(patient: Uuid, doctor: Uuid, start: &'static str, minutes: i64) -> Slot {
    Slot {
        id: Uuid::now_v7(),
        patient,
        doctor,
        start,
        minutes,
        status: "booked",
    }
}

fn people() -> (Uuid, Uuid) {
    (Uuid::now_v7(), Uuid::now_v7())
}

async fn book(pool: &PgPool, slot: &Slot) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO appointments (id, patient_id, doctor_id, start_at, end_at, duration_minutes,
                                   status, version, created_at, updated_at)
         VALUES ($1::uuid, $2::uuid, $3::uuid, $4::timestamptz,
                 $4::timestamptz + make_interval(mins => $5::integer), $5, $6, 1, now(), now())",
    )
    .bind(slot.id.to_string())
    .bind(slot.patient.to_string())
    .bind(slot.doctor.to_string())
    .bind(slot.start)
    .bind(slot.minutes)
    .bind(slot.status)
    .execute(pool)
    .await
    .map(|_| ())
}

async fn set_status(pool: &PgPool, id: Uuid, status: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE appointments SET status = $2, version = version + 1 WHERE id = $1::uuid")
        .bind(id.to_string())
        .bind(status)
        .execute(pool)
        .await
        .map(|_| ())
}

async fn appointments(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM appointments")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_migrations_apply_to_a_fresh_database_and_applying_again_changes_nothing() {
    let database = FreshDatabase::migrated(&MIGRATOR).await;
    let extension: String =
        sqlx::query_scalar("SELECT extname::text FROM pg_extension WHERE extname = 'btree_gist'")
            .fetch_one(database.pool())
            .await
            .unwrap();
    assert_eq!(extension, "btree_gist");
    let tables = database.tables().await;
    assert_eq!(
        tables,
        [
            "appointments",
            "directory_patients",
            "directory_staff",
            "idempotency_keys",
            "outbox",
            "read_model_parked",
            "read_model_position",
        ]
    );
    database.drop().await;
}

#[tokio::test]
async fn an_overlapping_active_booking_of_the_same_doctor_is_refused() {
    let database = FreshDatabase::migrated(&MIGRATOR).await;
    let pool = database.pool();
    let doctor = Uuid::now_v7();
    book(
        pool,
        &slot(Uuid::now_v7(), doctor, "2027-03-01T09:00:00Z", 30),
    )
    .await
    .unwrap();

    // Another patient, starting inside the first booking, and one that covers it entirely.
    for (start, minutes) in [("2027-03-01T09:15:00Z", 30), ("2027-03-01T08:00:00Z", 120)] {
        let (code, constraint) =
            refused(book(pool, &slot(Uuid::now_v7(), doctor, start, minutes)).await);
        assert_eq!(code, EXCLUSION_VIOLATION, "{start}");
        assert_eq!(constraint.as_deref(), Some(DOCTOR_CONSTRAINT), "{start}");
    }
    // A checked-in appointment is active too.
    let mut checked_in = slot(Uuid::now_v7(), doctor, "2027-03-01T09:29:00Z", 5);
    checked_in.status = "checked_in";
    assert_eq!(
        refused(book(pool, &checked_in).await).0,
        EXCLUSION_VIOLATION
    );
    assert_eq!(appointments(pool).await, 1);
    database.drop().await;
}

#[tokio::test]
async fn an_overlapping_active_booking_of_the_same_patient_with_another_doctor_is_refused() {
    let database = FreshDatabase::migrated(&MIGRATOR).await;
    let pool = database.pool();
    let patient = Uuid::now_v7();
    book(
        pool,
        &slot(patient, Uuid::now_v7(), "2027-03-01T09:00:00Z", 30),
    )
    .await
    .unwrap();

    let (code, constraint) = refused(
        book(
            pool,
            &slot(patient, Uuid::now_v7(), "2027-03-01T09:20:00Z", 30),
        )
        .await,
    );
    assert_eq!(code, EXCLUSION_VIOLATION);
    assert_eq!(constraint.as_deref(), Some(PATIENT_CONSTRAINT));
    assert_eq!(appointments(pool).await, 1);
    database.drop().await;
}

#[tokio::test]
async fn inactive_appointments_do_not_block_their_slot() {
    let database = FreshDatabase::migrated(&MIGRATOR).await;
    let pool = database.pool();
    let (patient, doctor) = people();
    for status in ["cancelled", "fulfilled", "noshow"] {
        let mut past = slot(patient, doctor, "2027-03-01T09:00:00Z", 30);
        past.status = status;
        book(pool, &past).await.unwrap();
    }
    book(pool, &slot(patient, doctor, "2027-03-01T09:00:00Z", 30))
        .await
        .unwrap();
    assert_eq!(appointments(pool).await, 4);
    database.drop().await;
}

#[tokio::test]
async fn cancelling_an_appointment_frees_its_slot_and_reactivating_it_is_refused() {
    let database = FreshDatabase::migrated(&MIGRATOR).await;
    let pool = database.pool();
    let (patient, doctor) = people();
    let first = slot(patient, doctor, "2027-03-01T09:00:00Z", 30);
    book(pool, &first).await.unwrap();
    let second = slot(patient, doctor, "2027-03-01T09:00:00Z", 30);
    assert_eq!(refused(book(pool, &second).await).0, EXCLUSION_VIOLATION);

    set_status(pool, first.id, "cancelled").await.unwrap();
    book(pool, &second).await.unwrap();
    // The cancelled one cannot come back while its slot is taken (an update is checked too).
    let (code, constraint) = refused(set_status(pool, first.id, "booked").await);
    assert_eq!(code, EXCLUSION_VIOLATION);
    assert_eq!(constraint.as_deref(), Some(DOCTOR_CONSTRAINT));
    database.drop().await;
}

#[tokio::test]
async fn moving_an_appointment_into_an_occupied_slot_is_refused() {
    let database = FreshDatabase::migrated(&MIGRATOR).await;
    let pool = database.pool();
    let (patient, doctor) = people();
    book(pool, &slot(patient, doctor, "2027-03-01T09:00:00Z", 30))
        .await
        .unwrap();
    let later = slot(Uuid::now_v7(), doctor, "2027-03-01T11:00:00Z", 30);
    book(pool, &later).await.unwrap();

    let moved = sqlx::query(
        "UPDATE appointments SET start_at = '2027-03-01T09:10:00Z', end_at = '2027-03-01T09:40:00Z'
         WHERE id = $1::uuid",
    )
    .bind(later.id.to_string())
    .execute(pool)
    .await
    .map(|_| ());
    let (code, constraint) = refused(moved);
    assert_eq!(code, EXCLUSION_VIOLATION);
    assert_eq!(constraint.as_deref(), Some(DOCTOR_CONSTRAINT));
    database.drop().await;
}

#[tokio::test]
async fn back_to_back_slots_are_accepted() {
    let database = FreshDatabase::migrated(&MIGRATOR).await;
    let pool = database.pool();
    let (patient, doctor) = people();
    // Half-open ranges: one ends at 09:30 exactly when the next begins, for the same doctor and
    // the same patient, on either side.
    for start in [
        "2027-03-01T09:00:00Z",
        "2027-03-01T09:30:00Z",
        "2027-03-01T08:30:00Z",
    ] {
        book(pool, &slot(patient, doctor, start, 30)).await.unwrap();
    }
    assert_eq!(appointments(pool).await, 3);
    database.drop().await;
}

#[tokio::test]
async fn another_doctor_and_another_patient_at_the_same_time_are_accepted() {
    let database = FreshDatabase::migrated(&MIGRATOR).await;
    let pool = database.pool();
    for _ in 0..3 {
        let (patient, doctor) = people();
        book(pool, &slot(patient, doctor, "2027-03-01T09:00:00Z", 30))
            .await
            .unwrap();
    }
    assert_eq!(appointments(pool).await, 3);
    database.drop().await;
}

#[tokio::test]
async fn of_two_concurrent_transactions_booking_one_slot_only_the_first_to_commit_succeeds() {
    let database = FreshDatabase::migrated(&MIGRATOR).await;
    let pool = database.pool();
    let (patient, doctor) = people();
    let insert = "INSERT INTO appointments (id, patient_id, doctor_id, start_at, end_at,
                      duration_minutes, status, version, created_at, updated_at)
                  VALUES ($1::uuid, $2::uuid, $3::uuid, '2027-03-01T09:00:00Z',
                          '2027-03-01T09:30:00Z', 30, 'booked', 1, now(), now())";
    // Two instances of the service, each in its own transaction, each having found the slot
    // free: the first inserts and has not committed yet when the second inserts.
    let mut first = pool.begin().await.unwrap();
    sqlx::query(insert)
        .bind(Uuid::now_v7().to_string())
        .bind(patient.to_string())
        .bind(doctor.to_string())
        .execute(&mut *first)
        .await
        .unwrap();
    let second = tokio::spawn({
        let pool = pool.clone();
        async move {
            let mut second = pool.begin().await?;
            sqlx::query(insert)
                .bind(Uuid::now_v7().to_string())
                .bind(Uuid::now_v7().to_string())
                .bind(doctor.to_string())
                .execute(&mut *second)
                .await?;
            second.commit().await
        }
    });
    // The second waits for the first to end rather than deciding on its own.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(!second.is_finished(), "the second insert did not wait");
    first.commit().await.unwrap();

    let (code, constraint) = refused(second.await.unwrap());
    assert_eq!(code, EXCLUSION_VIOLATION);
    assert_eq!(constraint.as_deref(), Some(DOCTOR_CONSTRAINT));
    assert_eq!(appointments(pool).await, 1);
    database.drop().await;
}

#[tokio::test]
async fn rows_the_service_would_never_write_are_refused() {
    let database = FreshDatabase::migrated(&MIGRATOR).await;
    let pool = database.pool();
    let (patient, doctor) = people();
    for minutes in [4, 481] {
        let (code, _) = refused(
            book(
                pool,
                &slot(patient, doctor, "2027-03-01T09:00:00Z", minutes),
            )
            .await,
        );
        assert_eq!(code, CHECK_VIOLATION, "{minutes} minutes");
    }
    let mut unknown = slot(patient, doctor, "2027-03-01T09:00:00Z", 30);
    unknown.status = "postponed";
    assert_eq!(refused(book(pool, &unknown).await).0, CHECK_VIOLATION);

    // The end is the start plus the duration, always.
    let wrong_end = sqlx::query(
        "INSERT INTO appointments (id, patient_id, doctor_id, start_at, end_at, duration_minutes,
                                   status, version, created_at, updated_at)
         VALUES ($1::uuid, $2::uuid, $3::uuid, '2027-03-01T09:00:00Z', '2027-03-01T09:45:00Z',
                 30, 'booked', 1, now(), now())",
    )
    .bind(Uuid::now_v7().to_string())
    .bind(patient.to_string())
    .bind(doctor.to_string())
    .execute(pool)
    .await
    .map(|_| ());
    let (code, constraint) = refused(wrong_end);
    assert_eq!(code, CHECK_VIOLATION);
    assert_eq!(
        constraint.as_deref(),
        Some("appointments_end_is_start_plus_duration")
    );
    assert_eq!(appointments(pool).await, 0);
    database.drop().await;
}

//! The record service's PostgreSQL schema (migrations/record/postgres) on a real server: it
//! applies, applies again as a no-op, keeps every version of a record (updates, deletes and
//! TRUNCATE of versions are refused, as SQLite's triggers refuse the first two), and stores what
//! its read-model needs. The read-model tables, the same in the appointment schema, are checked
//! here. The PostgreSQL store is not written yet (issue #9).

use kit::postgres_test::{
    FreshDatabase, refusal, refused,
    sqlstate::{CHECK_VIOLATION, FOREIGN_KEY_VIOLATION, UNIQUE_VIOLATION},
};
use sqlx::PgPool;
use uuid::Uuid;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/record/postgres");

/// The append-only triggers' refusal (integrity_constraint_violation).
const APPEND_ONLY: &str = "23000";

async fn write_record(
    pool: &PgPool,
    id: Uuid,
    diagnoses: &str,
    vitals: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO records (id, patient_id, author_id, kind, title, diagnoses, vitals,
                              recorded_at, status, version, created_at, updated_at)
         VALUES ($1::uuid, $2::uuid, $3::uuid, 'diagnosis', 'Seasonal allergy', $4::jsonb,
                 $5::jsonb, now(), 'active', 1, now(), now())",
    )
    .bind(id.to_string())
    .bind(Uuid::now_v7().to_string())
    .bind(Uuid::now_v7().to_string())
    .bind(diagnoses)
    .bind(vitals)
    .execute(pool)
    .await
    .map(|_| ())
}

async fn write_version(pool: &PgPool, record: Uuid, version: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO record_versions (record_id, version, change, changed_by_id, changed_by_role,
                                      changed_at, state)
         VALUES ($1::uuid, $2, CASE WHEN $2 = 1 THEN 'created' ELSE 'amended' END,
                 'doctor-1', 'doctor', now(), jsonb_build_object('version', $2))",
    )
    .bind(record.to_string())
    .bind(version)
    .execute(pool)
    .await
    .map(|_| ())
}

async fn run(pool: &PgPool, sql: &'static str) -> Result<(), sqlx::Error> {
    sqlx::query(sql).execute(pool).await.map(|_| ())
}

#[tokio::test]
async fn the_migrations_apply_to_a_fresh_database_and_applying_again_changes_nothing() {
    let database = FreshDatabase::migrated(&MIGRATOR).await;
    let tables = database.tables().await;
    assert_eq!(
        tables,
        [
            "directory_patients",
            "directory_staff",
            "idempotency_keys",
            "known_appointments",
            "outbox",
            "read_model_parked",
            "read_model_position",
            "record_versions",
            "records",
        ]
    );
    database.drop().await;
}

#[tokio::test]
async fn record_versions_are_never_changed_deleted_or_truncated() {
    let database = FreshDatabase::migrated(&MIGRATOR).await;
    let pool = database.pool();
    let record = Uuid::now_v7();
    write_record(pool, record, "[]", None).await.unwrap();
    write_version(pool, record, 1).await.unwrap();
    write_version(pool, record, 2).await.unwrap();

    for sql in [
        "UPDATE record_versions SET state = '{}' WHERE version = 1",
        "DELETE FROM record_versions WHERE version = 2",
        "TRUNCATE record_versions",
    ] {
        let error = run(pool, sql).await.expect_err(sql);
        let (code, _) = refusal(&error).unwrap_or_else(|| panic!("{sql}: {error}"));
        assert_eq!(code, APPEND_ONLY, "{sql}");
        assert!(
            error
                .to_string()
                .contains("record versions are append-only"),
            "{sql}: {error}"
        );
    }
    // A version is written once; the record cannot go while its versions stay.
    let (code, _) = refused(write_version(pool, record, 2).await);
    assert_eq!(code, UNIQUE_VIOLATION);
    let (code, _) = refused(run(pool, "DELETE FROM records").await);
    assert_eq!(code, FOREIGN_KEY_VIOLATION);
    let (code, _) = refused(write_version(pool, Uuid::now_v7(), 1).await);
    assert_eq!(code, FOREIGN_KEY_VIOLATION);

    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT (state ->> 'version')::bigint FROM record_versions ORDER BY 1")
            .fetch_all(pool)
            .await
            .unwrap();
    assert_eq!(versions, [1, 2]);
    database.drop().await;
}

#[tokio::test]
async fn diagnoses_are_a_json_array_and_vitals_an_object_or_nothing() {
    let database = FreshDatabase::migrated(&MIGRATOR).await;
    let pool = database.pool();
    write_record(
        pool,
        Uuid::now_v7(),
        r#"[{"code": "J30.2", "description": "Other seasonal allergic rhinitis"}]"#,
        Some(r#"{"pulse_bpm": 72, "temperature_c": 36.9}"#),
    )
    .await
    .unwrap();
    write_record(pool, Uuid::now_v7(), "[]", None)
        .await
        .unwrap();
    for (diagnoses, vitals) in [
        (r#"{"code": "J30.2"}"#, None),
        ("[]", Some("[72]")),
        ("[]", Some("null")),
    ] {
        let (code, _) = refused(write_record(pool, Uuid::now_v7(), diagnoses, vitals).await);
        assert_eq!(code, CHECK_VIOLATION, "{diagnoses} {vitals:?}");
    }
    // Diagnoses can be searched in SQL.
    let with_code: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM records WHERE diagnoses @> '[{\"code\": \"J30.2\"}]'",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(with_code, 1);
    let temperature: f64 = sqlx::query_scalar(
        "SELECT (vitals ->> 'temperature_c')::float8 FROM records WHERE vitals IS NOT NULL",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(temperature, 36.9);
    database.drop().await;
}

#[tokio::test]
async fn unknown_kinds_statuses_and_changes_are_refused() {
    let database = FreshDatabase::migrated(&MIGRATOR).await;
    let pool = database.pool();
    let record = Uuid::now_v7();
    write_record(pool, record, "[]", None).await.unwrap();
    for sql in [
        "UPDATE records SET kind = 'rumour'",
        "UPDATE records SET status = 'deleted'",
        "UPDATE records SET version = 0",
    ] {
        let (code, _) = refused(run(pool, sql).await);
        assert_eq!(code, CHECK_VIOLATION, "{sql}");
    }
    let wrong_change = sqlx::query(
        "INSERT INTO record_versions (record_id, version, change, changed_by_id, changed_by_role,
                                      changed_at, state)
         VALUES ($1::uuid, 1, 'overwritten', 'doctor-1', 'doctor', now(), '{}')",
    )
    .bind(record.to_string())
    .execute(pool)
    .await
    .map(|_| ());
    assert_eq!(refused(wrong_change).0, CHECK_VIOLATION);
    database.drop().await;
}

#[tokio::test]
async fn the_read_model_keeps_one_position_per_consumer_and_parks_any_bytes() {
    let database = FreshDatabase::migrated(&MIGRATOR).await;
    let pool = database.pool();
    run(
        pool,
        "INSERT INTO read_model_position (consumer, stream_sequence) VALUES ('record-read-model', 7)",
    )
    .await
    .unwrap();
    let (code, _) = refused(
        run(
            pool,
            "INSERT INTO read_model_position (consumer, stream_sequence) VALUES ('record-read-model', 8)",
        )
        .await,
    );
    assert_eq!(code, UNIQUE_VIOLATION);

    // A poison message: not UTF-8, a NUL byte, an event_id that is no UUID.
    let payload: &[u8] = b"{\"event_id\":\"not-a-uuid\",\"x\":\"\0\xff\"}";
    sqlx::query(
        "INSERT INTO read_model_parked (consumer, stream_sequence, subject, event_id, error,
                                        payload, parked_at)
         VALUES ('record-read-model', 8, 'hospital.events.patient.x.created', 'not-a-uuid',
                 'not an envelope', $1, now())",
    )
    .bind(payload)
    .execute(pool)
    .await
    .unwrap();
    let stored: Vec<u8> = sqlx::query_scalar("SELECT payload FROM read_model_parked")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(stored, payload);
    database.drop().await;
}

#[tokio::test]
async fn a_directory_row_changes_only_for_a_newer_version() {
    let database = FreshDatabase::migrated(&MIGRATOR).await;
    let pool = database.pool();
    let patient = Uuid::now_v7();
    // kit::directory's upsert, with the id as a uuid.
    let apply = |name: &'static str, deleted: bool, version: i64| {
        sqlx::query(
            "INSERT INTO directory_patients (id, name, deleted, version) VALUES ($1::uuid, $2, $3, $4)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, deleted = excluded.deleted,
                                            version = excluded.version
             WHERE excluded.version > directory_patients.version",
        )
        .bind(patient.to_string())
        .bind(name)
        .bind(deleted)
        .bind(version)
        .execute(pool)
    };
    assert_eq!(apply("Ada", false, 2).await.unwrap().rows_affected(), 1);
    assert_eq!(apply("Ada L.", false, 1).await.unwrap().rows_affected(), 0);
    assert_eq!(apply("Ada", true, 3).await.unwrap().rows_affected(), 1);
    let row: (String, bool, i64) =
        sqlx::query_as("SELECT name, deleted, version FROM directory_patients")
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!(row, ("Ada".to_owned(), true, 3));

    sqlx::query(
        "INSERT INTO known_appointments (id, patient_id, status, version)
         VALUES ($1::uuid, $2::uuid, 'booked', 1)",
    )
    .bind(Uuid::now_v7().to_string())
    .bind(patient.to_string())
    .execute(pool)
    .await
    .unwrap();
    database.drop().await;
}

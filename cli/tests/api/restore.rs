//! `hospital restore <service>` into an empty data directory gives the same rows as the
//! original database, and refuses a database that is not empty.

use reqwest::Method;
use serde_json::json;

use crate::backend::needs_sqlite;
use crate::helpers::TestApp;
use crate::records::{create_record, note, send};
use crate::replay::{db, rows, stderr, stdout, system_with_history, wait_until_caught_up};

/// The owners' tables, each in a comparable form (the staff password hash left out: events
/// never carry it).
const TABLES: [(&str, &str); 7] = [
    ("patient", "SELECT * FROM patients ORDER BY id"),
    (
        "patient",
        "SELECT * FROM patient_name_words ORDER BY word, patient_id",
    ),
    (
        "staff",
        "SELECT id, name, role, specialization, phone, email, username, version, created_at, updated_at, deleted_at FROM staff ORDER BY id",
    ),
    (
        "staff",
        "SELECT * FROM staff_name_words ORDER BY word, staff_id",
    ),
    ("appointment", "SELECT * FROM appointments ORDER BY id"),
    ("record", "SELECT * FROM records ORDER BY id"),
    (
        "record",
        "SELECT * FROM record_versions ORDER BY record_id, version",
    ),
];

async fn table(dir: &std::path::Path, service: &str, sql: &'static str) -> Vec<String> {
    let pool = sqlx::SqlitePool::connect(&kit::config::sqlite_url_in(dir, service))
        .await
        .unwrap();
    let table = rows(&pool, sql).await;
    pool.close().await;
    table
}

async fn hospital_restore(
    app: &TestApp,
    service: &str,
    dir: &std::path::Path,
) -> std::process::Output {
    let url = app.nats_server.url();
    // A new data directory has no NATS passwords: the operator's come from the environment.
    let operator = app.nats_server.credentials(kit::nats_users::OPERATOR);
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_hospital"))
        .args(["restore", service, "--nats-url", &url, "--data-dir"])
        .arg(dir)
        .env_remove("NATS_URL")
        .env("NATS_USER", &operator.user)
        .env("NATS_PASSWORD", operator.password())
        .env_remove("HOSPITAL_ADMIN_PASSWORD")
        .env_remove(format!("DATABASE_URL_{}", service.to_uppercase()))
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(std::time::Duration::from_secs(60), child)
        .await
        .expect("restore finishes")
        .expect("the hospital binary runs")
}

#[tokio::test]
async fn restore_rebuilds_each_owners_tables_from_its_events_into_an_empty_database() {
    let (clinic, _services) = system_with_history().await;
    let app = &clinic.app;
    if needs_sqlite(
        &app.databases,
        &["patient", "staff"],
        "hospital restore writes SQLite databases only",
    ) {
        return;
    }
    let doctor = app.doctor_token().await;
    // A record with an amendment and an entry in error, for record_versions.
    let patients: Vec<String> = {
        let pool = db(app, "patient").await;
        let ids =
            sqlx::query_scalar("SELECT id FROM patients WHERE deleted_at IS NULL ORDER BY id")
                .fetch_all(&pool)
                .await
                .unwrap();
        pool.close().await;
        ids
    };
    let first = note(&json!(patients[0]), "Chest pain", "2026-03-01T10:00:00Z");
    let record = create_record(app, &doctor, &first).await;
    let path = format!("/api/records/{}", record["id"].as_str().unwrap());
    let mut second = first.clone();
    second["title"] = json!("Chest pain, musculoskeletal");
    let response = send(app, Method::PUT, &path, &doctor, Some(&second)).await;
    assert_eq!(response.status(), 200);
    create_record(
        app,
        &doctor,
        &note(&json!(patients[1]), "Headache", "2026-03-02T10:00:00Z"),
    )
    .await;
    wait_until_caught_up(app).await;

    let empty = tempfile::tempdir().unwrap();
    for service in ["patient", "staff", "appointment", "record"] {
        let output = hospital_restore(app, service, empty.path()).await;
        assert!(output.status.success(), "{service}: {}", stderr(&output));
        let printed = stdout(&output);
        assert!(
            printed.contains("restored ") && printed.contains(" events/s)"),
            "{printed}"
        );
        if service == "staff" {
            assert!(
                printed.contains("`admin` can log in with the generated password"),
                "{printed}"
            );
        }
    }
    for (service, sql) in TABLES {
        let original = table(app.data_dir.path(), service, sql).await;
        assert!(!original.is_empty(), "{sql}");
        assert_eq!(table(empty.path(), service, sql).await, original, "{sql}");
    }
    let outbox = table(empty.path(), "patient", "SELECT * FROM outbox").await;
    assert!(outbox.is_empty(), "a restore writes no outbox rows");
    // Restored accounts have no usable password until one is set.
    let hashes = table(
        empty.path(),
        "staff",
        "SELECT username, password_hash FROM staff WHERE username IS NOT NULL",
    )
    .await;
    assert!(
        hashes.iter().any(|h| h.starts_with("admin|$argon2")),
        "{hashes:?}"
    );

    // Not into a database that holds anything.
    let again = hospital_restore(app, "patient", empty.path()).await;
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("is not empty"),
        "{}",
        stderr(&again)
    );
}

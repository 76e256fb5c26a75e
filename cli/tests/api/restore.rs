//! `hospital restore <service>` into an empty database gives the same rows as the original
//! database, on the suite's backend: an empty data directory on SQLite, a fresh empty database
//! per service on PostgreSQL. It refuses a database that is not empty, a running service's own
//! included (on PostgreSQL, where there is no single-writer lock, that check is the protection).

use std::collections::HashMap;
use std::process::Output;
use std::time::Duration;

use async_nats::jetstream;
use kit::postgres::is_postgres_url;
use kit::postgres_test::FreshDatabase;
use reqwest::Method;
use serde_json::json;
use sqlx::{AssertSqlSafe, PgPool, SqlitePool};

use crate::appointments::{Clinic, at};
use crate::backend::sqlite_rows;
use crate::helpers::{TestApp, patient_body, spawn_app};
use crate::records::{create_record, note, send};
use crate::replay::{stderr, stdout};

const SERVICES: [&str; 4] = ["patient", "staff", "appointment", "record"];

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

/// Every row of `sql` in the database at `url` (either backend), each as one line of text.
async fn table(url: &str, sql: &'static str) -> Vec<String> {
    if is_postgres_url(url) {
        let pool = PgPool::connect(url).await.unwrap();
        // PostgreSQL writes a whole row as text, every column in its own type's form.
        let sql = format!("SELECT t::text FROM ({sql}) AS t");
        let mut table: Vec<String> = sqlx::query_scalar(AssertSqlSafe(sql))
            .fetch_all(&pool)
            .await
            .unwrap();
        pool.close().await;
        // A subquery's order is not kept for certain: compare the rows sorted (each has a key).
        table.sort();
        table
    } else {
        let pool = SqlitePool::connect(url).await.unwrap();
        let table = sqlite_rows(&pool, sql).await;
        pool.close().await;
        table
    }
}

/// The one number `sql` answers in the database at `url` (either backend).
async fn number(url: &str, sql: &str) -> i64 {
    let sql = AssertSqlSafe(sql.to_owned());
    if is_postgres_url(url) {
        let pool = PgPool::connect(url).await.unwrap();
        let n = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
        pool.close().await;
        n
    } else {
        let pool = SqlitePool::connect(url).await.unwrap();
        let n = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
        pool.close().await;
        n
    }
}

/// Where the restores go: an empty data directory (SQLite) or, for a service on PostgreSQL in
/// this run, a fresh empty database.
struct Targets {
    dir: tempfile::TempDir,
    postgres: HashMap<&'static str, FreshDatabase>,
}

impl Targets {
    async fn new(app: &TestApp) -> Targets {
        let mut postgres = HashMap::new();
        for service in SERVICES {
            if app.databases.is_postgres(service) {
                postgres.insert(service, FreshDatabase::create().await);
            }
        }
        Targets {
            dir: tempfile::tempdir().unwrap(),
            postgres,
        }
    }

    fn url(&self, service: &str) -> String {
        match self.postgres.get(service) {
            Some(database) => database.url().to_owned(),
            None => kit::config::sqlite_url_in(self.dir.path(), service),
        }
    }
}

/// Runs `hospital restore <service>` into `url` (a SQLite URL must be `<service>.db` in
/// `data_dir`, where the restore finds it by default).
async fn hospital_restore(
    app: &TestApp,
    service: &str,
    url: &str,
    data_dir: &std::path::Path,
) -> Output {
    let nats = app.nats_server.url();
    // A new data directory has no NATS passwords: the operator's come from the environment.
    let operator = app.nats_server.credentials(kit::nats_users::OPERATOR);
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_hospital"));
    command
        .args(["restore", service, "--nats-url", &nats, "--data-dir"])
        .arg(data_dir)
        .env_remove("NATS_URL")
        .env("NATS_USER", &operator.user)
        .env("NATS_PASSWORD", operator.password())
        .env_remove("HOSPITAL_ADMIN_PASSWORD");
    let var = format!("DATABASE_URL_{}", service.to_uppercase());
    if is_postgres_url(url) {
        command.env(var, url);
    } else {
        assert_eq!(url, kit::config::sqlite_url_in(data_dir, service));
        command.env_remove(var);
    }
    let child = command.kill_on_drop(true).output();
    tokio::time::timeout(Duration::from_secs(60), child)
        .await
        .expect("restore finishes")
        .expect("the hospital binary runs")
}

/// A running system whose owners' tables have some history: staff and patients created,
/// renamed and deleted, appointments booked, cancelled and cancelled by a cascade, records
/// amended and entered in error.
async fn clinic_with_history() -> Clinic {
    let app = spawn_app().await;
    let clinic = Clinic::open(app).await;
    let nurse = clinic.staff("Carla Espinosa", "nurse").await;
    let mut patients = Vec::new();
    for name in [
        "Ada Lovelace",
        "Grace Hopper",
        "Alan Turing",
        "Edsger Dijkstra",
    ] {
        patients.push(clinic.patient(name).await);
    }
    let renames = [
        (
            format!("/api/patients/{}", patients[0]),
            patient_body("Ada King"),
        ),
        (
            format!("/api/staff/{nurse}"),
            json!({"name": "Carla Turk", "role": "nurse"}),
        ),
    ];
    for (path, body) in renames {
        let (status, body) = clinic.call(Method::PUT, &path, Some(body)).await;
        assert_eq!(status, 200, "rename: {body}");
    }
    let booked = clinic.booked(&patients[1], &at(2, 9, 0)).await;
    clinic.booked(&patients[3], &at(2, 10, 0)).await;
    let mut cancelled = booked.clone();
    cancelled["status"] = json!("cancelled");
    let path = format!("/api/appointments/{}", booked["id"].as_str().unwrap());
    let (status, body) = clinic.call(Method::PUT, &path, Some(cancelled)).await;
    assert_eq!(status, 200, "cancel: {body}");
    // Deleting a patient cancels their future booking: an event the appointment service causes.
    clinic.booked(&patients[2], &at(3, 9, 0)).await;
    for path in [
        format!("/api/patients/{}", patients[2]),
        format!("/api/staff/{nurse}"),
    ] {
        let (status, body) = clinic.call(Method::DELETE, &path, None).await;
        assert!(status < 300, "delete {path}: {body}");
    }

    // Records: one amended, one entered in error (record_versions gets both changes).
    let app = &clinic.app;
    let doctor = app.doctor_token().await;
    let first = note(&json!(patients[0]), "Chest pain", "2026-03-01T10:00:00Z");
    let record = create_record(app, &doctor, &first).await;
    let path = format!("/api/records/{}", record["id"].as_str().unwrap());
    let mut second = first.clone();
    second["title"] = json!("Chest pain, musculoskeletal");
    let response = send(app, Method::PUT, &path, &doctor, Some(&second)).await;
    assert_eq!(response.status(), 200);
    let wrong = create_record(
        app,
        &doctor,
        &note(&json!(patients[1]), "Headache", "2026-03-02T10:00:00Z"),
    )
    .await;
    let path = format!("/api/records/{}", wrong["id"].as_str().unwrap());
    let response = app
        .api(Method::DELETE, &path, &doctor)
        .header("If-Match", "\"1\"")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    wait_until_settled(app).await;
    clinic
}

/// Waits until every event the owners committed is in the stream and both read-models have
/// applied everything, so the cascades they cause are committed and published too.
async fn wait_until_settled(app: &TestApp) {
    let js = jetstream::new(app.nats.clone());
    for attempt in 0.. {
        // Empty again after the catch-up: what the read-models caused was published too.
        if outboxes_empty(app).await && caught_up(app, &js).await && outboxes_empty(app).await {
            return;
        }
        assert!(attempt < 400, "the system did not settle");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Whether every owner's outbox is empty (a row is deleted once JetStream has its event).
async fn outboxes_empty(app: &TestApp) -> bool {
    for service in SERVICES {
        let url = app.databases.url(service);
        if number(&url, "SELECT COUNT(*) FROM outbox").await > 0 {
            return false;
        }
    }
    true
}

/// Whether both read-models have applied everything their subjects hold now.
async fn caught_up(app: &TestApp, js: &jetstream::Context) -> bool {
    for (service, subscription) in [
        (
            "appointment",
            appointment_service::read_model::subscription(),
        ),
        ("record", record_service::read_model::subscription()),
    ] {
        let target = kit::read_model::last_sequence(js, &subscription.subjects)
            .await
            .unwrap() as i64;
        let url = app.databases.url(service);
        let sql = "SELECT COALESCE(MAX(stream_sequence), 0) FROM read_model_position";
        if number(&url, sql).await < target {
            return false;
        }
    }
    true
}

#[tokio::test]
async fn restore_rebuilds_each_owners_tables_from_its_events_into_an_empty_database() {
    let clinic = clinic_with_history().await;
    let app = &clinic.app;
    let targets = Targets::new(app).await;

    for service in SERVICES {
        let url = targets.url(service);
        let output = hospital_restore(app, service, &url, targets.dir.path()).await;
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
        let outbox = number(&url, "SELECT COUNT(*) FROM outbox").await;
        assert_eq!(outbox, 0, "a restore writes no outbox rows ({service})");
    }
    for (service, sql) in TABLES {
        let original = table(&app.databases.url(service), sql).await;
        assert!(!original.is_empty(), "{sql}");
        assert_eq!(table(&targets.url(service), sql).await, original, "{sql}");
    }
    let cancelled = "SELECT COUNT(*) FROM appointments WHERE status = 'cancelled'";
    assert_eq!(
        number(&targets.url("appointment"), cancelled).await,
        2,
        "the cancellation and the cascade's"
    );
    // The administrator has a new password; the other accounts none that any password matches
    // until one is set.
    let staff = targets.url("staff");
    let admin =
        "SELECT COUNT(*) FROM staff WHERE username = 'admin' AND password_hash LIKE '$argon2%'";
    assert_eq!(number(&staff, admin).await, 1);
    let others = "SELECT COUNT(*) FROM staff WHERE username IS NOT NULL AND username <> 'admin'";
    let locked = format!(
        "{others} AND password_hash = '{}'",
        staff_service::restore::RESTORED_HASH
    );
    let accounts = number(&staff, others).await;
    assert!(accounts >= 1, "the doctor who wrote the records");
    assert_eq!(number(&staff, &locked).await, accounts);

    // Not into a database that holds anything.
    let again = hospital_restore(app, "patient", &targets.url("patient"), targets.dir.path()).await;
    assert!(!again.status.success());
    let message = stderr(&again);
    assert!(
        message.contains("is not empty") && message.contains("rows in patients"),
        "{message}"
    );
}

#[tokio::test]
async fn restore_refuses_the_database_of_a_running_service() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    app.create_patient(&token, patient_body("Ada Lovelace"))
        .await;
    let url = app.databases.url("patient");
    let refused = hospital_restore(&app, "patient", &url, app.data_dir.path()).await;
    assert!(!refused.status.success());
    let message = stderr(&refused);
    if app.databases.is_postgres("patient") {
        // No lock to say the service runs: its rows do.
        assert!(
            message.contains("is not empty") && message.contains("rows in patients"),
            "{message}"
        );
    } else {
        assert!(
            message.contains("the patient service is running"),
            "{message}"
        );
    }
    let patients = number(&url, "SELECT COUNT(*) FROM patients").await;
    assert_eq!(patients, 1, "the running service's rows are untouched");
}

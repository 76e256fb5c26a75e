//! What must hold after a crash or an outage: every acknowledged write is in its owner's
//! database and answered by the API, is in `HOSPITAL_EVENTS` exactly once, every outbox is
//! empty, and every read-model matches its source. The owners' databases are read on whichever
//! backend the system runs them ([`OwnerDb`]).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use serde_json::Value;
use shared_events::subjects::EVENT_STREAM;
use sqlx::{PgPool, SqlitePool};

use super::load::{Ack, Change, Fixture, Journal};
use super::system::{SERVICES, System};

/// How long the relays and read-models get to catch up after the last write.
const SETTLE_PATIENCE: Duration = Duration::from_secs(30);

/// Opens a service's SQLite file read-only (the service keeps running).
pub async fn open_database(path: &Path) -> SqlitePool {
    kit::sqlite::open_read_only(&format!("sqlite://{}", path.display()))
        .await
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
}

/// An owning service's database, opened to read while the service runs: its SQLite file
/// read-only, or a small pool on its PostgreSQL database. Queries written once for both use
/// `CAST(id AS TEXT)` for ids (text in SQLite, uuid in PostgreSQL).
pub enum OwnerDb {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl OwnerDb {
    pub async fn open(system: &System, service: &str) -> OwnerDb {
        let url = system.database_url(service);
        if kit::postgres::is_postgres_url(&url) {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(2)
                .connect(&url)
                .await
                .unwrap_or_else(|e| panic!("connect to the {service} database: {e}"));
            OwnerDb::Postgres(pool)
        } else {
            OwnerDb::Sqlite(open_database(&system.database_path(service)).await)
        }
    }

    /// One number (a count) of `sql`, which binds nothing.
    pub async fn count(&self, sql: &'static str) -> i64 {
        match self {
            OwnerDb::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
            OwnerDb::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// The rows of `sql`: a text and a number (an id and its version, say).
    pub async fn pairs(&self, sql: &'static str) -> Vec<(String, i64)> {
        match self {
            OwnerDb::Sqlite(pool) => sqlx::query_as(sql).fetch_all(pool).await,
            OwnerDb::Postgres(pool) => sqlx::query_as(sql).fetch_all(pool).await,
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// The rows of `sql`: two texts.
    pub async fn texts(&self, sql: &'static str) -> Vec<(String, String)> {
        match self {
            OwnerDb::Sqlite(pool) => sqlx::query_as(sql).fetch_all(pool).await,
            OwnerDb::Postgres(pool) => sqlx::query_as(sql).fetch_all(pool).await,
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// The version of aggregate `id` in `table`, and whether it is removed (`removed` is an SQL
    /// condition true for a removed row); `None` when there is no such row.
    async fn version_of(&self, table: &str, removed: &str, id: &str) -> Option<(i64, bool)> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT version, {removed} FROM {table} WHERE CAST(id AS TEXT) = $1"
        ));
        match self {
            OwnerDb::Sqlite(pool) => sqlx::query_as(sql).bind(id).fetch_optional(pool).await,
            OwnerDb::Postgres(pool) => sqlx::query_as(sql).bind(id).fetch_optional(pool).await,
        }
        .expect("read the owner's table")
    }

    /// How many rows `record_versions` holds for `version` of record `id`.
    async fn record_versions(&self, id: &str, version: i64) -> i64 {
        let sql = "SELECT COUNT(*) FROM record_versions \
                   WHERE CAST(record_id AS TEXT) = $1 AND version = $2";
        match self {
            OwnerDb::Sqlite(pool) => {
                sqlx::query_scalar(sql)
                    .bind(id)
                    .bind(version)
                    .fetch_one(pool)
                    .await
            }
            OwnerDb::Postgres(pool) => {
                sqlx::query_scalar(sql)
                    .bind(id)
                    .bind(version)
                    .fetch_one(pool)
                    .await
            }
        }
        .expect("read record_versions")
    }

    pub async fn close(self) {
        match self {
            OwnerDb::Sqlite(pool) => pool.close().await,
            OwnerDb::Postgres(pool) => pool.close().await,
        }
    }
}

/// Rows waiting in each service's outbox.
pub async fn outbox_rows(system: &System) -> BTreeMap<&'static str, i64> {
    let mut rows = BTreeMap::new();
    for service in SERVICES {
        let database = OwnerDb::open(system, service).await;
        let count = database.count("SELECT COUNT(*) FROM outbox").await;
        database.close().await;
        rows.insert(service, count);
    }
    rows
}

/// Waits until every outbox is empty; how long it took, or what was still waiting.
pub async fn wait_until_outboxes_are_empty(
    system: &System,
    patience: Duration,
) -> Result<Duration, BTreeMap<&'static str, i64>> {
    let started = Instant::now();
    loop {
        let rows = outbox_rows(system).await;
        if rows.values().all(|&n| n == 0) {
            return Ok(started.elapsed());
        }
        if started.elapsed() > patience {
            return Err(rows);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One event as the checks see it.
#[derive(Debug, Clone)]
pub struct StreamEvent {
    pub aggregate: String,
    pub id: String,
    pub version: i64,
    /// `created`, `updated`, `deleted`, `cancelled`, ...
    pub verb: String,
}

/// Every event in `HOSPITAL_EVENTS`, read with a plain consumer up to the stream's last
/// sequence.
pub async fn all_events(nats: &async_nats::Client) -> Vec<StreamEvent> {
    let js = jetstream::new(nats.clone());
    let mut stream = js.get_stream(EVENT_STREAM).await.expect("the event stream");
    let last = stream
        .info()
        .await
        .expect("stream info")
        .state
        .last_sequence;
    let consumer = stream
        .create_consumer(consumer::pull::Config {
            ack_policy: consumer::AckPolicy::None,
            deliver_policy: consumer::DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .expect("an ephemeral consumer");
    let mut messages = consumer.messages().await.expect("consume the stream");
    let mut events = Vec::new();
    let reading = async {
        while let Some(message) = messages.next().await {
            let message = message.expect("an event");
            let sequence = message.info().expect("message info").stream_sequence;
            let envelope: Value = serde_json::from_slice(&message.payload).expect("JSON");
            let text = |field: &str| envelope[field].as_str().unwrap_or_default().to_owned();
            let event_type = text("type");
            events.push(StreamEvent {
                aggregate: text("aggregate"),
                id: text("aggregate_id"),
                version: envelope["aggregate_version"].as_i64().unwrap_or(-1),
                verb: event_type.rsplit('.').next().unwrap_or_default().to_owned(),
            });
            if sequence >= last {
                break;
            }
        }
    };
    if last > 0 {
        tokio::time::timeout(Duration::from_secs(30), reading)
            .await
            .expect("read the whole stream within 30 s");
    }
    events
}

/// Every acknowledged write has exactly one event (a write by its aggregate id and version, a
/// removal by its `deleted`/`cancelled` event), and no (aggregate, id, version) appears twice.
pub fn stream_problems(acks: &[Ack], events: &[StreamEvent]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut by_version: HashMap<(&str, &str, i64), usize> = HashMap::new();
    let mut removals: HashMap<(&str, &str), usize> = HashMap::new();
    for event in events {
        *by_version
            .entry((&event.aggregate, &event.id, event.version))
            .or_default() += 1;
        if matches!(event.verb.as_str(), "deleted" | "cancelled") {
            *removals.entry((&event.aggregate, &event.id)).or_default() += 1;
        }
    }
    for ((aggregate, id, version), count) in &by_version {
        if *count > 1 {
            problems.push(format!(
                "{aggregate} {id} version {version} is in the stream {count} times"
            ));
        }
    }
    for ack in acks {
        match ack.change {
            Change::Written => {
                let count = by_version
                    .get(&(ack.aggregate, ack.id.as_str(), ack.version))
                    .copied()
                    .unwrap_or(0);
                if count != 1 {
                    problems.push(format!(
                        "acknowledged {} {} version {} is in the stream {count} times",
                        ack.aggregate, ack.id, ack.version
                    ));
                }
            }
            Change::Removed => {
                let count = removals
                    .get(&(ack.aggregate, ack.id.as_str()))
                    .copied()
                    .unwrap_or(0);
                if count != 1 {
                    problems.push(format!(
                        "acknowledged removal of {} {} is in the stream {count} times",
                        ack.aggregate, ack.id
                    ));
                }
            }
        }
    }
    problems
}

/// What the acknowledgements say each aggregate must at least be: its highest acknowledged
/// version, and whether it was removed.
fn expectations(acks: &[Ack]) -> BTreeMap<(&'static str, &str), (i64, bool)> {
    let mut expected: BTreeMap<(&'static str, &str), (i64, bool)> = BTreeMap::new();
    for ack in acks {
        let entry = expected.entry((ack.aggregate, &ack.id)).or_default();
        match ack.change {
            Change::Written => entry.0 = entry.0.max(ack.version),
            Change::Removed => entry.1 = true,
        }
    }
    expected
}

fn plural(aggregate: &str) -> &'static str {
    match aggregate {
        "patient" => "patients",
        "staff" => "staff",
        "appointment" => "appointments",
        "record" => "records",
        other => panic!("no aggregate {other}"),
    }
}

/// Every acknowledged aggregate reads back through the API with at least its acknowledged
/// version, and removed where it was removed (a deleted patient or staff member is a 404, a
/// cancelled appointment or a record entered in error stays readable with that status).
pub async fn api_problems(gateway: &str, fixture: &Fixture, journal: &Journal) -> Vec<String> {
    let http = reqwest::Client::new();
    let mut problems = Vec::new();
    for ((aggregate, id), (version, removed)) in expectations(&journal.acks) {
        // A removal the client did not see acknowledged may have happened or not.
        let maybe_removed = !removed && journal.removals_tried.contains(id);
        let url = format!("{gateway}/api/{}/{id}", plural(aggregate));
        let response = http
            .get(&url)
            .bearer_auth(fixture.token_for(aggregate))
            .send()
            .await
            .expect("GET");
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or_default();
        let deletable = matches!(aggregate, "patient" | "staff");
        if deletable && removed {
            if status != 404 {
                problems.push(format!("deleted {aggregate} {id}: GET answered {status}"));
            }
            continue;
        }
        if deletable && maybe_removed && status == 404 {
            continue;
        }
        if status != 200 {
            problems.push(format!("{aggregate} {id}: GET answered {status}"));
            continue;
        }
        let read_version = body["version"].as_i64().unwrap_or(0);
        if read_version < version {
            problems.push(format!(
                "{aggregate} {id}: GET shows version {read_version}, {version} was acknowledged"
            ));
        }
        let status_field = body["status"].as_str().unwrap_or_default();
        let expected_status = match aggregate {
            "appointment" if removed => Some("cancelled"),
            "record" if removed => Some("entered_in_error"),
            _ => None,
        };
        if let Some(expected) = expected_status
            && status_field != expected
            && !maybe_removed
        {
            problems.push(format!(
                "{aggregate} {id}: status {status_field}, expected {expected}"
            ));
        }
    }
    problems
}

/// Every acknowledged aggregate is in its owner's tables with at least its acknowledged version
/// (every acknowledged version of a record in `record_versions`), removed where it was removed.
pub async fn database_problems(system: &System, journal: &Journal) -> Vec<String> {
    let acks = &journal.acks;
    let mut problems = Vec::new();
    let mut databases = HashMap::new();
    for service in SERVICES {
        databases.insert(service, OwnerDb::open(system, service).await);
    }
    for ((aggregate, id), (version, removed)) in expectations(acks) {
        let (table, removed_sql) = match aggregate {
            "patient" => ("patients", "deleted_at IS NOT NULL"),
            "staff" => ("staff", "deleted_at IS NOT NULL"),
            "appointment" => ("appointments", "status = 'cancelled'"),
            _ => ("records", "status = 'entered_in_error'"),
        };
        let row = databases[aggregate]
            .version_of(table, removed_sql, id)
            .await;
        match row {
            None => problems.push(format!("{aggregate} {id} is not in its owner's database")),
            Some((stored, _)) if stored < version => problems.push(format!(
                "{aggregate} {id}: version {stored} stored, {version} was acknowledged"
            )),
            Some((_, stored_removed))
                if stored_removed != removed && !journal.removals_tried.contains(id) =>
            {
                problems.push(format!(
                    "{aggregate} {id}: removed is {stored_removed} in the database, {removed} acknowledged"
                ))
            }
            Some((_, false)) if removed => problems.push(format!(
                "{aggregate} {id}: its acknowledged removal is not in the database"
            )),
            Some(_) => {}
        }
    }
    for ack in acks
        .iter()
        .filter(|a| a.aggregate == "record" && a.change == Change::Written)
    {
        let kept = databases["record"]
            .record_versions(&ack.id, ack.version)
            .await;
        if kept != 1 {
            problems.push(format!(
                "record {} version {} is not in record_versions",
                ack.id, ack.version
            ));
        }
    }
    for database in databases.into_values() {
        database.close().await;
    }
    problems
}

/// Runs `hospital verify` on the system (it re-checks differences for up to `patience`, since
/// read-models lag): every read-model equals its source, every owner row's version has its
/// event, every outbox is empty. How long it took, or verify's report.
pub async fn verify(system: &System, patience: Duration) -> Result<Duration, String> {
    let started = Instant::now();
    let settle = patience.as_secs_f64().to_string();
    hospital_on(system, &["verify", "--settle", &settle])
        .await
        .map(|_| started.elapsed())
}

/// The owners' tables and the aggregate their events name.
const OWNER_TABLES: [(&str, &str); 4] = [
    ("patient", "SELECT CAST(id AS TEXT), version FROM patients"),
    ("staff", "SELECT CAST(id AS TEXT), version FROM staff"),
    (
        "appointment",
        "SELECT CAST(id AS TEXT), version FROM appointments",
    ),
    ("record", "SELECT CAST(id AS TEXT), version FROM records"),
];

/// Every version of every owner row (1 to its current version) has exactly one event in
/// `events`, and no event names a row or a version its owner does not have: whoever made the
/// change (a client, a cascade, the bootstrap), whichever instance.
pub async fn row_version_problems(system: &System, events: &[StreamEvent]) -> Vec<String> {
    let mut in_stream: HashMap<(&str, &str, i64), usize> = HashMap::new();
    for event in events {
        *in_stream
            .entry((&event.aggregate, &event.id, event.version))
            .or_default() += 1;
    }
    let mut problems = Vec::new();
    let mut rows: HashMap<(&str, String), i64> = HashMap::new();
    for (aggregate, sql) in OWNER_TABLES {
        let database = OwnerDb::open(system, aggregate).await;
        for (id, version) in database.pairs(sql).await {
            for v in 1..=version {
                let count = in_stream
                    .get(&(aggregate, id.as_str(), v))
                    .copied()
                    .unwrap_or(0);
                if count != 1 {
                    problems.push(format!(
                        "{aggregate} {id} version {v} is in the stream {count} times"
                    ));
                }
            }
            rows.insert((aggregate, id), version);
        }
        database.close().await;
    }
    for event in events {
        match rows.get(&(event.aggregate.as_str(), event.id.clone())) {
            None => problems.push(format!(
                "{} {} version {} is in the stream, not in its owner's database",
                event.aggregate, event.id, event.version
            )),
            Some(&version) if event.version > version => problems.push(format!(
                "{} {} version {} is in the stream, its owner has version {version}",
                event.aggregate, event.id, event.version
            )),
            Some(_) => {}
        }
    }
    problems
}

/// Pairs of active (booked or checked-in) appointments that overlap for one doctor or one
/// patient, read from the appointment service's database.
pub async fn double_bookings(system: &System) -> Vec<String> {
    let database = OwnerDb::open(system, "appointment").await;
    let overlapping = database
        .texts(
            "SELECT CAST(a.id AS TEXT), CAST(b.id AS TEXT) FROM appointments a \
             JOIN appointments b ON CAST(a.id AS TEXT) < CAST(b.id AS TEXT) \
               AND (a.doctor_id = b.doctor_id OR a.patient_id = b.patient_id) \
               AND a.start_at < b.end_at AND b.start_at < a.end_at \
             WHERE a.status IN ('booked', 'checked_in') AND b.status IN ('booked', 'checked_in')",
        )
        .await;
    database.close().await;
    overlapping
        .into_iter()
        .map(|(a, b)| format!("appointments {a} and {b} overlap for one doctor or patient"))
        .collect()
}

/// `hospital replay <service>` on the system's databases and NATS (the service's instances must
/// be stopped); its output, or why it failed.
pub async fn replay(system: &System, service: &str) -> Result<String, String> {
    hospital_on(system, &["replay", service]).await
}

/// Runs `hospital <args>` on the system's databases, data directory and NATS: its stdout and
/// stderr, as `Ok` when it succeeded and `Err` when it did not.
async fn hospital_on(system: &System, args: &[&str]) -> Result<String, String> {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_hospital"))
        .args(args)
        .envs(system.database_vars())
        .arg("--data-dir")
        .arg(system.data_dir())
        .args(["--nats-url", &system.nats_server.url()])
        .output()
        .await
        .unwrap_or_else(|error| panic!("hospital {} runs: {error}", args.join(" ")));
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if output.status.success() {
        Ok(report)
    } else {
        Err(report)
    }
}

/// Fails with the first few `problems`, if any.
pub fn assert_none(what: &str, problems: &[String]) {
    if !problems.is_empty() {
        let shown: Vec<&String> = problems.iter().take(10).collect();
        panic!("{what}: {} problems, first: {shown:#?}", problems.len());
    }
}

/// Everything a client saw acknowledged survived: in the owner's database and the API, exactly
/// once in the stream once every outbox has drained, and in every read-model. Prints what it
/// measured.
pub async fn assert_nothing_acknowledged_was_lost(
    system: &System,
    journal: &Journal,
    fixture: &Fixture,
) {
    let inexcusable = journal.inexcusable();
    if !inexcusable.is_empty() {
        let shown: Vec<_> = inexcusable.iter().take(10).collect();
        panic!(
            "{} requests ended in a way no outage excuses (hang, transport error, 4xx, 500): {shown:#?}",
            inexcusable.len()
        );
    }
    assert!(
        journal.acks_by_service().len() == SERVICES.len(),
        "every service acknowledged writes: {:?}",
        journal.acks_by_service()
    );
    let drained = wait_until_outboxes_are_empty(system, SETTLE_PATIENCE)
        .await
        .unwrap_or_else(|rows| panic!("outboxes not drained within {SETTLE_PATIENCE:?}: {rows:?}"));
    assert_none(
        "the owners' databases",
        &database_problems(system, journal).await,
    );
    assert_none(
        "the API",
        &api_problems(&system.gateway, fixture, journal).await,
    );
    let events = all_events(&system.nats).await;
    assert_none("the stream", &stream_problems(&journal.acks, &events));
    let converged = verify(system, SETTLE_PATIENCE)
        .await
        .unwrap_or_else(|report| panic!("hospital verify found differences:\n{report}"));
    eprintln!(
        "  verified: {} acknowledged writes on {} aggregates all in the owners' databases and the API; \
         {} events in the stream, each acknowledged write exactly once, no duplicates; \
         outboxes empty after {} ms; `hospital verify` passed after {} ms",
        journal.acks.len(),
        expectations(&journal.acks).len(),
        events.len(),
        drained.as_millis(),
        converged.as_millis()
    );
}

//! `hospital verify`: compares every read-model with its source and checks that every change has
//! its event. Exits 1 on any difference. Works while the system runs: the databases are opened
//! for reading only (SQLite WAL readers do not block the writers; PostgreSQL reads never do),
//! on whichever backend each service's URL names, and because a running system's read-models lag
//! by milliseconds, differences are re-checked for up to `--settle` before they are reported.
//!
//! - Read-models: `directory_patients` (appointment and record) against the patient service's
//!   `patients`, `directory_staff` against `staff`, the record service's `known_appointments`
//!   against `appointments`: counts, and per entity a content hash of the compared columns
//!   (missing, extra, differing).
//! - Events: each owner row's current version is the newest `aggregate_version` the stream holds
//!   for that aggregate (`hospital.events.<aggregate>.<id>.>`).
//! - Outboxes: empty (every committed event was published).
//! - Parked events (poison events the read-models could not apply) are listed; they are not by
//!   themselves a difference, since the stream keeps them and a replay retries them.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use serde::Deserialize;
use shared_events::Aggregate;
use shared_events::subjects::EVENT_STREAM;
use uuid::Uuid;

use crate::events::Target;
use crate::service_db::{ServiceDb, Sql};

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// How long differences are re-checked before they are reported (read-models lag by
    /// milliseconds on a running system).
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0)]
    settle: f64,

    #[command(flatten)]
    target: Target,
}

/// The versions of an owner's rows, as `(id, version)`.
macro_rules! versions_of {
    ($table:literal) => {
        Sql {
            sqlite: concat!("SELECT id, version FROM ", $table),
            postgres: concat!("SELECT id::text, version FROM ", $table),
        }
    };
}

/// The four owning services, their database variables and their main table.
const OWNERS: [(&str, &str, Aggregate, Sql); 4] = [
    (
        "patient",
        "DATABASE_URL_PATIENT",
        Aggregate::Patient,
        versions_of!("patients"),
    ),
    (
        "staff",
        "DATABASE_URL_STAFF",
        Aggregate::Staff,
        versions_of!("staff"),
    ),
    (
        "appointment",
        "DATABASE_URL_APPOINTMENT",
        Aggregate::Appointment,
        versions_of!("appointments"),
    ),
    (
        "record",
        "DATABASE_URL_RECORD",
        Aggregate::Record,
        versions_of!("records"),
    ),
];

/// One read-model table and its source. Each query returns `(id, content)` where content is a
/// JSON array of the compared columns, built the same way on both sides (flags as 0 or 1), and
/// compared once parsed, so the two backends' spacing does not matter.
struct Comparison {
    read_model: (&'static str, &'static str),
    source: (&'static str, &'static str),
    read_model_sql: Sql,
    source_sql: Sql,
}

const PATIENTS_SQL: Sql = Sql {
    sqlite: "SELECT id, json_array(name, deleted_at IS NOT NULL, version) FROM patients",
    postgres: "SELECT id::text, json_build_array(name, (deleted_at IS NOT NULL)::int, version)::text FROM patients",
};
const DIRECTORY_PATIENTS_SQL: Sql = Sql {
    sqlite: "SELECT id, json_array(name, deleted <> 0, version) FROM directory_patients",
    postgres: "SELECT id::text, json_build_array(name, deleted::int, version)::text FROM directory_patients",
};
const STAFF_SQL: Sql = Sql {
    sqlite: "SELECT id, json_array(name, role, deleted_at IS NOT NULL, version) FROM staff",
    postgres: "SELECT id::text, json_build_array(name, role, (deleted_at IS NOT NULL)::int, version)::text FROM staff",
};
const DIRECTORY_STAFF_SQL: Sql = Sql {
    sqlite: "SELECT id, json_array(name, role, deleted <> 0, version) FROM directory_staff",
    postgres: "SELECT id::text, json_build_array(name, role, deleted::int, version)::text FROM directory_staff",
};

const COMPARISONS: [Comparison; 5] = [
    Comparison {
        read_model: ("appointment", "directory_patients"),
        source: ("patient", "patients"),
        read_model_sql: DIRECTORY_PATIENTS_SQL,
        source_sql: PATIENTS_SQL,
    },
    Comparison {
        read_model: ("appointment", "directory_staff"),
        source: ("staff", "staff"),
        read_model_sql: DIRECTORY_STAFF_SQL,
        source_sql: STAFF_SQL,
    },
    Comparison {
        read_model: ("record", "directory_patients"),
        source: ("patient", "patients"),
        read_model_sql: DIRECTORY_PATIENTS_SQL,
        source_sql: PATIENTS_SQL,
    },
    Comparison {
        read_model: ("record", "directory_staff"),
        source: ("staff", "staff"),
        read_model_sql: DIRECTORY_STAFF_SQL,
        source_sql: STAFF_SQL,
    },
    Comparison {
        read_model: ("record", "known_appointments"),
        source: ("appointment", "appointments"),
        read_model_sql: Sql {
            sqlite: "SELECT id, json_array(patient_id, status, version) FROM known_appointments",
            postgres: "SELECT id::text, json_build_array(patient_id, status, version)::text FROM known_appointments",
        },
        source_sql: Sql {
            sqlite: "SELECT id, json_array(patient_id, status, version) FROM appointments",
            postgres: "SELECT id::text, json_build_array(patient_id, status, version)::text FROM appointments",
        },
    },
];

pub async fn run(args: VerifyArgs) -> ExitCode {
    match verify(&args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("hospital verify: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Prints the report; returns whether everything agrees.
async fn verify(args: &VerifyArgs) -> anyhow::Result<bool> {
    let mut databases = HashMap::new();
    for (service, var, _, _) in OWNERS {
        let url = args.target.database_url(var, service);
        let database = ServiceDb::open(&url)
            .await
            .with_context(|| format!("cannot open the {service} database"))?;
        databases.insert(service, database);
    }
    let client = args.target.connect().await?;
    let js = jetstream::new(client);
    let settle = Duration::from_secs_f64(args.settle.max(0.0));
    let started = Instant::now();
    let report = loop {
        let report = check(&databases, &js).await?;
        if report.differences == 0 || started.elapsed() >= settle {
            break report;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    print!("{}", report.text);
    println!();
    print!(
        "{}",
        crate::parked::table(&crate::parked::read(&args.target).await, 20)
    );
    println!();
    for database in databases.values() {
        database.close().await;
    }
    if report.differences == 0 {
        println!("verify: consistent");
        Ok(true)
    } else {
        println!("verify: {} differences", report.differences);
        Ok(false)
    }
}

struct Report {
    text: String,
    differences: usize,
}

async fn check(
    databases: &HashMap<&str, ServiceDb>,
    js: &jetstream::Context,
) -> anyhow::Result<Report> {
    let mut text = String::new();
    let mut details = String::new();
    let mut differences = 0;

    let _ = writeln!(
        text,
        "{:<32} {:<24} {:>7} {:>7} {:>7} {:>5} {:>9}",
        "READ-MODEL", "SOURCE", "SOURCE#", "ROWS", "MISSING", "EXTRA", "DIFFERING"
    );
    for comparison in &COMPARISONS {
        let read_model = content(
            &databases[comparison.read_model.0],
            comparison.read_model_sql,
        )
        .await
        .with_context(|| format!("cannot read {}", comparison.read_model.1))?;
        let source = content(&databases[comparison.source.0], comparison.source_sql)
            .await
            .with_context(|| format!("cannot read {}", comparison.source.1))?;
        let name = format!("{}.{}", comparison.read_model.0, comparison.read_model.1);
        let (mut missing, mut extra, mut differing) = (0, 0, 0);
        for (id, wanted) in &source {
            match read_model.get(id) {
                None => {
                    missing += 1;
                    let _ = writeln!(details, "  missing   {name} {id}: source {wanted}");
                }
                Some(held) if held != wanted => {
                    differing += 1;
                    let _ = writeln!(
                        details,
                        "  differing {name} {id}: source {wanted} (hash {:016x}), read-model {held} (hash {:016x})",
                        hash(wanted),
                        hash(held)
                    );
                }
                Some(_) => {}
            }
        }
        for (id, held) in &read_model {
            if !source.contains_key(id) {
                extra += 1;
                let _ = writeln!(details, "  extra     {name} {id}: read-model {held}");
            }
        }
        differences += missing + extra + differing;
        let _ = writeln!(
            text,
            "{:<32} {:<24} {:>7} {:>7} {:>7} {:>5} {:>9}",
            name,
            format!("{}.{}", comparison.source.0, comparison.source.1),
            source.len(),
            read_model.len(),
            missing,
            extra,
            differing
        );
    }

    let latest = latest_versions(js).await?;
    let _ = writeln!(text);
    let _ = writeln!(
        text,
        "{:<12} {:>7} {:>14} {:>13} {:>7}",
        "AGGREGATE", "ROWS", "WITHOUT EVENT", "STREAM AHEAD", "OUTBOX"
    );
    for (service, _, aggregate, sql) in OWNERS {
        let database = &databases[service];
        let rows: Vec<(String, i64)> = database
            .pairs(sql)
            .await
            .with_context(|| format!("cannot read the {service} rows"))?;
        let (mut without, mut ahead) = (0, 0);
        for (id, version) in &rows {
            let streamed = id
                .parse::<Uuid>()
                .ok()
                .and_then(|id| latest.versions.get(&(aggregate, id)).copied());
            match streamed {
                Some(v) if v == *version => {}
                Some(v) if v > *version => {
                    ahead += 1;
                    let _ = writeln!(
                        details,
                        "  stream ahead {service} {id}: row version {version}, newest event version {v}"
                    );
                }
                other => {
                    without += 1;
                    let _ = writeln!(
                        details,
                        "  no event   {service} {id}: row version {version}, newest event version {}",
                        other.map_or("none".to_owned(), |v| v.to_string())
                    );
                }
            }
        }
        let outbox: i64 = database
            .count("outbox")
            .await
            .with_context(|| format!("cannot read the {service} outbox"))?;
        if outbox > 0 {
            let _ = writeln!(
                details,
                "  outbox     {service}: {outbox} events committed and not yet published"
            );
        }
        differences += without + ahead + outbox as usize;
        let _ = writeln!(
            text,
            "{:<12} {:>7} {:>14} {:>13} {:>7}",
            service,
            rows.len(),
            without,
            ahead,
            outbox
        );
    }
    let _ = writeln!(
        text,
        "(stream {EVENT_STREAM}: {} events read up to sequence {}{})",
        latest.events,
        latest.last_sequence,
        if latest.not_envelopes > 0 {
            format!(", {} not event envelopes", latest.not_envelopes)
        } else {
            String::new()
        }
    );
    if !details.is_empty() {
        let _ = writeln!(text);
        let _ = writeln!(text, "DIFFERENCES");
        text += &details;
    }
    Ok(Report { text, differences })
}

/// `(id, content)` of every row of `sql`, the content's JSON in one spelling.
async fn content(database: &ServiceDb, sql: Sql) -> Result<BTreeMap<String, String>, sqlx::Error> {
    let rows: Vec<(String, String)> = database.pairs(sql).await?;
    Ok(rows
        .into_iter()
        .map(|(id, content)| (id, canonical_json(content)))
        .collect())
}

/// `content` re-serialised compactly (a value that is not JSON is kept as it is).
fn canonical_json(content: String) -> String {
    serde_json::from_str::<serde_json::Value>(&content)
        .map(|value| value.to_string())
        .unwrap_or(content)
}

/// A stable 64-bit content hash (FNV-1a) of an entity's compared columns.
fn hash(content: &str) -> u64 {
    content.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The newest aggregate version the stream holds for each aggregate.
struct Latest {
    versions: HashMap<(Aggregate, Uuid), i64>,
    events: u64,
    last_sequence: u64,
    not_envelopes: u64,
}

/// The part of an envelope verify needs.
#[derive(Deserialize)]
struct Head {
    aggregate: Aggregate,
    aggregate_id: Uuid,
    aggregate_version: i64,
}

/// Reads every event (ordered consumer) up to the stream's last sequence now.
async fn latest_versions(js: &jetstream::Context) -> anyhow::Result<Latest> {
    let mut stream = js
        .get_stream(EVENT_STREAM)
        .await
        .with_context(|| format!("no stream {EVENT_STREAM}"))?;
    let last_sequence = stream.info().await?.state.last_sequence;
    let mut latest = Latest {
        versions: HashMap::new(),
        events: 0,
        last_sequence,
        not_envelopes: 0,
    };
    if last_sequence == 0 {
        return Ok(latest);
    }
    let ordered = stream
        .create_consumer(consumer::pull::OrderedConfig {
            filter_subject: "hospital.events.>".to_owned(),
            deliver_policy: consumer::DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .context("cannot read the stream")?;
    let mut messages = ordered.messages().await?;
    while let Some(message) = messages.next().await {
        let message = message.context("cannot read the stream")?;
        let info = message.info().map_err(|e| anyhow::anyhow!("{e}"))?;
        let (sequence, pending) = (info.stream_sequence, info.pending);
        latest.events += 1;
        match serde_json::from_slice::<Head>(&message.payload) {
            Ok(head) => {
                let entry = latest
                    .versions
                    .entry((head.aggregate, head.aggregate_id))
                    .or_insert(head.aggregate_version);
                *entry = (*entry).max(head.aggregate_version);
            }
            Err(_) => latest.not_envelopes += 1,
        }
        if sequence >= last_sequence || pending == 0 {
            break;
        }
    }
    Ok(latest)
}

//! `hospital restore <service> --data-dir DIR`: rebuilds an owning service's own tables from
//! its own events into an empty database (disaster recovery), on the backend its
//! `DATABASE_URL_<SERVICE>` names (SQLite by default, or PostgreSQL). Refuses a database that
//! holds anything. Writes no outbox rows: the events already exist. The restored service's
//! read-models (appointment, record) are rebuilt afterwards with `hospital replay`.
//!
//! Stop the service first. On SQLite a running service holds its database's single-writer lock,
//! so the restore is refused. A PostgreSQL database has no such lock (several instances share
//! it): there the "not empty" check is what protects a running service's database, since a
//! service that has written anything has rows in its tables (the staff service creates `admin`
//! at its first start). An instance started during the restore would mix its writes with the
//! restored rows.
//!
//! Staff events never carry password hashes, so restored accounts cannot log in until a
//! password is set; the restore sets the administrator's (`HOSPITAL_ADMIN_PASSWORD`, or a
//! generated one printed once) so that the administrator can set the others.

use std::process::ExitCode;

use anyhow::Context;
use appointment_service::restore::AppointmentRestore;
use async_nats::jetstream;
use kit::database::Backend;
use kit::read_model::{Projection, ReadModelDb, Rebuilt, restore};
use patient_service::restore::PatientRestore;
use record_service::restore::RecordRestore;
use shared_events::Aggregate;
use shared_events::subjects::events_of;
use sqlx::migrate::Migrator;
use sqlx::{PgPool, Pool, SqlitePool};
use staff_service::restore::StaffRestore;

use crate::events::Target;

#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The service whose own tables to restore.
    #[arg(value_enum)]
    service: OwningService,

    #[command(flatten)]
    target: Target,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum OwningService {
    Patient,
    Staff,
    Appointment,
    Record,
}

impl OwningService {
    fn name(self) -> &'static str {
        match self {
            OwningService::Patient => "patient",
            OwningService::Staff => "staff",
            OwningService::Appointment => "appointment",
            OwningService::Record => "record",
        }
    }

    fn aggregate(self) -> Aggregate {
        match self {
            OwningService::Patient => Aggregate::Patient,
            OwningService::Staff => Aggregate::Staff,
            OwningService::Appointment => Aggregate::Appointment,
            OwningService::Record => Aggregate::Record,
        }
    }

    fn database_var(self) -> &'static str {
        match self {
            OwningService::Patient => patient_service::startup::DATABASE_VAR,
            OwningService::Staff => staff_service::startup::DATABASE_VAR,
            OwningService::Appointment => appointment_service::startup::DATABASE_VAR,
            OwningService::Record => record_service::startup::DATABASE_VAR,
        }
    }

    fn migrator(self) -> &'static Migrator {
        match self {
            OwningService::Patient => &patient_service::store::MIGRATOR,
            OwningService::Staff => &staff_service::store::MIGRATOR,
            OwningService::Appointment => &appointment_service::store::MIGRATOR,
            OwningService::Record => &record_service::store::MIGRATOR,
        }
    }

    fn pg_migrator(self) -> &'static Migrator {
        match self {
            OwningService::Patient => &patient_service::store::PG_MIGRATOR,
            OwningService::Staff => &staff_service::store::PG_MIGRATOR,
            OwningService::Appointment => &appointment_service::store::PG_MIGRATOR,
            OwningService::Record => &record_service::store::PG_MIGRATOR,
        }
    }

    /// The service's own tables (a restore target must have none of their rows).
    fn tables(self) -> &'static [&'static str] {
        match self {
            OwningService::Patient => &["patients", "outbox"],
            OwningService::Staff => &["staff", "outbox"],
            OwningService::Appointment => &["appointments", "outbox"],
            OwningService::Record => &["records", "record_versions", "outbox"],
        }
    }
}

pub async fn run(args: RestoreArgs) -> ExitCode {
    match run_restore(&args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("hospital restore: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The database a restore writes into, on the backend its URL names.
enum RestoreDb {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl RestoreDb {
    /// Opens and migrates the service's database: on SQLite with its single-writer lock (refused
    /// while the service runs); on PostgreSQL as one more client (see the module doc).
    async fn open(service: OwningService, url: &str) -> anyhow::Result<RestoreDb> {
        Ok(match Backend::of_url(url)? {
            Backend::Sqlite => RestoreDb::Sqlite(
                crate::replay::open_stopped(service.name(), url, service.migrator()).await?,
            ),
            Backend::Postgres => RestoreDb::Postgres(
                kit::postgres::open(url, service.pg_migrator())
                    .await
                    .with_context(|| {
                        format!(
                            "cannot open the {} database {}",
                            service.name(),
                            kit::config::mask_url(url)
                        )
                    })?,
            ),
        })
    }

    async fn count(&self, table: &str) -> Result<i64, sqlx::Error> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}"));
        match self {
            RestoreDb::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
            RestoreDb::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
        }
    }

    async fn close(&self) {
        match self {
            RestoreDb::Sqlite(pool) => pool.close().await,
            RestoreDb::Postgres(pool) => pool.close().await,
        }
    }
}

async fn run_restore(args: &RestoreArgs) -> anyhow::Result<()> {
    let service = args.service;
    let url = args
        .target
        .database_url(service.database_var(), service.name());
    let db = RestoreDb::open(service, &url).await?;
    for table in service.tables() {
        let rows = db.count(table).await?;
        anyhow::ensure!(
            rows == 0,
            "the {} database {} is not empty ({rows} rows in {table}): restore only into an empty database",
            service.name(),
            kit::config::mask_url(&url)
        );
    }
    let client = args.target.connect().await?;
    let js = jetstream::new(client);
    let subject = events_of(service.aggregate());
    eprintln!(
        "restoring the {} tables into {} from {subject}",
        service.name(),
        kit::config::mask_url(&url)
    );
    let restored = match &db {
        RestoreDb::Sqlite(pool) => restore_with(&js, pool, &subject, service).await,
        RestoreDb::Postgres(pool) => restore_with(&js, pool, &subject, service).await,
    }?;
    println!(
        "restored {} events in {:.2} s ({:.0} events/s)",
        restored.events,
        restored.elapsed.as_secs_f64(),
        restored.events_per_second()
    );
    if let OwningService::Staff = service {
        restore_admin_access(&db).await?;
    }
    db.close().await;
    Ok(())
}

/// Restores `service`'s tables with its restore projection for the backend `DB`.
async fn restore_with<DB: ReadModelDb>(
    js: &jetstream::Context,
    pool: &Pool<DB>,
    subject: &str,
    service: OwningService,
) -> anyhow::Result<Rebuilt>
where
    PatientRestore: Projection<DB>,
    StaffRestore: Projection<DB>,
    AppointmentRestore: Projection<DB>,
    RecordRestore: Projection<DB>,
{
    let progress = |p: &kit::read_model::Progress| {
        eprintln!(
            "  {} events, stream sequence {} of {}",
            p.events, p.sequence, p.target
        )
    };
    match service {
        OwningService::Patient => restore(js, pool, subject, &PatientRestore, progress).await,
        OwningService::Staff => restore(js, pool, subject, &StaffRestore, progress).await,
        OwningService::Appointment => {
            restore(js, pool, subject, &AppointmentRestore, progress).await
        }
        OwningService::Record => restore(js, pool, subject, &RecordRestore, progress).await,
    }
    .context("the restore stopped")
}

/// Staff events carry no password hashes: give the administrator a password again.
async fn restore_admin_access(db: &RestoreDb) -> anyhow::Result<()> {
    let configured = kit::config::optional("HOSPITAL_ADMIN_PASSWORD");
    let generated = configured
        .is_none()
        .then(staff_service::passwords::generate_password);
    let password = configured.or(generated.clone()).unwrap_or_default();
    let hash = staff_service::passwords::hash(password)
        .await
        .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))?;
    let admin = match db {
        RestoreDb::Sqlite(pool) => staff_service::restore::set_admin_password(pool, &hash).await,
        RestoreDb::Postgres(pool) => {
            staff_service::restore::set_admin_password_pg(pool, &hash).await
        }
    };
    match admin? {
        Some(username) => {
            println!(
                "accounts were restored without passwords (events never carry them); `{username}` can log in with {}",
                match &generated {
                    Some(password) => format!("the generated password {password}"),
                    None => "HOSPITAL_ADMIN_PASSWORD".to_owned(),
                }
            );
            println!("other accounts can log in once an administrator sets their password");
        }
        None => println!(
            "no administrator was restored; the staff service creates `admin` at its next start"
        ),
    }
    Ok(())
}

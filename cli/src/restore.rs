//! `hospital restore <service> --data-dir DIR`: rebuilds an owning service's own tables from
//! its own events into an empty database (disaster recovery). Refuses a database that holds
//! anything. Writes no outbox rows: the events already exist. The restored service's
//! read-models (appointment, record) are rebuilt afterwards with `hospital replay`.
//!
//! Staff events never carry password hashes, so restored accounts cannot log in until a
//! password is set; the restore sets the administrator's (`HOSPITAL_ADMIN_PASSWORD`, or a
//! generated one printed once) so that the administrator can set the others.

use std::process::ExitCode;

use anyhow::Context;
use async_nats::jetstream;
use kit::read_model::{Projection, Rebuilt, restore};
use shared_events::Aggregate;
use shared_events::subjects::events_of;
use sqlx::SqlitePool;
use sqlx::migrate::Migrator;

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

async fn run_restore(args: &RestoreArgs) -> anyhow::Result<()> {
    let service = args.service;
    let url = args
        .target
        .database_url(service.database_var(), service.name());
    let pool = crate::replay::open_stopped(service.name(), &url, service.migrator()).await?;
    for table in service.tables() {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        let rows: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(&pool)
            .await?;
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
    let restored = match service {
        OwningService::Patient => {
            restore_with(
                &js,
                &pool,
                &subject,
                &patient_service::restore::PatientRestore,
            )
            .await
        }
        OwningService::Staff => {
            restore_with(&js, &pool, &subject, &staff_service::restore::StaffRestore).await
        }
        OwningService::Appointment => {
            restore_with(
                &js,
                &pool,
                &subject,
                &appointment_service::restore::AppointmentRestore,
            )
            .await
        }
        OwningService::Record => {
            restore_with(
                &js,
                &pool,
                &subject,
                &record_service::restore::RecordRestore,
            )
            .await
        }
    }?;
    println!(
        "restored {} events in {:.2} s ({:.0} events/s)",
        restored.events,
        restored.elapsed.as_secs_f64(),
        restored.events_per_second()
    );
    if let OwningService::Staff = service {
        restore_admin_access(&pool).await?;
    }
    pool.close().await;
    Ok(())
}

async fn restore_with<P: Projection>(
    js: &jetstream::Context,
    pool: &SqlitePool,
    subject: &str,
    restorer: &P,
) -> anyhow::Result<Rebuilt> {
    restore(js, pool, subject, restorer, |p| {
        eprintln!(
            "  {} events, stream sequence {} of {}",
            p.events, p.sequence, p.target
        )
    })
    .await
    .context("the restore stopped")
}

/// Staff events carry no password hashes: give the administrator a password again.
async fn restore_admin_access(pool: &SqlitePool) -> anyhow::Result<()> {
    let configured = kit::config::optional("HOSPITAL_ADMIN_PASSWORD");
    let generated = configured
        .is_none()
        .then(staff_service::passwords::generate_password);
    let password = configured.or(generated.clone()).unwrap_or_default();
    let hash = staff_service::passwords::hash(password)
        .await
        .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))?;
    match staff_service::restore::set_admin_password(pool, &hash).await? {
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

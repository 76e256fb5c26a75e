//! `hospital replay <appointment|record>`: rebuilds a service's read-models (its directory of
//! patients and staff, and the record service's known appointments) from the stream's first
//! event, with the same code the service runs ([`kit::read_model::rebuild`]).
//!
//! The service must be stopped (every instance of it). A directory being rebuilt is half empty
//! for a while, and the running service would refuse valid bookings and records against it. On
//! SQLite the single-writer lock on the service's database enforces this; on PostgreSQL the
//! read-model consumer's advisory lock does (an instance that consumes holds it). Either way a
//! replay while the service runs fails at once and says to stop it.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use async_nats::jetstream;
use kit::database::Backend;
use kit::read_model::{Progress, Projection, ReadModelDb, RebuildError, Subscription, rebuild};
use sqlx::migrate::Migrator;
use sqlx::{Pool, Postgres, Sqlite};

use crate::events::Target;

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// The service whose read-models to rebuild.
    #[arg(value_enum)]
    service: ReadModelService,

    #[command(flatten)]
    target: Target,
}

/// The services that keep read-models.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ReadModelService {
    Appointment,
    Record,
}

impl ReadModelService {
    pub fn name(self) -> &'static str {
        match self {
            ReadModelService::Appointment => "appointment",
            ReadModelService::Record => "record",
        }
    }

    pub fn database_var(self) -> &'static str {
        match self {
            ReadModelService::Appointment => appointment_service::startup::DATABASE_VAR,
            ReadModelService::Record => record_service::startup::DATABASE_VAR,
        }
    }

    pub fn migrator(self) -> &'static Migrator {
        match self {
            ReadModelService::Appointment => &appointment_service::store::MIGRATOR,
            ReadModelService::Record => &record_service::store::MIGRATOR,
        }
    }

    pub fn pg_migrator(self) -> &'static Migrator {
        match self {
            ReadModelService::Appointment => &appointment_service::store::PG_MIGRATOR,
            ReadModelService::Record => &record_service::store::PG_MIGRATOR,
        }
    }

    pub fn subscription(self) -> Subscription {
        match self {
            ReadModelService::Appointment => appointment_service::read_model::subscription(),
            ReadModelService::Record => record_service::read_model::subscription(),
        }
    }
}

pub async fn run(args: ReplayArgs) -> ExitCode {
    match replay(&args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("hospital replay: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn replay(args: &ReplayArgs) -> anyhow::Result<()> {
    let service = args.service;
    let url = args
        .target
        .database_url(service.database_var(), service.name());
    let backend = Backend::of_url(&url)?;
    // As the service itself: the replay does its work on its database, and publishes the
    // cancellations it causes as its own events, which the operator user may not.
    let client = args.target.connect_as(service.name()).await?;
    let js = jetstream::new(client);
    let subscription = service.subscription();
    eprintln!(
        "rebuilding the {} read-models ({}) from the first event of {}",
        service.name(),
        kit::config::mask_url(&url),
        subscription.subjects.join(", ")
    );
    let rebuilt = match backend {
        Backend::Sqlite => {
            let pool = open_stopped(service.name(), &url, service.migrator()).await?;
            let rebuilt = replay_on::<Sqlite>(&js, &pool, service, &subscription).await;
            pool.close().await;
            rebuilt
        }
        Backend::Postgres => {
            let pool = kit::postgres::open(&url, service.pg_migrator())
                .await
                .with_context(|| {
                    format!(
                        "cannot open the {} database {}",
                        service.name(),
                        kit::config::mask_url(&url)
                    )
                })?;
            let rebuilt = replay_on::<Postgres>(&js, &pool, service, &subscription).await;
            pool.close().await;
            rebuilt
        }
    }?;
    println!(
        "replayed {} events in {:.2} s ({:.0} events/s); position {} = stream sequence {}",
        rebuilt.events,
        rebuilt.elapsed.as_secs_f64(),
        rebuilt.events_per_second(),
        subscription.consumer,
        rebuilt.last_sequence
    );
    if rebuilt.parked > 0 {
        println!(
            "{} events could not be applied and are parked in read_model_parked (`hospital verify` lists them)",
            rebuilt.parked
        );
    }
    if rebuilt.published > 0 {
        println!(
            "published {} events the replay caused (cancellations)",
            rebuilt.published
        );
    }
    Ok(())
}

/// The replay of `service`'s projection on a database of backend `DB`.
async fn replay_on<DB: ReadModelDb>(
    js: &jetstream::Context,
    pool: &Pool<DB>,
    service: ReadModelService,
    subscription: &Subscription,
) -> anyhow::Result<kit::read_model::Rebuilt>
where
    appointment_service::read_model::PeopleProjection: Projection<DB>,
    record_service::read_model::RecordReadModel: Projection<DB>,
{
    match service {
        ReadModelService::Appointment => {
            let projection = appointment_service::read_model::PeopleProjection;
            replay_with(js, pool, &projection, service, subscription).await
        }
        ReadModelService::Record => {
            let projection = record_service::read_model::RecordReadModel;
            replay_with(js, pool, &projection, service, subscription).await
        }
    }
}

async fn replay_with<DB: ReadModelDb, P: Projection<DB>>(
    js: &jetstream::Context,
    pool: &Pool<DB>,
    projection: &P,
    service: ReadModelService,
    subscription: &Subscription,
) -> anyhow::Result<kit::read_model::Rebuilt> {
    match rebuild(js, pool, projection, subscription, print_progress).await {
        Ok(rebuilt) => Ok(rebuilt),
        Err(RebuildError::Running { .. }) => Err(anyhow::anyhow!(
            "the {} service is running (an instance consumes its read-model): stop it (every \
             instance) first; while a read-model is rebuilt the service would refuse valid \
             requests against it",
            service.name()
        )),
        Err(error) => Err(error).context("the replay stopped"),
    }
}

fn print_progress(progress: &Progress) {
    let rate = progress.events as f64 / progress.elapsed.as_secs_f64().max(1e-9);
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(
        stderr,
        "  {} events, stream sequence {} of {} ({rate:.0} events/s)",
        progress.events, progress.sequence, progress.target
    );
}

/// Opens a service's database for a command that needs the service stopped: its single-writer
/// lock is refused while the service runs.
pub async fn open_stopped(
    service: &str,
    url: &str,
    migrator: &'static Migrator,
) -> anyhow::Result<sqlx::SqlitePool> {
    match kit::sqlite::open(url, migrator).await {
        Ok(pool) => Ok(pool),
        Err(error) if error.is_locked() => Err(anyhow::anyhow!(
            "the {service} service is running (its database {} is locked by it): stop it first; \
             while a read-model is rebuilt the service would refuse valid requests against it",
            kit::config::mask_url(url)
        )),
        Err(error) => Err(error).with_context(|| {
            format!(
                "cannot open the {service} database {}",
                kit::config::mask_url(url)
            )
        }),
    }
}

//! Poison events the read-models parked (`read_model_parked`, see `kit::read_model`), read from
//! the appointment and record databases (on either backend) for `hospital events stats` and
//! `hospital verify`.

use crate::events::Target;
use crate::replay::ReadModelService;
use crate::service_db::ServiceDb;

/// One parked event.
#[derive(Debug, Clone)]
pub struct Parked {
    pub consumer: String,
    pub stream_sequence: i64,
    pub subject: String,
    pub error: String,
}

/// The parked events of one read-model service, or why they could not be read.
pub struct ServiceParked {
    pub service: &'static str,
    pub parked: Result<Vec<Parked>, String>,
}

/// Reads the parked events of both read-model services (read-only; the services may run).
pub async fn read(target: &Target) -> Vec<ServiceParked> {
    let mut all = Vec::new();
    for service in [ReadModelService::Appointment, ReadModelService::Record] {
        let url = target.database_url(service.database_var(), service.name());
        all.push(ServiceParked {
            service: service.name(),
            parked: read_one(&url).await,
        });
    }
    all
}

async fn read_one(url: &str) -> Result<Vec<Parked>, String> {
    const SQL: &str = "SELECT consumer, stream_sequence, subject, error FROM read_model_parked
         ORDER BY consumer, stream_sequence";
    let database = ServiceDb::open(url)
        .await
        .map_err(|e| format!("{} ({e:#})", kit::config::mask_url(url)))?;
    let rows: Result<Vec<(String, i64, String, String)>, _> = match &database {
        ServiceDb::Sqlite(pool) => sqlx::query_as(SQL).fetch_all(pool).await,
        ServiceDb::Postgres(pool) => sqlx::query_as(SQL).fetch_all(pool).await,
    };
    database.close().await;
    let rows = rows.map_err(|e| e.to_string())?;
    Ok(rows
        .into_iter()
        .map(|(consumer, stream_sequence, subject, error)| Parked {
            consumer,
            stream_sequence,
            subject,
            error,
        })
        .collect())
}

/// A table of parked events: one line each (the first `limit`), or a line saying none.
pub fn table(all: &[ServiceParked], limit: usize) -> String {
    let mut out = String::from(
        "PARKED EVENTS (could not be applied; `hospital replay <service>` retries them)\n",
    );
    for entry in all {
        match &entry.parked {
            Err(error) => out += &format!("{:<12} cannot read: {error}\n", entry.service),
            Ok(parked) if parked.is_empty() => {
                out += &format!("{:<12} none\n", entry.service);
            }
            Ok(parked) => {
                out += &format!("{:<12} {} parked\n", entry.service, parked.len());
                for p in parked.iter().take(limit) {
                    out += &format!(
                        "  {} sequence {} {}: {}\n",
                        p.consumer, p.stream_sequence, p.subject, p.error
                    );
                }
                if parked.len() > limit {
                    out += &format!("  ... and {} more\n", parked.len() - limit);
                }
            }
        }
    }
    out
}

//! The audit trail: who read or changed which patient's data, when, from where, and whether
//! it was allowed. Every `/api` call leaves entries in the JetStream stream `HOSPITAL_AUDIT`,
//! apart from the domain events, never editable through the API (the stream denies deletes and
//! purges, and the gateway's NATS user may only append to it).
//!
//! An entry names at most one patient, so a call that disclosed several (a list) leaves one
//! entry per patient, all with the same `request_id`. The subject
//! `hospital.audit.<patient-id | none>.<actor-id | anonymous>` lets [`query`] filter by patient
//! and by actor inside the server.
//!
//! Data is only disclosed once its entries are stored: if the trail cannot be written a read
//! gets 503 and no data. Anything else is answered as it is and the failure is logged: a change
//! that was made (its domain event names the actor too), a refusal, a failed call.

pub mod query;

use std::net::SocketAddr;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, stream};
use chrono::{DateTime, Utc};
use kit::batch_publish::{BatchPublisher, Outgoing};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared_events::subjects::{ALL_AUDIT, AUDIT_PREFIX, AUDIT_STREAM};
use tokio::sync::OnceCell;
use uuid::Uuid;

use crate::auth::Caller;

/// Whether the call was let through the permission check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Allowed,
    Denied,
}

/// One audited access.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: Uuid,
    pub at: DateTime<Utc>,
    pub actor_id: Option<Uuid>,
    pub actor_role: Option<String>,
    pub actor_name: Option<String>,
    /// `list`, `get`, `create`, `update`, `delete`, `history`, `stream`.
    pub action: String,
    pub method: String,
    /// The route's path (never its query, which may hold a name being searched for).
    pub path: String,
    /// `patient`, `staff`, `appointment`, `record`, `audit`, `events`.
    pub resource: String,
    pub entity_id: Option<Uuid>,
    pub patient_id: Option<Uuid>,
    pub client_addr: Option<String>,
    pub outcome: Outcome,
    /// The HTTP status the caller got.
    pub status: u16,
    pub request_id: String,
}

/// Where a call came from: what the trail records besides the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub method: String,
    pub path: String,
    pub client_addr: Option<SocketAddr>,
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Origin {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        let client_addr = parts
            .extensions
            .get::<axum::extract::ConnectInfo<SocketAddr>>()
            .map(|info| info.0);
        Ok(Origin {
            method: parts.method.to_string(),
            path: parts.uri.path().to_owned(),
            client_addr,
        })
    }
}

/// What one call did, before it is turned into entries.
#[derive(Debug, Clone)]
pub struct Access<'a> {
    pub caller: &'a Caller,
    pub origin: &'a Origin,
    pub request_id: &'a str,
    pub resource: &'a str,
    pub action: &'a str,
    pub entity_id: Option<Uuid>,
    pub outcome: Outcome,
    pub status: u16,
}

impl Access<'_> {
    /// One entry per patient concerned, or one naming none.
    pub fn entries(&self, patients: &[Uuid]) -> Vec<AuditEntry> {
        let claims = self.caller.claims();
        let at = Utc::now();
        let one = |patient_id: Option<Uuid>| AuditEntry {
            id: Uuid::now_v7(),
            at,
            actor_id: Some(claims.sub),
            actor_role: Some(claims.role.as_str().to_owned()),
            actor_name: Some(claims.name.clone()),
            action: self.action.to_owned(),
            method: self.origin.method.clone(),
            path: self.origin.path.clone(),
            resource: self.resource.to_owned(),
            entity_id: self.entity_id,
            patient_id,
            client_addr: self.origin.client_addr.map(|addr| addr.ip().to_string()),
            outcome: self.outcome,
            status: self.status,
            request_id: self.request_id.to_owned(),
        };
        if patients.is_empty() {
            vec![one(None)]
        } else {
            patients.iter().map(|p| one(Some(*p))).collect()
        }
    }
}

/// `hospital.audit.<patient-id | none>.<actor-id | anonymous>`
pub fn subject_of(entry: &AuditEntry) -> String {
    let patient = entry
        .patient_id
        .map_or_else(|| "none".to_owned(), |id| id.to_string());
    let actor = entry
        .actor_id
        .map_or_else(|| "anonymous".to_owned(), |id| id.to_string());
    format!("{AUDIT_PREFIX}.{patient}.{actor}")
}

/// The patients an answer disclosed: the `id` of patients, the `patient_id` of anything else,
/// for one item, an array of them, or a page (`{"items": [...]}`); each once, in order.
pub fn patients_in(resource: &str, answer: &Value) -> Vec<Uuid> {
    let key = if resource == shared_events::subjects::service::PATIENT {
        "id"
    } else {
        "patient_id"
    };
    let items: Vec<&Value> = match answer {
        Value::Array(items) => items.iter().collect(),
        Value::Object(object) => match object.get("items") {
            Some(Value::Array(items)) => items.iter().collect(),
            _ => vec![answer],
        },
        _ => Vec::new(),
    };
    let mut patients = Vec::new();
    for id in items
        .into_iter()
        .filter_map(|item| item.get(key)?.as_str()?.parse::<Uuid>().ok())
    {
        if !patients.contains(&id) {
            patients.push(id);
        }
    }
    patients
}

/// The trail could not be written.
#[derive(Debug, thiserror::Error)]
#[error("the audit trail could not be written: {0}")]
pub struct AuditError(String);

/// Appends entries to `HOSPITAL_AUDIT`, creating the stream on first use.
///
/// Entries of concurrent calls are stored together in JetStream atomic batches
/// (`kit::batch_publish`): with `sync_interval: always` each stored message costs an fsync, and
/// one fsync'd message per entry would cap the whole API at the disk's fsync rate.
pub struct AuditLog {
    js: jetstream::Context,
    /// Made once the stream exists (it says whether the stream takes atomic batches).
    publisher: OnceCell<BatchPublisher>,
    /// How long audit entries are kept (`HOSPITAL_AUDIT_RETENTION_DAYS`; zero keeps them all).
    max_age: Duration,
    /// How many NATS servers keep the stream (`HOSPITAL_STREAM_REPLICAS`).
    replicas: usize,
}

impl AuditLog {
    pub fn new(js: jetstream::Context, max_age: Duration, replicas: usize) -> Self {
        AuditLog {
            js,
            publisher: OnceCell::new(),
            max_age,
            replicas,
        }
    }

    pub fn jetstream(&self) -> &jetstream::Context {
        &self.js
    }

    /// The stream's configuration: appends only, no deletes, no purges; kept by `replicas`
    /// servers, like `HOSPITAL_EVENTS` (the trail must survive losing a node as the events do).
    pub fn stream_config(max_age: Duration, replicas: usize) -> stream::Config {
        stream::Config {
            name: AUDIT_STREAM.to_owned(),
            description: Some("Who read or changed what, when, from where".to_owned()),
            subjects: vec![ALL_AUDIT.to_owned()],
            storage: stream::StorageType::File,
            retention: stream::RetentionPolicy::Limits,
            max_age,
            num_replicas: replicas,
            deny_delete: true,
            deny_purge: true,
            duplicate_window: Duration::from_secs(120),
            allow_atomic_publish: true,
            ..Default::default()
        }
    }

    /// Creates the stream once (retried on the next call if NATS was not reachable).
    pub async fn ensure_stream(&self) -> Result<(), AuditError> {
        self.publisher().await.map(|_| ())
    }

    async fn publisher(&self) -> Result<&BatchPublisher, AuditError> {
        self.publisher
            .get_or_try_init(|| async {
                let stream = self
                    .js
                    .get_or_create_stream(Self::stream_config(self.max_age, self.replicas))
                    .await
                    .map_err(|e| AuditError(e.to_string()))?;
                kit::event_stream::warn_if_other_replicas(stream.cached_info(), self.replicas);
                // The answer to the create carries the stream's configuration: no second request.
                let atomic = kit::event_stream::atomic_enabled(stream.cached_info());
                if !atomic {
                    // A stream made by an earlier version: entries are then stored one by one.
                    tracing::warn!(
                        stream = AUDIT_STREAM,
                        "the audit stream does not allow atomic batches (allow_atomic); an operator can enable it to store entries faster"
                    );
                }
                Ok(BatchPublisher::start(
                    self.js.client(),
                    self.js.clone(),
                    atomic,
                ))
            })
            .await
    }

    /// Stores every entry and waits until JetStream has acknowledged them all.
    pub async fn record(&self, entries: &[AuditEntry]) -> Result<(), AuditError> {
        // While NATS is down a publish would only wait out its acknowledgement timeout.
        if self.js.client().connection_state() != async_nats::connection::State::Connected {
            return Err(AuditError("NATS is not connected".to_owned()));
        }
        let publisher = self.publisher().await?;
        let mut messages = Vec::with_capacity(entries.len());
        for entry in entries {
            let payload = serde_json::to_vec(entry).map_err(|e| AuditError(e.to_string()))?;
            let mut headers = HeaderMap::new();
            // A retried publish of the same entry is stored once.
            headers.insert("Nats-Msg-Id", entry.id.to_string().as_str());
            messages.push(Outgoing {
                subject: subject_of(entry),
                headers,
                payload: payload.into(),
            });
        }
        // An acknowledgement lost with the connection would only be waited out for 5 s.
        let client = self.js.client();
        tokio::select! {
            result = publisher.publish(messages) => result.map_err(|e| AuditError(e.to_string())),
            () = crate::nats_call::connection_lost(&client) => {
                Err(AuditError("the NATS connection was lost".to_owned()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_stream_is_kept_by_as_many_servers_as_configured() {
        for replicas in [1, 3] {
            let config = AuditLog::stream_config(Duration::ZERO, replicas);
            assert_eq!(config.num_replicas, replicas);
            assert_eq!(config.name, AUDIT_STREAM);
            assert!(config.deny_delete && config.deny_purge);
        }
    }

    #[test]
    fn subjects_name_the_patient_and_the_actor() {
        let patient = Uuid::now_v7();
        let actor = Uuid::now_v7();
        let mut entry = AuditEntry {
            id: Uuid::now_v7(),
            at: Utc::now(),
            actor_id: Some(actor),
            actor_role: Some("nurse".into()),
            actor_name: Some("N".into()),
            action: "get".into(),
            method: "GET".into(),
            path: "/api/patients/x".into(),
            resource: "patient".into(),
            entity_id: Some(patient),
            patient_id: Some(patient),
            client_addr: None,
            outcome: Outcome::Allowed,
            status: 200,
            request_id: "r".into(),
        };
        assert_eq!(
            subject_of(&entry),
            format!("hospital.audit.{patient}.{actor}")
        );
        entry.patient_id = None;
        entry.actor_id = None;
        assert_eq!(subject_of(&entry), "hospital.audit.none.anonymous");
    }

    #[test]
    fn the_patients_of_an_answer_are_found_once_each() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let page =
            json!({"items": [{"id": "x", "patient_id": a}, {"patient_id": b}, {"patient_id": a}]});
        assert_eq!(patients_in("record", &page), vec![a, b]);
        assert_eq!(
            patients_in("appointment", &json!([{"patient_id": b}])),
            vec![b]
        );
        assert_eq!(
            patients_in("patient", &json!({"id": a, "name": "x"})),
            vec![a]
        );
        assert_eq!(
            patients_in("patient", &json!([{"id": a}, {"id": b}])),
            vec![a, b]
        );
        assert!(patients_in("staff", &json!({"id": a})).is_empty());
        assert!(patients_in("record", &json!("text")).is_empty());
    }
}

//! `GET /api/audit?patient_id=&actor=&from=&to=&limit=&after=`: the trail, oldest first, for
//! those the matrix lets read it (administrators). Filters by patient and actor run inside
//! NATS (they are subject tokens); `from`/`to` are RFC 3339 times; `after` is the `sequence` of
//! the last entry of the previous page, and `Link: rel="next"` carries it.

use std::time::Duration;

use async_nats::jetstream::consumer::{self, DeliverPolicy};
use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::Serialize;
use shared_events::subjects::{AUDIT_PREFIX, AUDIT_STREAM};
use uuid::Uuid;

use super::{Access, AuditEntry, Outcome};
use crate::access::{audit, deadline};
use crate::auth::permissions::{self, AUDIT, Action, Grant};
use crate::error::ApiError;
use crate::nats_call::CommandContext;
use crate::state::AppState;

pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 500;

/// The filters of one page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AuditQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patient_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<DateTime<Utc>>,
    pub limit: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<u64>,
}

/// An entry with its place in the stream.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = AuditTrailEntry)]
pub struct Sequenced {
    pub sequence: u64,
    #[serde(flatten)]
    pub entry: AuditEntry,
}

pub async fn audit_trail(
    State(state): State<AppState>,
    context: CommandContext,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let deadline = deadline(&state);
    let allowed =
        permissions::grant(context.caller.claims().role, AUDIT, Action::List) == Grant::Yes;
    let parsed = if allowed {
        parse(raw.as_deref().unwrap_or(""))
    } else {
        Err(ApiError::forbidden(format!(
            "a {} may not read the audit trail",
            context.caller.claims().role.as_str()
        )))
    };
    let result = match parsed {
        Ok(query) => page(&state, &query).await.map(|page| (query, page)),
        Err(error) => Err(error),
    };
    let access = Access {
        caller: &context.caller,
        origin: &context.origin,
        request_id: context.request_id.as_str(),
        resource: AUDIT,
        action: Action::List.command(),
        entity_id: None,
        outcome: if allowed {
            Outcome::Allowed
        } else {
            Outcome::Denied
        },
        status: result
            .as_ref()
            .map_or_else(|e| e.status().as_u16(), |_| 200),
    };
    // A look at the trail discloses no patient data itself: one entry, naming no patient.
    audit(&state, &access, &[], result.is_ok(), deadline).await?;
    let (query, (entries, more)) = result?;
    let mut headers = HeaderMap::new();
    if more && let Some(last) = entries.last() {
        let next = AuditQuery {
            after: Some(last.sequence),
            ..query
        };
        if let Ok(encoded) = serde_urlencoded::to_string(&next)
            && let Ok(link) =
                HeaderValue::from_str(&format!("</api/audit?{encoded}>; rel=\"next\""))
        {
            headers.insert(header::LINK, link);
        }
    }
    Ok((headers, Json(entries)).into_response())
}

fn parse(raw: &str) -> Result<AuditQuery, ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw)
        .map_err(|_| ApiError::bad_request("the query string is malformed"))?;
    let mut query = AuditQuery {
        limit: DEFAULT_LIMIT,
        ..Default::default()
    };
    let mut seen = Vec::new();
    for (name, value) in pairs {
        if seen.contains(&name) {
            return Err(ApiError::bad_request(format!("{name} is given twice")));
        }
        let bad = |what: &str| ApiError::bad_request(format!("{name} must be {what}"));
        match name.as_str() {
            "patient_id" => {
                query.patient_id = Some(value.parse().map_err(|_| bad("a patient id"))?)
            }
            "actor" => query.actor = Some(value.parse().map_err(|_| bad("a staff id"))?),
            "from" => query.from = Some(time(&value).ok_or_else(|| bad("an RFC 3339 time"))?),
            "to" => query.to = Some(time(&value).ok_or_else(|| bad("an RFC 3339 time"))?),
            "limit" => {
                query.limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| bad(&format!("a number from 1 to {MAX_LIMIT}")))?;
            }
            "after" => query.after = Some(value.parse().map_err(|_| bad("an entry's sequence"))?),
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown parameter {other:?}; use patient_id, actor, from, to, limit, after"
                )));
            }
        }
        seen.push(name);
    }
    if let (Some(from), Some(to)) = (query.from, query.to)
        && from > to
    {
        return Err(ApiError::bad_request("from must not be later than to"));
    }
    Ok(query)
}

fn time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Reads one page with a short-lived consumer that sees only the matching subjects. Returns the
/// entries and whether more match.
async fn page(state: &AppState, query: &AuditQuery) -> Result<(Vec<Sequenced>, bool), ApiError> {
    let unavailable = |error: &dyn std::fmt::Display| {
        tracing::error!(%error, "cannot read the audit trail");
        ApiError::service_unavailable("the audit trail cannot be read right now; try again shortly")
    };
    let log = state.audit();
    log.ensure_stream().await.map_err(|e| unavailable(&e))?;
    let stream = log
        .jetstream()
        .get_stream(AUDIT_STREAM)
        .await
        .map_err(|e| unavailable(&e))?;
    let token = |id: Option<Uuid>| id.map_or_else(|| "*".to_owned(), |id| id.to_string());
    let deliver_policy = match (query.after, query.from) {
        (Some(after), _) => DeliverPolicy::ByStartSequence {
            start_sequence: after + 1,
        },
        // async-nats reads the time itself (RFC 3339), which spares us a second time library.
        (None, Some(from)) => serde_json::from_value(serde_json::json!({
            "deliver_policy": "by_start_time",
            "opt_start_time": from.to_rfc3339(),
        }))
        .map_err(|e| unavailable(&e))?,
        (None, None) => DeliverPolicy::All,
    };
    let consumer = stream
        .create_consumer(consumer::pull::Config {
            filter_subject: format!(
                "{AUDIT_PREFIX}.{}.{}",
                token(query.patient_id),
                token(query.actor)
            ),
            deliver_policy,
            ack_policy: consumer::AckPolicy::None,
            inactive_threshold: Duration::from_secs(30),
            memory_storage: true,
            ..Default::default()
        })
        .await
        .map_err(|e| unavailable(&e))?;
    let pending = usize::try_from(consumer.cached_info().num_pending).unwrap_or(usize::MAX);
    let wanted = pending.min(query.limit);
    let mut entries = Vec::with_capacity(wanted);
    let mut past_the_end = false;
    if wanted > 0 {
        let mut messages = consumer
            .fetch()
            .max_messages(wanted)
            .expires(Duration::from_secs(2))
            .messages()
            .await
            .map_err(|e| unavailable(&e))?;
        while let Some(message) = messages.next().await {
            let message = message.map_err(|e| unavailable(&e))?;
            let sequence = message.info().map_err(|e| unavailable(&e))?.stream_sequence;
            let Ok(entry) = serde_json::from_slice::<AuditEntry>(&message.payload) else {
                tracing::warn!(sequence, "an unreadable audit entry was skipped");
                continue;
            };
            if query.from.is_some_and(|from| entry.at < from) {
                continue;
            }
            if query.to.is_some_and(|to| entry.at > to) {
                past_the_end = true;
                break;
            }
            entries.push(Sequenced { sequence, entry });
            if entries.len() == wanted {
                break;
            }
        }
    }
    let name = consumer.cached_info().name.clone();
    // The consumer would expire by itself; removing it now keeps the server tidy.
    let _ = stream.delete_consumer(&name).await;
    let more = !past_the_end && pending > entries.len();
    Ok((entries, more))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filters_are_read() {
        let patient = Uuid::now_v7();
        let query = parse(&format!(
            "patient_id={patient}&from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00%2B01:00&limit=10&after=7"
        ))
        .unwrap();
        assert_eq!(query.patient_id, Some(patient));
        assert_eq!(query.limit, 10);
        assert_eq!(query.after, Some(7));
        assert_eq!(query.to.unwrap().to_rfc3339(), "2026-01-31T23:00:00+00:00");
        assert_eq!(parse("").unwrap().limit, DEFAULT_LIMIT);
    }

    #[test]
    fn bad_filters_are_a_bad_request() {
        for bad in [
            "patient_id=42",
            "actor=x",
            "from=yesterday",
            "limit=0",
            "limit=501",
            "after=-1",
            "colour=red",
            "limit=5&limit=6",
            "from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z",
        ] {
            let error = parse(bad).unwrap_err();
            assert_eq!(error.status(), axum::http::StatusCode::BAD_REQUEST, "{bad}");
        }
    }

    #[test]
    fn the_next_link_keeps_the_filters() {
        let query = AuditQuery {
            actor: Some(Uuid::nil()),
            limit: 5,
            after: Some(9),
            ..Default::default()
        };
        assert_eq!(
            serde_urlencoded::to_string(&query).unwrap(),
            "actor=00000000-0000-0000-0000-000000000000&limit=5&after=9"
        );
    }
}

//! Every `/api` command passes through [`call`]: the permission check of the matrix
//! ([`crate::auth::permissions`]), the command to the owning service, and the audit entries
//! of what happened. Routes say what they do ([`Call`]); this decides and records.

use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use serde_json::{Map, Value};
use tokio::time::Instant;
use uuid::Uuid;

use crate::audit::{Access, Outcome, patients_in};
use crate::auth::permissions::{self, Action, Grant};
use crate::error::ApiError;
use crate::nats_call::{CommandContext, decode_reply, send_command};
use crate::routes::resources::Resource;
use crate::state::AppState;

/// What a route asks of a service.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    pub resource: &'a Resource,
    pub action: Action,
    /// The item acted on (get, update, delete, history).
    pub entity_id: Option<Uuid>,
    /// The patient the path or body names, if any (audited even when the call is refused).
    pub patient_id: Option<Uuid>,
    /// What a create or update sends, checked against the role's condition.
    pub fields: Option<&'a Map<String, Value>>,
}

impl<'a> Call<'a> {
    pub fn new(resource: &'a Resource, action: Action) -> Self {
        Call {
            resource,
            action,
            entity_id: None,
            patient_id: None,
            fields: None,
        }
    }

    pub fn on(mut self, entity_id: Uuid) -> Self {
        self.entity_id = Some(entity_id);
        if self.resource.service == shared_events::subjects::service::PATIENT {
            self.patient_id = Some(entity_id);
        }
        self
    }

    pub fn for_patient(mut self, patient_id: Uuid) -> Self {
        self.patient_id = Some(patient_id);
        self
    }

    pub fn sending(mut self, fields: &'a Map<String, Value>) -> Self {
        self.fields = Some(fields);
        self.patient_id = self.patient_id.or_else(|| {
            fields
                .get("patient_id")
                .and_then(Value::as_str)
                .and_then(|id| id.parse().ok())
        });
        self
    }
}

/// A service's answer, read once: the bytes as sent and their JSON.
#[derive(Debug)]
pub struct Answer {
    pub raw: Bytes,
    pub json: Value,
}

/// Checks, sends and audits one command. `command` builds the body once the check is done;
/// it gets the item's version when the check had to read the item (an update or delete under a
/// condition), so the change applies to exactly the item that was checked.
pub async fn call<T: Serialize>(
    state: &AppState,
    context: &CommandContext,
    call: Call<'_>,
    command: impl FnOnce(Option<i64>) -> T,
) -> Result<Answer, ApiError> {
    let deadline = deadline(state);
    let mut patients: Vec<Uuid> = call.patient_id.into_iter().collect();
    let checked = check(state, context, &call, &mut patients).await;
    let result = match checked {
        Ok(version) => send_command(
            state.nats(),
            call.resource.service,
            call.action.command(),
            context.headers(),
            &command(version),
        )
        .await
        .and_then(|raw| {
            let json = decode_reply(call.resource.service, &raw)?;
            Ok(Answer { raw, json })
        }),
        Err(error) => Err(error),
    };
    let outcome = match &result {
        Err(error) if error.status() == axum::http::StatusCode::FORBIDDEN => Outcome::Denied,
        _ => Outcome::Allowed,
    };
    let status = match &result {
        Ok(_) => success_status(call.action),
        Err(error) => error.status().as_u16(),
    };
    let mut entity_id = call.entity_id;
    if let Ok(Answer { json: answer, .. }) = &result {
        if call.action == Action::Create {
            entity_id = answer
                .get("id")
                .and_then(Value::as_str)
                .and_then(|id| id.parse().ok());
        }
        for patient in patients_in(call.resource.service, answer) {
            if !patients.contains(&patient) {
                patients.push(patient);
            }
        }
    }
    let access = Access {
        caller: &context.caller,
        origin: &context.origin,
        request_id: context.request_id.as_str(),
        resource: call.resource.service,
        action: call.action.command(),
        entity_id,
        outcome,
        status,
    };
    // Only data about to be disclosed waits on the trail (see `audit`).
    audit(
        state,
        &access,
        &patients,
        !call.action.is_write() && result.is_ok(),
        deadline,
    )
    .await?;
    result
}

/// When a call started now must be answered: within the NATS request timeout, which also
/// bounds the command itself.
pub fn deadline(state: &AppState) -> Instant {
    Instant::now() + state.answer_within()
}

/// The least an access's trail is waited for, even when the command used up the deadline.
const MIN_AUDIT_WAIT: Duration = Duration::from_secs(1);

/// Stores the entries of an access. Data is not disclosed without its trail
/// (`disclosing`: a read about to answer 200); anything else (a change already made, a refusal,
/// a failure) is answered as it is, and an unwritable trail is logged (see [`crate::audit`]).
///
/// The trail is waited for until `deadline` (at least [`MIN_AUDIT_WAIT`]): while JetStream
/// elects a new leader of the audit stream its acknowledgements stop for seconds, and a command
/// that already waited out its own timeout must not wait as long again. Past it, a disclosing
/// read is refused (503) and anything else is answered; either way the entries are still stored
/// if JetStream takes them later, and a failure is logged then.
pub async fn audit(
    state: &AppState,
    access: &Access<'_>,
    patients: &[Uuid],
    disclosing: bool,
    deadline: Instant,
) -> Result<(), ApiError> {
    let entries = access.entries(patients);
    let log = state.audit().clone();
    let request_id = access.request_id.to_owned();
    let status = access.status;
    let mut stored = tokio::spawn(async move { log.record(&entries).await });
    let wait = deadline
        .saturating_duration_since(Instant::now())
        .max(MIN_AUDIT_WAIT);
    let error = match tokio::time::timeout(wait, &mut stored).await {
        Ok(Ok(Ok(()))) => return Ok(()),
        Ok(Ok(Err(error))) => error.to_string(),
        Ok(Err(task)) => format!("the audit task failed: {task}"),
        Err(_) => {
            tokio::spawn(async move {
                if let Ok(Err(error)) = stored.await {
                    tracing::error!(%error, request_id, status, "an access was not audited");
                }
            });
            if !disclosing {
                tracing::warn!(
                    request_id = access.request_id,
                    status,
                    wait_ms = wait.as_millis() as u64,
                    "answering before the audit entry is acknowledged"
                );
                return Ok(());
            }
            format!("not acknowledged within {} ms", wait.as_millis())
        }
    };
    if disclosing {
        tracing::error!(%error, request_id = access.request_id, "refused a read that could not be audited");
        return Err(ApiError::service_unavailable(
            "the access could not be recorded in the audit trail; try again shortly",
        ));
    }
    tracing::error!(%error, request_id = access.request_id, status, "an access was not audited");
    Ok(())
}

/// The permission check. Returns the version of the item read to check a condition.
async fn check(
    state: &AppState,
    context: &CommandContext,
    call: &Call<'_>,
    patients: &mut Vec<Uuid>,
) -> Result<Option<i64>, ApiError> {
    let role = context.caller.claims().role;
    let condition = match permissions::grant(role, call.resource.service, call.action) {
        Grant::Yes => return Ok(None),
        Grant::No => return Err(refused(context, call)),
        Grant::Only(condition) => condition,
    };
    let denied = || ApiError::forbidden(condition.explain());
    if let Some(fields) = call.fields
        && !condition.allows(&context.caller, fields)
    {
        return Err(denied());
    }
    let Some(id) = call
        .entity_id
        .filter(|_| matches!(call.action, Action::Update | Action::Delete))
    else {
        return Ok(None);
    };
    // The item as it is now must meet the condition too (a nurse may not amend a diagnosis
    // into vitals). Read with the caller's own rights, which the condition implies.
    let reply = send_command(
        state.nats(),
        call.resource.service,
        Action::Get.command(),
        context.headers(),
        &shared_events::GetById { id },
    )
    .await?;
    let current: Map<String, Value> = decode_reply(call.resource.service, &reply)?;
    if let Some(patient) = current
        .get("patient_id")
        .and_then(Value::as_str)
        .and_then(|p| p.parse().ok())
        && !patients.contains(&patient)
    {
        patients.push(patient);
    }
    if !condition.allows(&context.caller, &current) {
        return Err(denied());
    }
    Ok(current.get("version").and_then(Value::as_i64))
}

/// The 403 of a role that may never do this.
pub fn refused(context: &CommandContext, call: &Call<'_>) -> ApiError {
    ApiError::forbidden(format!(
        "a {} may not {} {}",
        context.caller.claims().role.as_str(),
        verb(call.action),
        plural(call.resource)
    ))
}

fn verb(action: Action) -> &'static str {
    match action {
        Action::List | Action::Get | Action::History => "read",
        Action::Create => "create",
        Action::Update => "change",
        Action::Delete => "delete",
    }
}

fn plural(resource: &Resource) -> String {
    match resource.noun {
        "staff member" => "staff members".to_owned(),
        noun => format!("{noun}s"),
    }
}

fn success_status(action: Action) -> u16 {
    match action {
        Action::Create => 201,
        Action::Delete => 204,
        _ => 200,
    }
}

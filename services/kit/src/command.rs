//! Runs a service's command handlers on the NATS service API, so that `nats micro ls`,
//! `nats micro info` and `nats micro stats` discover and describe every service.
//!
//! Each action becomes an endpoint on `hospital.<service>.<action>` in the service's queue group
//! (several instances share the load). The service API hands requests over one at a time, so each
//! request runs in its own task: one slow request never stalls the endpoint.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use async_nats::service::ServiceExt;
use async_nats::{HeaderMap, service};
use bytes::Bytes;
use futures::StreamExt;
use serde::de::DeserializeOwned;
use serde_json::Value;
use shared_events::{Actor, ServiceError, headers};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::idempotency::{IdempotencyClaim, KeyStore, Lookup};

/// Who asks, read from the request's headers (set by the gateway from the verified token).
#[derive(Debug, Clone, PartialEq)]
pub struct RequestContext {
    pub actor: Actor,
    pub request_id: Option<String>,
    /// The client's `Idempotency-Key` header, as sent, on any request.
    pub idempotency_key: Option<String>,
    /// The key's claim on a write the service keeps keys for (set by the command runner, which
    /// knows the action and the payload): the store records it with the change, in the same
    /// transaction, by [`crate::idempotency::remember`]. `None` for reads and system work.
    pub idempotency: Option<IdempotencyClaim>,
}

impl RequestContext {
    pub fn from_headers(headers: Option<&HeaderMap>) -> Self {
        let get = |name: &str| {
            headers
                .and_then(|h| h.get(name))
                .map(|v| v.as_str().to_owned())
                .filter(|v| !v.is_empty())
        };
        RequestContext {
            actor: Actor {
                id: get(headers::ACTOR_ID).unwrap_or_else(|| "anonymous".into()),
                role: get(headers::ACTOR_ROLE).unwrap_or_else(|| "none".into()),
            },
            request_id: get(headers::REQUEST_ID),
            idempotency_key: get(headers::IDEMPOTENCY_KEY),
            idempotency: None,
        }
    }

    /// The context of work the system does on its own (bootstrap, cascades).
    pub fn system() -> Self {
        RequestContext {
            actor: Actor::system(),
            request_id: None,
            idempotency_key: None,
            idempotency: None,
        }
    }
}

/// A service's command handling: one call per request.
pub trait CommandHandler: Send + Sync + 'static {
    /// Answers one command. The `Ok` value is the JSON reply body.
    fn handle(
        &self,
        action: &str,
        context: RequestContext,
        payload: Bytes,
    ) -> impl Future<Output = Result<Value, ServiceError>> + Send;
}

/// What the service API announces about a service.
#[derive(Debug, Clone, Copy)]
pub struct ServiceSpec {
    /// The service name in discovery and in subjects: `patient`, `staff`, ...
    pub name: &'static str,
    pub description: &'static str,
    pub version: &'static str,
    /// The actions it answers, each on `hospital.<name>.<action>`.
    pub actions: &'static [&'static str],
}

/// Decodes a command body, answering a malformed one with `bad_request`.
pub fn decode<T: DeserializeOwned>(payload: &[u8]) -> Result<T, ServiceError> {
    serde_json::from_slice(payload)
        .map_err(|e| ServiceError::bad_request(format!("malformed command: {e}")))
}

/// A reply body from a state or page.
pub fn to_json<T: serde::Serialize>(value: &T) -> Result<Value, ServiceError> {
    serde_json::to_value(value).map_err(crate::events::storage_failure)
}

/// Serves `handler` on every action of `spec` until `shutdown`, then waits for requests in
/// flight to finish. An `Idempotency-Key` is passed on in the context but not honoured: see
/// [`serve_commands_with_keys`].
pub async fn serve_commands<H: CommandHandler>(
    client: async_nats::Client,
    spec: ServiceSpec,
    handler: Arc<H>,
    shutdown: CancellationToken,
) -> Result<(), async_nats::Error> {
    serve(client, spec, handler, None, shutdown).await
}

/// As [`serve_commands`], and honours the `Idempotency-Key` of every write with the keys in
/// `keys` (the service's own database; see [`crate::idempotency`]).
pub async fn serve_commands_with_keys<H: CommandHandler>(
    client: async_nats::Client,
    spec: ServiceSpec,
    handler: Arc<H>,
    keys: KeyStore,
    shutdown: CancellationToken,
) -> Result<(), async_nats::Error> {
    serve(client, spec, handler, Some(keys), shutdown).await
}

async fn serve<H: CommandHandler>(
    client: async_nats::Client,
    spec: ServiceSpec,
    handler: Arc<H>,
    keys: Option<KeyStore>,
    shutdown: CancellationToken,
) -> Result<(), async_nats::Error> {
    let service = client
        .service_builder()
        .description(spec.description)
        .start(spec.name, spec.version)
        .await?;
    let group = service.group(format!("hospital.{}", spec.name));
    let in_flight = TaskTracker::new();
    let mut listeners = Vec::new();
    for &action in spec.actions {
        let mut endpoint = group.endpoint_builder().name(action).add(action).await?;
        let handler = handler.clone();
        let keys = keys.clone();
        let shutdown = shutdown.clone();
        let in_flight = in_flight.clone();
        listeners.push(tokio::spawn(async move {
            loop {
                let request = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    next = endpoint.next() => match next { Some(r) => r, None => break },
                };
                let handler = handler.clone();
                in_flight.spawn(answer(spec.name, action, handler, keys.clone(), request));
            }
            // Dropping the endpoint unsubscribes: no new requests reach this instance.
        }));
    }
    tracing::info!(service = spec.name, actions = ?spec.actions, "serving commands");
    for listener in listeners {
        let _ = listener.await;
    }
    in_flight.close();
    in_flight.wait().await;
    let _ = service.stop().await;
    Ok(())
}

async fn answer<H: CommandHandler>(
    service_name: &'static str,
    action: &'static str,
    handler: Arc<H>,
    keys: Option<KeyStore>,
    request: service::Request,
) {
    let started = Instant::now();
    let context = RequestContext::from_headers(request.message.headers.as_ref());
    let request_id = context.request_id.clone().unwrap_or_default();
    let payload = request.message.payload.clone();
    let (result, replayed) = match (keys, context.idempotency_key.clone()) {
        (Some(keys), Some(key)) if crate::idempotency::is_write(action) => {
            run_keyed(&keys, &key, action, handler.as_ref(), context, payload).await
        }
        _ => (run(action, handler.as_ref(), context, payload).await, false),
    };
    let (status, sent) = match result {
        Ok(bytes) => (200, request.respond(Ok(bytes)).await),
        Err(error) => {
            let status = error.code.http_status();
            let mut reply_headers = HeaderMap::new();
            if let Ok(json) = serde_json::to_string(&error) {
                reply_headers.insert(headers::ERROR, json.as_str());
            }
            let api_error = service::error::Error {
                status: header_safe(&error.message),
                code: status as usize,
            };
            (
                status,
                request
                    .respond_with_headers(Err(api_error), reply_headers)
                    .await,
            )
        }
    };
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    if let Err(error) = sent {
        tracing::warn!(service = service_name, action, request_id, %error, "could not send reply");
    }
    tracing::info!(
        service = service_name,
        action,
        request_id,
        status,
        replayed,
        elapsed_ms,
        "command"
    );
}

/// The message as the service API's `Nats-Service-Error` header can carry it: async-nats
/// panics on a header value with a line break, and a message may quote a client's field name
/// (found by fuzzing: the request was then never answered). The full message travels in the
/// JSON of `headers::ERROR`, which escapes it.
fn header_safe(message: &str) -> String {
    message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Runs the handler; the reply's bytes.
async fn run<H: CommandHandler>(
    action: &str,
    handler: &H,
    context: RequestContext,
    payload: Bytes,
) -> Result<Bytes, ServiceError> {
    let body = handler.handle(action, context, payload).await?;
    crate::idempotency::reply_bytes(&body)
        .map(Bytes::from)
        .map_err(crate::events::storage_failure)
}

/// A write with an `Idempotency-Key`: replays the stored reply of the same request, refuses a
/// different request, or runs it with the claim for the store to record with the change.
/// Also says whether the reply is a replay.
async fn run_keyed<H: CommandHandler>(
    keys: &KeyStore,
    key: &str,
    action: &str,
    handler: &H,
    mut context: RequestContext,
    payload: Bytes,
) -> (Result<Bytes, ServiceError>, bool) {
    let claim = IdempotencyClaim::new(&context.actor.id, key, action, &payload);
    match keys.lookup(&claim).await {
        Ok(Lookup::Fresh) => {}
        Ok(Lookup::Replay(reply)) => return (Ok(reply), true),
        Ok(Lookup::Mismatch) => return (Err(crate::idempotency::key_reused()), false),
        Err(error) => return (Err(crate::events::storage_failure(error)), false),
    }
    context.idempotency = Some(claim.clone());
    match run(action, handler, context, payload).await {
        Ok(reply) => (Ok(reply), false),
        // Errors are not stored (nothing changed). But when a concurrent request with the same
        // key committed first, this one failed because of it (its transaction found the key,
        // or its change now conflicts): answer as that request was answered.
        Err(error) => match keys.lookup(&claim).await {
            Ok(Lookup::Replay(reply)) => (Ok(reply), true),
            Ok(Lookup::Mismatch) => (Err(crate::idempotency::key_reused()), false),
            Ok(Lookup::Fresh) | Err(_) => (Err(error), false),
        },
    }
}

/// Reads a typed [`ServiceError`] out of an error reply's headers, for clients of the services.
/// Returns `None` when the reply is not an error.
pub fn error_from_reply(message: &async_nats::Message) -> Option<ServiceError> {
    let headers = message.headers.as_ref()?;
    if let Some(json) = headers.get(headers::ERROR)
        && let Ok(error) = serde_json::from_str::<ServiceError>(json.as_str())
    {
        return Some(error);
    }
    // An error reply from something that is not one of ours (or a garbled header).
    let code = headers.get(service::NATS_SERVICE_ERROR_CODE)?;
    let status: u16 = code.as_str().parse().unwrap_or(500);
    let kind = match status {
        400 => shared_events::ErrorCode::BadRequest,
        401 => shared_events::ErrorCode::Unauthorized,
        403 => shared_events::ErrorCode::Forbidden,
        404 => shared_events::ErrorCode::NotFound,
        409 => shared_events::ErrorCode::Conflict,
        412 => shared_events::ErrorCode::PreconditionFailed,
        422 => shared_events::ErrorCode::Validation,
        429 => shared_events::ErrorCode::TooManyRequests,
        503 => shared_events::ErrorCode::Unavailable,
        _ => shared_events::ErrorCode::Internal,
    };
    Some(ServiceError::new(kind, "the service reported an error"))
}

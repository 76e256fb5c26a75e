//! The CRUD routes of every resource a service owns, written once:
//!
//! | route                        | command                        | answer                       |
//! |------------------------------|--------------------------------|------------------------------|
//! | `GET    /api/<path>`         | `hospital.<service>.list`      | 200 JSON array, `Link` next  |
//! | `POST   /api/<path>`         | `hospital.<service>.create`    | 201, `Location`, `ETag`      |
//! | `GET    /api/<path>/{id}`    | `hospital.<service>.get`       | 200, `ETag`                  |
//! | `PUT    /api/<path>/{id}`    | `hospital.<service>.update`    | 200, `ETag` (`If-Match`)     |
//! | `DELETE /api/<path>/{id}`    | `hospital.<service>.delete`    | 204 (`If-Match`)             |
//!
//! A list's query parameters other than `q`, `limit` and `after` are the owning service's
//! filters, passed on as sent ([`paging::list_query`]); the service refuses ones it does not know.
//!
//! A new resource is one more entry in [`RESOURCES`]; `/ready` then waits for its service too.
//! The routes below a resource's item (`/api/patients/{id}/appointments`,
//! `/api/records/{id}/history`) are in [`super::nested`].

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Map, Value};
use shared_events::subjects::service;
use shared_events::{Create, Delete, GetById, ListQuery, Page, Update};

use super::paging;
use crate::access::{self, Call};
use crate::auth::Action;
use crate::error::ApiError;
use crate::extract::{JsonObject, PathId, entity_id, etag_of, expected_version};
use crate::nats_call::CommandContext;
use crate::state::AppState;

/// A collection exposed under `/api/<path>` and owned by one service.
#[derive(Debug)]
pub struct Resource {
    /// The owning service, as in `hospital.<service>.<action>`.
    pub service: &'static str,
    /// The URL segment: `/api/<path>`.
    pub path: &'static str,
    /// One of them, in messages: `patient not found`.
    pub noun: &'static str,
}

pub const PATIENTS: Resource = Resource {
    service: service::PATIENT,
    path: "patients",
    noun: "patient",
};

pub const STAFF: Resource = Resource {
    service: service::STAFF,
    path: "staff",
    noun: "staff member",
};

pub const APPOINTMENTS: Resource = Resource {
    service: service::APPOINTMENT,
    path: "appointments",
    noun: "appointment",
};

pub const RECORDS: Resource = Resource {
    service: service::RECORD,
    path: "records",
    noun: "medical record",
};

/// Every resource the gateway routes.
pub static RESOURCES: [Resource; 4] = [PATIENTS, STAFF, APPOINTMENTS, RECORDS];

/// The services that own the resources, each once, in [`RESOURCES`] order: the ones `/ready`
/// requires.
pub fn services() -> Vec<&'static str> {
    let mut services: Vec<&'static str> = Vec::with_capacity(RESOURCES.len());
    for resource in &RESOURCES {
        if !services.contains(&resource.service) {
            services.push(resource.service);
        }
    }
    services
}

/// The routes of every resource in [`RESOURCES`], and those below their items.
pub fn router() -> Router<AppState> {
    RESOURCES
        .iter()
        .fold(Router::new(), |routes, resource| {
            routes.merge(routes_of(resource))
        })
        .merge(super::nested::router())
}

/// The five routes of one resource.
fn routes_of(resource: &'static Resource) -> Router<AppState> {
    let collection = format!("/api/{}", resource.path);
    let item = format!("/api/{}/{{id}}", resource.path);
    Router::new()
        .route(
            &collection,
            get(
                move |State(state): State<AppState>,
                      context: CommandContext,
                      RawQuery(query): RawQuery| {
                    list(resource, state, context, query)
                },
            )
            .post(
                move |State(state): State<AppState>,
                      context: CommandContext,
                      JsonObject(fields): JsonObject| {
                    create(resource, state, context, fields)
                },
            ),
        )
        .route(
            &item,
            get(
                move |State(state): State<AppState>, context: CommandContext, id: PathId| {
                    get_one(resource, state, context, id)
                },
            )
            .put(
                move |State(state): State<AppState>,
                      context: CommandContext,
                      id: PathId,
                      headers: HeaderMap,
                      JsonObject(fields): JsonObject| {
                    update(resource, state, context, id, headers, fields)
                },
            )
            .delete(
                move |State(state): State<AppState>,
                      context: CommandContext,
                      id: PathId,
                      headers: HeaderMap| {
                    delete(resource, state, context, id, headers)
                },
            ),
        )
}

async fn list(
    resource: &'static Resource,
    state: AppState,
    context: CommandContext,
    raw_query: Option<String>,
) -> Result<Response, ApiError> {
    let query = paging::list_query(raw_query.as_deref())?;
    let mut call = Call::new(resource, Action::List);
    if let Some(patient) = query.filters.get("patient_id").and_then(|p| p.parse().ok()) {
        call = call.for_patient(patient);
    }
    list_page(&state, &context, call, resource.path, &query, &query).await
}

/// Sends `command` to the resource's `list` and answers the page: the array of items, with a
/// `Link` to `/api/<link_path>` and the client's own `query` one page further.
pub(super) async fn list_page(
    state: &AppState,
    context: &CommandContext,
    call: Call<'_>,
    link_path: &str,
    query: &ListQuery,
    command: &ListQuery,
) -> Result<Response, ApiError> {
    let service = call.resource.service;
    let answer = access::call(state, context, call, |_| command).await?;
    let page: Page<Value> =
        serde_json::from_value(answer.json).map_err(|e| ApiError::bad_gateway(service, e))?;
    let mut headers = HeaderMap::new();
    if let Some(link) = page
        .next_after
        .and_then(|after| paging::next_link(link_path, query, after))
    {
        headers.insert(header::LINK, link);
    }
    // The body is the array itself, as the original system answered.
    Ok((headers, Json(page.items)).into_response())
}

async fn create(
    resource: &'static Resource,
    state: AppState,
    context: CommandContext,
    fields: Map<String, Value>,
) -> Result<Response, ApiError> {
    let call = Call::new(resource, Action::Create).sending(&fields);
    let entity = access::call(&state, &context, call, |_| Create {
        fields: fields.clone(),
    })
    .await?
    .json;
    let mut response = entity_response(StatusCode::CREATED, &entity);
    if let Some(location) = entity
        .get("id")
        .and_then(Value::as_str)
        .and_then(|id| HeaderValue::from_str(&format!("/api/{}/{id}", resource.path)).ok())
    {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

async fn get_one(
    resource: &'static Resource,
    state: AppState,
    context: CommandContext,
    PathId(raw): PathId,
) -> Result<Response, ApiError> {
    let id = entity_id(&raw, resource.noun)?;
    let call = Call::new(resource, Action::Get).on(id);
    let entity = access::call(&state, &context, call, |_| GetById { id })
        .await?
        .json;
    Ok(entity_response(StatusCode::OK, &entity))
}

async fn update(
    resource: &'static Resource,
    state: AppState,
    context: CommandContext,
    PathId(raw): PathId,
    headers: HeaderMap,
    fields: Map<String, Value>,
) -> Result<Response, ApiError> {
    let id = entity_id(&raw, resource.noun)?;
    let expected = expected_version(&headers)?;
    let call = Call::new(resource, Action::Update).on(id).sending(&fields);
    let entity = access::call(&state, &context, call, |checked| Update {
        id,
        // The version a condition was checked against, unless the client named one.
        expected_version: expected.or(checked),
        fields: fields.clone(),
    })
    .await?
    .json;
    Ok(entity_response(StatusCode::OK, &entity))
}

async fn delete(
    resource: &'static Resource,
    state: AppState,
    context: CommandContext,
    PathId(raw): PathId,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = entity_id(&raw, resource.noun)?;
    let expected = expected_version(&headers)?;
    let call = Call::new(resource, Action::Delete).on(id);
    // The reply (the final state) is not shown: a delete answers 204 with no body.
    access::call(&state, &context, call, |checked| Delete {
        id,
        expected_version: expected.or(checked),
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// One entity as JSON with its version as the `ETag`.
fn entity_response(status: StatusCode, entity: &Value) -> Response {
    let mut response = (status, Json(entity)).into_response();
    if let Some(etag) = etag_of(entity) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
}

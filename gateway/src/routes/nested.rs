//! The routes below a resource's item, each one command to the service that owns the answer:
//!
//! | route                                  | command                       | sent                     |
//! |----------------------------------------|-------------------------------|--------------------------|
//! | `GET /api/patients/{id}/appointments`  | `hospital.appointment.list`   | filter `patient_id = id` |
//! | `GET /api/staff/{id}/appointments`     | `hospital.appointment.list`   | filter `doctor_id = id`  |
//! | `GET /api/patients/{id}/records`       | `hospital.record.list`        | filter `patient_id = id` |
//! | `GET /api/records/{id}/history`        | `hospital.record.history`     | `GetById { id }`         |
//!
//! A sub-collection is the child's list with one filter filled from the path, plus the
//! request's own `q`, `limit`, `after` and filters; its `Link` points back to the nested path.
//! An item view sends the item's id and answers the service's JSON array as it came. A new one
//! is one more entry in [`SUB_COLLECTIONS`] or [`ITEM_VIEWS`].

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use shared_events::GetById;

use super::paging;
use super::resources::{APPOINTMENTS, PATIENTS, RECORDS, Resource, STAFF, list_page};
use crate::access::{self, Call};
use crate::auth::Action;
use crate::error::ApiError;
use crate::extract::{PathId, entity_id};
use crate::nats_call::CommandContext;
use crate::state::AppState;

/// `GET /api/<parent>/{id}/<child>`: the child's list, filtered to one parent.
#[derive(Debug)]
pub struct SubCollection {
    /// Whose id is in the path; a non-UUID id is "<parent noun> not found".
    pub parent: Resource,
    /// What is listed, by its owning service.
    pub child: Resource,
    /// The child's filter the parent id fills. The client may not also send it.
    pub filter: &'static str,
}

pub static SUB_COLLECTIONS: [SubCollection; 3] = [
    SubCollection {
        parent: PATIENTS,
        child: APPOINTMENTS,
        filter: "patient_id",
    },
    SubCollection {
        parent: STAFF,
        child: APPOINTMENTS,
        filter: "doctor_id",
    },
    SubCollection {
        parent: PATIENTS,
        child: RECORDS,
        filter: "patient_id",
    },
];

/// `GET /api/<resource>/{id}/<segment>`: one more view of an item, a JSON array.
#[derive(Debug)]
pub struct ItemView {
    pub resource: Resource,
    pub segment: &'static str,
    /// The command (`GetById` body) and the permission it needs.
    pub action: Action,
}

pub static ITEM_VIEWS: [ItemView; 1] = [ItemView {
    resource: RECORDS,
    segment: "history",
    action: Action::History,
}];

/// The routes of every entry in [`SUB_COLLECTIONS`] and [`ITEM_VIEWS`].
pub fn router() -> Router<AppState> {
    let routes = SUB_COLLECTIONS
        .iter()
        .fold(Router::new(), |routes, nested| {
            let path = format!("/api/{}/{{id}}/{}", nested.parent.path, nested.child.path);
            routes.route(
                &path,
                get(
                    move |State(state): State<AppState>,
                          context: CommandContext,
                          id: PathId,
                          RawQuery(query): RawQuery| {
                        list_of(nested, state, context, id, query)
                    },
                ),
            )
        });
    ITEM_VIEWS.iter().fold(routes, |routes, view| {
        let path = format!("/api/{}/{{id}}/{}", view.resource.path, view.segment);
        routes.route(
            &path,
            get(
                move |State(state): State<AppState>, context: CommandContext, id: PathId| {
                    item_view(view, state, context, id)
                },
            ),
        )
    })
}

async fn list_of(
    nested: &'static SubCollection,
    state: AppState,
    context: CommandContext,
    PathId(raw): PathId,
    raw_query: Option<String>,
) -> Result<Response, ApiError> {
    let parent_id = entity_id(&raw, nested.parent.noun)?;
    let query = paging::list_query(raw_query.as_deref())?;
    if query.filters.contains_key(nested.filter) {
        return Err(ApiError::bad_request(format!(
            "{} is given by the path; leave it out of the query",
            nested.filter
        )));
    }
    let mut command = query.clone();
    command
        .filters
        .insert(nested.filter.to_owned(), parent_id.to_string());
    // The link repeats the client's query, not the filter the path already gives.
    let link_path = format!("{}/{parent_id}/{}", nested.parent.path, nested.child.path);
    let mut call = Call::new(&nested.child, Action::List);
    if nested.parent.service == shared_events::subjects::service::PATIENT {
        call = call.for_patient(parent_id);
    }
    list_page(&state, &context, call, &link_path, &query, &command).await
}

async fn item_view(
    view: &'static ItemView,
    state: AppState,
    context: CommandContext,
    PathId(raw): PathId,
) -> Result<Response, ApiError> {
    let id = entity_id(&raw, view.resource.noun)?;
    let call = Call::new(&view.resource, view.action).on(id);
    let answer = access::call(&state, &context, call, |_| GetById { id }).await?;
    // Checked to be an array, then passed on byte for byte.
    if !answer.json.is_array() {
        return Err(ApiError::bad_gateway(
            view.resource.service,
            "the answer is not an array",
        ));
    }
    let content_type = HeaderValue::from_static("application/json");
    Ok(([(header::CONTENT_TYPE, content_type)], answer.raw).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::resources::RESOURCES;

    #[test]
    fn every_parent_and_child_is_a_routed_resource() {
        let routed = |r: &Resource| RESOURCES.iter().any(|known| known.path == r.path);
        for nested in &SUB_COLLECTIONS {
            assert!(
                routed(&nested.parent) && routed(&nested.child),
                "{nested:?}"
            );
        }
        for view in &ITEM_VIEWS {
            assert!(routed(&view.resource), "{view:?}");
        }
    }

    #[test]
    fn nested_paths_are_unique() {
        let mut paths: Vec<String> = SUB_COLLECTIONS
            .iter()
            .map(|n| format!("{}/{}", n.parent.path, n.child.path))
            .chain(
                ITEM_VIEWS
                    .iter()
                    .map(|v| format!("{}/{}", v.resource.path, v.segment)),
            )
            .collect();
        let count = paths.len();
        paths.sort();
        paths.dedup();
        assert_eq!(paths.len(), count);
    }
}

//! One operation per route, built from the tables the router is built from: the CRUD routes of
//! [`RESOURCES`], the [`SUB_COLLECTIONS`] and [`ITEM_VIEWS`] below items; the fixed routes are
//! in [`super::fixed`], the parameters, bodies and responses they share in [`super::parts`].

use axum::http::StatusCode;
use utoipa::openapi::ResponseBuilder;
use utoipa::openapi::path::{HttpMethod, Operation, OperationBuilder, PathItem};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::tag::{Tag, TagBuilder};

use super::components::{BEARER, array_of, entity_schema, problem_ref, schema_ref};
use super::parts::{
    body, entity_response, etag_header, header, id_parameter, idempotency_key, if_match, json,
    list_parameters, list_response, string,
};
use crate::routes::nested::{ITEM_VIEWS, SUB_COLLECTIONS};
use crate::routes::resources::{RESOURCES, Resource};

use StatusCode as S;

/// The errors every authenticated `/api` route may answer.
const AUTHENTICATED: [StatusCode; 4] = [
    S::UNAUTHORIZED,
    S::FORBIDDEN,
    S::SERVICE_UNAVAILABLE,
    S::GATEWAY_TIMEOUT,
];
/// What a command to a service may add: its reply could not be read.
pub(super) const COMMAND: [StatusCode; 1] = [S::BAD_GATEWAY];
/// What reading a JSON body may answer, and a write's `Idempotency-Key`.
pub(super) const BODY: [StatusCode; 5] = [
    S::BAD_REQUEST,
    S::REQUEST_TIMEOUT,
    S::PAYLOAD_TOO_LARGE,
    S::UNSUPPORTED_MEDIA_TYPE,
    S::UNPROCESSABLE_ENTITY,
];

/// Every documented path with its operations.
pub fn all() -> Vec<(String, PathItem)> {
    let mut paths = super::fixed::routes();
    for resource in &RESOURCES {
        paths.extend(crud(resource));
    }
    for nested in &SUB_COLLECTIONS {
        let path = format!("/api/{}/{{id}}/{}", nested.parent.path, nested.child.path);
        let parameters = [id_parameter(&nested.parent)]
            .into_iter()
            .chain(list_parameters(&nested.child, Some(nested.filter)));
        let operation = OperationBuilder::new()
            .operation_id(Some(format!(
                "list_{}_of_{}",
                nested.child.path,
                singular(&nested.parent)
            )))
            .summary(Some(format!(
                "The {}s of one {} (filters as on /api/{}, except {})",
                nested.child.noun, nested.parent.noun, nested.child.path, nested.filter
            )))
            .tag(tag_of(&nested.parent))
            .parameters(Some(parameters))
            .response("200", list_response(&nested.child));
        paths.push((
            path,
            PathItem::new(
                HttpMethod::Get,
                authenticated(operation, &[&[S::BAD_REQUEST, S::NOT_FOUND], &COMMAND]),
            ),
        ));
    }
    for view in &ITEM_VIEWS {
        let path = format!("/api/{}/{{id}}/{}", view.resource.path, view.segment);
        let operation = OperationBuilder::new()
            .operation_id(Some(format!(
                "{}_of_{}",
                view.segment,
                singular(&view.resource)
            )))
            .summary(Some(format!(
                "Every version of {}: who changed it, when, and how it was",
                a(view.resource.noun)
            )))
            .tag(tag_of(&view.resource))
            .parameter(id_parameter(&view.resource))
            .response(
                "200",
                ResponseBuilder::new()
                    .description("Every version, oldest first")
                    .content("application/json", json(array_of("RecordVersion")))
                    .build(),
            );
        paths.push((
            path,
            PathItem::new(
                HttpMethod::Get,
                authenticated(operation, &[&[S::NOT_FOUND], &COMMAND]),
            ),
        ));
    }
    paths
}

/// The tags, one per resource and one for each group of fixed routes.
pub fn tags() -> Vec<Tag> {
    let mut tags = vec![
        TagBuilder::new()
            .name("auth")
            .description(Some("Logging in and out, changing one's password"))
            .build(),
        TagBuilder::new()
            .name("operations")
            .description(Some("Liveness and readiness, this contract"))
            .build(),
    ];
    tags.extend(RESOURCES.iter().map(|r| {
        TagBuilder::new()
            .name(tag_of(r))
            .description(Some(format!("The {}s", r.noun)))
            .build()
    }));
    tags.push(
        TagBuilder::new()
            .name("audit")
            .description(Some("Who read or changed what; the live event feed"))
            .build(),
    );
    tags
}

/// The CRUD routes of one resource, as [`crate::routes::resources`] writes them.
fn crud(resource: &Resource) -> Vec<(String, PathItem)> {
    let schema = entity_schema(resource.path);
    let one = singular(resource);
    let list = OperationBuilder::new()
        .operation_id(Some(format!("list_{}", resource.path)))
        .summary(Some(format!("List {}s, paged", resource.noun)))
        .tag(tag_of(resource))
        .parameters(Some(list_parameters(resource, None)))
        .response("200", list_response(resource));
    let create = OperationBuilder::new()
        .operation_id(Some(format!("create_{one}")))
        .summary(Some(format!("Create {}", a(resource.noun))))
        .tag(tag_of(resource))
        .parameter(idempotency_key())
        .request_body(Some(body(schema)))
        .response(
            "201",
            ResponseBuilder::new()
                .description(format!("The new {}", resource.noun))
                .content("application/json", json(schema_ref(schema)))
                .header("Location", header("Where it can be read", string()))
                .header("ETag", etag_header())
                .build(),
        );
    let get = OperationBuilder::new()
        .operation_id(Some(format!("get_{one}")))
        .summary(Some(format!("One {}", resource.noun)))
        .tag(tag_of(resource))
        .parameter(id_parameter(resource))
        .response(
            "200",
            entity_response(resource, &format!("The {}", resource.noun)),
        );
    let update = OperationBuilder::new()
        .operation_id(Some(format!("update_{one}")))
        .summary(Some(format!(
            "Replace the writable fields of {}",
            a(resource.noun)
        )))
        .tag(tag_of(resource))
        .parameters(Some([
            id_parameter(resource),
            if_match(),
            idempotency_key(),
        ]))
        .request_body(Some(body(schema)))
        .response(
            "200",
            entity_response(resource, &format!("The {} after the change", resource.noun)),
        );
    let delete = OperationBuilder::new()
        .operation_id(Some(format!("delete_{one}")))
        .summary(Some(format!("Delete {}", a(resource.noun))))
        .tag(tag_of(resource))
        .parameters(Some([
            id_parameter(resource),
            if_match(),
            idempotency_key(),
        ]))
        .response(
            "204",
            ResponseBuilder::new().description("Done; no body").build(),
        );
    let collection = PathItem::new(
        HttpMethod::Get,
        authenticated(list, &[&[S::BAD_REQUEST], &COMMAND]),
    );
    let collection_post = PathItem::new(
        HttpMethod::Post,
        authenticated(create, &[&BODY, &[S::CONFLICT], &COMMAND]),
    );
    let item_errors: &[&[StatusCode]] = &[
        &BODY,
        &[S::NOT_FOUND, S::CONFLICT, S::PRECONDITION_FAILED],
        &COMMAND,
    ];
    let mut item = PathItem::new(
        HttpMethod::Get,
        authenticated(get, &[&[S::NOT_FOUND], &COMMAND]),
    );
    item.merge_operations(PathItem::new(
        HttpMethod::Put,
        authenticated(update, item_errors),
    ));
    item.merge_operations(PathItem::new(
        HttpMethod::Delete,
        authenticated(
            delete,
            &[
                &[S::BAD_REQUEST, S::UNPROCESSABLE_ENTITY],
                &[S::NOT_FOUND, S::CONFLICT, S::PRECONDITION_FAILED],
                &COMMAND,
            ],
        ),
    ));
    let mut collection = collection;
    collection.merge_operations(collection_post);
    vec![
        (format!("/api/{}", resource.path), collection),
        (format!("/api/{}/{{id}}", resource.path), item),
    ]
}

/// The routes that are not generated from a table.
pub(super) fn authenticated(operation: OperationBuilder, extra: &[&[StatusCode]]) -> Operation {
    secured(with_errors(
        with_errors(operation, &[&AUTHENTICATED]),
        extra,
    ))
}

pub(super) fn secured(operation: OperationBuilder) -> Operation {
    operation
        .security(SecurityRequirement::new(BEARER, Vec::<String>::new()))
        .build()
}

pub(super) fn with_errors(
    mut operation: OperationBuilder,
    groups: &[&[StatusCode]],
) -> OperationBuilder {
    for status in groups.iter().flat_map(|g| g.iter()) {
        operation = operation.response(status.as_u16().to_string(), problem_ref(*status));
    }
    operation
}

/// `{id}`: any text is accepted and answers 404 unless it is a UUID.
pub(super) fn tag_of(resource: &Resource) -> &'static str {
    resource.path
}

/// `patient`, `staff`, `appointment`, `record`: for operation ids.
pub(super) fn singular(resource: &Resource) -> &'static str {
    resource.service
}

/// `a patient`, `an appointment`.
pub(super) fn a(noun: &str) -> String {
    let article = if noun.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {noun}")
}

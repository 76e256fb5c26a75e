//! One operation per route, built from the tables the router is built from: the CRUD routes of
//! [`RESOURCES`], the [`SUB_COLLECTIONS`] and [`ITEM_VIEWS`] below items, and the fixed routes
//! (`/health`, `/ready`, `/auth/*`, `/api/audit`, the live feed, this contract and its page).

use axum::http::StatusCode;
use shared_events::ListQuery;
use utoipa::PartialSchema;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{
    HttpMethod, Operation, OperationBuilder, Parameter, ParameterBuilder, ParameterIn, PathItem,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, Type};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::tag::{Tag, TagBuilder};
use utoipa::openapi::{Content, ContentBuilder, RefOr, Required, ResponseBuilder};

use super::components::{BEARER, array_of, entity_schema, problem_ref, schema_ref, string_of};
use super::docs;
use crate::extract::BODY_LIMIT_BYTES;
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
const COMMAND: [StatusCode; 1] = [S::BAD_GATEWAY];
/// What reading a JSON body may answer, and a write's `Idempotency-Key`.
const BODY: [StatusCode; 4] = [
    S::BAD_REQUEST,
    S::PAYLOAD_TOO_LARGE,
    S::UNSUPPORTED_MEDIA_TYPE,
    S::UNPROCESSABLE_ENTITY,
];

/// Every documented path with its operations.
pub fn all() -> Vec<(String, PathItem)> {
    let mut paths = fixed();
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
        .response("200", entity_response(resource, "It"));
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
        .response("200", entity_response(resource, "It after the change"));
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
fn fixed() -> Vec<(String, PathItem)> {
    let health = OperationBuilder::new()
        .operation_id(Some("health"))
        .summary(Some("The process is alive"))
        .tag("operations")
        .response("200", json_response("Alive", schema_ref("Health")));
    let ready = OperationBuilder::new()
        .operation_id(Some("ready"))
        .summary(Some(
            "NATS connected, every service answering, revoked tokens loaded",
        ))
        .tag("operations")
        .response("200", json_response("Ready", readiness()))
        .response(
            "503",
            json_response("Not ready: what is missing", readiness()),
        );
    let login = OperationBuilder::new()
        .operation_id(Some("login"))
        .summary(Some("Log in: an access token for a username and password"))
        .tag("auth")
        .request_body(Some(body("Credentials")))
        .response("200", json_response("The token", schema_ref("IssuedToken")));
    let logout = OperationBuilder::new()
        .operation_id(Some("logout"))
        .summary(Some("Revoke the token this is called with"))
        .tag("auth")
        .response("204", ResponseBuilder::new().description("Revoked").build());
    let password = OperationBuilder::new()
        .operation_id(Some("change_password"))
        .summary(Some(
            "Change one's own password; every earlier token stops working",
        ))
        .tag("auth")
        .request_body(Some(body("PasswordChange")))
        .response(
            "200",
            json_response("A fresh token", schema_ref("IssuedToken")),
        );
    let audit = OperationBuilder::new()
        .operation_id(Some("audit_trail"))
        .summary(Some(
            "The audit trail, oldest first, paged (administrators)",
        ))
        .tag("audit")
        .parameters(Some([
            query(
                "patient_id",
                "Entries about this patient",
                string_of(KnownFormat::Uuid),
            ),
            query(
                "actor",
                "Entries of this staff member",
                string_of(KnownFormat::Uuid),
            ),
            query(
                "from",
                "At or after this time",
                string_of(KnownFormat::DateTime),
            ),
            query("to", "Before this time", string_of(KnownFormat::DateTime)),
            query(
                "limit",
                "At most this many (default 50, at most 500)",
                limit(),
            ),
            query(
                "after",
                "The sequence of the last entry of the previous page",
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(0)),
            ),
        ]))
        .response(
            "200",
            ResponseBuilder::new()
                .description("A page of entries")
                .content("application/json", json(array_of("AuditTrailEntry")))
                .header("Link", link_header())
                .build(),
        );
    let feed = OperationBuilder::new()
        .operation_id(Some("event_stream"))
        .summary(Some(
            "Live events as Server-Sent Events (never ends; filtered by what the role may read)",
        ))
        .tag("audit")
        .parameters(Some([
            query(
                "aggregates",
                "Comma-separated: patient, staff, appointment, record (default all)",
                string(),
            ),
            query(
                "after",
                "Resume after this stream sequence",
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(0)),
            ),
            ParameterBuilder::new()
                .name("Last-Event-ID")
                .parameter_in(ParameterIn::Header)
                .required(Required::False)
                .description(Some("The id of the last message received, to resume"))
                .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                .build(),
        ]))
        .response(
            "200",
            ResponseBuilder::new()
                .description(
                    "`id:` the stream sequence, `event:` the event type, `data:` the envelope",
                )
                .content(
                    "text/event-stream",
                    ContentBuilder::new().schema(Some(string())).build(),
                )
                .build(),
        );
    let document = OperationBuilder::new()
        .operation_id(Some("openapi_document"))
        .summary(Some("This document (OpenAPI 3.1)"))
        .tag("operations")
        .response(
            "200",
            json_response(
                "The document",
                ObjectBuilder::new().schema_type(Type::Object),
            ),
        );
    let page = |id: &str, summary: &str, content_type: &str| {
        OperationBuilder::new()
            .operation_id(Some(id))
            .summary(Some(summary))
            .tag("operations")
            .response(
                "200",
                ResponseBuilder::new()
                    .description(summary)
                    .content(
                        content_type,
                        ContentBuilder::new().schema(Some(string())).build(),
                    )
                    .build(),
            )
    };
    let asset = page("docs_asset", "A file of the reference page", "*/*")
        .parameter(
            ParameterBuilder::new()
                .name("file")
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .schema(Some(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .enum_values(Some(docs::ASSETS.iter().map(|a| a.name))),
                ))
                .build(),
        )
        .response("404", problem_ref(S::NOT_FOUND));
    let public = |operation: OperationBuilder| operation.securities(Some([])).build();
    vec![
        (
            "/health".into(),
            PathItem::new(HttpMethod::Get, public(health)),
        ),
        (
            "/ready".into(),
            PathItem::new(HttpMethod::Get, public(ready)),
        ),
        (
            "/auth/login".into(),
            PathItem::new(
                HttpMethod::Post,
                with_errors(
                    login,
                    &[
                        &BODY,
                        &[S::UNAUTHORIZED, S::TOO_MANY_REQUESTS],
                        &[S::SERVICE_UNAVAILABLE, S::GATEWAY_TIMEOUT],
                        &COMMAND,
                    ],
                )
                .securities(Some([]))
                .build(),
            ),
        ),
        (
            "/auth/logout".into(),
            PathItem::new(
                HttpMethod::Post,
                secured(with_errors(
                    logout,
                    &[&[S::UNAUTHORIZED, S::SERVICE_UNAVAILABLE]],
                )),
            ),
        ),
        (
            "/auth/password".into(),
            PathItem::new(
                HttpMethod::Post,
                secured(with_errors(
                    password,
                    &[
                        &BODY,
                        &[S::UNAUTHORIZED, S::SERVICE_UNAVAILABLE, S::GATEWAY_TIMEOUT],
                        &COMMAND,
                    ],
                )),
            ),
        ),
        (
            "/api/audit".into(),
            PathItem::new(HttpMethod::Get, authenticated(audit, &[&[S::BAD_REQUEST]])),
        ),
        (
            "/api/events/stream".into(),
            PathItem::new(HttpMethod::Get, authenticated(feed, &[&[S::BAD_REQUEST]])),
        ),
        (
            super::DOCUMENT_PATH.into(),
            PathItem::new(HttpMethod::Get, public(document)),
        ),
        (
            docs::PAGE_PATH.into(),
            PathItem::new(
                HttpMethod::Get,
                public(page("docs_page", "The API reference page", "text/html")),
            ),
        ),
        (
            format!("{}/{{file}}", docs::PAGE_PATH),
            PathItem::new(HttpMethod::Get, public(asset)),
        ),
        (
            "/".into(),
            PathItem::new(
                HttpMethod::Get,
                public(
                    page("login_page", "The frontend's login page", "text/html")
                        .response("404", problem_ref(S::NOT_FOUND)),
                ),
            ),
        ),
    ]
}

/// An operation that needs a token, with the errors every such route may answer and `extra`.
fn authenticated(operation: OperationBuilder, extra: &[&[StatusCode]]) -> Operation {
    secured(with_errors(
        with_errors(operation, &[&AUTHENTICATED]),
        extra,
    ))
}

fn secured(operation: OperationBuilder) -> Operation {
    operation
        .security(SecurityRequirement::new(BEARER, Vec::<String>::new()))
        .build()
}

fn with_errors(mut operation: OperationBuilder, groups: &[&[StatusCode]]) -> OperationBuilder {
    for status in groups.iter().flat_map(|g| g.iter()) {
        operation = operation.response(status.as_u16().to_string(), problem_ref(*status));
    }
    operation
}

/// `{id}`: any text is accepted and answers 404 unless it is a UUID.
fn id_parameter(resource: &Resource) -> Parameter {
    ParameterBuilder::new()
        .name("id")
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .description(Some(format!(
            "The {}'s id (a UUID; anything else is not found)",
            resource.noun
        )))
        .schema(Some(string_of(KnownFormat::Uuid)))
        .build()
}

/// `q`, `limit`, `after` and the owning service's filters, less the one a path fills.
fn list_parameters(resource: &Resource, filled: Option<&str>) -> Vec<Parameter> {
    let mut parameters = Vec::new();
    if searchable(resource) {
        parameters.push(query(
            "q",
            "Every word must start a word of the name; or an exact MRN or username",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .max_length(Some(256)),
        ));
    }
    parameters.push(query(
        "limit",
        &format!(
            "Page size (default {}; larger is clamped to {})",
            ListQuery::DEFAULT_LIMIT,
            ListQuery::MAX_LIMIT
        ),
        limit(),
    ));
    parameters.push(query(
        "after",
        "The cursor of the next page, from the Link header",
        string_of(KnownFormat::Uuid),
    ));
    for (name, description, schema) in filters(resource) {
        if Some(name) != filled {
            parameters.push(query(name, description, schema));
        }
    }
    parameters
}

/// Whether `q` searches the resource (the others refuse it).
fn searchable(resource: &Resource) -> bool {
    matches!(resource.path, "patients" | "staff")
}

/// The filters the owning service knows (`services/appointment/src/filters.rs`,
/// `services/record/src/timeline.rs`); any other is a 400.
fn filters(resource: &Resource) -> Vec<(&'static str, &'static str, RefOr<Schema>)> {
    let uuid = || string_of(KnownFormat::Uuid).into();
    match resource.path {
        "appointments" => vec![
            ("patient_id", "One patient's", uuid()),
            ("doctor_id", "One doctor's", uuid()),
            (
                "status",
                "One status",
                shared_events::appointment::AppointmentStatus::schema(),
            ),
            (
                "from",
                "Starting at or after",
                string_of(KnownFormat::DateTime).into(),
            ),
            (
                "to",
                "Starting before",
                string_of(KnownFormat::DateTime).into(),
            ),
            (
                "date",
                "Starting on this UTC day",
                string_of(KnownFormat::Date).into(),
            ),
        ],
        "records" => vec![
            ("patient_id", "One patient's", uuid()),
            (
                "kind",
                "One kind",
                shared_events::record::RecordKind::schema(),
            ),
            (
                "status",
                "active (the default), entered_in_error, or all",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(["active", "entered_in_error", "all"]))
                    .into(),
            ),
            ("appointment_id", "Written at one appointment", uuid()),
        ],
        _ => Vec::new(),
    }
}

fn query(name: &str, description: &str, schema: impl Into<RefOr<Schema>>) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Query)
        .required(Required::False)
        .description(Some(description))
        .schema(Some(schema))
        .build()
}

fn limit() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(1))
}

fn if_match() -> Parameter {
    ParameterBuilder::new()
        .name("If-Match")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "The ETag the change is based on (\"5\", W/\"5\" or 5), or *; another version is a 412",
        ))
        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
        .example(Some(serde_json::json!("\"1\"")))
        .build()
}

fn idempotency_key() -> Parameter {
    ParameterBuilder::new()
        .name("Idempotency-Key")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "Repeat the request with the same key to get the first answer again, without a second change",
        ))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(crate::nats_call::MAX_IDEMPOTENCY_KEY_LEN))
                .pattern(Some("^[!-~]+$")),
        ))
        .example(Some(serde_json::json!("7f1c9e1a-retry-demo")))
        .build()
}

fn body(schema: &str) -> utoipa::openapi::request_body::RequestBody {
    RequestBodyBuilder::new()
        .required(Some(Required::True))
        .description(Some(format!(
            "A JSON object, at most {} KiB",
            BODY_LIMIT_BYTES / 1024
        )))
        .content("application/json", json(schema_ref(schema)))
        .build()
}

fn entity_response(resource: &Resource, what: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(format!(
            "{what}, with its version as the ETag ({})",
            resource.noun
        ))
        .content(
            "application/json",
            json(schema_ref(entity_schema(resource.path))),
        )
        .header("ETag", etag_header())
        .build()
}

fn list_response(resource: &Resource) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(format!("A page of {}s", resource.noun))
        .content(
            "application/json",
            json(array_of(entity_schema(resource.path))),
        )
        .header("Link", link_header())
        .build()
}

fn json_response(description: &str, schema: impl Into<RefOr<Schema>>) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content("application/json", json(schema))
        .build()
}

fn json(schema: impl Into<RefOr<Schema>>) -> Content {
    ContentBuilder::new().schema(Some(schema)).build()
}

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

fn header(description: &str, schema: ObjectBuilder) -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(schema)
        .description(Some(description))
        .build()
}

fn etag_header() -> utoipa::openapi::header::Header {
    header(
        "The entity's version, quoted; send it back as If-Match",
        string().pattern(Some("^\"[0-9]+\"$")),
    )
}

fn link_header() -> utoipa::openapi::header::Header {
    header(
        "<...>; rel=\"next\": the same query one page further, when there is one",
        string(),
    )
}

fn readiness() -> ObjectBuilder {
    let word = || ObjectBuilder::new().schema_type(Type::String);
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .property("status", word().enum_values(Some(["ready", "not_ready"])))
        .property(
            "nats",
            word().enum_values(Some(["connected", "disconnected", "connecting"])),
        )
        .property(
            "services",
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .additional_properties(Some(word().enum_values(Some(["up", "down", "unknown"])))),
        )
        .property(
            "revocations",
            word().enum_values(Some(["loaded", "loading"])),
        )
        .required("status")
}

fn tag_of(resource: &Resource) -> &'static str {
    resource.path
}

/// `patient`, `staff`, `appointment`, `record`: for operation ids.
fn singular(resource: &Resource) -> &'static str {
    resource.service
}

/// `a patient`, `an appointment`.
fn a(noun: &str) -> String {
    let article = if noun.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {noun}")
}

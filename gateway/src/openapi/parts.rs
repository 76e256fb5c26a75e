//! The parameters, bodies, responses and headers the operations share: `{id}`, the list
//! query, `If-Match`, `Idempotency-Key`, `ETag` and `Link`.

use shared_events::ListQuery;
use utoipa::PartialSchema;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{AnyOfBuilder, KnownFormat, ObjectBuilder, Schema, Type};
use utoipa::openapi::{Content, ContentBuilder, RefOr, Required, ResponseBuilder};

use super::components::{array_of, entity_schema, schema_ref, string_of};
use crate::extract::BODY_LIMIT_BYTES;
use crate::routes::resources::Resource;

pub(super) fn id_parameter(resource: &Resource) -> Parameter {
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
pub(super) fn list_parameters(resource: &Resource, filled: Option<&str>) -> Vec<Parameter> {
    let mut parameters = Vec::new();
    if searchable(resource) {
        parameters.push(query(
            "q",
            "Every word must start a word of the name; or an exact MRN or username",
            ObjectBuilder::new().schema_type(Type::String),
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
        "The cursor of the next page, from the Link header (empty counts as absent)",
        AnyOfBuilder::new()
            .item(string_of(KnownFormat::Uuid))
            .item(blank()),
    ));
    for (name, description, schema) in filters(resource) {
        if Some(name) != filled {
            parameters.push(query(name, description, schema));
        }
    }
    parameters
}

/// Whether `q` searches the resource (the others refuse it).
pub(super) fn searchable(resource: &Resource) -> bool {
    matches!(resource.path, "patients" | "staff")
}

/// The filters the owning service knows (`services/appointment/src/filters.rs`,
/// `services/record/src/timeline.rs`); any other is a 400.
pub(super) fn filters(resource: &Resource) -> Vec<(&'static str, &'static str, RefOr<Schema>)> {
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

/// An empty or blank query value, which the list reads as absent.
fn blank() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(r"^\s*$"))
}

pub(super) fn query(name: &str, description: &str, schema: impl Into<RefOr<Schema>>) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Query)
        .required(Required::False)
        .description(Some(description))
        .schema(Some(schema))
        .build()
}

pub(super) fn limit() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(1))
}

pub(super) fn if_match() -> Parameter {
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

pub(super) fn idempotency_key() -> Parameter {
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
                // Printable ASCII without spaces. (Surrounding blanks are trimmed, but HTTP
                // clients refuse to send a header value that starts with one.)
                .pattern(Some("^[!-~]+$")),
        ))
        .example(Some(serde_json::json!("7f1c9e1a-retry-demo")))
        .build()
}

pub(super) fn body(schema: &str) -> utoipa::openapi::request_body::RequestBody {
    RequestBodyBuilder::new()
        .required(Some(Required::True))
        .description(Some(format!(
            "A JSON object, at most {} KiB",
            BODY_LIMIT_BYTES / 1024
        )))
        .content("application/json", json(schema_ref(schema)))
        .build()
}

/// One entity; `what` describes it (`The patient`).
pub(super) fn entity_response(resource: &Resource, what: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(format!("{what}, with its version as the ETag"))
        .content(
            "application/json",
            json(schema_ref(entity_schema(resource.path))),
        )
        .header("ETag", etag_header())
        .build()
}

pub(super) fn list_response(resource: &Resource) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(format!("A page of {}s", resource.noun))
        .content(
            "application/json",
            json(array_of(entity_schema(resource.path))),
        )
        .header("Link", link_header())
        .build()
}

pub(super) fn json_response(
    description: &str,
    schema: impl Into<RefOr<Schema>>,
) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content("application/json", json(schema))
        .build()
}

pub(super) fn json(schema: impl Into<RefOr<Schema>>) -> Content {
    ContentBuilder::new().schema(Some(schema)).build()
}

pub(super) fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

pub(super) fn header(description: &str, schema: ObjectBuilder) -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(schema)
        .description(Some(description))
        .build()
}

pub(super) fn etag_header() -> utoipa::openapi::header::Header {
    header(
        "The entity's version, quoted; send it back as If-Match",
        string().pattern(Some("^\"[0-9]+\"$")),
    )
}

pub(super) fn link_header() -> utoipa::openapi::header::Header {
    header(
        "<...>; rel=\"next\": the same query one page further, when there is one",
        string(),
    )
}

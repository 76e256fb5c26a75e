//! The reusable parts of the document: entity schemas (from the wire types' derives), the
//! problem document and one response per error status, the headers and the bearer scheme.

use axum::http::StatusCode;
use serde_json::json;
use shared_events::appointment::Appointment;
use shared_events::patient::Patient;
use shared_events::record::{MedicalRecord, RecordStatus, RecordVersion};
use shared_events::staff::Staff;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type,
};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    Components, ComponentsBuilder, ContentBuilder, Ref, RefOr, Response, ResponseBuilder,
};
use utoipa::{PartialSchema, ToSchema};

use crate::audit::query::Sequenced;
use crate::auth::body::{LOGIN_FIELDS, PASSWORD_FIELDS};
use crate::auth::jwt::IssuedToken;
use crate::error::{PROBLEM_JSON, Problem};

/// The name of the bearer-JWT security scheme.
pub const BEARER: &str = "bearerAuth";

/// Every error status some route answers, each a `#/components/responses/<status>`.
pub const ERROR_STATUSES: [StatusCode; 15] = [
    StatusCode::BAD_REQUEST,
    StatusCode::UNAUTHORIZED,
    StatusCode::FORBIDDEN,
    StatusCode::NOT_FOUND,
    StatusCode::METHOD_NOT_ALLOWED,
    StatusCode::REQUEST_TIMEOUT,
    StatusCode::CONFLICT,
    StatusCode::PRECONDITION_FAILED,
    StatusCode::PAYLOAD_TOO_LARGE,
    StatusCode::UNSUPPORTED_MEDIA_TYPE,
    StatusCode::UNPROCESSABLE_ENTITY,
    StatusCode::TOO_MANY_REQUESTS,
    StatusCode::BAD_GATEWAY,
    StatusCode::SERVICE_UNAVAILABLE,
    StatusCode::GATEWAY_TIMEOUT,
];

/// The entity schemas a resource path lists, gets and writes.
pub fn entity_schema(resource_path: &str) -> &'static str {
    match resource_path {
        "patients" => "Patient",
        "staff" => "Staff",
        "appointments" => "Appointment",
        "records" => "MedicalRecord",
        other => panic!("no schema for /api/{other}: add it to openapi::components"),
    }
}

pub fn all() -> Components {
    let mut schemas: Vec<(String, RefOr<Schema>)> = Vec::new();
    add::<Patient>(&mut schemas);
    add::<Staff>(&mut schemas);
    add::<Appointment>(&mut schemas);
    add::<MedicalRecord>(&mut schemas);
    add::<RecordVersion>(&mut schemas);
    add::<IssuedToken>(&mut schemas);
    add::<Problem>(&mut schemas);
    add::<Sequenced>(&mut schemas);
    for (name, schema) in &mut schemas {
        match name.as_str() {
            "Staff" => add_password(schema),
            "MedicalRecord" => read_only_inline::<RecordStatus>(schema, "status"),
            _ => {}
        }
        if ENTITIES.contains(&name.as_str()) {
            closed(schema);
        }
    }
    schemas.push((
        "Credentials".into(),
        required_strings(
            &LOGIN_FIELDS,
            json!({"username": "admin", "password": "change-me-at-first-login"}),
        ),
    ));
    schemas.push((
        "PasswordChange".into(),
        required_strings(
            &PASSWORD_FIELDS,
            json!({"current_password": "change-me-at-first-login",
                   "new_password": "a longer passphrase of mine"}),
        ),
    ));
    schemas.push(("Health".into(), health()));
    let mut builder = ComponentsBuilder::new()
        .schemas_from_iter(schemas)
        .security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "The access_token of POST /auth/login (HS256, 15 minutes by default)",
                    ))
                    .build(),
            ),
        );
    for status in ERROR_STATUSES {
        builder = builder.response(status.as_u16().to_string(), problem_response(status));
    }
    builder.build()
}

/// The schemas of what the services own: the fields a body may hold, and no others (a service
/// answers an unknown field with a 422).
const ENTITIES: [&str; 6] = [
    "Patient",
    "Staff",
    "Appointment",
    "MedicalRecord",
    "Diagnosis",
    "Vitals",
];

fn closed(schema: &mut RefOr<Schema>) {
    if let RefOr::T(Schema::Object(object)) = schema {
        object.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(false)));
    }
}

/// A schema and everything it refers to.
fn add<T: ToSchema>(schemas: &mut Vec<(String, RefOr<Schema>)>) {
    schemas.push((T::name().into_owned(), T::schema()));
    T::schemas(schemas);
}

/// The staff member's write-only password: never answered, never published.
fn add_password(schema: &mut RefOr<Schema>) {
    if let RefOr::T(Schema::Object(object)) = schema {
        let password = ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(12))
            .max_length(Some(256))
            .write_only(Some(true))
            .description(Some(
                "Sets or changes the login's password (12 to 256 characters; stored as an \
                 argon2id hash, never returned)",
            ));
        object
            .properties
            .insert("password".into(), password.build().into());
    }
}

/// Marks a property that refers to `T`'s schema read-only, by inlining that schema: the
/// derive drops `readOnly` next to a `$ref`.
fn read_only_inline<T: PartialSchema>(schema: &mut RefOr<Schema>, property: &str) {
    let (RefOr::T(Schema::Object(object)), RefOr::T(Schema::Object(mut inline))) =
        (schema, T::schema())
    else {
        return;
    };
    if let Some(RefOr::Ref(reference)) = object.properties.get(property) {
        inline.description = Some(reference.description.clone()).filter(|d| !d.is_empty());
    }
    inline.read_only = Some(true);
    object.properties.insert(property.into(), inline.into());
}

/// A body of required, non-blank strings and nothing else, as [`crate::auth::body`] reads it.
fn required_strings(names: &[&str], example: serde_json::Value) -> RefOr<Schema> {
    let mut object = ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(AdditionalProperties::<Schema>::FreeForm(false)))
        .examples([example]);
    for name in names {
        object = object
            .property(
                *name,
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(1))
                    .pattern(Some(r"\S")),
            )
            .required(*name);
    }
    object.build().into()
}

fn health() -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .property("status", ObjectBuilder::new().schema_type(Type::String))
        .required("status")
        .build()
        .into()
}

/// A reference to a schema of the components.
pub fn schema_ref(name: &str) -> RefOr<Schema> {
    RefOr::Ref(Ref::from_schema_name(name))
}

/// An array of a component schema.
pub fn array_of(name: &str) -> RefOr<Schema> {
    ArrayBuilder::new().items(schema_ref(name)).build().into()
}

/// A string schema with a format.
pub fn string_of(format: KnownFormat) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(format)))
}

/// A reference to the problem response of `status`.
pub fn problem_ref(status: StatusCode) -> RefOr<Response> {
    RefOr::Ref(Ref::from_response_name(status.as_u16().to_string()))
}

fn problem_response(status: StatusCode) -> Response {
    let reason = status.canonical_reason().unwrap_or("Error");
    let description = match status {
        StatusCode::BAD_REQUEST => {
            "Malformed JSON, a body that is not an object, a bad query \
             parameter, Idempotency-Key or Last-Event-ID"
        }
        StatusCode::UNAUTHORIZED => {
            "A missing, malformed, forged, expired or revoked token; a \
             failed login"
        }
        StatusCode::FORBIDDEN => "The caller's role may not do this",
        StatusCode::NOT_FOUND => "An unknown or deleted id, or an id that is not a UUID",
        StatusCode::METHOD_NOT_ALLOWED => "A method the path does not have; Allow lists them",
        StatusCode::CONFLICT => {
            "A taken username, an overlapping appointment, an illegal \
             status change, amending a record entered in error"
        }
        StatusCode::REQUEST_TIMEOUT => {
            "The body did not arrive within the gateway's body time \
             limit"
        }
        StatusCode::PRECONDITION_FAILED => "If-Match names a version that is not current",
        StatusCode::PAYLOAD_TOO_LARGE => "A body over 64 KiB",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "A body that is not application/json",
        StatusCode::UNPROCESSABLE_ENTITY => {
            "Invalid fields, each named in errors; an \
             Idempotency-Key already used for another request"
        }
        StatusCode::TOO_MANY_REQUESTS => {
            "Too many failed logins; Retry-After says how long \
             to wait"
        }
        StatusCode::BAD_GATEWAY => "A service answered something the gateway cannot read",
        StatusCode::SERVICE_UNAVAILABLE => "NATS is down or no instance of the service runs",
        StatusCode::GATEWAY_TIMEOUT => "The service did not answer in time",
        _ => reason,
    };
    let example = serde_json::json!({
        "type": "about:blank",
        "title": reason,
        "status": status.as_u16(),
        "detail": description,
        "request_id": "01a212c5-f811-70fc-af66-813002f60d48",
    });
    let mut response = ResponseBuilder::new().description(description).content(
        PROBLEM_JSON,
        ContentBuilder::new()
            .schema(Some(schema_ref("Problem")))
            .example(Some(example))
            .build(),
    );
    let header = |description: &str, schema: ObjectBuilder| {
        HeaderBuilder::new()
            .schema(schema)
            .description(Some(description))
            .build()
    };
    match status {
        StatusCode::UNAUTHORIZED => {
            response = response.header(
                "WWW-Authenticate",
                header(
                    "Always Bearer",
                    ObjectBuilder::new().schema_type(Type::String),
                ),
            );
        }
        StatusCode::TOO_MANY_REQUESTS => {
            response = response.header(
                "Retry-After",
                header(
                    "Seconds to wait",
                    ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .minimum(Some(0)),
                ),
            );
        }
        StatusCode::METHOD_NOT_ALLOWED => {
            response = response.header(
                "Allow",
                header(
                    "The methods the path has",
                    ObjectBuilder::new().schema_type(Type::String),
                ),
            );
        }
        _ => {}
    }
    response.build()
}

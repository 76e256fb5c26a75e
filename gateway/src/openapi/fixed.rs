//! The routes that are not generated from a table: `/health`, `/ready`, `/auth/*`,
//! `/api/audit`, the live feed, this contract and its reference page, and `/`.

use axum::http::StatusCode;
use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem,
};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Type};
use utoipa::openapi::{ContentBuilder, Required, ResponseBuilder};

use super::components::{array_of, problem_ref, schema_ref, string_of};
use super::docs;
use super::operations::{BODY, COMMAND, authenticated, secured, with_errors};
use super::parts::{body, json, json_response, limit, link_header, query, string};

use StatusCode as S;

/// Every route not generated from a table, with its operation.
pub fn routes() -> Vec<(String, PathItem)> {
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

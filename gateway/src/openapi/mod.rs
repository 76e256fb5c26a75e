//! The API contract: `GET /api/openapi.json`, an OpenAPI 3.1 document built from the same
//! tables the router is built from, and `GET /api/docs`, a browsable reference of it.
//!
//! Nothing here is written by hand as JSON. The CRUD routes of every entry in
//! [`crate::routes::resources::RESOURCES`], the sub-collections and item views of [`crate::routes::nested`] are documented
//! by walking those tables (so a new resource is documented the moment it is routed); the
//! entity schemas come from the wire types' `ToSchema` derives in `shared-events` (feature
//! `openapi`), whose attributes restate the services' validation rules.
//!
//! - [`operations`]: one [`utoipa::openapi::path::Operation`] per route of the tables;
//!   [`fixed`] the others; [`parts`] the parameters, bodies and headers they share.
//! - [`components`]: schemas, the problem responses, headers, the bearer-JWT scheme.
//! - [`docs`]: the reference page (Swagger UI, vendored in `gateway/assets/docs/`).
//!
//! `gateway/tests/openapi.rs` checks the router against the document, in both directions.

pub mod components;
pub mod docs;
pub mod fixed;
pub mod operations;
pub mod parts;

use std::sync::OnceLock;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::{InfoBuilder, OpenApi, OpenApiBuilder, PathsBuilder};

/// Where the document is served.
pub const DOCUMENT_PATH: &str = "/api/openapi.json";

/// The whole document.
pub fn document() -> OpenApi {
    let mut paths = PathsBuilder::new();
    for (path, item) in operations::all() {
        paths = paths.path(path, item);
    }
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Smart Healthcare System API")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(DESCRIPTION))
                .build(),
        )
        .paths(paths.build())
        .components(Some(components::all()))
        .tags(Some(operations::tags()))
        .build()
}

const DESCRIPTION: &str = "Patients, staff, appointments and medical records behind one \
gateway. Every `/api` route but this document and its reference page needs \
`Authorization: Bearer <access_token>` from `POST /auth/login`, and a role the permission \
matrix allows (403 otherwise). Bodies are JSON objects of at most 64 KiB; every error is \
`application/problem+json`. Writes accept an `Idempotency-Key`; `PUT` and `DELETE` accept \
`If-Match` with the `ETag` (the entity's version). Lists are paged with `limit` and `after`: \
follow the `Link: <...>; rel=\"next\"` header.";

/// `GET /api/openapi.json`. Built once: it depends on nothing but the code.
pub async fn serve_document() -> Response {
    static BODY: OnceLock<Vec<u8>> = OnceLock::new();
    let body = BODY.get_or_init(|| {
        serde_json::to_vec(&document()).expect("an OpenAPI document always serialises")
    });
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.as_slice(),
    )
        .into_response()
}

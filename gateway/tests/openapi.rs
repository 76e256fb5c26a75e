//! The contract against the router: every route the gateway serves is in `/api/openapi.json`
//! and every documented operation is served, and the document holds together (references
//! resolve, every error is a problem document, every token-guarded operation says so).

mod support;

use std::collections::BTreeSet;

use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use serde_json::Value;
use support::{TestGateway, get};
use tower::ServiceExt;

/// The methods routes could have (HEAD and OPTIONS are axum's, answered for every GET route).
const METHODS: [Method; 5] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::PATCH,
];

/// Path segments worth trying besides the document's own: names an undocumented route would
/// plausibly have.
const MORE_SEGMENTS: [&str; 12] = [
    "metrics",
    "version",
    "me",
    "search",
    "export",
    "login",
    "users",
    "events",
    "history",
    "appointments",
    "records",
    "x",
];

fn document() -> Value {
    serde_json::to_value(gateway::openapi::document()).unwrap()
}

/// `(method, path template)` of every documented operation.
fn documented(document: &Value) -> BTreeSet<(String, String)> {
    let mut operations = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            operations.insert((method.to_uppercase(), path.clone()));
        }
    }
    operations
}

/// A concrete path for a template: an id for `{id}`, a real file for `{file}`.
fn concrete(template: &str) -> String {
    template
        .replace("{id}", "0190f6a4-7c1e-7b3a-9c4d-2e5f6a7b8c9d")
        .replace("{file}", gateway::openapi::docs::ASSETS[0].name)
}

/// Every documented path, its prefixes, and each of those one segment longer (a segment of
/// the document, `{id}`, or one of [`MORE_SEGMENTS`]).
fn candidate_templates(document: &Value) -> BTreeSet<String> {
    let paths: Vec<&String> = document["paths"].as_object().unwrap().keys().collect();
    let mut segments: BTreeSet<String> = MORE_SEGMENTS.iter().map(|s| s.to_string()).collect();
    let mut bases: BTreeSet<String> = BTreeSet::from(["".to_owned()]);
    for path in &paths {
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        segments.extend(parts.iter().map(|s| s.to_string()));
        for end in 0..=parts.len() {
            bases.insert(parts[..end].iter().map(|p| format!("/{p}")).collect());
        }
    }
    let mut templates = BTreeSet::new();
    for base in &bases {
        templates.insert(if base.is_empty() {
            "/".into()
        } else {
            base.clone()
        });
        for segment in &segments {
            templates.insert(format!("{base}/{segment}"));
        }
    }
    templates
}

/// Marks each answer with the route template that served it, if a route did (the static
/// files and the unknown-address problem are the fallback, not routes).
async fn mark_route(request: Request, next: Next) -> Response {
    let matched = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let mut response = next.run(request).await;
    if let Some(template) = matched.and_then(|m: String| HeaderValue::from_str(&m).ok()) {
        response.headers_mut().insert("x-test-route", template);
    }
    response
}

#[tokio::test]
async fn every_served_route_is_documented_and_every_documented_route_is_served() {
    let gateway = TestGateway::without_services().await;
    let router = gateway::app(gateway.state.clone()).layer(middleware::from_fn(mark_route));
    let document = document();
    let mut served = BTreeSet::new();
    let templates = candidate_templates(&document);
    for template in &templates {
        for method in &METHODS {
            let request = axum::http::Request::builder()
                .method(method.clone())
                .uri(concrete(template))
                .body(Body::empty())
                .unwrap();
            let response = router.clone().oneshot(request).await.unwrap();
            let route = response.headers().get("x-test-route");
            if let Some(route) = route
                && response.status() != StatusCode::METHOD_NOT_ALLOWED
            {
                served.insert((method.to_string(), route.to_str().unwrap().to_owned()));
            }
        }
    }
    let documented = documented(&document);
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty() && unserved.is_empty(),
        "served but not documented: {undocumented:?}\ndocumented but not served: {unserved:?}"
    );
    // Not vacuous: every resource's five routes, the nested ones and the fixed ones.
    assert!(served.len() >= 30, "{served:?}");
    println!(
        "{} operations served and documented ({} paths tried with {} methods)",
        served.len(),
        templates.len(),
        METHODS.len()
    );
}

#[tokio::test]
async fn the_gateway_serves_the_document_and_the_reference_page() {
    let gateway = TestGateway::without_services().await;
    let reply = gateway.send(get("/api/openapi.json")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.json(), document());

    let page = gateway.send(get("/api/docs")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    let csp = page.header("content-security-policy").unwrap();
    for kind in ["script-src", "style-src", "connect-src"] {
        assert!(
            allows_own(csp, kind),
            "{csp} does not allow the page's own {kind}"
        );
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    let html = String::from_utf8(page.body.to_vec()).unwrap();
    assert!(html.contains("/api/docs/swagger-ui-bundle.js"));
    for asset in &gateway::openapi::docs::ASSETS {
        // The script is larger than the support's reply limit.
        let response = gateway::app(gateway.state.clone())
            .oneshot(get(&format!("/api/docs/{}", asset.name)))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{}", asset.name);
        assert_eq!(response.headers()["content-type"], asset.content_type);
        let body = axum::body::to_bytes(response.into_body(), 8 << 20)
            .await
            .unwrap();
        assert_eq!(body, asset.bytes);
    }
    let missing = gateway.send(get("/api/docs/nothing.js")).await;
    missing.problem(404);
}

/// Whether a Content-Security-Policy lets a page use its own origin for `kind` (`script-src`,
/// ...), by that directive or, when it is absent, by `default-src`.
fn allows_own(csp: &str, kind: &str) -> bool {
    let directive = |name: &str| {
        csp.split(';')
            .map(str::trim)
            .find(|d| d.split_whitespace().next() == Some(name))
            .map(|d| {
                d.split_whitespace()
                    .skip(1)
                    .any(|source| source == "'self'")
            })
    };
    directive(kind)
        .or_else(|| directive("default-src"))
        .unwrap_or(false)
}

/// Every `$ref` in `value`.
fn references<'a>(value: &'a Value, found: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                match (key.as_str(), inner) {
                    ("$ref", Value::String(target)) => found.push(target),
                    _ => references(inner, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| references(v, found)),
        _ => {}
    }
}

#[test]
fn the_document_is_openapi_3_1_and_its_references_resolve() {
    let document = document();
    assert_eq!(document["openapi"], "3.1.0");
    let mut found = Vec::new();
    references(&document, &mut found);
    assert!(found.len() > 50);
    for target in found {
        let pointer = target.strip_prefix('#').unwrap();
        assert!(
            document.pointer(pointer).is_some(),
            "{target} does not resolve"
        );
    }
}

#[test]
fn every_error_is_a_problem_document_and_every_guarded_operation_answers_401() {
    let document = document();
    let responses = &document["components"]["responses"];
    for (status, response) in responses.as_object().unwrap() {
        let content = response["content"].as_object().unwrap();
        assert_eq!(
            content.keys().collect::<Vec<_>>(),
            ["application/problem+json"],
            "{status}"
        );
    }
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let guarded = operation["security"]
                .as_array()
                .is_some_and(|s| !s.is_empty());
            if guarded {
                assert!(
                    operation["responses"].get("401").is_some(),
                    "{method} {path}"
                );
            }
            if path.starts_with("/api/") && !path.starts_with("/api/docs") {
                assert!(
                    guarded || path == "/api/openapi.json",
                    "{method} {path} is not guarded"
                );
            }
            for (status, response) in operation["responses"].as_object().unwrap() {
                if status.starts_with('4') || status.starts_with('5') {
                    let target = response["$ref"].as_str().unwrap_or_default();
                    assert!(
                        target.starts_with("#/components/responses/") || path == "/ready",
                        "{method} {path} {status}"
                    );
                }
            }
        }
    }
    let scheme = &document["components"]["securitySchemes"]["bearerAuth"];
    assert_eq!(scheme["scheme"], "bearer");
    assert_eq!(scheme["bearerFormat"], "JWT");
}

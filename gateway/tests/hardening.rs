//! HTTP hardening through the whole router: security headers on pages, API answers and errors;
//! CORS off by default and from an allowlist only; the request and body time limits; a panic
//! answered as a generic 500.

mod support;

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::routing::get;
use futures::StreamExt;
use gateway::config::HttpSettings;
use gateway::security_headers::{API_CSP, PAGE_CSP};
use shared_events::staff::StaffRole;
use support::{Reply, SLOW, TestGateway, authorized, get as get_request};
use tower::ServiceExt;

const LISTED: &str = "https://clinic.example.org";
const UNLISTED: &str = "https://evil.example.com";

fn assert_common_headers(reply: &Reply) {
    assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(reply.header("x-frame-options"), Some("DENY"));
    assert_eq!(reply.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(
        reply.header("cross-origin-opener-policy"),
        Some("same-origin")
    );
    assert!(reply.header("permissions-policy").is_some());
}

fn preflight(origin: &str) -> Request<Body> {
    Request::options("/api/patients")
        .header(header::ORIGIN, origin)
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .header(
            header::ACCESS_CONTROL_REQUEST_HEADERS,
            "authorization,content-type",
        )
        .body(Body::empty())
        .unwrap()
}

fn from_origin(origin: &str, token: &str) -> Request<Body> {
    let mut request = authorized("GET", "/api/patients", token, None);
    request
        .headers_mut()
        .insert(header::ORIGIN, origin.parse().unwrap());
    request
}

fn has_cors_headers(reply: &Reply) -> bool {
    reply
        .headers
        .keys()
        .any(|name| name.as_str().starts_with("access-control-allow-"))
}

#[tokio::test]
async fn pages_get_the_page_policy_and_everything_else_the_empty_one() {
    let gateway = TestGateway::without_services().await;

    for path in ["/", "/dashboard.html", "/dashboard"] {
        let page = gateway.send(get_request(path)).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert_eq!(page.header("content-security-policy"), Some(PAGE_CSP));
        assert_common_headers(&page);
    }

    let answer = gateway.send(get_request("/health")).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.header("content-security-policy"), Some(API_CSP));
    assert_common_headers(&answer);

    let unauthorized = gateway.send(get_request("/api/patients")).await;
    unauthorized.problem(401);
    assert_eq!(
        unauthorized.header("content-security-policy"),
        Some(API_CSP)
    );
    assert_eq!(unauthorized.header("cache-control"), Some("no-store"));
    assert_common_headers(&unauthorized);

    let missing = gateway.send(get_request("/no-such-page.html")).await;
    missing.problem(404);
    assert_eq!(missing.header("content-security-policy"), Some(API_CSP));
    assert_common_headers(&missing);

    // A reload revalidates the page: the 304 must carry the page policy too, since the
    // browser keeps the headers of the 304 with the cached page.
    let first = gateway.send(get_request("/dashboard.html")).await;
    let modified = first
        .header("last-modified")
        .expect("a Last-Modified")
        .to_owned();
    let revalidated = gateway
        .send(
            Request::get("/dashboard.html")
                .header(header::IF_MODIFIED_SINCE, modified)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(revalidated.status, StatusCode::NOT_MODIFIED);
    assert_eq!(
        revalidated.header("content-security-policy"),
        Some(PAGE_CSP)
    );

    let script = gateway.send(get_request("/dashboard.js")).await;
    assert_eq!(script.status, StatusCode::OK);
    assert_eq!(script.header("content-security-policy"), Some(API_CSP));
}

#[tokio::test]
async fn without_an_allowlist_cors_is_off() {
    let gateway = TestGateway::without_services().await;
    let reply = gateway.send(preflight(LISTED)).await;
    let problem = reply.problem(403);
    assert!(problem["detail"].as_str().unwrap().contains("origin"));
    assert!(!has_cors_headers(&reply), "{reply:?}");
    assert_common_headers(&reply);

    let token = gateway.token(StaffRole::Admin);
    let reply = gateway.send(from_origin(LISTED, &token)).await;
    assert!(!has_cors_headers(&reply), "{reply:?}");
}

#[tokio::test]
async fn a_listed_origin_may_call_and_an_unlisted_one_is_refused() {
    let settings = HttpSettings {
        cors_origins: vec![LISTED.into()],
        ..HttpSettings::default()
    };
    let gateway = TestGateway::with_http(settings, Duration::from_secs(5)).await;

    let allowed = gateway.send(preflight(LISTED)).await;
    assert!(allowed.status.is_success(), "{allowed:?}");
    assert_eq!(allowed.header("access-control-allow-origin"), Some(LISTED));
    let methods = allowed.header("access-control-allow-methods").unwrap();
    assert!(
        methods.contains("POST") && methods.contains("PUT"),
        "{methods}"
    );
    let headers = allowed.header("access-control-allow-headers").unwrap();
    assert!(
        headers.contains("authorization") && headers.contains("content-type"),
        "{headers}"
    );
    // A bearer token, never cookies: no credentials.
    assert!(allowed.header("access-control-allow-credentials").is_none());

    let refused = gateway.send(preflight(UNLISTED)).await;
    refused.problem(403);
    assert!(!has_cors_headers(&refused), "{refused:?}");

    let token = gateway.token(StaffRole::Admin);
    let reply = gateway.send(from_origin(LISTED, &token)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("access-control-allow-origin"), Some(LISTED));
    let exposed = reply.header("access-control-expose-headers").unwrap();
    assert!(
        exposed.contains("link") && exposed.contains("etag"),
        "{exposed}"
    );

    let reply = gateway.send(from_origin(UNLISTED, &token)).await;
    assert!(reply.header("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn a_request_over_the_time_limit_is_a_503_problem() {
    // The stand-in takes 3 s on this id; NATS would wait 10 s; the HTTP limit is 1 s.
    let settings = HttpSettings {
        request_timeout: Duration::from_secs(1),
        body_timeout: Duration::from_millis(500),
        ..HttpSettings::default()
    };
    let gateway = TestGateway::with_http(settings, Duration::from_secs(10)).await;
    let token = gateway.token(StaffRole::Admin);
    let started = Instant::now();
    let reply = gateway
        .send(authorized(
            "GET",
            &format!("/api/patients/{SLOW}"),
            &token,
            None,
        ))
        .await;
    let problem = reply.problem(503);
    assert!(
        problem["detail"].as_str().unwrap().contains("took longer"),
        "{problem}"
    );
    assert_common_headers(&reply);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(1) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_is_a_408_problem() {
    let settings = HttpSettings {
        request_timeout: Duration::from_secs(30),
        body_timeout: Duration::from_millis(200),
        ..HttpSettings::default()
    };
    let gateway = TestGateway::with_http(settings, Duration::from_secs(5)).await;
    // A client that sends the start of its body and then nothing more.
    let chunks = futures::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from_static(
        b"{\"username\": ",
    ))])
    .chain(futures::stream::pending());
    let request = Request::post("/auth/login")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(chunks))
        .unwrap();
    let reply = gateway.send(request).await;
    let problem = reply.problem(408);
    assert_eq!(
        problem["detail"],
        "the request body was not received in time"
    );
}

#[tokio::test]
async fn a_panic_is_a_generic_500_problem_with_the_security_headers() {
    async fn boom() -> &'static str {
        panic!("secret detail: /var/lib/hospital/patient.db");
    }
    let app = gateway::routes::protect(
        Router::new().route("/api/boom", get(boom)),
        &HttpSettings::default(),
    );
    let response = app.oneshot(get_request("/api/boom")).await.unwrap();
    let reply = Reply {
        status: response.status(),
        headers: response.headers().clone(),
        body: axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap(),
    };
    let problem = reply.problem(500);
    let text = String::from_utf8_lossy(&reply.body);
    assert!(
        !text.contains("secret") && !text.contains("/var/lib"),
        "{text}"
    );
    assert!(!problem["detail"].as_str().unwrap().contains("panic"));
    assert_common_headers(&reply);
    assert_eq!(reply.header("cache-control"), Some("no-store"));
}

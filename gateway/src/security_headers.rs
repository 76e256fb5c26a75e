//! The security headers every answer carries, in one place: what a browser may load, frame,
//! send as referrer or keep in its cache.
//!
//! Two content security policies: HTML pages may load their own scripts, styles and images and
//! call their own origin (`fetch` and the live feed); nothing else, no inline code, no `eval`.
//! Every other answer (JSON, problems, scripts, styles) gets a policy that allows nothing, so a
//! JSON answer opened as a document can never run anything.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

/// The pages' policy. The frontend has no inline scripts, styles or handlers and builds its DOM
/// without markup strings; the login form posts to `/auth/login` when JavaScript is off.
pub const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; font-src 'self'; manifest-src 'self'; \
     form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Everything that is not a page: nothing may load and nothing may frame it.
pub const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// No camera, microphone, location, payment, USB, sensors: the system needs none of them.
pub const PERMISSIONS_POLICY: &str = "accelerometer=(), camera=(), geolocation=(), gyroscope=(), \
     magnetometer=(), microphone=(), payment=(), usb=()";

const PERMISSIONS_POLICY_HEADER: HeaderName = HeaderName::from_static("permissions-policy");
const CROSS_ORIGIN_OPENER_POLICY: HeaderName =
    HeaderName::from_static("cross-origin-opener-policy");
const CROSS_ORIGIN_RESOURCE_POLICY: HeaderName =
    HeaderName::from_static("cross-origin-resource-policy");

/// The middleware: sets the headers on whatever the layers inside answered (a page, a file, an
/// API reply, a problem from a timeout or a panic, a CORS preflight).
pub async fn apply(request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let mut response = next.run(request).await;
    let status = response.status();
    set(response.headers_mut(), &path, status);
    response
}

/// Sets every security header on an answer to `path`.
pub fn set(headers: &mut HeaderMap, path: &str, status: StatusCode) {
    // A 304 carries no content type, yet the browser updates the cached page's headers with
    // its headers: a revalidated page must keep the page policy or a reload blocks its own
    // scripts and styles.
    let page = is_html(headers) || (status == StatusCode::NOT_MODIFIED && !is_api(path));
    let csp = if page { PAGE_CSP } else { API_CSP };
    let fixed = [
        (header::CONTENT_SECURITY_POLICY, csp),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        // For browsers older than `frame-ancestors`.
        (header::X_FRAME_OPTIONS, "DENY"),
        // URLs may hold a patient id or a search for a name: never tell another site.
        (header::REFERRER_POLICY, "no-referrer"),
        // No window of another origin keeps a handle on ours (and ours on theirs).
        (CROSS_ORIGIN_OPENER_POLICY, "same-origin"),
        // Other sites cannot embed our answers as images or scripts. CORS calls from the
        // allowlist are not affected: this applies to no-cors loads only.
        (CROSS_ORIGIN_RESOURCE_POLICY, "same-origin"),
        (PERMISSIONS_POLICY_HEADER, PERMISSIONS_POLICY),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if is_api(path) {
        // Patient data and tokens must not linger in browser or proxy caches.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

fn is_api(path: &str) -> bool {
    path.starts_with("/api/") || path.starts_with("/auth/")
}

fn is_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .eq_ignore_ascii_case("text/html")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers_for(content_type: &str, path: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(content_type).unwrap(),
        );
        set(&mut headers, path, StatusCode::OK);
        headers
    }

    #[test]
    fn a_page_may_load_only_its_own_files_and_call_its_own_origin() {
        let headers = headers_for("text/html; charset=utf-8", "/dashboard.html");
        let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert_eq!(csp, PAGE_CSP);
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "connect-src 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ] {
            assert!(csp.contains(directive), "{directive} missing from {csp}");
        }
        // No escape hatches for inline code or eval.
        assert!(!csp.contains("unsafe"), "{csp}");
        assert!(headers.get(header::CACHE_CONTROL).is_none());
    }

    #[test]
    fn anything_else_gets_the_policy_that_allows_nothing() {
        for (content_type, path) in [
            ("application/json", "/api/patients"),
            ("application/problem+json", "/nope"),
            ("text/javascript", "/dashboard.js"),
            ("text/event-stream", "/api/events/stream"),
        ] {
            let headers = headers_for(content_type, path);
            assert_eq!(headers[header::CONTENT_SECURITY_POLICY], API_CSP, "{path}");
        }
        let mut bare = HeaderMap::new();
        set(&mut bare, "/api/patients/1", StatusCode::OK);
        assert_eq!(bare[header::CONTENT_SECURITY_POLICY], API_CSP);
    }

    #[test]
    fn a_revalidated_page_keeps_the_page_policy() {
        // 304s have no content type; the browser merges their headers into the cached page.
        for path in ["/dashboard.html", "/", "/dashboard"] {
            let mut headers = HeaderMap::new();
            set(&mut headers, path, StatusCode::NOT_MODIFIED);
            assert_eq!(headers[header::CONTENT_SECURITY_POLICY], PAGE_CSP, "{path}");
        }
        let mut api = HeaderMap::new();
        set(&mut api, "/api/patients/1", StatusCode::NOT_MODIFIED);
        assert_eq!(api[header::CONTENT_SECURITY_POLICY], API_CSP);
    }

    #[test]
    fn every_answer_refuses_framing_sniffing_and_referrers() {
        for (content_type, path) in [
            ("text/html", "/"),
            ("application/json", "/api/staff"),
            ("text/css", "/app.css"),
        ] {
            let headers = headers_for(content_type, path);
            assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
            assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
            assert_eq!(headers[header::REFERRER_POLICY], "no-referrer");
            assert_eq!(headers["cross-origin-opener-policy"], "same-origin");
            assert_eq!(headers["cross-origin-resource-policy"], "same-origin");
            assert!(
                headers["permissions-policy"]
                    .to_str()
                    .unwrap()
                    .contains("camera=()")
            );
        }
    }

    #[test]
    fn api_and_auth_answers_are_never_cached() {
        for path in ["/api/patients", "/auth/login", "/api/events/stream"] {
            let headers = headers_for("application/json", path);
            assert_eq!(headers[header::CACHE_CONTROL], "no-store", "{path}");
        }
        let page = headers_for("text/html", "/login.html");
        assert!(page.get(header::CACHE_CONTROL).is_none());
    }
}

//! `GET /api/docs`: the API reference page, Swagger UI on `/api/openapi.json`. Its files are
//! compiled into the binary (`gateway/assets/docs/`, see the README there for their origin and
//! licence): clinics run the system offline, so nothing may come from a CDN. The page has no
//! inline script or style, so it works under the pages' Content-Security-Policy.

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// Where the page is served; its files are below it.
pub const PAGE_PATH: &str = "/api/docs";

/// A file of the page.
#[derive(Debug)]
pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $content_type:literal) => {
        Asset {
            name: $name,
            content_type: $content_type,
            bytes: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/docs/", $name)),
        }
    };
}

/// The page's files, served at `/api/docs/<name>`.
pub static ASSETS: [Asset; 5] = [
    asset!("swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
    asset!("swagger-ui.css", "text/css; charset=utf-8"),
    asset!("docs.js", "text/javascript; charset=utf-8"),
    asset!("docs.css", "text/css; charset=utf-8"),
    asset!("LICENSE", "text/plain; charset=utf-8"),
];

const PAGE: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/assets/docs/docs.html"
));

/// `GET /api/docs`.
pub async fn page() -> Response {
    file("text/html; charset=utf-8", PAGE)
}

/// `GET /api/docs/{file}`.
pub async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|asset| asset.name == name) {
        Some(asset) => file(asset.content_type, asset.bytes),
        None => ApiError::no_such_path().into_response(),
    }
}

fn file(content_type: &'static str, bytes: &'static [u8]) -> Response {
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        bytes,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_only_its_own_files_and_no_inline_code() {
        let page = std::str::from_utf8(PAGE).unwrap();
        assert!(!page.contains("<style"), "inline style");
        assert!(!page.contains("style="), "inline style attribute");
        assert!(!page.contains("<script>"), "inline script");
        for reference in page.split(['"', '\'']).filter(|s| s.starts_with('/')) {
            let served = reference == crate::openapi::DOCUMENT_PATH
                || ASSETS
                    .iter()
                    .any(|a| reference == format!("{PAGE_PATH}/{}", a.name));
            assert!(served, "{reference} is not served");
        }
        assert!(!page.contains("http://") && !page.contains("https://"));
    }
}

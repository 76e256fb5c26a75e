//! List queries (`?q=&limit=&after=`) and the `Link: rel="next"` header of a page.

use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use axum::http::HeaderValue;
use serde::Deserialize;
use shared_events::ListQuery;
use uuid::Uuid;

use crate::error::ApiError;

/// The query string of a list route, as sent; [`list_query`] checks it.
#[derive(Debug, Default, Deserialize)]
pub struct ListParams {
    q: Option<String>,
    limit: Option<String>,
    after: Option<String>,
}

/// The list command for a query string: `limit` a whole number of at least 1 (larger than
/// the maximum is clamped), `after` an id. Empty values count as absent.
pub fn list_query(
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<ListQuery, ApiError> {
    let Query(params) =
        params.map_err(|_| ApiError::bad_request("the query string could not be read"))?;
    let present = |value: Option<String>| value.filter(|v| !v.trim().is_empty());
    let limit = match present(params.limit) {
        None => None,
        Some(raw) => Some(parse_limit(raw.trim())?),
    };
    let after = match present(params.after) {
        None => None,
        Some(raw) => Some(Uuid::try_parse(raw.trim()).map_err(|_| {
            ApiError::bad_request("after must be an id from a previous page's Link header")
        })?),
    };
    Ok(ListQuery {
        q: present(params.q).map(|q| q.trim().to_owned()),
        limit,
        after,
        ..Default::default()
    })
}

fn parse_limit(raw: &str) -> Result<u32, ApiError> {
    let refuse = || ApiError::bad_request("limit must be a whole number of at least 1");
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(refuse());
    }
    // A huge number of digits is still just "as many as allowed".
    let limit = raw.parse::<u64>().unwrap_or(u64::MAX);
    if limit == 0 {
        return Err(refuse());
    }
    Ok(limit.min(u64::from(ListQuery::MAX_LIMIT)) as u32)
}

/// `</api/<path>?limit=N&after=ID&q=...>; rel="next"`: the same query, one page further.
pub fn next_link(path: &str, query: &ListQuery, next_after: Uuid) -> Option<HeaderValue> {
    let mut pairs = vec![
        ("limit", query.effective_limit().to_string()),
        ("after", next_after.to_string()),
    ];
    if let Some(q) = &query.q {
        pairs.push(("q", q.clone()));
    }
    let encoded = serde_urlencoded::to_string(&pairs).ok()?;
    HeaderValue::from_str(&format!("</api/{path}?{encoded}>; rel=\"next\"")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    fn parse(query: &str) -> Result<ListQuery, ApiError> {
        let uri: axum::http::Uri = format!("/api/patients?{query}").parse().unwrap();
        list_query(Query::try_from_uri(&uri))
    }

    #[test]
    fn an_empty_query_lists_with_the_defaults() {
        assert_eq!(parse("").unwrap(), ListQuery::default());
        assert_eq!(parse("q=&limit=&after=").unwrap(), ListQuery::default());
    }

    #[test]
    fn the_query_parameters_are_read() {
        let id = Uuid::now_v7();
        let query = parse(&format!("q=Ada+Love&limit=20&after={id}")).unwrap();
        assert_eq!(query.q.as_deref(), Some("Ada Love"));
        assert_eq!(query.limit, Some(20));
        assert_eq!(query.after, Some(id));
    }

    #[test]
    fn a_large_limit_is_clamped_to_the_maximum() {
        assert_eq!(parse("limit=10000").unwrap().limit, Some(500));
        assert_eq!(
            parse("limit=99999999999999999999999").unwrap().limit,
            Some(500)
        );
    }

    #[test]
    fn a_bad_limit_or_after_is_a_bad_request() {
        for bad in [
            "limit=0",
            "limit=-1",
            "limit=abc",
            "limit=1.5",
            "after=42",
            "after=x",
        ] {
            let error = parse(bad).unwrap_err();
            assert_eq!(error.status(), StatusCode::BAD_REQUEST, "{bad}");
        }
    }

    #[test]
    fn the_next_link_repeats_the_query_one_page_further() {
        let after = Uuid::nil();
        let query = ListQuery {
            q: Some("Ada & <Bob>".into()),
            limit: Some(20),
            after: None,
            ..Default::default()
        };
        let link = next_link("patients", &query, after).unwrap();
        assert_eq!(
            link,
            "</api/patients?limit=20&after=00000000-0000-0000-0000-000000000000&q=Ada+%26+%3CBob%3E>; rel=\"next\""
        );
    }

    #[test]
    fn the_next_link_omits_q_when_absent_and_names_the_default_limit() {
        let link = next_link("staff", &ListQuery::default(), Uuid::nil()).unwrap();
        assert_eq!(
            link,
            "</api/staff?limit=50&after=00000000-0000-0000-0000-000000000000>; rel=\"next\""
        );
    }
}

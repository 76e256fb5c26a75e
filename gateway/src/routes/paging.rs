//! List queries (`?q=&limit=&after=` and the owning service's filters) and the
//! `Link: rel="next"` header of a page.

use std::collections::BTreeMap;

use axum::http::HeaderValue;
use shared_events::ListQuery;
use uuid::Uuid;

use crate::error::ApiError;

/// Most filter parameters (every parameter but `q`, `limit` and `after`) one list accepts.
pub const MAX_FILTERS: usize = 16;
/// Longest filter name, in characters.
pub const MAX_FILTER_NAME_CHARS: usize = 64;
/// Longest filter value, in characters.
pub const MAX_FILTER_VALUE_CHARS: usize = 256;

/// The list command for a raw query string: `limit` a whole number of at least 1 (larger than
/// the maximum is clamped), `after` an id; empty `q`, `limit` or `after` count as absent.
/// Every other parameter is a filter, passed on as sent for the owning service to check: each
/// named once, with a value, within [`MAX_FILTERS`] and the length limits.
pub fn list_query(raw: Option<&str>) -> Result<ListQuery, ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or_default())
        .map_err(|_| ApiError::bad_request("the query string could not be read"))?;
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in pairs {
        if seen.contains_key(&name) {
            return Err(ApiError::bad_request(format!(
                "query parameter {} is given more than once",
                shown(&name)
            )));
        }
        seen.insert(name, value);
    }
    let present = |value: Option<String>| value.filter(|v| !v.trim().is_empty());
    let q = present(seen.remove("q")).map(|q| q.trim().to_owned());
    let limit = match present(seen.remove("limit")) {
        None => None,
        Some(raw) => Some(parse_limit(raw.trim())?),
    };
    let after = match present(seen.remove("after")) {
        None => None,
        Some(raw) => Some(Uuid::try_parse(raw.trim()).map_err(|_| {
            ApiError::bad_request("after must be an id from a previous page's Link header")
        })?),
    };
    let filters = seen;
    check_filters(&filters)?;
    Ok(ListQuery {
        q,
        limit,
        after,
        filters,
    })
}

/// The gateway's bounds on filters; what they mean is the owning service's business.
fn check_filters(filters: &BTreeMap<String, String>) -> Result<(), ApiError> {
    if filters.len() > MAX_FILTERS {
        return Err(ApiError::bad_request(format!(
            "at most {MAX_FILTERS} filter parameters are accepted"
        )));
    }
    for (name, value) in filters {
        if name.is_empty() {
            return Err(ApiError::bad_request("a query parameter has no name"));
        }
        if name.chars().count() > MAX_FILTER_NAME_CHARS {
            return Err(ApiError::bad_request(format!(
                "query parameter names are at most {MAX_FILTER_NAME_CHARS} characters"
            )));
        }
        if value.is_empty() {
            return Err(ApiError::bad_request(format!(
                "query parameter {name} has no value"
            )));
        }
        if value.chars().count() > MAX_FILTER_VALUE_CHARS {
            return Err(ApiError::bad_request(format!(
                "query parameter {name} is longer than {MAX_FILTER_VALUE_CHARS} characters"
            )));
        }
    }
    Ok(())
}

/// A parameter name as quoted in a message: cut short, so a client cannot make us echo a
/// megabyte back.
fn shown(name: &str) -> String {
    if name.chars().count() <= MAX_FILTER_NAME_CHARS {
        name.to_owned()
    } else {
        let cut: String = name.chars().take(MAX_FILTER_NAME_CHARS).collect();
        format!("{cut}...")
    }
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

/// `</api/<path>?limit=N&after=ID&q=...&<filters>>; rel="next"`: the same query, one page
/// further. `path` is relative to `/api` (`patients`, `patients/<id>/appointments`); the
/// filters follow in name order, so a client keeps them by following the link.
pub fn next_link(path: &str, query: &ListQuery, next_after: Uuid) -> Option<HeaderValue> {
    let mut pairs: Vec<(&str, String)> = vec![
        ("limit", query.effective_limit().to_string()),
        ("after", next_after.to_string()),
    ];
    if let Some(q) = &query.q {
        pairs.push(("q", q.clone()));
    }
    // A BTreeMap iterates in name order.
    pairs.extend(
        query
            .filters
            .iter()
            .map(|(name, value)| (name.as_str(), value.clone())),
    );
    let encoded = serde_urlencoded::to_string(&pairs).ok()?;
    HeaderValue::from_str(&format!("</api/{path}?{encoded}>; rel=\"next\"")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    fn parse(query: &str) -> Result<ListQuery, ApiError> {
        list_query(Some(query))
    }

    fn filters(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|&(name, value)| (name.to_owned(), value.to_owned()))
            .collect()
    }

    #[test]
    fn an_empty_query_lists_with_the_defaults() {
        assert_eq!(list_query(None).unwrap(), ListQuery::default());
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
        assert!(query.filters.is_empty());
    }

    #[test]
    fn every_other_parameter_is_a_filter_passed_on_as_sent() {
        let query =
            parse("status=booked&limit=5&from=2025-01-02T09%3A00%3A00Z&Kind=%20x%20").unwrap();
        assert_eq!(query.limit, Some(5));
        assert_eq!(
            query.filters,
            filters(&[
                ("status", "booked"),
                ("from", "2025-01-02T09:00:00Z"),
                ("Kind", " x "),
            ])
        );
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
    fn bad_filter_parameters_are_a_bad_request() {
        let many: Vec<String> = (0..=MAX_FILTERS).map(|i| format!("f{i}=x")).collect();
        let long_name = format!("{}=x", "n".repeat(MAX_FILTER_NAME_CHARS + 1));
        let long_value = format!("status={}", "v".repeat(MAX_FILTER_VALUE_CHARS + 1));
        for bad in [
            "status=booked&status=cancelled",
            "q=a&q=b",
            "limit=1&limit=1",
            "status=",
            "status",
            "=booked",
            &many.join("&"),
            &long_name,
            &long_value,
        ] {
            let error = parse(bad).unwrap_err();
            assert_eq!(error.status(), StatusCode::BAD_REQUEST, "{bad}");
        }
    }

    #[test]
    fn filters_at_the_limits_are_accepted() {
        let most: Vec<String> = (0..MAX_FILTERS).map(|i| format!("f{i}=x")).collect();
        assert_eq!(parse(&most.join("&")).unwrap().filters.len(), MAX_FILTERS);
        // Characters, not bytes: 256 two-byte characters fit.
        let name = "é".repeat(MAX_FILTER_NAME_CHARS);
        let value = "ü".repeat(MAX_FILTER_VALUE_CHARS);
        let query = serde_urlencoded::to_string([(&name, &value)]).unwrap();
        assert_eq!(parse(&query).unwrap().filters[&name], value);
    }

    #[test]
    fn a_repeated_name_is_quoted_but_cut_short() {
        let name = "n".repeat(1000);
        let error = parse(&format!("{name}=1&{name}=2")).unwrap_err();
        assert!(error.detail().len() < 200, "{}", error.detail());
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

    #[test]
    fn the_next_link_keeps_the_filters_sorted_and_encoded() {
        let query = ListQuery {
            limit: Some(10),
            filters: filters(&[
                ("status", "booked"),
                ("from", "2025-01-02T09:00:00+01:00"),
                ("note", "a&b=c d"),
            ]),
            ..Default::default()
        };
        let link = next_link("appointments", &query, Uuid::nil()).unwrap();
        assert_eq!(
            link,
            "</api/appointments?limit=10&after=00000000-0000-0000-0000-000000000000\
             &from=2025-01-02T09%3A00%3A00%2B01%3A00&note=a%26b%3Dc+d&status=booked>; rel=\"next\""
        );
        // Following the link gives back the same query, one page further.
        let uri = link.to_str().unwrap();
        let raw = &uri[uri.find('?').unwrap() + 1..uri.find('>').unwrap()];
        let again = list_query(Some(raw)).unwrap();
        assert_eq!(again.filters, query.filters);
        assert_eq!(again.after, Some(Uuid::nil()));
    }
}

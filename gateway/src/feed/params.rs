//! What a client asks of `GET /api/events/stream`: which aggregates (`?aggregates=`), and where
//! to resume (`Last-Event-ID` or `?after=`). Everything is checked before NATS is touched, so a
//! bad request is a 400 whatever the state of the bus.

use axum::http::{HeaderMap, HeaderName};
use shared_events::Aggregate;

use super::access::{AGGREGATES, aggregate_named};
use crate::error::ApiError;

/// The header a reconnecting SSE client sends with the `id` of the last message it received.
pub const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");

/// A checked feed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedRequest {
    /// The aggregates asked for, each once, in the order asked; every aggregate when the query
    /// names none.
    pub aggregates: Vec<Aggregate>,
    /// Resume after this stream sequence; `None`: only events published from now on.
    pub after: Option<u64>,
}

/// Reads the query string and the `Last-Event-ID` header.
pub fn parse(query: Option<&str>, headers: &HeaderMap) -> Result<FeedRequest, ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or_default())
        .map_err(|_| ApiError::bad_request("the query string is malformed"))?;
    let mut aggregates = None;
    let mut after = None;
    for (name, value) in pairs {
        let slot = match name.as_str() {
            "aggregates" => &mut aggregates,
            "after" => &mut after,
            // A misspelt parameter would otherwise silently widen the feed to everything.
            _ => {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter {name:?}; this feed takes aggregates and after"
                )));
            }
        };
        if slot.replace(value).is_some() {
            return Err(ApiError::bad_request(format!(
                "the query parameter {name} is given more than once"
            )));
        }
    }
    let aggregates = match aggregates {
        Some(list) => parse_aggregates(&list)?,
        None => AGGREGATES.to_vec(),
    };
    let after = resume_point(
        last_event_id(headers)?,
        after.map(|v| parse_sequence(&v, "after")).transpose()?,
    )?;
    Ok(FeedRequest { aggregates, after })
}

/// `patient,appointment`: known aggregate names, comma-separated; repeats count once.
pub fn parse_aggregates(list: &str) -> Result<Vec<Aggregate>, ApiError> {
    let mut aggregates = Vec::new();
    for name in list.split(',').map(str::trim) {
        let aggregate = aggregate_named(name).ok_or_else(|| {
            let known: Vec<&str> = AGGREGATES.iter().map(|a| a.as_str()).collect();
            ApiError::bad_request(format!(
                "unknown aggregate {name:?} in aggregates; known: {}",
                known.join(", ")
            ))
        })?;
        if !aggregates.contains(&aggregate) {
            aggregates.push(aggregate);
        }
    }
    Ok(aggregates)
}

/// A stream sequence: decimal digits only (no sign, no spaces inside), fitting in 64 bits.
pub fn parse_sequence(text: &str, what: &str) -> Result<u64, ApiError> {
    let text = text.trim();
    let digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    digits.then(|| text.parse().ok()).flatten().ok_or_else(|| {
        ApiError::bad_request(format!(
            "{what} must be an event id (a stream sequence number)"
        ))
    })
}

fn last_event_id(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let mut values = headers.get_all(LAST_EVENT_ID).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApiError::bad_request(
            "Last-Event-ID is given more than once",
        ));
    }
    let text = value.to_str().unwrap_or("\u{0}");
    parse_sequence(text, "Last-Event-ID").map(Some)
}

/// Both ways of saying where to resume may be used, but they must agree.
fn resume_point(header: Option<u64>, query: Option<u64>) -> Result<Option<u64>, ApiError> {
    match (header, query) {
        (Some(h), Some(q)) if h != q => Err(ApiError::bad_request(
            "Last-Event-ID and ?after= name different events; give one of them",
        )),
        (header, query) => Ok(header.or(query)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use axum::http::StatusCode;

    fn headers(last_event_ids: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for id in last_event_ids {
            map.append(LAST_EVENT_ID, HeaderValue::from_str(id).unwrap());
        }
        map
    }

    fn parsed(query: Option<&str>, ids: &[&str]) -> Result<FeedRequest, ApiError> {
        parse(query, &headers(ids))
    }

    fn detail(query: Option<&str>, ids: &[&str]) -> String {
        let error = parsed(query, ids).unwrap_err();
        assert_eq!(error.status(), StatusCode::BAD_REQUEST, "{error}");
        error.detail().to_owned()
    }

    #[test]
    fn no_parameters_mean_every_aggregate_from_now_on() {
        let request = parsed(None, &[]).unwrap();
        assert_eq!(request.aggregates, AGGREGATES);
        assert_eq!(request.after, None);
        assert_eq!(parsed(Some(""), &[]).unwrap(), request);
    }

    #[test]
    fn aggregates_are_read_trimmed_in_order_and_once() {
        let request = parsed(Some("aggregates=record,%20patient,record"), &[]).unwrap();
        assert_eq!(
            request.aggregates,
            [Aggregate::Record, Aggregate::Patient],
            "{request:?}"
        );
    }

    #[test]
    fn unknown_or_empty_aggregate_names_are_refused() {
        for query in [
            "aggregates=bogus",
            "aggregates=patients",
            "aggregates=Patient",
            "aggregates=",
            "aggregates=patient,,staff",
            "aggregates=patient,",
        ] {
            let text = detail(Some(query), &[]);
            assert!(text.contains("aggregate"), "{query}: {text}");
        }
    }

    #[test]
    fn the_resume_point_comes_from_the_header_or_the_query() {
        assert_eq!(parsed(None, &["41"]).unwrap().after, Some(41));
        assert_eq!(parsed(None, &[" 7 "]).unwrap().after, Some(7));
        assert_eq!(parsed(Some("after=0"), &[]).unwrap().after, Some(0));
        assert_eq!(parsed(Some("after=9"), &["9"]).unwrap().after, Some(9));
    }

    #[test]
    fn malformed_resume_points_are_refused() {
        for id in ["", "-1", "+1", "1.5", "abc", "1 2", "18446744073709551616"] {
            assert!(detail(None, &[id]).contains("Last-Event-ID"), "{id:?}");
            let query = format!("after={}", id.replace('+', "%2B").replace(' ', "%20"));
            assert!(detail(Some(&query), &[]).contains("after"), "{id:?}");
        }
        assert!(detail(None, &["1", "2"]).contains("more than once"));
        assert!(detail(Some("after=3"), &["4"]).contains("different"));
    }

    #[test]
    fn unknown_and_repeated_parameters_are_refused() {
        assert!(detail(Some("aggregate=patient"), &[]).contains("unknown query parameter"));
        assert!(detail(Some("after=1&after=1"), &[]).contains("more than once"));
        assert!(detail(Some("aggregates=staff&aggregates=record"), &[]).contains("more than once"));
    }

    #[test]
    fn sequences_are_plain_decimal_numbers() {
        assert_eq!(
            parse_sequence("18446744073709551615", "x").unwrap(),
            u64::MAX
        );
        assert_eq!(parse_sequence("007", "x").unwrap(), 7);
        assert!(parse_sequence("0x10", "x").is_err());
    }
}

//! The filters of the appointment list, read from `ListQuery.filters`: by patient, by doctor,
//! by status, by time (`from ≤ start < to`) or by UTC day (`date`).

use chrono::{DateTime, Duration, NaiveDate, Utc};
use shared_events::appointment::AppointmentStatus;
use shared_events::{ListQuery, ServiceError};
use uuid::Uuid;

use crate::domain::parse_start;

/// Every filter the list knows; any other is refused.
pub const FILTERS: [&str; 6] = ["patient_id", "doctor_id", "status", "from", "to", "date"];

/// A validated list filter. Empty values count as absent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AppointmentFilter {
    pub patient_id: Option<Uuid>,
    pub doctor_id: Option<Uuid>,
    pub status: Option<AppointmentStatus>,
    /// Appointments starting at or after this.
    pub from: Option<DateTime<Utc>>,
    /// Appointments starting before this.
    pub to: Option<DateTime<Utc>>,
}

impl AppointmentFilter {
    /// Reads the filters of `query`: unknown filters, a search (`q`) and malformed values are
    /// a 400 naming them.
    pub fn parse(query: &ListQuery) -> Result<Self, ServiceError> {
        kit::listing::refuse_unknown_filters(query, &FILTERS)?;
        if query.q.as_deref().is_some_and(|q| !q.trim().is_empty()) {
            return Err(ServiceError::bad_request(
                "appointments cannot be searched with q; filter by patient_id, doctor_id, status, from, to or date",
            ));
        }
        let value = |name: &str| {
            query
                .filters
                .get(name)
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
        };
        let id = |name: &str| {
            value(name)
                .map(|v| Uuid::try_parse(v).map_err(|_| refuse(name, "an id")))
                .transpose()
        };
        let time = |name: &str| {
            value(name)
                .map(|v| {
                    parse_start(v).map_err(|_| {
                        refuse(
                            name,
                            "a date and time in RFC 3339, such as 2026-12-01T09:00:00Z",
                        )
                    })
                })
                .transpose()
        };
        let status = value("status")
            .map(|v| {
                AppointmentStatus::parse(v).ok_or_else(|| {
                    refuse(
                        "status",
                        "one of booked, checked_in, fulfilled, cancelled, noshow",
                    )
                })
            })
            .transpose()?;
        let day = value("date")
            .map(|v| parse_day(v).ok_or_else(|| refuse("date", "a date as YYYY-MM-DD")))
            .transpose()?;
        let mut filter = AppointmentFilter {
            patient_id: id("patient_id")?,
            doctor_id: id("doctor_id")?,
            status,
            from: time("from")?,
            to: time("to")?,
        };
        if let Some((midnight, next_midnight)) = day {
            // A day together with from/to narrows to both.
            filter.from = filter.from.max(Some(midnight));
            filter.to = Some(filter.to.map_or(next_midnight, |to| to.min(next_midnight)));
        }
        Ok(filter)
    }
}

/// A UTC day as its first moment and the first moment of the next day.
fn parse_day(text: &str) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let well_formed = text.len() == 10
        && text.chars().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                c == '-'
            } else {
                c.is_ascii_digit()
            }
        });
    if !well_formed {
        return None;
    }
    let midnight = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()?
        .and_hms_opt(0, 0, 0)?
        .and_utc();
    Some((midnight, midnight + Duration::days(1)))
}

fn refuse(filter: &str, what: &str) -> ServiceError {
    ServiceError::bad_request(format!("the filter {filter} must be {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn query(pairs: &[(&str, &str)]) -> ListQuery {
        ListQuery {
            filters: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        }
    }

    fn utc(day: u32, hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, day, hour, 0, 0).unwrap()
    }

    #[test]
    fn every_filter_is_read() {
        let patient = Uuid::now_v7();
        let filter = AppointmentFilter::parse(&query(&[
            ("patient_id", &patient.to_string()),
            ("status", "checked_in"),
            ("from", "2026-12-01T10:00:00+01:00"),
            ("to", "2026-12-02T00:00:00Z"),
            ("doctor_id", ""),
        ]))
        .unwrap();
        assert_eq!(
            filter,
            AppointmentFilter {
                patient_id: Some(patient),
                doctor_id: None,
                status: Some(AppointmentStatus::CheckedIn),
                from: Some(utc(1, 9)),
                to: Some(utc(2, 0)),
            }
        );
        assert_eq!(
            AppointmentFilter::parse(&ListQuery::default()).unwrap(),
            AppointmentFilter::default()
        );
    }

    #[test]
    fn a_date_is_the_utc_day_and_narrows_from_and_to() {
        let day = AppointmentFilter::parse(&query(&[("date", "2026-12-01")])).unwrap();
        assert_eq!((day.from, day.to), (Some(utc(1, 0)), Some(utc(2, 0))));
        let narrowed = AppointmentFilter::parse(&query(&[
            ("date", "2026-12-01"),
            ("from", "2026-12-01T08:00:00Z"),
            ("to", "2026-12-05T00:00:00Z"),
        ]))
        .unwrap();
        assert_eq!(
            (narrowed.from, narrowed.to),
            (Some(utc(1, 8)), Some(utc(2, 0)))
        );
    }

    #[test]
    fn unknown_or_malformed_filters_are_a_bad_request_naming_them() {
        let cases: [(&[(&str, &str)], &str); 8] = [
            (&[("room", "4")], "room"),
            (&[("patient_id", "7")], "patient_id"),
            (&[("doctor_id", "dr-who")], "doctor_id"),
            (&[("status", "done")], "status"),
            (&[("from", "yesterday")], "from"),
            (&[("to", "2026-12-01T09:00:00")], "to"),
            (&[("date", "2026-2-1")], "date"),
            (&[("date", "2026-02-30")], "date"),
        ];
        for (pairs, named) in cases {
            let error = AppointmentFilter::parse(&query(pairs)).unwrap_err();
            assert_eq!(error.code.http_status(), 400, "{pairs:?}");
            assert!(
                error.message.contains(named),
                "{pairs:?}: {}",
                error.message
            );
        }
        let search = ListQuery {
            q: Some("ada".into()),
            ..Default::default()
        };
        assert_eq!(
            AppointmentFilter::parse(&search)
                .unwrap_err()
                .code
                .http_status(),
            400
        );
    }
}

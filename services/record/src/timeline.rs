//! Lists of records: a patient's timeline, newest first, paged. The order is
//! `recorded_at DESC, id DESC`, and the cursor `after` is the last record id of the previous
//! page, so a page is one index range however long the timeline is.

use shared_events::ListQuery;
use shared_events::ServiceError;
use shared_events::record::{RecordKind, RecordStatus};
use sqlx::{Postgres, QueryBuilder, Sqlite};
use uuid::Uuid;

/// The filters a list understands; any other is refused (a typo must not widen a list).
pub const FILTERS: [&str; 4] = ["patient_id", "kind", "status", "appointment_id"];

/// Which records a list shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecordFilter {
    pub patient_id: Option<Uuid>,
    pub kind: Option<RecordKind>,
    /// `None` shows every status (`status=all`). The default is active records only.
    pub status: Option<RecordStatus>,
    pub appointment_id: Option<Uuid>,
}

impl RecordFilter {
    /// Reads the filters of a list query; unknown or malformed ones are a 400.
    pub fn from_query(query: &ListQuery) -> Result<Self, ServiceError> {
        kit::listing::refuse_unknown_filters(query, &FILTERS)?;
        if query.q.is_some() {
            return Err(ServiceError::bad_request(
                "records have no text search; filter by patient_id, kind, status or appointment_id",
            ));
        }
        let filter = |name: &str| query.filters.get(name).map(|v| v.trim());
        let id = |name: &str| {
            filter(name)
                .map(|text| {
                    text.parse::<Uuid>()
                        .map_err(|_| ServiceError::bad_request(format!("{name} must be a UUID")))
                })
                .transpose()
        };
        let kind = filter("kind")
            .map(|text| {
                RecordKind::parse(text).ok_or_else(|| {
                    ServiceError::bad_request(
                        "kind must be one of note, diagnosis, vitals, prescription, allergy",
                    )
                })
            })
            .transpose()?;
        let status = match filter("status") {
            None => Some(RecordStatus::Active),
            Some("all") => None,
            Some(text) => Some(RecordStatus::parse(text).ok_or_else(|| {
                ServiceError::bad_request("status must be active, entered_in_error or all")
            })?),
        };
        Ok(RecordFilter {
            patient_id: id("patient_id")?,
            kind,
            status,
            appointment_id: id("appointment_id")?,
        })
    }

    /// The SQL for one page: `columns` of the matching records after the cursor, newest first,
    /// one row more than the page size (to know whether there is a next page).
    pub fn page_query(&self, columns: &str, query: &ListQuery) -> QueryBuilder<Sqlite> {
        let mut sql =
            QueryBuilder::<Sqlite>::new(format!("SELECT {columns} FROM records WHERE 1 = 1"));
        if let Some(patient_id) = self.patient_id {
            sql.push(" AND patient_id = ")
                .push_bind(patient_id.to_string());
        }
        if let Some(kind) = self.kind {
            sql.push(" AND kind = ").push_bind(kind.as_str());
        }
        if let Some(status) = self.status {
            sql.push(" AND status = ").push_bind(status.as_str());
        }
        if let Some(appointment_id) = self.appointment_id {
            sql.push(" AND appointment_id = ")
                .push_bind(appointment_id.to_string());
        }
        if let Some(after) = query.after {
            // An unknown cursor matches nothing: an empty page, not an error.
            sql.push(" AND (recorded_at, id) < (SELECT recorded_at, id FROM records WHERE id = ")
                .push_bind(after.to_string())
                .push(")");
        }
        sql.push(" ORDER BY recorded_at DESC, id DESC LIMIT ")
            .push_bind(i64::from(query.effective_limit()) + 1);
        sql
    }

    /// [`RecordFilter::page_query`] on PostgreSQL (native uuid binds).
    pub fn page_query_pg(&self, columns: &str, query: &ListQuery) -> QueryBuilder<Postgres> {
        let mut sql =
            QueryBuilder::<Postgres>::new(format!("SELECT {columns} FROM records WHERE TRUE"));
        if let Some(patient_id) = self.patient_id {
            sql.push(" AND patient_id = ").push_bind(patient_id);
        }
        if let Some(kind) = self.kind {
            sql.push(" AND kind = ").push_bind(kind.as_str());
        }
        if let Some(status) = self.status {
            sql.push(" AND status = ").push_bind(status.as_str());
        }
        if let Some(appointment_id) = self.appointment_id {
            sql.push(" AND appointment_id = ").push_bind(appointment_id);
        }
        if let Some(after) = query.after {
            // An unknown cursor matches nothing: an empty page, not an error.
            sql.push(" AND (recorded_at, id) < (SELECT recorded_at, id FROM records WHERE id = ")
                .push_bind(after)
                .push(")");
        }
        sql.push(" ORDER BY recorded_at DESC, id DESC LIMIT ")
            .push_bind(i64::from(query.effective_limit()) + 1);
        sql
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(filters: &[(&str, &str)]) -> ListQuery {
        ListQuery {
            filters: filters
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn lists_show_active_records_unless_asked() {
        let default = RecordFilter::from_query(&query(&[])).unwrap();
        assert_eq!(default.status, Some(RecordStatus::Active));
        let all = RecordFilter::from_query(&query(&[("status", "all")])).unwrap();
        assert_eq!(all.status, None);
        let marked = RecordFilter::from_query(&query(&[("status", "entered_in_error")])).unwrap();
        assert_eq!(marked.status, Some(RecordStatus::EnteredInError));
    }

    #[test]
    fn every_filter_is_read() {
        let patient = Uuid::now_v7();
        let appointment = Uuid::now_v7();
        let filter = RecordFilter::from_query(&query(&[
            ("patient_id", &patient.to_string()),
            ("appointment_id", &appointment.to_string()),
            ("kind", "vitals"),
        ]))
        .unwrap();
        assert_eq!(filter.patient_id, Some(patient));
        assert_eq!(filter.appointment_id, Some(appointment));
        assert_eq!(filter.kind, Some(RecordKind::Vitals));
    }

    #[test]
    fn unknown_and_malformed_filters_are_400s() {
        let bad = [
            query(&[("patiend_id", "x")]),
            query(&[("patient_id", "not-a-uuid")]),
            query(&[("appointment_id", "7")]),
            query(&[("kind", "gossip")]),
            query(&[("status", "deleted")]),
            ListQuery {
                q: Some("asthma".into()),
                ..Default::default()
            },
        ];
        for query in bad {
            let error = RecordFilter::from_query(&query).unwrap_err();
            assert_eq!(error.code.http_status(), 400, "{query:?}");
        }
    }

    #[test]
    fn pages_continue_before_the_cursor_newest_first() {
        let query = ListQuery {
            after: Some(Uuid::nil()),
            limit: Some(10),
            ..Default::default()
        };
        let filter = RecordFilter {
            patient_id: Some(Uuid::nil()),
            ..Default::default()
        };
        let sql = filter.page_query("id", &query).into_string();
        assert!(
            sql.contains("(recorded_at, id) < (SELECT recorded_at, id FROM records WHERE id = ")
        );
        assert!(
            sql.ends_with("ORDER BY recorded_at DESC, id DESC LIMIT ?"),
            "{sql}"
        );
    }
}

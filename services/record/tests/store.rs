//! The record tables on a real SQLite file: versions, the timeline's order and paging, and the
//! read-model's idempotent apply.

use chrono::{DateTime, Duration, TimeZone, Utc};
use kit::RequestContext;
use kit::events::new_event;
use kit::read_model::Projection;
use record_service::details::RecordDetails;
use record_service::domain::{self, Change};
use record_service::read_model::RecordReadModel;
use record_service::store::{MIGRATOR, SqliteRecords};
use record_service::timeline::RecordFilter;
use serde_json::{Value, json};
use shared_events::record::{RecordKind, RecordStatus};
use shared_events::{Actor, Aggregate, ListQuery};
use uuid::Uuid;

async fn store() -> (SqliteRecords, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = kit::config::sqlite_url_in(dir.path(), "record");
    let pool = kit::sqlite::open(&url, &MIGRATOR).await.unwrap();
    (
        SqliteRecords::new(pool.clone(), kit::group_commit::Writer::start(pool)),
        dir,
    )
}

fn doctor() -> RequestContext {
    RequestContext {
        actor: Actor {
            id: Uuid::now_v7().to_string(),
            role: "doctor".into(),
        },
        request_id: None,
        idempotency_key: None,
        idempotency: None,
    }
}

fn note(title: &str, recorded_at: DateTime<Utc>) -> RecordDetails {
    RecordDetails {
        appointment_id: None,
        kind: RecordKind::Note,
        title: title.into(),
        body: None,
        diagnoses: Vec::new(),
        vitals: None,
        recorded_at: Some(recorded_at),
    }
}

fn morning() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap()
}

#[tokio::test]
async fn every_change_is_a_version_and_versions_are_append_only() {
    let (store, _dir) = store().await;
    let author = doctor();
    let record = domain::write(
        Uuid::now_v7(),
        note("v1", morning()),
        Uuid::now_v7(),
        morning(),
    );
    let id = record.id;
    store.create(record, &author).await.unwrap();
    let nurse = RequestContext {
        actor: Actor {
            id: Uuid::now_v7().to_string(),
            role: "nurse".into(),
        },
        ..doctor()
    };
    let amended = store
        .change(id, Change::Amended, &nurse, |current| {
            Ok(Some(shared_events::record::MedicalRecord {
                title: "v2".into(),
                version: current.version + 1,
                ..current.clone()
            }))
        })
        .await
        .unwrap();
    assert!(amended.event.is_some());
    store
        .change(id, Change::EnteredInError, &author, |current| {
            domain::enter_in_error(current, Some(2), morning()).map(Some)
        })
        .await
        .unwrap();

    let history = store.history(id).await.unwrap();
    let summary: Vec<(i64, &str, &str, &str)> = history
        .iter()
        .map(|v| {
            (
                v.version,
                v.change.as_str(),
                v.changed_by.role.as_str(),
                v.record.title.as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (1, "created", "doctor", "v1"),
            (2, "amended", "nurse", "v2"),
            (3, "entered_in_error", "doctor", "v2")
        ]
    );
    assert_eq!(history[2].record.status, RecordStatus::EnteredInError);
    let current = store.get(id).await.unwrap().unwrap();
    assert_eq!(current.status, RecordStatus::EnteredInError);

    // The database itself refuses to rewrite or drop a version.
    let rewrite = sqlx::query("UPDATE record_versions SET state = '{}' WHERE record_id = $1")
        .bind(id.to_string())
        .execute(store.pool())
        .await;
    assert!(rewrite.is_err());
    let drop = sqlx::query("DELETE FROM record_versions WHERE record_id = $1")
        .bind(id.to_string())
        .execute(store.pool())
        .await;
    assert!(drop.is_err());
    // Each change left exactly one event in the outbox (nothing publishes it here).
    let events: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(events, 3);
}

#[tokio::test]
async fn the_timeline_is_newest_first_and_pages_through_equal_times() {
    let (store, _dir) = store().await;
    let patient = Uuid::now_v7();
    let mut written = Vec::new();
    // Five records, two of them at the same moment: the id breaks the tie.
    for (i, minutes) in [0, 30, 30, 60, 90].into_iter().enumerate() {
        let at = morning() + Duration::minutes(minutes);
        let record = domain::write(patient, note(&format!("n{i}"), at), Uuid::now_v7(), at);
        written.push((record.recorded_at, record.id));
        store.create(record, &doctor()).await.unwrap();
    }
    let other = domain::write(
        Uuid::now_v7(),
        note("other", morning()),
        Uuid::now_v7(),
        morning(),
    );
    store.create(other, &doctor()).await.unwrap();
    written.sort();
    written.reverse();
    let expected: Vec<Uuid> = written.into_iter().map(|(_, id)| id).collect();

    let filter = RecordFilter {
        patient_id: Some(patient),
        ..RecordFilter::default()
    };
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let query = ListQuery {
            limit: Some(2),
            after,
            ..Default::default()
        };
        let page = store.list(&filter, &query).await.unwrap();
        seen.extend(page.items.iter().map(|r| r.id));
        match page.next_after {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn a_timeline_page_is_an_index_range() {
    let (store, _dir) = store().await;
    // The default list: one patient's active records.
    let filter = RecordFilter {
        patient_id: Some(Uuid::now_v7()),
        status: Some(RecordStatus::Active),
        ..RecordFilter::default()
    };
    let query = ListQuery {
        after: Some(Uuid::now_v7()),
        ..Default::default()
    };
    let sql = format!(
        "EXPLAIN QUERY PLAN {}",
        filter.page_query("id", &query).into_string()
    );
    let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(Uuid::nil().to_string())
        .bind("active")
        .bind(Uuid::nil().to_string())
        .bind(51_i64)
        .fetch_all(store.pool())
        .await
        .unwrap();
    let plan: Vec<String> = plan.into_iter().map(|row| row.3).collect();
    assert!(
        plan.iter().any(|step| step.contains("records_timeline")),
        "{plan:?}"
    );
    assert!(
        !plan.iter().any(|step| step.contains("TEMP B-TREE")),
        "{plan:?}"
    );
}

fn patient_event(
    id: Uuid,
    version: i64,
    name: &str,
    deleted: bool,
) -> shared_events::EventEnvelope {
    let data = json!({
        "id": id, "mrn": "1234567897", "name": name, "birth_date": "1985-04-12", "sex": "female",
        "phone": null, "email": null, "address": null, "version": version,
        "created_at": "2026-11-25T09:00:00Z", "updated_at": "2026-11-25T09:00:00Z",
        "deleted_at": if deleted { json!("2026-11-25T10:00:00Z") } else { Value::Null },
    });
    let verb = if deleted { "deleted" } else { "updated" };
    new_event(
        Aggregate::Patient,
        id,
        version,
        verb,
        &RequestContext::system(),
        morning(),
        data,
    )
}

#[tokio::test]
async fn the_read_model_applies_an_event_once_and_never_goes_back() {
    let (store, _dir) = store().await;
    let mut conn = store.pool().acquire().await.unwrap();
    let id = Uuid::now_v7();
    let row = async |conn: &mut sqlx::SqliteConnection| -> (String, bool, i64) {
        sqlx::query_as("SELECT name, deleted, version FROM directory_patients WHERE id = $1")
            .bind(id.to_string())
            .fetch_one(conn)
            .await
            .unwrap()
    };
    let projection = RecordReadModel;
    Projection::<sqlx::Sqlite>::apply(&projection, &mut conn, &patient_event(id, 1, "Ada", false))
        .await
        .unwrap();
    Projection::<sqlx::Sqlite>::apply(&projection, &mut conn, &patient_event(id, 2, "Ada", true))
        .await
        .unwrap();
    assert_eq!(row(&mut conn).await, ("Ada".into(), true, 2));
    // The same event again, and an older one arriving late: nothing changes.
    Projection::<sqlx::Sqlite>::apply(&projection, &mut conn, &patient_event(id, 2, "Ada", true))
        .await
        .unwrap();
    Projection::<sqlx::Sqlite>::apply(&projection, &mut conn, &patient_event(id, 1, "Ada", false))
        .await
        .unwrap();
    assert_eq!(row(&mut conn).await, ("Ada".into(), true, 2));

    let appointment = Uuid::now_v7();
    let booked = |version: i64, status: &str| {
        let data = json!({"id": appointment, "patient_id": id, "status": status});
        new_event(
            Aggregate::Appointment,
            appointment,
            version,
            "updated",
            &RequestContext::system(),
            morning(),
            data,
        )
    };
    Projection::<sqlx::Sqlite>::apply(&projection, &mut conn, &booked(2, "cancelled"))
        .await
        .unwrap();
    Projection::<sqlx::Sqlite>::apply(&projection, &mut conn, &booked(1, "booked"))
        .await
        .unwrap();
    let known: (String, String, i64) =
        sqlx::query_as("SELECT patient_id, status, version FROM known_appointments WHERE id = $1")
            .bind(appointment.to_string())
            .fetch_one(&mut *conn)
            .await
            .unwrap();
    assert_eq!(known, (id.to_string(), "cancelled".into(), 2));
}

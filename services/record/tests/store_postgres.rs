//! The record store on a real PostgreSQL database shared by two "instances" (two pools):
//! versions and their append-only history, concurrent amendments, jsonb round trips, the
//! timeline's order and paging.

use chrono::{DateTime, Duration, TimeZone, Utc};
use futures::future::join_all;
use kit::RequestContext;
use kit::postgres_test::FreshDatabase;
use record_service::details::RecordDetails;
use record_service::domain::{self, Change};
use record_service::store::{PG_MIGRATOR, PgRecords, RecordStore};
use record_service::timeline::RecordFilter;
use serde_json::json;
use shared_events::record::{MedicalRecord, RecordKind, RecordStatus};
use shared_events::{Actor, ListQuery};
use uuid::Uuid;

struct Records {
    database: FreshDatabase,
    instances: [RecordStore; 2],
}

async fn records() -> Records {
    let database = FreshDatabase::migrated(&PG_MIGRATOR).await;
    let instance = async || {
        RecordStore::Postgres(PgRecords::new(
            kit::postgres::open(database.url(), &PG_MIGRATOR)
                .await
                .unwrap(),
        ))
    };
    Records {
        instances: [instance().await, instance().await],
        database,
    }
}

fn actor(role: &str) -> RequestContext {
    RequestContext {
        actor: Actor {
            id: Uuid::now_v7().to_string(),
            role: role.into(),
        },
        request_id: None,
        idempotency_key: None,
        idempotency: None,
    }
}

fn morning() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap()
}

fn diagnosis_with_vitals(patient: Uuid, title: &str, at: DateTime<Utc>) -> MedicalRecord {
    let details = RecordDetails {
        appointment_id: None,
        kind: RecordKind::Diagnosis,
        title: title.into(),
        body: Some("Sneezing since spring".into()),
        diagnoses: serde_json::from_value(
            json!([{"code": "J30.2", "description": "Seasonal allergic rhinitis"}]),
        )
        .unwrap(),
        vitals: Some(
            serde_json::from_value(json!({"temperature_c": 36.8, "pulse_bpm": 72})).unwrap(),
        ),
        recorded_at: Some(at),
    };
    domain::write(patient, details, Uuid::now_v7(), at)
}

#[tokio::test]
async fn versions_round_trip_and_stay_append_only() {
    let records = records().await;
    let [first, second] = &records.instances;
    let record = diagnosis_with_vitals(Uuid::now_v7(), "Hay fever", morning());
    let id = record.id;
    let created = first
        .create(record.clone(), &actor("doctor"))
        .await
        .unwrap();
    assert!(created.event.is_some());
    // What comes back through jsonb is what went in.
    assert_eq!(second.get(id).await.unwrap().unwrap(), record);

    // Two amendments against version 1 on two instances at once: one wins, one is stale.
    let amend = |store: &RecordStore, title: &'static str| {
        let store = store.clone();
        async move {
            store
                .change(id, Change::Amended, &actor("nurse"), move |current| {
                    kit::versions::check_version(current.version, Some(1))?;
                    Ok(Some(MedicalRecord {
                        title: title.into(),
                        version: current.version + 1,
                        ..current.clone()
                    }))
                })
                .await
                .map(|committed| committed.record.version)
                .map_err(|e| e.code.http_status())
        }
    };
    let (a, b) = tokio::join!(
        amend(first, "Hay fever, confirmed"),
        amend(second, "Hay fever?")
    );
    let mut outcomes = [a, b];
    outcomes.sort();
    assert_eq!(outcomes, [Ok(2), Err(412)]);

    second
        .change(id, Change::EnteredInError, &actor("doctor"), |current| {
            domain::enter_in_error(current, Some(2), morning()).map(Some)
        })
        .await
        .unwrap();
    let history = first.history(id).await.unwrap();
    let summary: Vec<(i64, &str, &str)> = history
        .iter()
        .map(|v| (v.version, v.change.as_str(), v.changed_by.role.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            (1, "created", "doctor"),
            (2, "amended", "nurse"),
            (3, "entered_in_error", "doctor")
        ]
    );
    assert_eq!(history[0].record, record);
    assert_eq!(history[2].record.status, RecordStatus::EnteredInError);
    assert!(first.history(Uuid::now_v7()).await.unwrap().is_empty());

    // The database refuses to rewrite or drop a version (SQLSTATE 23000).
    for statement in [
        "UPDATE record_versions SET state = '{}'",
        "DELETE FROM record_versions",
    ] {
        let refused = sqlx::query(statement)
            .execute(records.database.pool())
            .await
            .unwrap_err();
        assert!(
            kit::postgres::is_refused_with(
                &refused,
                kit::postgres::sqlstate::INTEGRITY_CONSTRAINT_VIOLATION
            ),
            "{statement}: {refused}"
        );
    }
    let outbox: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox")
        .fetch_one(records.database.pool())
        .await
        .unwrap();
    assert_eq!(outbox, 3, "one event per version");
    records.database.drop().await;
}

#[tokio::test]
async fn a_timeline_pages_newest_first_with_its_filters() {
    let records = records().await;
    let patient = Uuid::now_v7();
    join_all((0..7).map(|i| {
        let store = records.instances[i % 2].clone();
        let record = diagnosis_with_vitals(
            patient,
            &format!("Visit {i}"),
            morning() + Duration::hours(i as i64),
        );
        async move {
            store.create(record, &actor("doctor")).await.unwrap();
        }
    }))
    .await;
    // Another patient's record stays out of this timeline.
    records.instances[0]
        .create(
            diagnosis_with_vitals(Uuid::now_v7(), "Elsewhere", morning()),
            &actor("doctor"),
        )
        .await
        .unwrap();

    let filter = RecordFilter {
        patient_id: Some(patient),
        status: Some(RecordStatus::Active),
        ..Default::default()
    };
    let mut query = ListQuery {
        limit: Some(3),
        ..Default::default()
    };
    let mut titles = Vec::new();
    loop {
        let page = records.instances[1].list(&filter, &query).await.unwrap();
        titles.extend(page.items.iter().map(|r| r.title.clone()));
        match page.next_after {
            Some(after) => query.after = Some(after),
            None => break,
        }
    }
    let newest_first: Vec<String> = (0..7).rev().map(|i| format!("Visit {i}")).collect();
    assert_eq!(titles, newest_first);
    // An unknown cursor is an empty page, as on SQLite.
    let unknown = ListQuery {
        after: Some(Uuid::now_v7()),
        ..Default::default()
    };
    assert!(
        records.instances[0]
            .list(&filter, &unknown)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    records.database.drop().await;
}

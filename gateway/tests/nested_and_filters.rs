//! Appointments and records through the gateway: their CRUD routes, list filters passed on as
//! sent, the `Link` that keeps them, the nested lists and a record's history, each checked
//! against what the stand-in service received.

mod support;

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{Value, json};
use shared_events::staff::StaffRole;
use support::{MISSING, NEXT, TestGateway, UNKNOWN_FILTER, authorized};
use uuid::Uuid;

async fn gateway() -> TestGateway {
    TestGateway::with_services(Duration::from_secs(5)).await
}

/// `GET uri` as a doctor: the reply, and what the service saw (the one item the stand-in lists).
async fn list(gateway: &TestGateway, uri: &str) -> (support::Reply, Value) {
    let token = gateway.token(StaffRole::Doctor);
    let reply = gateway.send(authorized("GET", uri, &token, None)).await;
    assert_eq!(reply.status, StatusCode::OK, "{uri}: {reply:?}");
    let seen = reply.json()[0].clone();
    (reply, seen)
}

#[tokio::test]
async fn appointments_and_records_have_the_crud_routes_of_their_service() {
    let gateway = gateway().await;
    let token = gateway.token(StaffRole::Doctor);
    for (path, service, noun) in [
        ("appointments", "appointment", "appointment"),
        ("records", "record", "medical record"),
    ] {
        let reply = gateway
            .send(authorized(
                "POST",
                &format!("/api/{path}"),
                &token,
                Some(json!({"name": "x"})),
            ))
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
        let created = reply.json();
        assert_eq!(created["seen"]["service"], service);
        let id = created["id"].as_str().unwrap();
        let item = format!("/api/{path}/{id}");
        assert_eq!(reply.header("location"), Some(item.as_str()));

        let reply = gateway.send(authorized("GET", &item, &token, None)).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.header("etag"), Some("\"3\""));
        assert_eq!(reply.json()["seen"]["service"], service);
        assert_eq!(reply.json()["seen"]["action"], "get");

        let reply = gateway
            .send(authorized("PUT", &item, &token, Some(json!({"a": 1}))))
            .await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.json()["seen"]["action"], "update");

        let reply = gateway
            .send(authorized("DELETE", &item, &token, None))
            .await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT);
        assert!(reply.body.is_empty());

        let missing = format!("/api/{path}/{MISSING}");
        let reply = gateway
            .send(authorized("GET", &missing, &token, None))
            .await;
        assert_eq!(reply.problem(404)["detail"], format!("{noun} not found"));

        let (_, seen) = list(&gateway, &format!("/api/{path}")).await;
        assert_eq!(seen["service"], service);
        assert_eq!(seen["action"], "list");
    }
}

#[tokio::test]
async fn list_filters_reach_the_service_exactly_as_sent() {
    let gateway = gateway().await;
    let (_, seen) = list(
        &gateway,
        "/api/appointments?status=booked&from=2025-01-02T09%3A00%3A00%2B01%3A00&limit=5\
         &reason=%20back%20pain%20&q=Ada",
    )
    .await;
    assert_eq!(seen["service"], "appointment");
    assert_eq!(
        seen["command"],
        json!({
            "q": "Ada",
            "limit": 5,
            "filters": {
                "from": "2025-01-02T09:00:00+01:00",
                "reason": " back pain ",
                "status": "booked",
            },
        })
    );

    let (_, seen) = list(&gateway, "/api/records?kind=diagnosis").await;
    assert_eq!(seen["service"], "record");
    assert_eq!(seen["command"], json!({"filters": {"kind": "diagnosis"}}));

    // Patients get them too; the real patient service refuses every filter.
    let (_, seen) = list(&gateway, "/api/patients?ward=3").await;
    assert_eq!(seen["command"], json!({"filters": {"ward": "3"}}));

    // Without filters, none are sent (the field is left out).
    let (_, seen) = list(&gateway, "/api/records").await;
    assert_eq!(seen["command"], json!({}));
}

#[tokio::test]
async fn a_filter_the_service_does_not_know_is_its_400() {
    let gateway = gateway().await;
    let token = gateway.token(StaffRole::Nurse);
    for uri in [
        format!("/api/appointments?{UNKNOWN_FILTER}=1"),
        format!("/api/records?{UNKNOWN_FILTER}=1"),
        format!(
            "/api/patients/{}/appointments?{UNKNOWN_FILTER}=1",
            Uuid::now_v7()
        ),
    ] {
        let reply = gateway.send(authorized("GET", &uri, &token, None)).await;
        let problem = reply.problem(400);
        assert_eq!(
            problem["detail"],
            format!("unknown filter: {UNKNOWN_FILTER}"),
            "{uri}"
        );
    }
}

#[tokio::test]
async fn the_next_link_keeps_the_filters_and_following_it_sends_them_again() {
    let gateway = gateway().await;
    let (reply, _) = list(
        &gateway,
        "/api/appointments?status=booked&from=2025-01-02T09%3A00%3A00Z&limit=2",
    )
    .await;
    let link = reply.header("link").unwrap();
    assert_eq!(
        link,
        format!(
            "</api/appointments?limit=2&after={NEXT}&from=2025-01-02T09%3A00%3A00Z&status=booked>; rel=\"next\""
        )
    );
    let next = &link[1..link.find('>').unwrap()];
    let (_, seen) = list(&gateway, next).await;
    assert_eq!(
        seen["command"],
        json!({
            "limit": 2,
            "after": NEXT,
            "filters": {"from": "2025-01-02T09:00:00Z", "status": "booked"},
        })
    );
}

#[tokio::test]
async fn nested_lists_ask_the_owning_service_with_the_parent_as_a_filter() {
    let gateway = gateway().await;
    let id = Uuid::now_v7();
    for (uri, service, filters, link) in [
        (
            format!("/api/patients/{id}/appointments?status=booked&q=check"),
            "appointment",
            json!({"patient_id": id, "status": "booked"}),
            format!(
                "</api/patients/{id}/appointments?limit=50&after={NEXT}&q=check&status=booked>; rel=\"next\""
            ),
        ),
        (
            format!("/api/staff/{id}/appointments?date=2025-01-02&limit=10"),
            "appointment",
            json!({"doctor_id": id, "date": "2025-01-02"}),
            format!(
                "</api/staff/{id}/appointments?limit=10&after={NEXT}&date=2025-01-02>; rel=\"next\""
            ),
        ),
        (
            format!("/api/patients/{id}/records"),
            "record",
            json!({"patient_id": id}),
            format!("</api/patients/{id}/records?limit=50&after={NEXT}>; rel=\"next\""),
        ),
    ] {
        let (reply, seen) = list(&gateway, &uri).await;
        assert_eq!(seen["service"], service, "{uri}");
        assert_eq!(seen["action"], "list", "{uri}");
        assert_eq!(seen["command"]["filters"], filters, "{uri}");
        assert_eq!(reply.header("link"), Some(link.as_str()), "{uri}");
    }

    // The request's own paging reaches the service beside the parent filter.
    let after = Uuid::now_v7();
    let uri = format!("/api/patients/{id}/records?after={after}&limit=3&kind=vitals");
    let (_, seen) = list(&gateway, &uri).await;
    assert_eq!(
        seen["command"],
        json!({
            "limit": 3,
            "after": after,
            "filters": {"kind": "vitals", "patient_id": id},
        })
    );
}

#[tokio::test]
async fn a_nested_list_without_a_next_page_has_no_link() {
    let gateway = gateway().await;
    let uri = format!("/api/patients/{}/records?q=last%20page", Uuid::now_v7());
    let (reply, _) = list(&gateway, &uri).await;
    assert_eq!(reply.header("link"), None);
}

#[tokio::test]
async fn a_records_history_is_the_services_array_as_it_came() {
    let gateway = gateway().await;
    let token = gateway.token(StaffRole::Doctor);
    let id = Uuid::now_v7();
    let reply = gateway
        .send(authorized(
            "GET",
            &format!("/api/records/{id}/history"),
            &token,
            None,
        ))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let history = reply.json();
    let versions = history.as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0]["change"], "created");
    assert_eq!(versions[1]["record"]["version"], 2);
    let seen = &versions[1]["seen"];
    assert_eq!(seen["service"], "record");
    assert_eq!(seen["action"], "history");
    assert_eq!(seen["command"], json!({"id": id}));

    let reply = gateway
        .send(authorized(
            "GET",
            &format!("/api/records/{MISSING}/history"),
            &token,
            None,
        ))
        .await;
    assert_eq!(reply.problem(404)["detail"], "medical record not found");
}

#[tokio::test]
async fn nested_routes_answer_only_get() {
    let gateway = gateway().await;
    let token = gateway.token(StaffRole::Admin);
    let id = Uuid::now_v7();
    for path in [
        format!("/api/patients/{id}/appointments"),
        format!("/api/records/{id}/history"),
    ] {
        let reply = gateway
            .send(authorized("POST", &path, &token, Some(json!({}))))
            .await;
        reply.problem(405);
        assert_eq!(reply.header("allow"), Some("GET,HEAD"), "{path}");
    }
}

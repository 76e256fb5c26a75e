//! The appointment list: filters, the nested routes, paging in start order.

use reqwest::Method;
use serde_json::{Value, json};

use super::{at, open_clinic};

#[tokio::test]
async fn lists_filter_and_page_in_start_order() {
    let clinic = open_clinic().await;
    let (ada, bob) = (clinic.patient("Ada").await, clinic.patient("Bob").await);
    let other_doctor = clinic.staff("Dr Cox", "doctor").await;
    let mut ids = Vec::new();
    for (patient, start) in [
        (&ada, at(12, 15, 0)),
        (&bob, at(11, 9, 0)),
        (&ada, at(11, 10, 0)),
        (&bob, at(12, 9, 0)),
    ] {
        ids.push(
            clinic.booked(patient, &start).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let body = json!({"patient_id": bob, "doctor_id": other_doctor, "start": at(11, 16, 0)});
    let (_, with_cox) = clinic
        .call(Method::POST, "/api/appointments", Some(body))
        .await;
    let mut cancelled = with_cox.clone();
    cancelled["status"] = json!("cancelled");
    clinic
        .call(
            Method::PUT,
            &format!("/api/appointments/{}", with_cox["id"].as_str().unwrap()),
            Some(cancelled),
        )
        .await;

    let shared = &clinic;
    let listed = |query: String| async move {
        let (status, body) = shared
            .call(Method::GET, &format!("/api/appointments{query}"), None)
            .await;
        assert_eq!(status, 200, "{query}: {body}");
        body.as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let cox = with_cox["id"].as_str().unwrap().to_owned();
    let in_order = vec![
        ids[1].clone(),
        ids[2].clone(),
        cox.clone(),
        ids[3].clone(),
        ids[0].clone(),
    ];
    assert_eq!(listed(String::new()).await, in_order);
    assert_eq!(
        listed(format!("?patient_id={ada}")).await,
        [ids[2].as_str(), ids[0].as_str()]
    );
    assert_eq!(
        listed(format!("?doctor_id={other_doctor}")).await,
        [cox.as_str()]
    );
    assert_eq!(listed("?status=cancelled".into()).await, [cox.as_str()]);
    let (from, to) = (at(11, 10, 0), at(12, 9, 0));
    assert_eq!(
        listed(format!("?from={from}&to={to}")).await,
        [ids[2].as_str(), cox.as_str()]
    );
    let day = &at(12, 0, 0)[..10];
    assert_eq!(
        listed(format!("?date={day}")).await,
        [ids[3].as_str(), ids[0].as_str()]
    );

    // The nested routes are the same list with one filter from the path.
    let (_, mine) = clinic
        .call(
            Method::GET,
            &format!("/api/patients/{ada}/appointments"),
            None,
        )
        .await;
    assert_eq!(mine.as_array().unwrap().len(), 2);
    let (_, today) = clinic
        .call(
            Method::GET,
            &format!("/api/staff/{}/appointments?date={day}", clinic.doctor),
            None,
        )
        .await;
    assert_eq!(
        today
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_str().unwrap())
            .collect::<Vec<_>>(),
        [ids[3].as_str(), ids[0].as_str()]
    );

    // Pages of two follow the Link header to the end, in the same order.
    let mut seen = Vec::new();
    let mut next = Some("/api/appointments?limit=2".to_owned());
    while let Some(path) = next.take() {
        let response = clinic
            .app
            .api(Method::GET, &path, &clinic.token)
            .send()
            .await
            .unwrap();
        next = response.headers().get("link").map(|link| {
            let link = link.to_str().unwrap();
            link[link.find('<').unwrap() + 1..link.find('>').unwrap()].to_owned()
        });
        let page: Vec<Value> = response.json().await.unwrap();
        seen.extend(page.iter().map(|a| a["id"].as_str().unwrap().to_owned()));
    }
    assert_eq!(seen, in_order);

    for bad in [
        "?room=4",
        "?q=ada",
        "?status=done",
        "?from=yesterday",
        "?date=12-12-2026",
        "?patient_id=7",
    ] {
        let (status, problem) = clinic
            .call(Method::GET, &format!("/api/appointments{bad}"), None)
            .await;
        assert_eq!(status, 400, "{bad}: {problem}");
    }
    let unknown_after = format!("/api/appointments?after={}", uuid::Uuid::now_v7());
    assert_eq!(clinic.call(Method::GET, &unknown_after, None).await.0, 400);
}

//! The audit trail: every access to patient data, allowed or refused, is in `HOSPITAL_AUDIT`,
//! administrators read it through `GET /api/audit`, and nobody edits it.

use async_nats::jetstream;
use reqwest::Method;
use serde_json::{Value, json};
use shared_events::subjects::AUDIT_STREAM;

use crate::helpers::{TestApp, patient_body, spawn_app};

async fn get(app: &TestApp, path: &str, token: &str) -> reqwest::Response {
    app.api(Method::GET, path, token).send().await.unwrap()
}

async fn trail(app: &TestApp, admin: &str, query: &str) -> Vec<Value> {
    let response = get(app, &format!("/api/audit?{query}"), admin).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn reads_and_refusals_are_recorded_with_who_what_and_where() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (nurse, nurse_id) = app.staff_login("nurse").await;
    let (clerk, clerk_id) = app.staff_login("receptionist").await;
    let patient = app
        .create_patient(&admin, patient_body("Audited Person"))
        .await;
    let id = patient["id"].as_str().unwrap();

    let read = app
        .api(Method::GET, &format!("/api/patients/{id}"), &nurse)
        .header("X-Request-Id", "nurse-reads-chart")
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    let refused = get(&app, &format!("/api/patients/{id}/records"), &clerk).await;
    assert_eq!(refused.status(), 403);

    let entries = trail(&app, &admin, &format!("patient_id={id}")).await;
    let summary: Vec<(String, String, String, String, u64)> = entries
        .iter()
        .map(|e| {
            (
                e["actor_role"].as_str().unwrap().to_owned(),
                e["action"].as_str().unwrap().to_owned(),
                e["resource"].as_str().unwrap().to_owned(),
                e["outcome"].as_str().unwrap().to_owned(),
                e["status"].as_u64().unwrap(),
            )
        })
        .collect();
    let owned = |r: &str, a: &str, res: &str, o: &str, s: u64| {
        (r.to_owned(), a.to_owned(), res.to_owned(), o.to_owned(), s)
    };
    assert_eq!(
        summary,
        [
            owned("admin", "create", "patient", "allowed", 201),
            owned("nurse", "get", "patient", "allowed", 200),
            owned("receptionist", "list", "record", "denied", 403),
        ]
    );
    let nurse_read = &entries[1];
    assert_eq!(nurse_read["actor_id"], nurse_id.as_str());
    assert_eq!(nurse_read["actor_name"], "Test nurse");
    assert_eq!(nurse_read["patient_id"], id);
    assert_eq!(nurse_read["entity_id"], id);
    assert_eq!(nurse_read["method"], "GET");
    assert_eq!(nurse_read["path"], format!("/api/patients/{id}"));
    assert_eq!(nurse_read["client_addr"], "127.0.0.1");
    assert_eq!(nurse_read["request_id"], "nurse-reads-chart");
    assert!(nurse_read["sequence"].as_u64().unwrap() > 0);
    assert!(nurse_read["at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(entries[2]["actor_id"], clerk_id.as_str());

    // By actor: the receptionist's refusal and nothing else of theirs about this patient.
    let theirs = trail(&app, &admin, &format!("patient_id={id}&actor={clerk_id}")).await;
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0]["outcome"], "denied");
}

#[tokio::test]
async fn a_list_leaves_one_entry_per_patient_it_showed() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (doctor, doctor_id) = app.staff_login("doctor").await;
    let a = app
        .create_patient(&admin, patient_body("Listed Alpha"))
        .await;
    let b = app
        .create_patient(&admin, patient_body("Listed Beta"))
        .await;
    let listed = app
        .api(Method::GET, "/api/patients?q=Listed", &doctor)
        .header("X-Request-Id", "one-list")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200);
    let entries = trail(&app, &admin, &format!("actor={doctor_id}")).await;
    let of_list: Vec<&Value> = entries
        .iter()
        .filter(|e| e["request_id"] == "one-list")
        .collect();
    let mut patients: Vec<&str> = of_list
        .iter()
        .map(|e| e["patient_id"].as_str().unwrap())
        .collect();
    patients.sort();
    let mut expected = [a["id"].as_str().unwrap(), b["id"].as_str().unwrap()];
    expected.sort();
    assert_eq!(patients, expected);
    // The search term is not recorded: it may be a name.
    assert!(of_list.iter().all(|e| e["path"] == "/api/patients"));
}

#[tokio::test]
async fn the_trail_pages_and_filters_by_time() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let patient = app
        .create_patient(&admin, patient_body("Paged Person"))
        .await;
    let id = patient["id"].as_str().unwrap();
    let before = chrono::Utc::now();
    for _ in 0..3 {
        assert_eq!(
            get(&app, &format!("/api/patients/{id}"), &admin)
                .await
                .status(),
            200
        );
    }
    let first = get(&app, &format!("/api/audit?patient_id={id}&limit=2"), &admin).await;
    let link = first.headers()["link"].to_str().unwrap().to_owned();
    let page: Vec<Value> = first.json().await.unwrap();
    assert_eq!(page.len(), 2);
    let next = link
        .strip_prefix('<')
        .and_then(|l| l.split_once(">; rel=\"next\""))
        .map(|(url, _)| url.to_owned())
        .unwrap_or_else(|| panic!("a next link: {link}"));
    assert!(
        next.contains(&format!("after={}", page[1]["sequence"])),
        "{next}"
    );
    let second = get(&app, &next, &admin).await;
    assert!(
        second.headers().get("link").is_none(),
        "the last page has no next link"
    );
    let rest: Vec<Value> = second.json().await.unwrap();
    assert_eq!(rest.len(), 2);
    assert!(rest[0]["sequence"].as_u64() > page[1]["sequence"].as_u64());

    let since = before.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let recent = trail(
        &app,
        &admin,
        &format!("patient_id={id}&from={}", urlencode(&since)),
    )
    .await;
    assert_eq!(recent.len(), 3, "the create came before `from`");
    let until = trail(
        &app,
        &admin,
        &format!("patient_id={id}&to={}", urlencode(&since)),
    )
    .await;
    assert_eq!(until.len(), 1, "only the create came before `to`");

    for bad in ["limit=0", "from=yesterday", "patient_id=7", "colour=red"] {
        assert_eq!(
            get(&app, &format!("/api/audit?{bad}"), &admin)
                .await
                .status(),
            400,
            "{bad}"
        );
    }
}

fn urlencode(text: &str) -> String {
    text.replace(':', "%3A").replace('+', "%2B")
}

#[tokio::test]
async fn only_administrators_read_the_trail_and_a_refused_look_is_recorded() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (doctor, doctor_id) = app.staff_login("doctor").await;
    let refused = get(&app, "/api/audit", &doctor).await;
    assert_eq!(refused.status(), 403);
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(problem["detail"], "a doctor may not read the audit trail");
    let entries = trail(&app, &admin, &format!("actor={doctor_id}")).await;
    assert_eq!(
        entries
            .iter()
            .map(|e| (e["resource"].clone(), e["outcome"].clone()))
            .collect::<Vec<_>>(),
        [(json!("audit"), json!("denied"))]
    );
}

#[tokio::test]
async fn the_trail_cannot_be_edited() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    app.create_patient(&admin, patient_body("Permanent Record"))
        .await;
    for method in [Method::DELETE, Method::PUT, Method::POST] {
        let response = app
            .api(method.clone(), "/api/audit", &admin)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405, "{method}");
    }
    let js = jetstream::new(app.nats.clone());
    let mut stream = js.get_stream(AUDIT_STREAM).await.unwrap();
    let info = stream.info().await.unwrap().clone();
    assert!(
        info.config.deny_delete && info.config.deny_purge,
        "{:?}",
        info.config
    );
    let messages = info.state.messages;
    assert!(messages >= 1);
    assert!(stream.purge().await.is_err(), "a purge is refused");
    assert!(
        stream.delete_message(1).await.is_err(),
        "a delete is refused"
    );
    assert_eq!(stream.info().await.unwrap().state.messages, messages);
}

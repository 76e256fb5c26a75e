//! Patients through the gateway: every route, validation, versions, paging, search, soft delete.

use kit::database::Database;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{patient_body, spawn_app};

#[tokio::test]
async fn a_registered_patient_can_be_read_back_with_its_etag() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let response = app
        .api(Method::POST, "/api/patients", &token)
        .json(&patient_body("Ada Lovelace"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["etag"], "\"1\"");
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = response.json().await.unwrap();
    let id = created["id"].as_str().unwrap();
    assert_eq!(location, format!("/api/patients/{id}"));
    assert_eq!(created["version"], 1);
    assert_eq!(created["mrn"].as_str().unwrap().len(), 10);
    assert_eq!(created["birth_date"], "1985-04-12");

    let read = app
        .api(Method::GET, &location, &token)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    assert_eq!(read.headers()["etag"], "\"1\"");
    let read: Value = read.json().await.unwrap();
    assert_eq!(read, created);
}

#[tokio::test]
async fn invalid_fields_are_each_named_in_a_422() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let body = json!({"name": "", "birth_date": "2999-01-01", "sex": "robot", "email": "not-an-email",
                      "address": "x".repeat(501)});
    let response = app
        .api(Method::POST, "/api/patients", &token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = response.json().await.unwrap();
    let mut fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    fields.sort();
    assert_eq!(fields, ["address", "birth_date", "email", "name", "sex"]);
}

#[tokio::test]
async fn an_update_needs_the_current_version_when_if_match_is_given() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let patient = app
        .create_patient(&token, patient_body("Grace Hopper"))
        .await;
    let path = format!("/api/patients/{}", patient["id"].as_str().unwrap());
    let mut changed = patient_body("Grace Brewster Hopper");
    changed["phone"] = json!("+1 555 0199");

    let updated = app
        .api(Method::PUT, &path, &token)
        .header("If-Match", "\"1\"")
        .json(&changed)
        .send()
        .await
        .unwrap();
    assert_eq!(updated.status(), 200);
    assert_eq!(updated.headers()["etag"], "\"2\"");
    let updated: Value = updated.json().await.unwrap();
    assert_eq!(
        (updated["version"].as_i64(), updated["name"].as_str()),
        (Some(2), Some("Grace Brewster Hopper"))
    );
    assert_eq!(updated["mrn"], patient["mrn"], "the MRN never changes");

    let stale = app
        .api(Method::PUT, &path, &token)
        .header("If-Match", "\"1\"")
        .json(&patient_body("X"))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 412);
    let stale_delete = app
        .api(Method::DELETE, &path, &token)
        .header("If-Match", "\"1\"")
        .send()
        .await
        .unwrap();
    assert_eq!(stale_delete.status(), 412);
    let nonsense = app
        .api(Method::PUT, &path, &token)
        .header("If-Match", "yesterday")
        .json(&changed)
        .send()
        .await
        .unwrap();
    assert_eq!(nonsense.status(), 412);

    let without_precondition = app
        .api(Method::PUT, &path, &token)
        .json(&patient_body("Grace H"))
        .send()
        .await
        .unwrap();
    assert_eq!(without_precondition.status(), 200);
    assert_eq!(without_precondition.headers()["etag"], "\"3\"");
}

#[tokio::test]
async fn a_deleted_patient_is_gone_from_the_api_but_kept_in_the_database() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let patient = app
        .create_patient(&token, patient_body("Florence Nightingale"))
        .await;
    let id = patient["id"].as_str().unwrap();
    let path = format!("/api/patients/{id}");
    let deleted = app.api(Method::DELETE, &path, &token).send().await.unwrap();
    assert_eq!(deleted.status(), 204);
    assert!(deleted.bytes().await.unwrap().is_empty());
    assert_eq!(
        app.api(Method::GET, &path, &token)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        app.api(Method::DELETE, &path, &token)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        app.api(Method::PUT, &path, &token)
            .json(&patient_body("F"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let list: Vec<Value> = app
        .api(Method::GET, "/api/patients", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(list.iter().all(|p| p["id"] != id));

    // The row stays, marked deleted.
    let id: uuid::Uuid = id.parse().unwrap();
    const ROW: &str = "SELECT name, deleted_at IS NOT NULL FROM patients WHERE id = $1";
    let (name, deleted): (String, bool) = match app
        .databases
        .open_beside(patient_service::store::MIGRATIONS)
        .await
    {
        Database::Sqlite { pool, .. } => {
            sqlx::query_as(ROW)
                .bind(id.to_string())
                .fetch_one(&pool)
                .await
        }
        Database::Postgres(pool) => sqlx::query_as(ROW).bind(id).fetch_one(&pool).await,
    }
    .unwrap();
    assert_eq!(name, "Florence Nightingale");
    assert!(deleted);
}

#[tokio::test]
async fn lists_page_through_a_link_header() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let mut created = Vec::new();
    for i in 0..7 {
        created.push(
            app.create_patient(&token, patient_body(&format!("Paged Patient {i}")))
                .await["id"]
                .clone(),
        );
    }
    let mut seen = Vec::new();
    let mut next = Some("/api/patients?limit=3".to_owned());
    let mut pages = 0;
    while let Some(path) = next.take() {
        let response = app.api(Method::GET, &path, &token).send().await.unwrap();
        assert_eq!(response.status(), 200);
        next = response.headers().get("link").map(|link| {
            let link = link.to_str().unwrap();
            assert!(link.ends_with("; rel=\"next\""), "{link}");
            link[link.find('<').unwrap() + 1..link.find('>').unwrap()].to_owned()
        });
        let page: Vec<Value> = response.json().await.unwrap();
        assert!(page.len() <= 3);
        seen.extend(page.into_iter().map(|p| p["id"].clone()));
        pages += 1;
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, created, "every patient once, in registration order");
}

#[tokio::test]
async fn search_matches_name_words_case_insensitively_and_exact_mrns() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let ada = app
        .create_patient(&token, patient_body("Ada Lovelace"))
        .await;
    app.create_patient(&token, patient_body("Alan Turing"))
        .await;
    app.create_patient(&token, patient_body("Adam Smith")).await;

    let names = |list: Vec<Value>| -> Vec<String> {
        list.iter()
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let search = |q: String| {
        let request = app
            .api(Method::GET, "/api/patients", &token)
            .query(&[("q", q)]);
        async move {
            request
                .send()
                .await
                .unwrap()
                .json::<Vec<Value>>()
                .await
                .unwrap()
        }
    };
    assert_eq!(
        names(search("ada".into()).await),
        ["Ada Lovelace", "Adam Smith"]
    );
    assert_eq!(names(search("LOVE".into()).await), ["Ada Lovelace"]);
    assert_eq!(names(search("ada love".into()).await), ["Ada Lovelace"]);
    assert!(search("nobody".into()).await.is_empty());
    let by_mrn = search(ada["mrn"].as_str().unwrap().to_owned()).await;
    assert_eq!(names(by_mrn), ["Ada Lovelace"]);
    // A NUL character (which PostgreSQL text cannot hold) matches nothing, on either backend;
    // the words around it still do.
    assert!(search("\0".into()).await.is_empty());
    assert_eq!(names(search("ada\0love".into()).await), ["Ada Lovelace"]);
}

#[tokio::test]
async fn bad_list_parameters_are_400s() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    for query in ["limit=abc", "limit=0", "limit=-1", "after=not-a-uuid"] {
        let response = app
            .api(Method::GET, &format!("/api/patients?{query}"), &token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{query}");
    }
    let capped = app
        .api(Method::GET, "/api/patients?limit=100000", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(capped.status(), 200);
}

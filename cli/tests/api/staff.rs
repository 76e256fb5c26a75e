//! Staff through the gateway.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::spawn_app;

#[tokio::test]
async fn staff_members_are_created_updated_listed_and_deleted() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let nurse = json!({"name": "Carla Espinosa", "role": "nurse", "phone": "+1 555 0142", "email": "carla@example.org"});
    let response = app
        .api(Method::POST, "/api/staff", &token)
        .json(&nurse)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["role"], "nurse");
    assert_eq!(created["username"], Value::Null);
    let path = format!("/api/staff/{}", created["id"].as_str().unwrap());

    let mut changed = nurse.clone();
    changed["role"] = json!("receptionist");
    let updated = app
        .api(Method::PUT, &path, &token)
        .header("If-Match", "\"1\"")
        .json(&changed)
        .send()
        .await
        .unwrap();
    assert_eq!(updated.status(), 200);
    assert_eq!(updated.headers()["etag"], "\"2\"");

    let list: Vec<Value> = app
        .api(Method::GET, "/api/staff?q=carla", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["role"], "receptionist");

    assert_eq!(
        app.api(Method::DELETE, &path, &token)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        app.api(Method::GET, &path, &token)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

#[tokio::test]
async fn staff_validation_names_fields_and_usernames_are_unique() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let bad = json!({"name": "X", "role": "wizard", "username": "ab", "password": "short"});
    let response = app
        .api(Method::POST, "/api/staff", &token)
        .json(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let problem: Value = response.json().await.unwrap();
    let mut fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    fields.sort();
    assert_eq!(fields, ["password", "role", "username"]);

    let taken = json!({"name": "Another Admin", "role": "admin", "username": "admin", "password": "long enough password"});
    let response = app
        .api(Method::POST, "/api/staff", &token)
        .json(&taken)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 409);
}

#[tokio::test]
async fn changing_a_password_takes_effect_and_the_old_one_stops_working() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let body = json!({"name": "Dr Cox", "role": "doctor", "username": "pcox", "password": "first password!"});
    let created: Value = app
        .api(Method::POST, "/api/staff", &token)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let path = format!("/api/staff/{}", created["id"].as_str().unwrap());
    let change = json!({"name": "Dr Cox", "role": "doctor", "password": "second password!"});
    assert_eq!(
        app.api(Method::PUT, &path, &token)
            .json(&change)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(app.login("pcox", "first password!").await.status(), 401);
    assert_eq!(app.login("pcox", "second password!").await.status(), 200);
}

//! Sessions end when they should: logout, account changes (through the staff events, on a
//! running gateway), password changes; failed logins are limited.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

async fn status_with(app: &TestApp, token: &str) -> u16 {
    app.api(Method::GET, "/api/patients", token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Polls until `token` is refused; the revocation travels through NATS, so it may take a
/// moment, but not long.
async fn refused_soon(app: &TestApp, token: &str) -> Value {
    for _ in 0..100 {
        let response = app
            .api(Method::GET, "/api/patients", token)
            .send()
            .await
            .unwrap();
        if response.status() == 401 {
            return response.json().await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the token still works after 2 s");
}

async fn logout(app: &TestApp, token: &str) -> reqwest::Response {
    app.api(Method::POST, "/auth/logout", token)
        .send()
        .await
        .unwrap()
}

async fn login_token(app: &TestApp, username: &str, password: &str) -> String {
    let response = app.login(username, password).await;
    assert_eq!(response.status(), 200, "login {username}");
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

/// A nurse with a login; returns the id.
async fn nurse(app: &TestApp, admin: &str, username: &str) -> String {
    let response = app
        .api(Method::POST, "/api/staff", admin)
        .json(&json!({"name": "Nurse Session", "role": "nurse",
                      "username": username, "password": "the first long password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let staff: Value = response.json().await.unwrap();
    staff["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn logout_revokes_that_token_only() {
    let app = spawn_app().await;
    let first = app.admin_token().await;
    let second = app.admin_token().await;
    let out = logout(&app, &first).await;
    assert_eq!(out.status(), 204);
    let refused = app
        .api(Method::GET, "/api/patients", &first)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(
        problem["detail"],
        "the access token was revoked by logging out"
    );
    assert_eq!(status_with(&app, &second).await, 200);
    // Logging out twice, or without a token, is refused like any other use of it.
    let again = logout(&app, &first).await;
    assert_eq!(again.status(), 401);
    let anonymous = app.http.post(app.url("/auth/logout")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
}

#[tokio::test]
async fn a_logout_reaches_another_gateway_through_nats() {
    let app = spawn_app().await;
    let other = app.second_gateway().await;
    let token = app.admin_token().await;
    let on_other = |token: &str| {
        app.http
            .get(format!("{other}/api/patients"))
            .bearer_auth(token.to_owned())
            .send()
    };
    assert_eq!(on_other(&token).await.unwrap().status(), 200);
    let out = logout(&app, &token).await;
    assert_eq!(out.status(), 204);
    let mut status = 0;
    for _ in 0..100 {
        status = on_other(&token).await.unwrap().status().as_u16();
        if status == 401 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, 401, "the other gateway still accepts the token");
}

#[tokio::test]
async fn deleting_a_staff_member_or_changing_their_role_or_login_revokes_their_tokens_at_once() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;

    let id = nurse(&app, &admin, "nurse.role").await;
    let token = login_token(&app, "nurse.role", "the first long password").await;
    assert_eq!(status_with(&app, &token).await, 200);
    let promoted = app
        .api(Method::PUT, &format!("/api/staff/{id}"), &admin)
        .json(&json!({"name": "Nurse Session", "role": "doctor"}))
        .send()
        .await
        .unwrap();
    assert_eq!(promoted.status(), 200);
    let problem = refused_soon(&app, &token).await;
    assert_eq!(
        problem["detail"],
        "the account's role has changed; log in again"
    );
    let as_doctor = login_token(&app, "nurse.role", "the first long password").await;
    assert_eq!(status_with(&app, &as_doctor).await, 200);

    let removed = app
        .api(Method::DELETE, &format!("/api/staff/{id}"), &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), 204);
    let problem = refused_soon(&app, &as_doctor).await;
    assert_eq!(problem["detail"], "the account can no longer log in");

    let id = nurse(&app, &admin, "nurse.login").await;
    let token = login_token(&app, "nurse.login", "the first long password").await;
    let no_login = app
        .api(Method::PUT, &format!("/api/staff/{id}"), &admin)
        .json(&json!({"name": "Nurse Session", "role": "nurse", "username": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(no_login.status(), 200);
    refused_soon(&app, &token).await;
}

#[tokio::test]
async fn changing_ones_password_answers_a_new_token_and_ends_the_other_sessions() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    nurse(&app, &admin, "nurse.pw").await;
    let here = login_token(&app, "nurse.pw", "the first long password").await;
    let elsewhere = login_token(&app, "nurse.pw", "the first long password").await;
    let change = |body: Value| {
        app.api(Method::POST, "/auth/password", &here)
            .json(&body)
            .send()
    };

    let weak =
        change(json!({"current_password": "the first long password", "new_password": "short"}))
            .await
            .unwrap();
    assert_eq!(weak.status(), 422);
    let problem: Value = weak.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "new_password");
    let wrong = change(json!({"current_password": "a wrong guess here", "new_password": "the second long password"}))
        .await
        .unwrap();
    assert_eq!(wrong.status(), 422);
    let problem: Value = wrong.json().await.unwrap();
    assert_eq!(
        problem["errors"],
        json!([{"field": "current_password", "message": "is not your current password"}])
    );
    let missing = change(json!({"new_password": "the second long password"}))
        .await
        .unwrap();
    assert_eq!(missing.status(), 422);

    let changed = change(json!({"current_password": "the first long password", "new_password": "the second long password"}))
        .await
        .unwrap();
    assert_eq!(changed.status(), 200);
    let fresh: Value = changed.json().await.unwrap();
    let fresh = fresh["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        status_with(&app, &here).await,
        401,
        "the token used is replaced at once"
    );
    let problem = refused_soon(&app, &elsewhere).await;
    assert_eq!(
        problem["detail"],
        "the account's password has changed; log in again"
    );
    assert_eq!(status_with(&app, &fresh).await, 200);
    assert_eq!(
        app.login("nurse.pw", "the first long password")
            .await
            .status(),
        401
    );
    login_token(&app, "nurse.pw", "the second long password").await;

    // The change is an event: every service learns of it, and no hash is in it.
    let events = app.events("hospital.events.staff.*.password_changed").await;
    assert_eq!(events.len(), 1);
    assert!(
        !serde_json::to_string(&events[0].1)
            .unwrap()
            .contains("argon2")
    );
}

#[tokio::test]
async fn failed_logins_are_limited_per_username_with_retry_after() {
    let app = spawn_app().await;
    for attempt in 0..5 {
        let response = app.login("admin", "not the password at all").await;
        assert_eq!(response.status(), 401, "attempt {attempt}");
    }
    let limited = app.login("admin", "not the password at all").await;
    assert_eq!(limited.status(), 429);
    let wait: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=15 * 60).contains(&wait), "Retry-After {wait}");
    assert_eq!(
        limited.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = limited.json().await.unwrap();
    assert_eq!(problem["status"], 429);
    assert_eq!(
        problem["detail"],
        "too many failed logins; try again in 15 minutes"
    );
    // Even the right password waits: otherwise the limit would only slow guessing down.
    let right = app.login("admin", crate::helpers::ADMIN_PASSWORD).await;
    assert_eq!(right.status(), 429);
}

#[tokio::test]
async fn failed_logins_are_limited_per_client_address() {
    let app = spawn_app().await;
    for n in 0..staff_service::login_limits::DEFAULT_MAX_FAILURES_PER_ADDRESS {
        let response = app.login(&format!("nobody{n}"), "not a password").await;
        assert_eq!(response.status(), 401);
    }
    // One more username from the same address is limited too.
    assert_eq!(
        app.login("someone.else", "not a password").await.status(),
        429
    );
}

#[tokio::test]
async fn a_successful_login_clears_the_usernames_failures() {
    let app = spawn_app().await;
    for _ in 0..2 {
        for attempt in 0..4 {
            let response = app.login("admin", "not the password at all").await;
            assert_eq!(response.status(), 401, "attempt {attempt}");
        }
        let right = app.login("admin", crate::helpers::ADMIN_PASSWORD).await;
        assert_eq!(right.status(), 200);
    }
}

/// The point of counting in the staff service's database: with two gateways, an attacker does
/// not get the limit once per gateway.
#[tokio::test]
async fn two_gateways_share_one_failed_login_limit() {
    let app = spawn_app().await;
    let other = app.second_gateway().await;
    let login_at = |base: String| {
        app.http
            .post(format!("{base}/auth/login"))
            .json(&json!({"username": "admin", "password": "not the password at all"}))
            .send()
    };
    for (attempt, base) in [&app.address, &other, &app.address, &other, &other]
        .into_iter()
        .enumerate()
    {
        let response = login_at(base.clone()).await.unwrap();
        assert_eq!(response.status(), 401, "attempt {attempt} at {base}");
    }
    for base in [&app.address, &other] {
        let limited = login_at(base.clone()).await.unwrap();
        assert_eq!(limited.status(), 429, "at {base}");
        assert!(limited.headers().contains_key("retry-after"), "at {base}");
        assert_eq!(
            limited.headers()["content-type"],
            "application/problem+json"
        );
    }
}

#[tokio::test]
async fn an_open_live_feed_ends_once_its_token_is_revoked() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let mut feed = app
        .api(Method::GET, "/api/events/stream", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(feed.status(), 200);
    let first = feed.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("event: ready"));
    let out = logout(&app, &token).await;
    assert_eq!(out.status(), 204);
    // The next event is not sent: the feed ends instead.
    let other = app.admin_token().await;
    app.create_patient(&other, crate::helpers::patient_body("After Logout"))
        .await;
    let mut rest = String::new();
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(chunk) = feed.chunk().await.unwrap() {
            rest.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await;
    assert!(ended.is_ok(), "the feed is still open");
    assert!(!rest.contains("After Logout"), "{rest}");
}

//! Login and token checks through the gateway.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{ADMIN_PASSWORD, spawn_app};

#[tokio::test]
async fn the_first_admin_logs_in_with_the_configured_password() {
    let app = spawn_app().await;
    let response = app.login("admin", ADMIN_PASSWORD).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["access_token"].as_str().unwrap().split('.').count(), 3);
}

#[tokio::test]
async fn unknown_user_and_wrong_password_get_the_same_401() {
    let app = spawn_app().await;
    let wrong_password = app.login("admin", "not the password at all").await;
    let unknown_user = app.login("nobody", ADMIN_PASSWORD).await;
    assert_eq!(wrong_password.status(), 401);
    assert_eq!(unknown_user.status(), 401);
    let a: Value = wrong_password.json().await.unwrap();
    let b: Value = unknown_user.json().await.unwrap();
    assert_eq!(a["detail"], b["detail"]);
    assert_eq!(a["title"], b["title"]);
}

#[tokio::test]
async fn a_login_body_without_fields_is_rejected_not_crashed() {
    let app = spawn_app().await;
    for body in [
        json!({}),
        json!({"username": "admin"}),
        json!({"username": 1, "password": 2}),
    ] {
        let response = app
            .http
            .post(app.url("/auth/login"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_client_error(),
            "{body} gave {}",
            response.status()
        );
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
    }
}

#[tokio::test]
async fn a_new_staff_login_works_and_a_deleted_one_stops_working() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let created = app
        .api(Method::POST, "/api/staff", &token)
        .json(&json!({"name": "Dr Meredith Grey", "role": "doctor", "specialization": "General surgery",
                      "username": "mgrey", "password": "a long enough password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let staff: Value = created.json().await.unwrap();
    assert!(
        staff.get("password").is_none(),
        "the password is write-only"
    );
    assert_eq!(
        app.login("mgrey", "a long enough password").await.status(),
        200
    );

    let id = staff["id"].as_str().unwrap();
    let deleted = app
        .api(Method::DELETE, &format!("/api/staff/{id}"), &token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    assert_eq!(
        app.login("mgrey", "a long enough password").await.status(),
        401
    );
}

#[tokio::test]
async fn api_routes_need_a_valid_token() {
    let app = spawn_app().await;
    let no_token = app.http.get(app.url("/api/patients")).send().await.unwrap();
    assert_eq!(no_token.status(), 401);
    assert_eq!(no_token.headers()["www-authenticate"], "Bearer");
    let garbage = app
        .http
        .get(app.url("/api/patients"))
        .bearer_auth("not-a-jwt")
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), 401);
    let basic = app
        .http
        .get(app.url("/api/staff"))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 401);

    // A token signed with another key.
    let token = app.admin_token().await;
    let mut parts: Vec<&str> = token.split('.').collect();
    let forged_signature = "c2lnbmVkLWJ5LXNvbWVvbmUtZWxzZQ";
    parts[2] = forged_signature;
    let forged = parts.join(".");
    let response = app
        .http
        .get(app.url("/api/patients"))
        .bearer_auth(forged)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    use jsonwebtoken::{EncodingKey, Header, encode};
    let app = spawn_app().await;
    let now = chrono::Utc::now().timestamp();
    let claims = json!({"sub": uuid::Uuid::now_v7(), "role": "admin", "name": "A", "iat": now - 7200,
                        "nbf": now - 7200, "exp": now - 3600, "iss": "smart-healthcare", "aud": "hospital-api",
                        "jti": uuid::Uuid::now_v7()});
    let token = encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(crate::helpers::JWT_SECRET.as_bytes()),
    )
    .unwrap();
    let response = app
        .http
        .get(app.url("/api/patients"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn tokens_with_a_wrong_algorithm_claim_or_signature_are_refused() {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
    let app = spawn_app().await;
    let now = chrono::Utc::now().timestamp();
    let good = json!({"sub": uuid::Uuid::now_v7(), "role": "admin", "name": "A", "iat": now,
                      "nbf": now, "exp": now + 600, "iss": "smart-healthcare", "aud": "hospital-api",
                      "jti": uuid::Uuid::now_v7()});
    let key = EncodingKey::from_secret(crate::helpers::JWT_SECRET.as_bytes());
    let sign = |claims: &Value, alg: Algorithm| encode(&Header::new(alg), claims, &key).unwrap();
    let status_of = |token: String| {
        let request = app
            .http
            .get(app.url("/api/staff"))
            .bearer_auth(token)
            .send();
        async move { request.await.unwrap().status().as_u16() }
    };
    assert_eq!(
        status_of(sign(&good, Algorithm::HS256)).await,
        200,
        "the control"
    );

    let mut refused = vec![
        ("HS384", sign(&good, Algorithm::HS384)),
        ("HS512", sign(&good, Algorithm::HS512)),
        (
            "alg none",
            format!(
                "{}.{}.",
                B64.encode(r#"{"alg":"none","typ":"JWT"}"#),
                B64.encode(good.to_string())
            ),
        ),
    ];
    let tampered = {
        let token = sign(&good, Algorithm::HS256);
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let mut claims = good.clone();
        claims["role"] = json!("doctor");
        parts[1] = B64.encode(claims.to_string());
        parts.join(".")
    };
    refused.push(("tampered payload", tampered));
    for (name, change) in [
        ("wrong iss", json!({"iss": "someone-else"})),
        ("wrong aud", json!({"aud": "another-api"})),
        (
            "not yet valid",
            json!({"nbf": now + 3600, "iat": now + 3600}),
        ),
        ("expired", json!({"exp": now - 60})),
        ("unknown role", json!({"role": "janitor"})),
    ] {
        let mut claims = good.clone();
        for (k, v) in change.as_object().unwrap() {
            claims[k] = v.clone();
        }
        refused.push((name, sign(&claims, Algorithm::HS256)));
    }
    for missing in ["sub", "role", "iat", "exp", "iss", "aud", "jti"] {
        let mut claims = good.clone();
        claims.as_object_mut().unwrap().remove(missing);
        refused.push((missing, sign(&claims, Algorithm::HS256)));
    }
    for (name, token) in refused {
        assert_eq!(status_of(token).await, 401, "{name}");
    }
}

//! Step 10: the protected resource, driven over HTTP with access tokens from
//! the real mock IdP's flow. Each user sees only their own notes; each route
//! needs its scope; notes survive a restart; `/api/me` shows the checks.
//! What touches the notes' database runs on SQLite and on PostgreSQL.

use serde_json::{Value, json};
use test_case::test_case;
use testkit::{
    ALICE, ALL_SCOPES, AUDIENCE, BOB,
    api::Api,
    database::Engine,
    header_of,
    idp::{Idp, login},
};

async fn post_note(api: &Api, token: &str, body: Value) -> reqwest::Response {
    testkit::http_client()
        .post(format!("{}/api/notes", api.base_url))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("the API answers")
}

async fn list_notes(api: &Api, token: &str) -> reqwest::Response {
    testkit::http_client()
        .get(format!("{}/api/notes", api.base_url))
        .bearer_auth(token)
        .send()
        .await
        .expect("the API answers")
}

async fn delete_note(api: &Api, token: &str, id: &Value) -> reqwest::Response {
    testkit::http_client()
        .delete(format!("{}/api/notes/{id}", api.base_url))
        .bearer_auth(token)
        .send()
        .await
        .expect("the API answers")
}

async fn note_texts(api: &Api, token: &str) -> Vec<String> {
    let response = list_notes(api, token).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("JSON");
    body["notes"]
        .as_array()
        .expect("notes")
        .iter()
        .map(|n| n["text"].as_str().expect("text").to_owned())
        .collect()
}

#[tokio::test]
async fn healthz_answers_ok() {
    let idp = Idp::start().await;
    let api = Api::start(&idp).await;
    let response = testkit::http_client()
        .get(format!("{}/healthz", api.base_url))
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.expect("text"), "ok");
}

#[tokio::test]
async fn me_shows_subject_client_scopes_and_the_checks_passed_rfc9068_4() {
    let idp = Idp::start().await;
    let api = Api::start(&idp).await;
    let tokens = login(&idp, &ALICE, ALL_SCOPES).await;
    let kid = header_of(&tokens.access_token)["kid"]
        .as_str()
        .expect("kid")
        .to_owned();

    let response = api.me(&tokens.access_token).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let me: Value = response.json().await.expect("JSON");
    assert!(me["sub"].as_str().is_some_and(|s| !s.is_empty()), "{me}");
    assert_eq!(me["client_id"], "bff-demo");
    let scopes: Vec<&str> = me["scopes"]
        .as_array()
        .expect("scopes")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        scopes.contains(&"notes:read") && scopes.contains(&"notes:write"),
        "{scopes:?}"
    );
    assert!(me["expires_at"].as_i64().expect("expires_at") > idp.time.now());
    let checks: Vec<&str> = me["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for expected in [
        "typ is at+jwt".to_owned(),
        format!("signature verified with RS256 key kid={kid}"),
        format!("iss is {}", idp.issuer),
        format!("aud contains {AUDIENCE}"),
        "not expired".to_owned(),
    ] {
        assert!(
            checks.iter().any(|c| c.contains(&expected)),
            "no check {expected:?} in {checks:?}"
        );
    }
}

#[test_case(Engine::Sqlite ; "sqlite")]
#[test_case(Engine::Postgres ; "postgres")]
#[tokio::test]
async fn notes_are_created_and_listed_newest_first(engine: Engine) {
    let Some(db) = engine.database().await else {
        return;
    };
    let idp = Idp::start().await;
    let api = Api::start_with_args(&idp, &["--database-url", db.url()]).await;
    let token = login(&idp, &ALICE, ALL_SCOPES).await.access_token;

    let response = post_note(&api, &token, json!({"text": "first"})).await;
    assert_eq!(response.status(), 201);
    let note: Value = response.json().await.expect("JSON");
    assert!(note["id"].is_i64());
    assert_eq!(note["text"], "first");
    let created_at = note["created_at"].as_str().expect("created_at");
    assert!(
        created_at.len() == 20 && created_at.ends_with('Z') && created_at.as_bytes()[10] == b'T',
        "{created_at}"
    );

    assert_eq!(
        post_note(&api, &token, json!({"text": "second"}))
            .await
            .status(),
        201
    );
    assert_eq!(note_texts(&api, &token).await, ["second", "first"]);

    assert_eq!(delete_note(&api, &token, &note["id"]).await.status(), 204);
    assert_eq!(note_texts(&api, &token).await, ["second"]);
    assert_eq!(delete_note(&api, &token, &note["id"]).await.status(), 404);
}

#[test_case(Engine::Sqlite ; "sqlite")]
#[test_case(Engine::Postgres ; "postgres")]
#[tokio::test]
async fn one_user_cannot_read_or_delete_anothers_note(engine: Engine) {
    let Some(db) = engine.database().await else {
        return;
    };
    let idp = Idp::start().await;
    let api = Api::start_with_args(&idp, &["--database-url", db.url()]).await;
    let alice = login(&idp, &ALICE, ALL_SCOPES).await.access_token;
    let bob = login(&idp, &BOB, ALL_SCOPES).await.access_token;

    let note: Value = post_note(&api, &alice, json!({"text": "alice's secret"}))
        .await
        .json()
        .await
        .expect("JSON");
    assert!(
        note_texts(&api, &bob).await.is_empty(),
        "bob reads alice's notes"
    );

    let response = delete_note(&api, &bob, &note["id"]).await;
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body, json!({"error": "not_found"}));
    assert_eq!(
        note_texts(&api, &alice).await,
        ["alice's secret"],
        "alice's note is still there"
    );
}

#[tokio::test]
async fn writing_without_notes_write_is_insufficient_scope_rfc6750_3_1() {
    let idp = Idp::start().await;
    let api = Api::start(&idp).await;
    let read_only = login(&idp, &ALICE, "openid notes:read").await.access_token;

    let response = post_note(&api, &read_only, json!({"text": "hello"})).await;
    assert_eq!(response.status(), 403);
    assert_eq!(
        response.headers()["www-authenticate"],
        r#"Bearer realm="api", error="insufficient_scope", scope="notes:write""#
    );
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["error"], "insufficient_scope");

    assert_eq!(delete_note(&api, &read_only, &json!(1)).await.status(), 403);
    assert_eq!(list_notes(&api, &read_only).await.status(), 200);
}

#[tokio::test]
async fn reading_without_notes_read_is_insufficient_scope_rfc6750_3_1() {
    let idp = Idp::start().await;
    let api = Api::start(&idp).await;
    let no_notes = login(&idp, &ALICE, "openid profile").await.access_token;
    let response = list_notes(&api, &no_notes).await;
    assert_eq!(response.status(), 403);
    assert_eq!(
        response.headers()["www-authenticate"],
        r#"Bearer realm="api", error="insufficient_scope", scope="notes:read""#
    );
    // Any valid token may ask who it is.
    assert_eq!(api.me(&no_notes).await.status(), 200);
}

#[test_case(Engine::Sqlite ; "sqlite")]
#[test_case(Engine::Postgres ; "postgres")]
#[tokio::test]
async fn note_text_is_bounded_and_not_blank(engine: Engine) {
    let Some(db) = engine.database().await else {
        return;
    };
    let idp = Idp::start().await;
    let api = Api::start_with_args(&idp, &["--database-url", db.url()]).await;
    let token = login(&idp, &ALICE, ALL_SCOPES).await.access_token;

    for body in [
        json!({"text": ""}),
        json!({"text": " \n\t "}),
        json!({"text": "x".repeat(1001)}),
        json!({"nope": 1}),
    ] {
        let response = post_note(&api, &token, body).await;
        assert_eq!(response.status(), 400);
        let error: Value = response.json().await.expect("JSON");
        assert_eq!(error["error"], "invalid_request");
        assert!(error["error_description"].is_string());
    }
    let not_json = testkit::http_client()
        .post(format!("{}/api/notes", api.base_url))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("answer");
    assert_eq!(not_json.status(), 400);

    assert_eq!(
        post_note(&api, &token, json!({"text": "é".repeat(1000)}))
            .await
            .status(),
        201
    );
    assert_eq!(note_texts(&api, &token).await.len(), 1);
}

#[test_case(Engine::Sqlite ; "sqlite")]
#[test_case(Engine::Postgres ; "postgres")]
#[tokio::test]
async fn notes_survive_an_api_restart(engine: Engine) {
    let Some(db) = engine.database().await else {
        return;
    };
    let idp = Idp::start().await;
    let token = login(&idp, &ALICE, ALL_SCOPES).await.access_token;

    let mut api = Api::start_with_args(&idp, &["--database-url", db.url()]).await;
    assert_eq!(
        post_note(&api, &token, json!({"text": "kept"}))
            .await
            .status(),
        201
    );
    api.shutdown().await;

    let mut api = Api::start_with_args(&idp, &["--database-url", db.url()]).await;
    assert_eq!(note_texts(&api, &token).await, ["kept"]);
    api.shutdown().await;
}

#[tokio::test]
async fn request_id_is_kept_or_made_and_echoed() {
    let idp = Idp::start().await;
    let api = Api::start(&idp).await;
    let client = testkit::http_client();
    let response = client
        .get(format!("{}/healthz", api.base_url))
        .header("x-request-id", "test-123")
        .send()
        .await
        .expect("answer");
    assert_eq!(response.headers()["x-request-id"], "test-123");
    let response = client
        .get(format!("{}/healthz", api.base_url))
        .send()
        .await
        .expect("answer");
    assert!(!response.headers()["x-request-id"].is_empty());
}

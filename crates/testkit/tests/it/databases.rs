//! The whole flow, in-process, with the IdP's and the API's state on each
//! database they run on: SQLite files (the default) and PostgreSQL.

use reqwest::Method;
use serde_json::{Value, json};
use test_case::test_case;
use testkit::{ALICE, bff::Received, database::Engine, http_client, stack::Stack};

#[test_case(Engine::Sqlite ; "sqlite")]
#[test_case(Engine::Postgres ; "postgres")]
#[tokio::test]
async fn a_person_signs_in_and_keeps_notes_with_the_idp_and_api_on_each_database(engine: Engine) {
    let (Some(idp_db), Some(api_db)) = (engine.database().await, engine.database().await) else {
        return;
    };
    let stack = Stack::start_on(mock_idp::Settings::demo(), &[], idp_db.url(), api_db.url()).await;
    let browser = http_client();
    let mut received = Received::default();

    // Steps 1-8: the IdP stores Alice's session, consent and tokens.
    let landed = stack.bff.sign_in(&browser, &ALICE, &mut received).await;
    assert_eq!(landed, stack.bff.url("/"));
    let user = stack.bff.user(&browser).await;
    let (status, _, body) = received.record(user).await;
    assert_eq!(status, 200, "{body}");
    let user: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(user["name"], ALICE.name);

    // Steps 9-10: the API stores her note.
    let created = stack
        .bff
        .json(&browser, Method::POST, "/bff/api/notes")
        .json(&json!({"text": "on every database"}))
        .send()
        .await
        .unwrap();
    let (status, _, body) = received.record(created).await;
    assert_eq!(status, 201, "{body}");
    let listed = stack
        .bff
        .json(&browser, Method::GET, "/bff/api/notes")
        .send()
        .await
        .unwrap();
    let (status, _, body) = received.record(listed).await;
    assert_eq!(status, 200, "{body}");
    let notes: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(notes["notes"][0]["text"], "on every database");
}

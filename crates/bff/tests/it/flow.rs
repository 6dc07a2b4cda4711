//! The whole flow through the BFF, all four actors real and in-process:
//! a cookie-keeping HTTP client plays the browser, signs in on the IdP's
//! forms, comes back signed in, and uses its notes through the proxy.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use testkit::{ALICE, BOB, TempFile, bff::Received, http_client, location, query_of, stack::Stack};

#[tokio::test]
async fn a_person_signs_in_sees_their_name_and_uses_notes_through_the_proxy() {
    let stack = Stack::start().await;
    let browser = http_client();
    let mut received = Received::default();

    // Signed out: the home page offers to sign in; /bff/user says 401.
    let home = browser.get(stack.bff.url("/")).send().await.unwrap();
    let (_, _, body) = received.record(home).await;
    assert!(
        body.contains("/bff/login"),
        "signed-out home has a sign-in link"
    );
    let user = stack.bff.user(&browser).await;
    assert_eq!(user.status(), 401);

    let landed = stack.bff.sign_in(&browser, &ALICE, &mut received).await;
    assert_eq!(landed, stack.bff.url("/"));

    let home = browser.get(stack.bff.url("/")).send().await.unwrap();
    let (status, headers, body) = received.record(home).await;
    assert_eq!(status, 200);
    assert!(
        body.contains(ALICE.name),
        "the signed-in page shows the user's name"
    );
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
    assert_eq!(headers["x-frame-options"], "DENY");

    let user = stack.bff.user(&browser).await;
    let (status, _, body) = received.record(user).await;
    assert_eq!(status, 200);
    let user: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(user["name"], ALICE.name);
    assert_eq!(user["email"], ALICE.username);
    assert!(user["session_expires_at"].as_i64().unwrap() > 0);

    // Notes through the proxy (steps 9-10).
    let created = stack
        .bff
        .json(&browser, Method::POST, "/bff/api/notes")
        .json(&json!({"text": "buy tea"}))
        .send()
        .await
        .unwrap();
    let (status, _, body) = received.record(created).await;
    assert_eq!(status, 201, "{body}");
    let note: Value = serde_json::from_str(&body).unwrap();
    let listed = stack
        .bff
        .json(&browser, Method::GET, "/bff/api/notes")
        .send()
        .await
        .unwrap();
    let (_, _, body) = received.record(listed).await;
    let notes: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(notes["notes"][0]["text"], "buy tea");
    let me = stack
        .bff
        .json(&browser, Method::GET, "/bff/api/me")
        .send()
        .await
        .unwrap();
    let (_, _, body) = received.record(me).await;
    let me: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(me["sub"], user["sub"]);
    let deleted = stack
        .bff
        .json(
            &browser,
            Method::DELETE,
            &format!("/bff/api/notes/{}", note["id"]),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);

    // Bob, in another browser, does not see Alice's notes.
    stack
        .bff
        .json(&browser, Method::POST, "/bff/api/notes")
        .json(&json!({"text": "alice only"}))
        .send()
        .await
        .unwrap();
    let bob = http_client();
    stack.bff.sign_in(&bob, &BOB, &mut received).await;
    let listed = stack
        .bff
        .json(&bob, Method::GET, "/bff/api/notes")
        .send()
        .await
        .unwrap();
    let (_, _, body) = received.record(listed).await;
    assert!(
        !body.contains("alice only"),
        "bob sees alice's note: {body}"
    );
}

#[tokio::test]
async fn the_proxy_answers_502_json_when_the_api_is_down() {
    let mut stack = Stack::start().await;
    let browser = http_client();
    stack
        .bff
        .sign_in(&browser, &ALICE, &mut Received::default())
        .await;
    stack.api.shutdown().await;
    let response = stack
        .bff
        .json(&browser, Method::GET, "/bff/api/notes")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "bad_gateway");
}

#[tokio::test]
async fn a_session_in_sqlite_survives_a_bff_restart() {
    let db = TempFile::new("bff-restart.db");
    let store = db.sqlite_url();
    let mut stack =
        Stack::start_with(mock_idp::Settings::demo(), &["--session-store", &store]).await;
    let browser = http_client();
    stack
        .bff
        .sign_in(&browser, &ALICE, &mut Received::default())
        .await;
    stack.bff.restart().await;
    let user = stack.bff.user(&browser).await;
    assert_eq!(user.status(), 200);
}

#[tokio::test]
async fn a_session_ends_at_its_absolute_lifetime_even_when_used() {
    let stack = Stack::start_with(
        mock_idp::Settings::demo(),
        &["--session-absolute-seconds", "3600"],
    )
    .await;
    let browser = http_client();
    stack
        .bff
        .sign_in(&browser, &ALICE, &mut Received::default())
        .await;
    // Used every ten minutes, it never idles out, but the hour is the hour.
    for _ in 0..5 {
        stack.time.advance(Duration::from_secs(600));
        assert_eq!(stack.bff.user(&browser).await.status(), 200);
    }
    stack.time.advance(Duration::from_secs(599));
    assert_eq!(stack.bff.user(&browser).await.status(), 200);
    stack.time.advance(Duration::from_secs(1));
    let user = stack.bff.user(&browser).await;
    assert_eq!(user.status(), 401, "signed out after the absolute lifetime");
}

#[tokio::test]
async fn a_session_ends_when_idle_longer_than_its_idle_lifetime() {
    // The default idle lifetime: half an hour.
    let stack = Stack::start().await;
    let (idle, busy) = (http_client(), http_client());
    stack
        .bff
        .sign_in(&idle, &ALICE, &mut Received::default())
        .await;
    stack
        .bff
        .sign_in(&busy, &BOB, &mut Received::default())
        .await;
    stack.time.advance(Duration::from_secs(1799));
    // One second short of it, a session is still alive (this use slides it).
    assert_eq!(stack.bff.user(&busy).await.status(), 200);
    stack.time.advance(Duration::from_secs(1));
    assert_eq!(stack.bff.user(&busy).await.status(), 200);
    let user = stack.bff.user(&idle).await;
    assert_eq!(user.status(), 401, "signed out after being idle");
}

#[tokio::test]
async fn extra_authorize_parameters_reach_the_authorization_request() {
    let stack = Stack::start_with(
        mock_idp::Settings::demo(),
        &[
            "--authorize-param",
            "audience=api://default",
            "--authorize-param",
            "login_hint=alice@example.com",
        ],
    )
    .await;
    let browser = http_client();
    let login = browser
        .get(stack.bff.url("/bff/login"))
        .send()
        .await
        .unwrap();
    let query = testkit::query_of(&testkit::location(&login));
    assert_eq!(query["audience"], "api://default");
    assert_eq!(query["login_hint"], "alice@example.com");
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["code_challenge"].len(), 43);
}

#[tokio::test]
async fn a_signing_key_rotated_at_the_idp_is_picked_up_without_a_restart_oidc_core_10_1_1() {
    let stack = Stack::start().await;
    // The BFF fetched the JWKS at start; the IdP now signs with a new key.
    stack.idp.rotate_keys().await;
    let browser = http_client();
    let landed = stack
        .bff
        .sign_in(&browser, &ALICE, &mut Received::default())
        .await;
    assert_eq!(landed, stack.bff.url("/"));
    let user = stack.bff.user(&browser).await;
    assert_eq!(user.status(), 200);
}

#[tokio::test]
async fn the_idle_lifetime_slides_while_the_session_is_used() {
    let stack = Stack::start_with(
        mock_idp::Settings::demo(),
        &["--session-idle-seconds", "600"],
    )
    .await;
    let browser = http_client();
    stack
        .bff
        .sign_in(&browser, &ALICE, &mut Received::default())
        .await;
    // Used every eight minutes, for forty: well past the ten-minute idle
    // lifetime, and still signed in.
    for _ in 0..5 {
        stack.time.advance(Duration::from_secs(480));
        let user = stack.bff.user(&browser).await;
        assert_eq!(
            user.status(),
            200,
            "an active session stays signed in past its idle lifetime"
        );
    }
}

#[tokio::test]
async fn a_request_in_flight_during_logout_does_not_bring_the_session_back() {
    let stack = Stack::start().await;
    let browser = http_client();
    stack
        .bff
        .sign_in(&browser, &ALICE, &mut Received::default())
        .await;
    // A proxied upload still streaming its body while the person signs out.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
    let body = reqwest::Body::wrap_stream(stream_from(rx));
    let slow = tokio::spawn(
        stack
            .bff
            .json(&browser, Method::POST, "/bff/api/notes")
            .header("content-type", "application/json")
            .body(body)
            .send(),
    );
    // The upload has reached the API: the BFF holds its session.
    stack.api.faults.arrived("/api/notes", 1).await;
    let logout = stack
        .bff
        .json(&browser, Method::POST, "/bff/logout")
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 200, "the sign-out page");
    tx.send(Ok(br#"{"text": "late"}"#.to_vec())).await.unwrap();
    drop(tx);
    let _ = slow.await.unwrap();
    let user = stack.bff.user(&browser).await;
    assert_eq!(
        user.status(),
        401,
        "the logged-out session stayed logged out"
    );
}

fn stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<Vec<u8>, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[tokio::test]
async fn the_callback_answers_a_refused_code_with_a_page_to_start_again_not_a_502() {
    let stack = Stack::start().await;
    let browser = http_client();
    let login = browser
        .get(stack.bff.url("/bff/login"))
        .send()
        .await
        .unwrap();
    let state = query_of(&location(&login))["state"].clone();
    // The provider's answer comes back with a code it never issued (or one
    // that expired on the way): the token endpoint refuses it.
    let callback = format!(
        "{}?code={}&state={state}&iss={}",
        stack.bff.url("/bff/callback"),
        testkit::random_string(),
        stack.idp.issuer
    );
    let response = browser.get(&callback).send().await.unwrap();
    assert_eq!(response.status(), 400);
    let page = response.text().await.unwrap();
    assert!(page.contains("did not complete"), "{page}");
    assert!(page.contains("/bff/login"), "offers a fresh sign-in");
}

#[tokio::test]
async fn the_callback_answers_a_script_with_json() {
    let stack = Stack::start().await;
    let browser = http_client();
    let login = browser
        .get(stack.bff.url("/bff/login"))
        .send()
        .await
        .unwrap();
    let state = query_of(&location(&login))["state"].clone();
    let callback = format!(
        "{}?code=not-a-code&state={state}&iss={}",
        stack.bff.url("/bff/callback"),
        stack.idp.issuer
    );
    let response = browser
        .get(&callback)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn the_callback_is_a_bad_gateway_only_when_the_provider_cannot_answer() {
    let stack = Stack::start().await;
    let browser = http_client();
    let login = browser
        .get(stack.bff.url("/bff/login"))
        .send()
        .await
        .unwrap();
    let state = query_of(&location(&login))["state"].clone();
    stack.idp.faults.fail("/v1/token", 503);
    let callback = format!(
        "{}?code=c&state={state}&iss={}",
        stack.bff.url("/bff/callback"),
        stack.idp.issuer
    );
    let response = browser.get(&callback).send().await.unwrap();
    let status = response.status();
    assert_eq!(status, 502, "{}", response.text().await.unwrap());
}

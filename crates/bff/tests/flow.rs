//! The whole flow through the BFF, all four actors real and in-process:
//! a cookie-keeping HTTP client plays the browser, signs in on the IdP's
//! forms, comes back signed in, and uses its notes through the proxy.

use reqwest::Method;
use serde_json::{Value, json};
use testkit::{ALICE, BOB, Received, Stack, bff_json, bff_user, http_client, sign_in_through_bff};

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
    let user = bff_user(&browser, &stack).await;
    assert_eq!(user.status(), 401);

    let landed = sign_in_through_bff(&browser, &stack, &ALICE, &mut received).await;
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

    let user = bff_user(&browser, &stack).await;
    let (status, _, body) = received.record(user).await;
    assert_eq!(status, 200);
    let user: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(user["name"], ALICE.name);
    assert_eq!(user["email"], ALICE.username);
    assert!(user["session_expires_at"].as_i64().unwrap() > 0);

    // Notes through the proxy (steps 9-10).
    let created = bff_json(&browser, Method::POST, &stack.bff.url("/bff/api/notes"))
        .json(&json!({"text": "buy tea"}))
        .send()
        .await
        .unwrap();
    let (status, _, body) = received.record(created).await;
    assert_eq!(status, 201, "{body}");
    let note: Value = serde_json::from_str(&body).unwrap();
    let listed = bff_json(&browser, Method::GET, &stack.bff.url("/bff/api/notes"))
        .send()
        .await
        .unwrap();
    let (_, _, body) = received.record(listed).await;
    let notes: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(notes["notes"][0]["text"], "buy tea");
    let me = bff_json(&browser, Method::GET, &stack.bff.url("/bff/api/me"))
        .send()
        .await
        .unwrap();
    let (_, _, body) = received.record(me).await;
    let me: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(me["sub"], user["sub"]);
    let deleted = bff_json(
        &browser,
        Method::DELETE,
        &stack.bff.url(&format!("/bff/api/notes/{}", note["id"])),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(deleted.status(), 204);

    // Bob, in another browser, does not see Alice's notes.
    bff_json(&browser, Method::POST, &stack.bff.url("/bff/api/notes"))
        .json(&json!({"text": "alice only"}))
        .send()
        .await
        .unwrap();
    let bob = http_client();
    sign_in_through_bff(&bob, &stack, &BOB, &mut received).await;
    let listed = bff_json(&bob, Method::GET, &stack.bff.url("/bff/api/notes"))
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
    sign_in_through_bff(&browser, &stack, &ALICE, &mut Received::default()).await;
    stack.api.shutdown().await;
    let response = bff_json(&browser, Method::GET, &stack.bff.url("/bff/api/notes"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "bad_gateway");
}

#[tokio::test]
async fn signing_out_ends_the_session_and_sends_the_browser_to_the_idp() {
    let stack = Stack::start().await;
    let browser = http_client();
    sign_in_through_bff(&browser, &stack, &ALICE, &mut Received::default()).await;
    let home = browser
        .get(stack.bff.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = testkit::form_inputs(&home)["csrf"].clone();
    let response = browser
        .post(stack.bff.url("/bff/logout"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let target = testkit::location(&response);
    assert!(target.starts_with(&stack.idp.url("/v1/logout")), "{target}");
    let query = testkit::query_of(&target);
    assert_eq!(query["client_id"], "bff-demo");
    assert!(
        !target.contains("id_token_hint"),
        "no token passes through the browser"
    );
    let user = bff_user(&browser, &stack).await;
    assert_eq!(user.status(), 401);

    // The IdP asks the person to confirm (no id_token_hint), then ends its
    // own session and sends the browser back to the registered URI.
    let confirm = browser.get(&target).send().await.unwrap();
    assert_eq!(confirm.status(), 200);
    let fields = testkit::form_inputs(&confirm.text().await.unwrap());
    let back = browser
        .post(format!("{}/logout/confirm", stack.idp.base_url))
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(back.status(), 303);
    assert_eq!(testkit::location(&back), stack.bff.url("/"));

    // Signing in again asks for the password.
    let login = browser
        .get(stack.bff.url("/bff/login"))
        .send()
        .await
        .unwrap();
    let authorize = browser.get(testkit::location(&login)).send().await.unwrap();
    assert!(
        testkit::location(&authorize).contains("/signin?"),
        "the IdP session ended"
    );
}

#[tokio::test]
async fn the_logout_confirmation_refuses_a_form_from_elsewhere_oidc_rp_initiated_logout_2() {
    let stack = Stack::start().await;
    let browser = http_client();
    sign_in_through_bff(&browser, &stack, &ALICE, &mut Received::default()).await;
    // Another site's form, without this browser's token.
    let forged = browser
        .post(format!("{}/logout/confirm", stack.idp.base_url))
        .form(&[("csrf", "forged"), ("client_id", "bff-demo")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 400);
    // The IdP session still stands: a new login needs no password.
    let login = browser
        .get(stack.bff.url("/bff/login"))
        .send()
        .await
        .unwrap();
    let authorize = browser.get(testkit::location(&login)).send().await.unwrap();
    assert!(testkit::location(&authorize).contains("/bff/callback"));
}

#[tokio::test]
async fn a_session_in_sqlite_survives_a_bff_restart() {
    let db = std::env::temp_dir().join(format!("bff-restart-{}.db", testkit::random_string()));
    let store = format!("sqlite://{}", db.display());
    let mut stack = Stack::start_with(
        testkit::mock_idp::Settings::demo(),
        &["--session-store", &store],
    )
    .await;
    let browser = http_client();
    sign_in_through_bff(&browser, &stack, &ALICE, &mut Received::default()).await;
    stack.bff.restart().await;
    let user = bff_user(&browser, &stack).await;
    assert_eq!(user.status(), 200);
    let _ = std::fs::remove_file(db);
}

#[tokio::test]
async fn a_session_ends_at_its_absolute_lifetime_even_when_used() {
    let stack = Stack::start_with(
        testkit::mock_idp::Settings::demo(),
        &["--session-absolute-seconds", "2"],
    )
    .await;
    let browser = http_client();
    sign_in_through_bff(&browser, &stack, &ALICE, &mut Received::default()).await;
    let user = bff_user(&browser, &stack).await;
    assert_eq!(user.status(), 200);
    for _ in 0..3 {
        tokio::time::sleep(std::time::Duration::from_millis(800)).await;
        bff_user(&browser, &stack).await;
    }
    let user = bff_user(&browser, &stack).await;
    assert_eq!(user.status(), 401, "signed out after the absolute lifetime");
}

#[tokio::test]
async fn a_session_ends_when_idle_longer_than_its_idle_lifetime() {
    let stack = Stack::start_with(
        testkit::mock_idp::Settings::demo(),
        &["--session-idle-seconds", "1"],
    )
    .await;
    let browser = http_client();
    sign_in_through_bff(&browser, &stack, &ALICE, &mut Received::default()).await;
    tokio::time::sleep(std::time::Duration::from_millis(2200)).await;
    let user = bff_user(&browser, &stack).await;
    assert_eq!(user.status(), 401, "signed out after being idle");
}

#[tokio::test]
async fn extra_authorize_parameters_reach_the_authorization_request() {
    let stack = Stack::start_with(
        testkit::mock_idp::Settings::demo(),
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
    let landed = sign_in_through_bff(&browser, &stack, &ALICE, &mut Received::default()).await;
    assert_eq!(landed, stack.bff.url("/"));
    let user = bff_user(&browser, &stack).await;
    assert_eq!(user.status(), 200);
}

#[tokio::test]
async fn the_idle_lifetime_slides_while_the_session_is_used() {
    let stack = Stack::start_with(
        testkit::mock_idp::Settings::demo(),
        &["--session-idle-seconds", "2"],
    )
    .await;
    let browser = http_client();
    sign_in_through_bff(&browser, &stack, &ALICE, &mut Received::default()).await;
    for _ in 0..5 {
        tokio::time::sleep(std::time::Duration::from_millis(900)).await;
        let user = bff_user(&browser, &stack).await;
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
    sign_in_through_bff(&browser, &stack, &ALICE, &mut Received::default()).await;
    // A proxied upload still streaming its body while the person signs out.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
    let body = reqwest::Body::wrap_stream(tokio_stream_from(rx));
    let slow = tokio::spawn(
        bff_json(&browser, Method::POST, &stack.bff.url("/bff/api/notes"))
            .header("content-type", "application/json")
            .body(body)
            .send(),
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let logout = bff_json(&browser, Method::POST, &stack.bff.url("/bff/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 303);
    tx.send(Ok(br#"{"text": "late"}"#.to_vec())).await.unwrap();
    drop(tx);
    let _ = slow.await.unwrap();
    let user = bff_user(&browser, &stack).await;
    assert_eq!(
        user.status(),
        401,
        "the logged-out session stayed logged out"
    );
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<Vec<u8>, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// The IdP's demo settings with short-lived access tokens.
fn short_access_tokens(seconds: u64) -> testkit::mock_idp::Settings {
    let mut settings = testkit::mock_idp::Settings::demo();
    settings.clients[0].access_token_seconds = Some(seconds);
    settings
}

#[tokio::test]
async fn an_expiring_access_token_is_refreshed_before_the_api_call_rfc6749_6() {
    // 31 s tokens are already inside the BFF's 30 s refresh margin after 1 s.
    let stack = Stack::start_with(short_access_tokens(31), &[]).await;
    let browser = http_client();
    sign_in_through_bff(&browser, &stack, &ALICE, &mut Received::default()).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let first: Value = bff_json(&browser, Method::GET, &stack.bff.url("/bff/api/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let second: Value = bff_json(&browser, Method::GET, &stack.bff.url("/bff/api/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(first["sub"], second["sub"]);
    assert!(
        second["expires_at"].as_i64() > first["expires_at"].as_i64(),
        "each call got a freshly refreshed token: {first} then {second}"
    );
}

#[tokio::test]
async fn concurrent_calls_share_one_refresh_so_rotation_never_revokes_the_family_rfc9700_4_14_2() {
    let stack = Stack::start_with(short_access_tokens(31), &[]).await;
    let browser = http_client();
    sign_in_through_bff(&browser, &stack, &ALICE, &mut Received::default()).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let calls =
        (0..8).map(|_| bff_json(&browser, Method::GET, &stack.bff.url("/bff/api/me")).send());
    for response in futures_util::future::join_all(calls).await {
        assert_eq!(response.unwrap().status(), 200);
    }
    // Had two of them refreshed with the same token, the IdP would have
    // revoked the family (reuse detection) and this would be 401.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let after = bff_json(&browser, Method::GET, &stack.bff.url("/bff/api/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 200);
}

#[tokio::test]
async fn a_revoked_refresh_token_ends_the_session_cleanly() {
    let stack = Stack::start_with(short_access_tokens(31), &[]).await;
    let browser = http_client();
    sign_in_through_bff(&browser, &stack, &ALICE, &mut Received::default()).await;
    // The person revokes the app's access at the IdP (all its grants).
    let user: Value = bff_user(&browser, &stack).await.json().await.unwrap();
    stack
        .idp
        .state
        .store
        .revoke_client_grants(user["sub"].as_str().unwrap(), "bff-demo")
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let response = bff_json(&browser, Method::GET, &stack.bff.url("/bff/api/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "session_expired");
    let user = bff_user(&browser, &stack).await;
    assert_eq!(user.status(), 401, "the session ended with its grant");
}

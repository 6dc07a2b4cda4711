//! The access token kept usable (RFC 6749 6) without ever logging a person
//! out by accident: one refresh grant per refresh token, whatever the number
//! of requests and instances (RFC 9700 4.14.2: the provider revokes the
//! family on reuse), no older token set written back over a newer one, and
//! only a definitive refusal ending the session.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use testkit::{ALICE, BOB, CLIENT_ID, bff::Received, claims_of, http_client, redis, stack::Stack};

/// Time enough for the demo's 300 s access tokens to be due for refresh.
const PAST_EXPIRY: Duration = Duration::from_secs(280);

async fn me(stack: &Stack, browser: &reqwest::Client) -> reqwest::Response {
    stack.bff.api(browser, "me").await
}

/// How many token requests the IdP has answered.
fn grants(stack: &Stack) -> usize {
    stack.idp.faults.count("/v1/token")
}

#[tokio::test]
async fn an_expiring_access_token_is_refreshed_before_the_api_call_rfc6749_6() {
    let stack = Stack::start().await;
    let browser = http_client();
    stack
        .bff
        .sign_in(&browser, &ALICE, &mut Received::default())
        .await;
    let first: Value = me(&stack, &browser).await.json().await.unwrap();
    let exchanges = grants(&stack);
    stack.time.advance(PAST_EXPIRY);
    let second: Value = me(&stack, &browser).await.json().await.unwrap();
    assert_eq!(first["sub"], second["sub"]);
    assert!(
        second["expires_at"].as_i64() > first["expires_at"].as_i64(),
        "the call got a freshly refreshed token: {first} then {second}"
    );
    assert_eq!(grants(&stack), exchanges + 1, "one refresh grant");
    // The rotated pair was stored: the next refresh uses the new refresh
    // token, and the provider (which revokes a family on reuse) agrees.
    stack.time.advance(PAST_EXPIRY);
    assert_eq!(me(&stack, &browser).await.status(), 200);
    assert_eq!(grants(&stack), exchanges + 2);
}

#[tokio::test]
async fn concurrent_calls_share_one_refresh_so_rotation_never_revokes_the_family_rfc9700_4_14_2() {
    let stack = Stack::start().await;
    let browser = http_client();
    stack
        .bff
        .sign_in(&browser, &ALICE, &mut Received::default())
        .await;
    let exchanges = grants(&stack);
    stack.time.advance(PAST_EXPIRY);
    let calls = (0..8).map(|_| me(&stack, &browser));
    for response in futures_util::future::join_all(calls).await {
        assert_eq!(response.status(), 200);
    }
    assert_eq!(grants(&stack), exchanges + 1, "one refresh for eight calls");
    // Had two of them refreshed with the same token, the IdP would have
    // revoked the family (reuse detection) and this would be 401.
    stack.time.advance(PAST_EXPIRY);
    assert_eq!(me(&stack, &browser).await.status(), 200);
}

#[tokio::test]
async fn a_revoked_refresh_token_ends_the_session_cleanly() {
    let stack = Stack::start().await;
    let browser = http_client();
    stack
        .bff
        .sign_in(&browser, &ALICE, &mut Received::default())
        .await;
    // The person revokes the app's access at the IdP (all its grants).
    let user: Value = stack.bff.user(&browser).await.json().await.unwrap();
    stack
        .idp
        .state
        .store
        .revoke_grant(user["sub"].as_str().unwrap(), CLIENT_ID)
        .await
        .unwrap();
    stack.time.advance(PAST_EXPIRY);
    let response = me(&stack, &browser).await;
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "session_expired");
    let user = stack.bff.user(&browser).await;
    assert_eq!(user.status(), 401, "the session ended with its grant");
}

#[tokio::test]
async fn the_provider_down_or_limiting_during_a_refresh_keeps_the_session() {
    let stack = Stack::start().await;
    let browser = http_client();
    stack
        .bff
        .sign_in(&browser, &ALICE, &mut Received::default())
        .await;
    stack.time.advance(PAST_EXPIRY);
    for status in [503, 500, 429] {
        stack.idp.faults.fail("/v1/token", status);
        let response = me(&stack, &browser).await;
        assert_eq!(
            response.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "provider {status}"
        );
        assert!(response.headers().contains_key("retry-after"));
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "temporarily_unavailable");
        assert_eq!(
            stack.bff.user(&browser).await.status(),
            200,
            "still signed in while the provider answers {status}"
        );
    }
    // The provider is back: the same session refreshes and goes on.
    stack.idp.faults.clear();
    assert_eq!(me(&stack, &browser).await.status(), 200);
}

#[tokio::test]
async fn the_provider_down_during_a_refresh_keeps_the_session_until_it_is_back() {
    let mut stack = Stack::start().await;
    let browser = http_client();
    stack
        .bff
        .sign_in(&browser, &ALICE, &mut Received::default())
        .await;
    stack.time.advance(PAST_EXPIRY);
    stack.idp.shutdown().await;
    let response = me(&stack, &browser).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key("retry-after"));
    assert_eq!(
        stack.bff.user(&browser).await.status(),
        200,
        "still signed in"
    );
    stack.idp.start_again().await;
    assert_eq!(me(&stack, &browser).await.status(), 200);
}

#[tokio::test]
async fn a_refreshed_id_token_under_a_rotated_key_is_accepted_oidc_core_10_1_1() {
    let stack = Stack::start().await;
    let browser = http_client();
    stack
        .bff
        .sign_in(&browser, &ALICE, &mut Received::default())
        .await;
    let kid = stack.idp.rotate_keys().await;
    stack.time.advance(PAST_EXPIRY);
    assert_eq!(me(&stack, &browser).await.status(), 200);
    let issued = stack.idp.faults.issued_tokens();
    let last_id_token = issued
        .iter()
        .rev()
        .find(|t| claims_of(t).get("nonce").is_none() && claims_of(t)["aud"] == CLIENT_ID)
        .expect("a refreshed ID token");
    assert_eq!(testkit::header_of(last_id_token)["kid"], kid.as_str());
    assert_eq!(
        stack.bff.user(&browser).await.status(),
        200,
        "still signed in"
    );
}

/// The race that lost sessions: a slow request loads the session, another
/// refreshes and stores the rotated pair, then the slow one ends and saves
/// what it loaded. Its copy must not put the rotated-out refresh token back:
/// the next refresh would present it, the provider would take it for a
/// stolen token and revoke the family, and the person would be logged out.
#[tokio::test]
async fn a_slow_request_cannot_write_back_a_rotated_out_refresh_token_rfc9700_4_14_2() {
    let stack = Stack::start().await;
    let browser = http_client();
    stack
        .bff
        .sign_in(&browser, &ALICE, &mut Received::default())
        .await;
    stack.time.advance(Duration::from_secs(200)); // not due for refresh yet
    stack
        .api
        .faults
        .delay("/api/notes", Duration::from_millis(1500));
    let slow = {
        let request = stack
            .bff
            .json(&browser, Method::GET, "/bff/api/notes")
            .send();
        tokio::spawn(request)
    };
    stack.api.faults.arrived("/api/notes", 1).await;
    // Meanwhile the token is due, and another request refreshes it.
    stack.time.advance(Duration::from_secs(80));
    assert_eq!(me(&stack, &browser).await.status(), 200);
    assert_eq!(slow.await.unwrap().unwrap().status(), 200);
    stack.api.faults.clear();
    // The next refresh uses the rotated refresh token, not the slow
    // request's copy of the old one.
    stack.time.advance(PAST_EXPIRY);
    assert_eq!(me(&stack, &browser).await.status(), 200);
    assert_eq!(
        stack.bff.user(&browser).await.status(),
        200,
        "still signed in"
    );
}

/// Two BFF instances on Redis, fifty concurrent calls per session right
/// after expiry, the provider slow: one refresh grant per session, every
/// call answered, nobody logged out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_refresh_each_session_once_under_load_rfc9700_4_14_2() {
    let Some(url) = redis::available().await else {
        return;
    };
    let prefix = redis::prefix();
    let stack = Stack::start_with(
        mock_idp::Settings::demo(),
        &["--session-store", &url, "--redis-key-prefix", &prefix],
    )
    .await;
    let second = stack.bff.another().await;
    let people = [(&ALICE, http_client()), (&BOB, http_client())];
    for (account, browser) in &people {
        stack
            .bff
            .sign_in(browser, account, &mut Received::default())
            .await;
    }
    let exchanges = grants(&stack);
    stack.idp.faults.delay("/v1/token", Duration::from_secs(2));
    stack.time.advance(PAST_EXPIRY);
    let calls = people.iter().flat_map(|(_, browser)| {
        (0..50).map(|i| {
            let instance = if i % 2 == 0 { &stack.bff } else { &second };
            instance.api(browser, "me")
        })
    });
    let answers = futures_util::future::join_all(calls).await;
    let statuses: Vec<u16> = answers.iter().map(|r| r.status().as_u16()).collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(
        grants(&stack),
        exchanges + people.len(),
        "exactly one refresh grant per session"
    );
    stack.idp.faults.clear();
    for (_, browser) in &people {
        assert_eq!(
            second.user(browser).await.status(),
            200,
            "nobody logged out"
        );
    }
}

/// Scale-out: two BFF instances sharing Redis, each in front of its own API
/// instance, the two APIs sharing one database (PostgreSQL where one
/// answers, else a SQLite file). The same people use both at random: each
/// sees their own notes whichever pair answers, never another's, and each
/// session is refreshed once however many instances call at once.
#[tokio::test]
async fn two_apis_and_two_bffs_serve_the_same_people_rfc9700_4_14_2() {
    let Some(url) = redis::available().await else {
        return;
    };
    let database = match testkit::database::Engine::Postgres.database().await {
        Some(db) => db,
        None => testkit::database::Engine::Sqlite.database().await.unwrap(),
    };
    let prefix = redis::prefix();
    let stack = Stack::start_on(
        mock_idp::Settings::demo(),
        &["--session-store", &url, "--redis-key-prefix", &prefix],
        "sqlite::memory:",
        database.url(),
    )
    .await;
    let second_api =
        testkit::api::Api::start_with_args(&stack.idp, &["--database-url", database.url()]).await;
    let mut config = stack.bff.config.clone();
    config.api_url = second_api.base_url.clone();
    let (listener, _) = testkit::server::listen().await;
    let second = testkit::bff::Bff::start_on(listener, config, &stack.time).await;
    let instances = [&stack.bff, &second];

    let people = [(&ALICE, http_client()), (&BOB, http_client())];
    // Signed in through the public URL (the first's, as a load balancer's).
    for (account, browser) in &people {
        stack
            .bff
            .sign_in(browser, account, &mut Received::default())
            .await;
    }
    // Each writes through one pair and reads through the other.
    for (i, (account, browser)) in people.iter().enumerate() {
        let created = instances[i % 2]
            .json(browser, Method::POST, "/bff/api/notes")
            .json(&serde_json::json!({"text": format!("note of {}", account.name)}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), StatusCode::CREATED);
    }
    for (i, (account, browser)) in people.iter().enumerate() {
        let listed: Value = instances[(i + 1) % 2]
            .api(browser, "notes")
            .await
            .json()
            .await
            .unwrap();
        let texts: Vec<&str> = listed["notes"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|n| n["text"].as_str())
            .collect();
        assert_eq!(
            texts,
            [format!("note of {}", account.name)],
            "own notes only"
        );
    }

    // Every access token due at once: calls through both pairs share one
    // refresh per session.
    let exchanges = grants(&stack);
    stack
        .idp
        .faults
        .delay("/v1/token", Duration::from_millis(500));
    stack.time.advance(PAST_EXPIRY);
    let calls = people
        .iter()
        .flat_map(|(_, browser)| (0..20).map(move |i| instances[i % 2].api(browser, "me")));
    let answers = futures_util::future::join_all(calls).await;
    assert!(answers.iter().all(|r| r.status() == 200));
    assert_eq!(
        grants(&stack),
        exchanges + people.len(),
        "one refresh per session"
    );
}

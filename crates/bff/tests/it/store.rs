//! The session store at rest: what a copy of it holds (no token, no cookie
//! value, in any store), and that a sign-out is never undone by a request
//! that ends after it (in every store).

use std::time::Duration;

use reqwest::Method;
use test_case::test_case;
use testkit::{ALICE, TempFile, bff::Received, http_client, redis, stack::Stack};

/// The BFF's session cookie value, as the browser got it at sign-in.
fn cookie_value(received: &Received) -> String {
    received
        .0
        .iter()
        .flat_map(|r| r.lines())
        .filter_map(|line| line.strip_prefix("set-cookie: __Host-bff="))
        .map(|rest| rest.split(';').next().unwrap_or_default().to_owned())
        .next_back()
        .expect("a session cookie was set")
}

/// What must never be in a copy of the store.
fn secrets(stack: &Stack, received: &Received) -> Vec<String> {
    let mut secrets = stack.idp.faults.issued_tokens();
    assert_eq!(secrets.len(), 3, "access, refresh and ID token");
    secrets.push(cookie_value(received));
    secrets
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

#[tokio::test]
async fn a_copy_of_the_sqlite_store_holds_no_token_and_no_cookie_value() {
    let db = TempFile::new("bff-dump.db");
    let stack = Stack::start_with(
        mock_idp::Settings::demo(),
        &["--session-store", &db.sqlite_url()],
    )
    .await;
    let browser = http_client();
    let mut received = Received::default();
    stack.bff.sign_in(&browser, &ALICE, &mut received).await;
    assert_eq!(stack.bff.api(&browser, "me").await.status(), 200);
    let mut dump = std::fs::read(&db.0).unwrap();
    dump.extend(std::fs::read(format!("{}-wal", db.0.display())).unwrap_or_default());
    assert!(!dump.is_empty());
    for secret in secrets(&stack, &received) {
        assert!(
            !contains(&dump, &secret),
            "a secret sits in the file in clear"
        );
    }
}

#[tokio::test]
async fn a_copy_of_redis_holds_no_token_and_no_cookie_value() {
    let Some(url) = redis::available().await else {
        return;
    };
    let prefix = redis::prefix();
    let stack = Stack::start_with(
        mock_idp::Settings::demo(),
        &["--session-store", &url, "--redis-key-prefix", &prefix],
    )
    .await;
    let browser = http_client();
    let mut received = Received::default();
    stack.bff.sign_in(&browser, &ALICE, &mut received).await;
    assert_eq!(stack.bff.api(&browser, "me").await.status(), 200);
    let dump = redis::dump(&url, &prefix).await;
    assert!(
        dump.len() >= 2,
        "a session and a login are stored: {dump:?}"
    );
    for secret in secrets(&stack, &received) {
        for (key, value) in &dump {
            assert!(!key.contains(&secret), "a secret names a key");
            assert!(!contains(value, &secret), "a secret sits in {key} in clear");
        }
    }
}

#[test_case("memory" ; "memory")]
#[test_case("sqlite" ; "sqlite")]
#[test_case("redis" ; "redis")]
#[tokio::test]
async fn a_sign_out_is_not_undone_by_a_request_that_ends_after_it(store: &str) {
    let db = TempFile::new("bff-race.db");
    let url = match store {
        "memory" => "memory".to_owned(),
        "sqlite" => db.sqlite_url(),
        _ => match redis::available().await {
            Some(url) => url,
            None => return,
        },
    };
    let prefix = redis::prefix();
    let stack = Stack::start_with(
        mock_idp::Settings::demo(),
        &["--session-store", &url, "--redis-key-prefix", &prefix],
    )
    .await;
    let browser = http_client();
    stack
        .bff
        .sign_in(&browser, &ALICE, &mut Received::default())
        .await;
    // A request that loads the session, then takes its time (the API is
    // slow) while the person signs out.
    stack
        .api
        .faults
        .delay("/api/notes", Duration::from_millis(1500));
    // Old enough to be touched (and so saved) at the end of the request.
    stack.time.advance(Duration::from_secs(120));
    let slow = tokio::spawn(
        stack
            .bff
            .json(&browser, Method::GET, "/bff/api/notes")
            .send(),
    );
    stack.api.faults.arrived("/api/notes", 1).await;
    let logout = stack
        .bff
        .json(&browser, Method::POST, "/bff/logout")
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 200);
    let _ = slow.await.unwrap();
    assert_eq!(
        stack.bff.user(&browser).await.status(),
        401,
        "the session stayed signed out"
    );
}

//! The BFF from the attacker's side. Each test names the rule it enforces.

use reqwest::Method;
use serde_json::{Value, json};
use testkit::{
    ALICE,
    bff::Received,
    http_client,
    idp::{consent, sign_in},
    location, query_of, redis,
    stack::Stack,
};

/// Follows the flow from `/bff/login` up to the IdP's redirect back to the
/// BFF's callback, without calling it; returns the callback URL.
pub(crate) async fn callback_url(
    browser: &reqwest::Client,
    stack: &Stack,
    login_path: &str,
) -> String {
    let response = browser.get(stack.bff.url(login_path)).send().await.unwrap();
    let mut url = location(&response);
    loop {
        let response = if url.contains("/signin?") {
            sign_in(browser, &url, &ALICE).await
        } else if url.contains("/consent?") {
            consent(browser, &url, "allow").await
        } else {
            browser.get(&url).send().await.unwrap()
        };
        url = location(&response);
        if url.contains("/bff/callback") {
            return url;
        }
    }
}

fn session_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("__Host-bff="))
        .map(|v| v.split(';').next().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn json_endpoints_without_x_csrf_answer_401_and_do_nothing_bff_csrf() {
    let stack = Stack::start().await;
    let browser = http_client();
    stack
        .bff
        .sign_in(&browser, &ALICE, &mut Received::default())
        .await;
    let user = browser
        .get(stack.bff.url("/bff/user"))
        .send()
        .await
        .unwrap();
    assert_eq!(user.status(), 401);
    for method in [Method::GET, Method::POST, Method::DELETE] {
        let response = browser
            .request(method.clone(), stack.bff.url("/bff/api/notes"))
            .json(&json!({"text": "forged"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{method} without X-CSRF");
    }
    let wrong = browser
        .post(stack.bff.url("/bff/api/notes"))
        .header("X-CSRF", "0")
        .json(&json!({"text": "forged"}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let notes: Value = stack
        .bff
        .json(&browser, Method::GET, "/bff/api/notes")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(notes["notes"], json!([]), "no forged note was created");
}

#[tokio::test]
async fn a_forged_state_is_refused_rfc6749_10_12() {
    let stack = Stack::start().await;
    let browser = http_client();
    let callback = callback_url(&browser, &stack, "/bff/login").await;
    let code = &query_of(&callback)["code"];
    let forged = stack.bff.url(&format!(
        "/bff/callback?code={code}&state=forged&iss={}",
        stack.idp.issuer
    ));
    let response = browser.get(forged).send().await.unwrap();
    assert_eq!(response.status(), 400);
    let user = stack.bff.user(&browser).await;
    assert_eq!(user.status(), 401);
}

#[tokio::test]
async fn a_callback_delivered_to_another_browser_is_refused_rfc9700_4_7() {
    let stack = Stack::start().await;
    let victim = http_client();
    let attacker = http_client();
    // The attacker's own login response, pushed into the victim's browser
    // (login CSRF): the victim's session holds no such state.
    let callback = callback_url(&attacker, &stack, "/bff/login").await;
    let response = victim.get(&callback).send().await.unwrap();
    assert_eq!(response.status(), 400);
    let user = stack.bff.user(&victim).await;
    assert_eq!(
        user.status(),
        401,
        "the victim is not signed in as the attacker"
    );
}

#[tokio::test]
async fn a_replayed_callback_is_refused_and_a_signed_in_back_button_goes_home_rfc6749_10_12() {
    let stack = Stack::start().await;
    let browser = http_client();
    let callback = callback_url(&browser, &stack, "/bff/login").await;
    let first = browser.get(&callback).send().await.unwrap();
    assert_eq!(first.status(), 303);
    // Back button: the same callback again, while signed in: home, no error.
    let again = browser.get(&callback).send().await.unwrap();
    assert_eq!(again.status(), 303);
    assert_eq!(location(&again), stack.bff.url("/"));
    // Replayed in a fresh browser: refused.
    let other = http_client();
    let replay = other.get(&callback).send().await.unwrap();
    assert_eq!(replay.status(), 400);
}

#[tokio::test]
async fn a_code_from_another_login_attempt_fails_pkce_rfc7636_4_6() {
    let stack = Stack::start().await;
    let browser = http_client();
    // Two tabs start a login in the same browser; each keeps its own state.
    let first = location(
        &browser
            .get(stack.bff.url("/bff/login"))
            .send()
            .await
            .unwrap(),
    );
    let second_callback = callback_url(&browser, &stack, "/bff/login").await;
    let first_state = query_of(&first)["state"].clone();
    let second = query_of(&second_callback);
    // The second attempt's code under the first attempt's state: the first
    // attempt's verifier does not match the second's challenge.
    let swapped = stack.bff.url(&format!(
        "/bff/callback?code={}&state={first_state}&iss={}",
        second["code"], stack.idp.issuer
    ));
    let response = browser.get(swapped).send().await.unwrap();
    assert!(response.status().is_client_error() || response.status().is_server_error());
    let user = stack.bff.user(&browser).await;
    assert_eq!(user.status(), 401);
}

#[tokio::test]
async fn several_tabs_can_log_in_at_once() {
    let stack = Stack::start().await;
    let browser = http_client();
    let first_tab = location(
        &browser
            .get(stack.bff.url("/bff/login?returnUrl=/one"))
            .send()
            .await
            .unwrap(),
    );
    let second_callback = callback_url(&browser, &stack, "/bff/login?returnUrl=/two").await;
    assert!(first_tab.contains("state="));
    let response = browser.get(&second_callback).send().await.unwrap();
    assert_eq!(location(&response), stack.bff.url("/two"));
}

#[tokio::test]
async fn a_wrong_iss_in_the_response_is_refused_rfc9207_2_4() {
    let stack = Stack::start().await;
    let browser = http_client();
    let callback = callback_url(&browser, &stack, "/bff/login").await;
    let mut url = url::Url::parse(&callback).unwrap();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "iss" {
                "https://evil.example".to_owned()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    let response = browser.get(url.as_str()).send().await.unwrap();
    assert_eq!(response.status(), 400);
    // A response with no iss at all, from a provider that promises one.
    let callback = callback_url(&browser, &stack, "/bff/login").await;
    let q = query_of(&callback);
    let without = stack.bff.url(&format!(
        "/bff/callback?code={}&state={}",
        q["code"], q["state"]
    ));
    assert_eq!(browser.get(without).send().await.unwrap().status(), 400);
}

#[tokio::test]
async fn open_redirect_return_urls_land_on_the_home_page_rfc9700_4_11() {
    let stack = Stack::start().await;
    for evil in [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example",
        "javascript:alert(1)",
    ] {
        let browser = http_client();
        let path = format!("/bff/login?returnUrl={}", urlencode(evil));
        let callback = callback_url(&browser, &stack, &path).await;
        let response = browser.get(&callback).send().await.unwrap();
        assert_eq!(location(&response), stack.bff.url("/"), "returnUrl {evil}");
    }
}

fn urlencode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

#[tokio::test]
async fn the_pre_login_cookie_is_useless_after_login_owasp_session_fixation() {
    let stack = Stack::start().await;
    let browser = http_client();
    let login = browser
        .get(stack.bff.url("/bff/login"))
        .send()
        .await
        .unwrap();
    let before = session_cookie(&login).expect("a session cookie at login");
    let callback = callback_url(&browser, &stack, "/bff/login").await;
    let response = browser.get(&callback).send().await.unwrap();
    let after = session_cookie(&response).expect("a new session cookie at callback");
    assert_ne!(before, after, "the session id changes at login");
    // The old id, replayed by someone who planted it, gets nothing.
    let planted = reqwest::Client::new()
        .get(stack.bff.url("/bff/user"))
        .header("X-CSRF", "1")
        .header("Cookie", &before)
        .send()
        .await
        .unwrap();
    assert_eq!(planted.status(), 401);
}

#[tokio::test]
async fn the_session_cookie_is_host_prefixed_httponly_secure_lax_bff_cookie_rules() {
    let stack = Stack::start().await;
    let browser = http_client();
    let login = browser
        .get(stack.bff.url("/bff/login"))
        .send()
        .await
        .unwrap();
    let cookie = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("__Host-bff="))
        .expect("session cookie")
        .to_owned();
    for attribute in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(
            cookie.contains(attribute),
            "{attribute} missing from {cookie}"
        );
    }
    assert!(
        !cookie.to_lowercase().contains("domain="),
        "__Host- cookies have no Domain"
    );
}

#[tokio::test]
async fn denied_consent_ends_on_a_readable_page_that_offers_to_try_again() {
    let stack = Stack::start().await;
    let browser = http_client();
    let mut url = location(
        &browser
            .get(stack.bff.url("/bff/login"))
            .send()
            .await
            .unwrap(),
    );
    let callback = loop {
        let response = if url.contains("/signin?") {
            sign_in(&browser, &url, &ALICE).await
        } else if url.contains("/consent?") {
            consent(&browser, &url, "deny").await
        } else {
            browser.get(&url).send().await.unwrap()
        };
        url = location(&response);
        if url.contains("/bff/callback") {
            break url;
        }
    };
    let response = browser.get(&callback).send().await.unwrap();
    assert_eq!(response.status(), 403);
    let page = response.text().await.unwrap();
    assert!(page.contains("Access was denied"));
    assert!(page.contains("/bff/login"), "offers to try again");
}

#[tokio::test]
async fn no_response_the_browser_receives_contains_a_token_bff_pattern() {
    let stack = Stack::start().await;
    let browser = http_client();
    let mut received = Received::default();
    stack.bff.sign_in(&browser, &ALICE, &mut received).await;
    for (method, path) in [
        (Method::GET, "/"),
        (Method::GET, "/bff/user"),
        (Method::GET, "/bff/api/me"),
        (Method::GET, "/bff/api/notes"),
        (Method::GET, "/static/app.js"),
    ] {
        let response = stack.bff.json(&browser, method, path).send().await.unwrap();
        received.record(response).await;
    }
    let tokens = stack.idp.faults.issued_tokens();
    assert_eq!(tokens.len(), 3, "access, refresh and ID token were issued");
    for token in &tokens {
        assert!(!received.contains(token), "a token reached the browser");
    }
    assert!(
        !received.contains("eyJ"),
        "something JWT-shaped reached the browser"
    );
}

#[tokio::test]
async fn two_bff_instances_share_sessions_through_redis() {
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
    stack
        .bff
        .sign_in(&browser, &ALICE, &mut Received::default())
        .await;
    // A second instance on another port with the same store: the same
    // cookie (host-scoped, so the jar sends it to either port) works there.
    let second = stack.bff.another().await;
    let user = second.user(&browser).await;
    assert_eq!(user.status(), 200);
    let body: Value = user.json().await.unwrap();
    assert_eq!(body["email"], ALICE.username);
}

#[tokio::test]
async fn two_racing_requests_with_one_callback_redeem_the_code_once_rfc6749_10_12() {
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
    let browser = http_client();
    let callback = callback_url(&browser, &stack, "/bff/login").await;
    // The same callback, at once, to both instances.
    let on_second = callback.replace(&stack.bff.base_url, &second.base_url);
    let (first, other) = tokio::join!(
        browser.get(&callback).send(),
        browser.get(&on_second).send()
    );
    let statuses = [first.unwrap().status(), other.unwrap().status()];
    assert!(
        statuses.contains(&reqwest::StatusCode::SEE_OTHER),
        "{statuses:?}"
    );
    // Had both gone on, the second exchange would have been a replay, and
    // the IdP would have revoked the tokens the first one got.
    assert_eq!(stack.idp.faults.count("/v1/token"), 1, "one code exchange");
    let tokens = stack.idp.faults.issued_tokens();
    assert!(
        testkit::idp::is_active(&stack.idp, &tokens[1]).await,
        "the refresh token is still live"
    );
}

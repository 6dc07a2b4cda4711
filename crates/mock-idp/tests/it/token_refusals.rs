//! Attacks on the token endpoint (steps 6-8): stolen, replayed or
//! mis-bound codes, PKCE downgrades and forged client authentication.
//!
//! Every refusal is RFC 6749 5.2 JSON with its error code, and carries
//! `Cache-Control: no-store` like the successful answer (RFC 6749 5.1).
//! The refusals that differ only in the request are one table, a test per
//! row, each named after the attack and its rule.

use std::time::Duration;

use test_case::test_case;
use testkit::{
    ALICE, ALL_SCOPES, CLIENT_ID, CLIENT_SECRET, NATIVE_ID, NATIVE_REDIRECT_URI, REDIRECT_URI,
    database::Engine,
    idp::{
        AuthRequest, Idp, Tokens, code_as, exchange_code, is_active, post_as_native, refresh,
        userinfo_status,
    },
};

use crate::common::assert_token_error;

/// A code of the demo client and the verifier that redeems it.
async fn fresh_code(idp: &Idp, scope: &str) -> (String, String) {
    let request = AuthRequest::demo(scope);
    let code = code_as(idp, &request, &ALICE).await;
    (code, request.verifier)
}

/// How a request authenticates its client.
enum Auth {
    Basic(&'static str, &'static str),
    Unauthenticated,
}

/// A token request as an attack sends it: the client's authentication and
/// the form, made from a fresh code and its verifier.
type Attack = fn(&str, &str) -> (Auth, Vec<(&'static str, String)>);

/// The good exchange form of a code, as the demo client sends it.
fn exchange(code: &str, verifier: &str) -> Vec<(&'static str, String)> {
    vec![
        ("grant_type", "authorization_code".into()),
        ("code", code.into()),
        ("redirect_uri", REDIRECT_URI.into()),
        ("code_verifier", verifier.into()),
    ]
}

fn without(mut form: Vec<(&'static str, String)>, name: &str) -> Vec<(&'static str, String)> {
    form.retain(|(n, _)| *n != name);
    form
}

fn with(
    mut form: Vec<(&'static str, String)>,
    name: &'static str,
    value: &str,
) -> Vec<(&'static str, String)> {
    form = without(form, name);
    form.push((name, value.into()));
    form
}

const DEMO: Auth = Auth::Basic(CLIENT_ID, CLIENT_SECRET);

async fn send(idp: &Idp, auth: Auth, form: &[(&str, String)]) -> reqwest::Response {
    let request = reqwest::Client::new().post(idp.url("/v1/token")).form(form);
    let request = match auth {
        Auth::Basic(id, secret) => request.basic_auth(id, Some(secret)),
        Auth::Unauthenticated => request,
    };
    request.send().await.expect("token endpoint answers")
}

#[test_case(|c, _| (DEMO, exchange(c, &testkit::pkce().verifier)), 400, "invalid_grant" ; "wrong_code_verifier_rfc7636_4_6")]
#[test_case(|c, v| (DEMO, without(exchange(c, v), "code_verifier")), 400, "invalid_request" ; "missing_code_verifier_pkce_downgrade_rfc9700_4_8")]
#[test_case(|c, v| (DEMO, with(exchange(c, v), "code_verifier", "")), 400, "invalid_request" ; "empty_code_verifier_pkce_downgrade_rfc9700_4_8")]
#[test_case(|c, _| (DEMO, exchange(c, &"a".repeat(42))), 400, "invalid_request" ; "code_verifier_too_short_rfc7636_4_1")]
#[test_case(|c, _| (DEMO, exchange(c, &"a".repeat(129))), 400, "invalid_request" ; "code_verifier_too_long_rfc7636_4_1")]
#[test_case(|c, _| (DEMO, exchange(c, &format!("{}+", "a".repeat(43)))), 400, "invalid_request" ; "code_verifier_with_a_plus_rfc7636_4_1")]
#[test_case(|c, _| (DEMO, exchange(c, &format!("{}=", "a".repeat(43)))), 400, "invalid_request" ; "code_verifier_padded_rfc7636_4_1")]
#[test_case(|c, _| (DEMO, exchange(c, &format!("{} ", "a".repeat(43)))), 400, "invalid_request" ; "code_verifier_with_a_space_rfc7636_4_1")]
#[test_case(|c, _| (DEMO, exchange(c, &format!("{}é", "a".repeat(43)))), 400, "invalid_request" ; "code_verifier_not_ascii_rfc7636_4_1")]
#[test_case(|c, v| (DEMO, with(exchange(c, v), "redirect_uri", "http://localhost:3000/bff/callback/")), 400, "invalid_grant" ; "another_redirect_uri_rfc6749_4_1_3")]
#[test_case(|_, v| (DEMO, exchange(&testkit::random_string(), v)), 400, "invalid_grant" ; "unknown_code_rfc6749_5_2")]
#[test_case(|c, v| { let mut f = exchange(c, v); f.push(("code", c.into())); (DEMO, f) }, 400, "invalid_request" ; "code_repeated_rfc6749_3_2")]
#[test_case(|c, v| { let mut f = exchange(c, v); f.insert(0, ("code", testkit::random_string())); (DEMO, f) }, 400, "invalid_request" ; "code_repeated_other_first_rfc6749_3_2")]
#[test_case(|c, v| (DEMO, without(exchange(c, v), "grant_type")), 400, "invalid_request" ; "missing_grant_type_rfc6749_5_2")]
#[test_case(|c, v| (DEMO, with(exchange(c, v), "grant_type", "password")), 400, "unsupported_grant_type" ; "password_grant_rfc6749_5_2")]
#[test_case(|c, v| (DEMO, with(exchange(c, v), "grant_type", "client_credentials")), 400, "unsupported_grant_type" ; "client_credentials_grant_rfc6749_5_2")]
#[test_case(|c, v| (DEMO, with(exchange(c, v), "grant_type", "implicit")), 400, "unsupported_grant_type" ; "implicit_grant_rfc6749_5_2")]
#[test_case(|c, v| (DEMO, with(exchange(c, v), "grant_type", "urn:ietf:params:oauth:grant-type:device_code")), 400, "unsupported_grant_type" ; "device_code_grant_rfc6749_5_2")]
#[test_case(|c, v| (Auth::Basic(CLIENT_ID, "not-the-secret"), exchange(c, v)), 401, "invalid_client" ; "wrong_client_secret_rfc6749_5_2")]
#[test_case(|c, v| (Auth::Basic("evil-client", "whatever"), exchange(c, v)), 401, "invalid_client" ; "unknown_client_by_basic_rfc6749_5_2")]
#[test_case(|c, v| (Auth::Unauthenticated, with(exchange(c, v), "client_id", "evil-client")), 401, "invalid_client" ; "unknown_public_client_rfc6749_5_2")]
#[test_case(|c, v| (Auth::Unauthenticated, with(with(exchange(c, v), "client_id", CLIENT_ID), "client_secret", CLIENT_SECRET)), 401, "invalid_client" ; "client_secret_post_by_a_client_registered_for_basic_rfc6749_2_3_1")]
#[test_case(|c, v| (DEMO, with(with(exchange(c, v), "client_id", CLIENT_ID), "client_secret", CLIENT_SECRET)), 400, "invalid_request" ; "basic_and_client_secret_post_together_rfc6749_2_3")]
#[test_case(|c, v| (Auth::Unauthenticated, with(exchange(c, v), "client_id", CLIENT_ID)), 401, "invalid_client" ; "confidential_client_posing_as_public_rfc6749_5_2")]
#[test_case(|c, v| (Auth::Unauthenticated, exchange(c, v)), 401, "invalid_client" ; "no_client_at_all_rfc6749_5_2")]
#[test_case(|c, v| (Auth::Basic(NATIVE_ID, "made-up"), exchange(c, v)), 401, "invalid_client" ; "public_client_sending_a_secret_it_does_not_have_rfc6749_2_3_1")]
#[tokio::test]
async fn a_code_exchange_is_refused(attack: Attack, status: u16, error: &str) {
    let idp = Idp::start().await;
    let (code, verifier) = fresh_code(&idp, "openid").await;
    let (auth, form) = attack(&code, &verifier);
    let response = send(&idp, auth, &form).await;
    let challenge = response.headers().get("www-authenticate").cloned();
    assert_token_error(response, status, error).await;
    // RFC 6749 5.2, RFC 9110 15.5.2: every 401 carries the challenge of the
    // scheme to use.
    if status == 401 {
        assert!(
            challenge.is_some_and(|c| c.to_str().unwrap().starts_with("Basic")),
            "a 401 names the scheme to use"
        );
    }
}

// ---- the code -----------------------------------------------------------

#[tokio::test]
async fn replayed_code_is_refused_and_revokes_its_tokens_rfc6749_4_1_2() {
    let idp = Idp::start().await;
    let (code, verifier) = fresh_code(&idp, ALL_SCOPES).await;
    let first = exchange_code(&idp, &code, &verifier).await;
    assert_eq!(first.status(), 200);
    let tokens: Tokens = first.json().await.unwrap();
    let refresh_token = tokens.refresh_token.clone().expect("refresh token");
    assert!(
        is_active(&idp, &tokens.access_token).await,
        "live before the replay"
    );
    assert!(
        is_active(&idp, &refresh_token).await,
        "live before the replay"
    );

    // The attacker (or a confused client) presents the same code again.
    let replay = exchange_code(&idp, &code, &verifier).await;
    assert_token_error(replay, 400, "invalid_grant").await;

    // RFC 6749 10.5: what the first exchange got is revoked.
    assert!(
        !is_active(&idp, &tokens.access_token).await,
        "access token still active"
    );
    assert!(
        !is_active(&idp, &refresh_token).await,
        "refresh token still active"
    );
    assert_eq!(userinfo_status(&idp, &tokens.access_token).await, 401);
    let refreshed = refresh(&idp, &refresh_token).await;
    assert_token_error(refreshed, 400, "invalid_grant").await;
}

#[test_case(Engine::Sqlite ; "sqlite")]
#[test_case(Engine::Postgres ; "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_code_racing_its_first_exchange_still_revokes_its_tokens_rfc6749_4_1_2(
    engine: Engine,
) {
    let Some(db) = engine.database().await else {
        return;
    };
    // The replay arrives while the first exchange is still minting: its
    // refresh token must not be born after the revocation and survive it.
    let idp = Idp::start_on_store(mock_idp::Settings::demo(), db.url()).await;
    for _ in 0..10 {
        let (code, verifier) = fresh_code(&idp, ALL_SCOPES).await;
        let (a, b) = tokio::join!(
            exchange_code(&idp, &code, &verifier),
            exchange_code(&idp, &code, &verifier)
        );
        let mut issued = Vec::new();
        for response in [a, b] {
            if response.status() == 200 {
                issued.push(response.json::<Tokens>().await.unwrap());
            } else {
                assert_token_error(response, 400, "invalid_grant").await;
            }
        }
        assert!(issued.len() <= 1, "one code, two sets of tokens");
        for tokens in issued {
            assert!(
                !is_active(&idp, &tokens.access_token).await,
                "access token survived the replay"
            );
            let refresh_token = tokens.refresh_token.expect("refresh token");
            assert!(
                !is_active(&idp, &refresh_token).await,
                "refresh token survived the replay"
            );
        }
    }
}

#[tokio::test]
async fn code_is_spent_by_a_wrong_verifier_attempt_rfc6749_4_1_2() {
    let idp = Idp::start().await;
    let (code, verifier) = fresh_code(&idp, "openid").await;
    let guess = exchange_code(&idp, &code, &testkit::pkce().verifier).await;
    assert_token_error(guess, 400, "invalid_grant").await;
    // Single use: no second guess, even the right one.
    let right = exchange_code(&idp, &code, &verifier).await;
    assert_token_error(right, 400, "invalid_grant").await;
}

#[tokio::test]
async fn code_of_native_demo_redeemed_by_bff_demo_is_invalid_grant_rfc6749_4_1_3() {
    // bff-demo authenticates properly and even knows the verifier and the
    // redirect URI: the binding of the code to its client alone must stop it.
    let idp = Idp::start().await;
    let native = AuthRequest::native("openid");
    let code = code_as(&idp, &native, &ALICE).await;
    let form = with(
        exchange(&code, &native.verifier),
        "redirect_uri",
        NATIVE_REDIRECT_URI,
    );
    let response = send(&idp, DEMO, &form).await;
    assert_token_error(response, 400, "invalid_grant").await;
}

#[tokio::test]
async fn expired_code_is_invalid_grant_rfc6749_4_1_2() {
    let idp = Idp::start().await;
    let (code, verifier) = fresh_code(&idp, "openid").await;
    idp.time.advance(Duration::from_secs(61));
    let response = exchange_code(&idp, &code, &verifier).await;
    assert_token_error(response, 400, "invalid_grant").await;
}

// ---- client authentication ------------------------------------------------

#[tokio::test]
async fn wrong_client_secret_is_401_invalid_client_with_a_basic_challenge_rfc6749_5_2() {
    let idp = Idp::start().await;
    let (code, verifier) = fresh_code(&idp, "openid").await;
    let response = reqwest::Client::new()
        .post(idp.url("/v1/token"))
        .basic_auth(CLIENT_ID, Some("not-the-secret"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", &verifier),
        ])
        .send()
        .await
        .unwrap();
    let challenge = response.headers().get("www-authenticate").cloned();
    assert_token_error(response, 401, "invalid_client").await;
    let challenge = challenge.expect("WWW-Authenticate with the 401");
    assert!(
        challenge.to_str().unwrap().starts_with("Basic"),
        "{challenge:?}"
    );

    // The refusal spent nothing: the real client can still redeem the code.
    assert_eq!(exchange_code(&idp, &code, &verifier).await.status(), 200);
}

// ---- the request itself ----------------------------------------------------

#[tokio::test]
async fn json_body_instead_of_a_form_is_invalid_request_rfc6749_4_1_3() {
    let idp = Idp::start().await;
    let (code, verifier) = fresh_code(&idp, "openid").await;
    let response = reqwest::Client::new()
        .post(idp.url("/v1/token"))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .json(&serde_json::json!({
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
        }))
        .send()
        .await
        .unwrap();
    assert_token_error(response, 400, "invalid_request").await;
}

#[tokio::test]
async fn public_client_code_without_its_verifier_is_invalid_request_rfc9700_4_8() {
    // A public client's code is protected by PKCE alone: without the
    // verifier, nothing.
    let idp = Idp::start().await;
    let code = code_as(&idp, &AuthRequest::native("openid"), &ALICE).await;
    let response = post_as_native(
        &idp,
        "/v1/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", NATIVE_REDIRECT_URI),
        ],
    )
    .await;
    assert_token_error(response, 400, "invalid_request").await;
}

#[tokio::test]
async fn a_leaked_code_presented_by_another_client_is_not_spent_rfc6749_4_1_3() {
    // The public client needs no secret: anyone can speak as it. A code of
    // bff-demo it presents (wrong verifier or right) must neither be used up
    // nor trigger the replay revocation of bff-demo's tokens.
    let idp = Idp::start().await;
    let (code, verifier) = fresh_code(&idp, "openid").await;
    for attempt in [verifier.as_str(), &"x".repeat(43)] {
        let response = post_as_native(
            &idp,
            "/v1/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT_URI),
                ("code_verifier", attempt),
            ],
        )
        .await;
        assert_token_error(response, 400, "invalid_grant").await;
    }
    let response = exchange_code(&idp, &code, &verifier).await;
    assert_eq!(
        response.status(),
        200,
        "the rightful client still gets its tokens"
    );
}

#[tokio::test]
async fn a_grant_the_client_is_not_registered_for_is_unauthorized_client_rfc6749_5_2() {
    let mut settings = testkit::mock_idp::Settings::demo();
    settings.clients[0].grant_types = vec!["authorization_code".into()];
    let idp = Idp::start_with(settings).await;
    let tokens: Tokens = {
        let (code, verifier) = fresh_code(&idp, ALL_SCOPES).await;
        exchange_code(&idp, &code, &verifier)
            .await
            .json()
            .await
            .unwrap()
    };
    let refresh_token = tokens
        .refresh_token
        .expect("offline_access still gives one");
    let response = refresh(&idp, &refresh_token).await;
    assert_token_error(response, 400, "unauthorized_client").await;
}

//! Attacks on the token endpoint (steps 6-8): stolen, replayed or
//! mis-bound codes, PKCE downgrades and forged client authentication.
//!
//! Every refusal is RFC 6749 5.2 JSON with its error code, and carries
//! `Cache-Control: no-store` like the successful answer (RFC 6749 5.1).

mod common;

use std::time::Duration;

use common::{
    NATIVE_ID, NATIVE_REDIRECT_URI, Query, assert_token_error, code_as, code_for, is_active,
    post_as_native, userinfo_status,
};
use testkit::{
    ALICE, ALL_SCOPES, AuthorizeParams, CLIENT_ID, CLIENT_SECRET, Idp, REDIRECT_URI, Tokens,
    exchange_code, token_request,
};

/// A code of the demo client and the verifier that redeems it.
async fn fresh_code(idp: &Idp, scope: &str) -> (String, String) {
    let params = AuthorizeParams::demo(scope);
    let code = code_for(idp, &params).await;
    (code, params.pkce.verifier)
}

/// A token request with no client authentication of its own.
async fn post_token(idp: &Idp, form: &[(&str, &str)]) -> reqwest::Response {
    reqwest::Client::new()
        .post(idp.url("/v1/token"))
        .form(form)
        .send()
        .await
        .expect("token endpoint answers")
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
    let refreshed = common::refresh(&idp, &refresh_token).await;
    assert_token_error(refreshed, 400, "invalid_grant").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_code_racing_its_first_exchange_still_revokes_its_tokens_rfc6749_4_1_2() {
    // The replay arrives while the first exchange is still minting: its
    // refresh token must not be born after the revocation and survive it.
    let idp = Idp::start().await;
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
async fn wrong_code_verifier_is_invalid_grant_rfc7636_4_6() {
    let idp = Idp::start().await;
    let (code, _) = fresh_code(&idp, "openid").await;
    let other = testkit::pkce().verifier; // well formed, but not this code's
    let response = exchange_code(&idp, &code, &other).await;
    assert_token_error(response, 400, "invalid_grant").await;
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
async fn missing_code_verifier_is_invalid_request_pkce_downgrade_rfc9700_4_8() {
    let idp = Idp::start().await;
    let (code, _) = fresh_code(&idp, "openid").await;
    for verifier in [None, Some("")] {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT_URI),
        ];
        if let Some(v) = verifier {
            form.push(("code_verifier", v));
        }
        let response = token_request(&idp, &form).await;
        assert_token_error(response, 400, "invalid_request").await;
    }
}

#[tokio::test]
async fn malformed_code_verifier_is_invalid_request_rfc7636_4_1() {
    let idp = Idp::start().await;
    let (code, _) = fresh_code(&idp, "openid").await;
    for bad in [
        "a".repeat(42),                 // too short
        "a".repeat(129),                // too long
        format!("{}+", "a".repeat(43)), // outside [A-Za-z0-9-._~]
        format!("{}=", "a".repeat(43)),
        format!("{} ", "a".repeat(43)),
        format!("{}é", "a".repeat(43)),
    ] {
        let response = exchange_code(&idp, &code, &bad).await;
        assert_token_error(response, 400, "invalid_request").await;
    }
}

#[tokio::test]
async fn code_redeemed_with_another_redirect_uri_is_invalid_grant_rfc6749_4_1_3() {
    let idp = Idp::start().await;
    let (code, verifier) = fresh_code(&idp, "openid").await;
    let response = token_request(
        &idp,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://localhost:3000/bff/callback/"),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_token_error(response, 400, "invalid_grant").await;
}

#[tokio::test]
async fn code_of_native_demo_redeemed_by_bff_demo_is_invalid_grant_rfc6749_4_1_3() {
    // bff-demo authenticates properly and even knows the verifier and the
    // redirect URI: the binding of the code to its client alone must stop it.
    let idp = Idp::start().await;
    let native = AuthorizeParams {
        client_id: NATIVE_ID.into(),
        redirect_uri: NATIVE_REDIRECT_URI.into(),
        ..AuthorizeParams::demo("openid")
    };
    let code = code_for(&idp, &native).await;
    let response = token_request(
        &idp,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", NATIVE_REDIRECT_URI),
            ("code_verifier", &native.pkce.verifier),
        ],
    )
    .await;
    assert_token_error(response, 400, "invalid_grant").await;
}

#[tokio::test]
async fn expired_code_is_invalid_grant_rfc6749_4_1_2() {
    let mut settings = mock_idp::Settings::demo();
    settings.tokens.code_seconds = 1;
    let idp = Idp::start_with(settings).await;
    let (code, verifier) = fresh_code(&idp, "openid").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let response = exchange_code(&idp, &code, &verifier).await;
    assert_token_error(response, 400, "invalid_grant").await;
}

#[tokio::test]
async fn unknown_code_is_invalid_grant_rfc6749_5_2() {
    let idp = Idp::start().await;
    let response = exchange_code(&idp, &testkit::random_string(), &testkit::pkce().verifier).await;
    assert_token_error(response, 400, "invalid_grant").await;
}

// ---- client authentication ------------------------------------------------

/// A good code exchange form, for the client-authentication tests.
async fn exchange_form(idp: &Idp) -> (String, String) {
    fresh_code(idp, "openid").await
}

#[tokio::test]
async fn wrong_client_secret_is_401_invalid_client_with_a_basic_challenge_rfc6749_5_2() {
    let idp = Idp::start().await;
    let (code, verifier) = exchange_form(&idp).await;
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

#[tokio::test]
async fn unknown_client_is_401_invalid_client_rfc6749_5_2() {
    let idp = Idp::start().await;
    let (code, verifier) = exchange_form(&idp).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("code_verifier", verifier.as_str()),
    ];
    let basic = reqwest::Client::new()
        .post(idp.url("/v1/token"))
        .basic_auth("evil-client", Some("whatever"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert!(
        basic.headers().contains_key("www-authenticate"),
        "Basic was tried: challenge it"
    );
    assert_token_error(basic, 401, "invalid_client").await;

    let mut public = form.to_vec();
    public.push(("client_id", "evil-client"));
    assert_token_error(post_token(&idp, &public).await, 401, "invalid_client").await;
}

#[tokio::test]
async fn client_secret_post_by_a_client_registered_for_basic_is_401_invalid_client_rfc6749_2_3_1() {
    let idp = Idp::start().await;
    let (code, verifier) = exchange_form(&idp).await;
    // The right secret, by a method the client did not register.
    let response = post_token(
        &idp,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_token_error(response, 401, "invalid_client").await;
}

#[tokio::test]
async fn basic_and_client_secret_post_together_are_invalid_request_rfc6749_2_3() {
    let idp = Idp::start().await;
    let (code, verifier) = exchange_form(&idp).await;
    let response = reqwest::Client::new()
        .post(idp.url("/v1/token"))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", &verifier),
        ])
        .send()
        .await
        .unwrap();
    assert_token_error(response, 400, "invalid_request").await;
}

#[tokio::test]
async fn confidential_client_without_authentication_is_401_invalid_client_rfc6749_5_2() {
    let idp = Idp::start().await;
    let (code, verifier) = exchange_form(&idp).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("code_verifier", verifier.as_str()),
    ];
    // Posing as a public client with bff-demo's id, and with no id at all.
    let mut as_public = form.to_vec();
    as_public.push(("client_id", CLIENT_ID));
    for attempt in [as_public, form.to_vec()] {
        let response = post_token(&idp, &attempt).await;
        // RFC 9110 15.5.2: every 401 carries a challenge; RFC 6749 5.2 says
        // which (the schemes the server supports).
        let challenge = response.headers().get("www-authenticate").cloned();
        assert_token_error(response, 401, "invalid_client").await;
        assert!(
            challenge.is_some_and(|c| c.to_str().unwrap().starts_with("Basic")),
            "a 401 names the scheme to use"
        );
    }
}

#[tokio::test]
async fn public_client_sending_a_secret_it_does_not_have_is_401_invalid_client_rfc6749_2_3_1() {
    let idp = Idp::start().await;
    let response = reqwest::Client::new()
        .post(idp.url("/v1/token"))
        .basic_auth(NATIVE_ID, Some("made-up"))
        .form(&[("grant_type", "authorization_code"), ("code", "x")])
        .send()
        .await
        .unwrap();
    assert_token_error(response, 401, "invalid_client").await;
}

// ---- the request itself ----------------------------------------------------

#[tokio::test]
async fn password_or_client_credentials_grant_is_unsupported_grant_type_rfc6749_5_2() {
    let idp = Idp::start().await;
    for grant_type in [
        "password",
        "client_credentials",
        "implicit",
        "urn:ietf:params:oauth:grant-type:device_code",
    ] {
        let response = token_request(
            &idp,
            &[
                ("grant_type", grant_type),
                ("username", ALICE.username),
                ("password", ALICE.password),
            ],
        )
        .await;
        assert_token_error(response, 400, "unsupported_grant_type").await;
    }
}

#[tokio::test]
async fn missing_grant_type_is_invalid_request_rfc6749_5_2() {
    let idp = Idp::start().await;
    let (code, verifier) = exchange_form(&idp).await;
    let response = token_request(
        &idp,
        &[
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_token_error(response, 400, "invalid_request").await;
}

#[tokio::test]
async fn json_body_instead_of_a_form_is_invalid_request_rfc6749_4_1_3() {
    let idp = Idp::start().await;
    let (code, verifier) = exchange_form(&idp).await;
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
async fn duplicated_code_parameter_is_invalid_request_rfc6749_3_2() {
    let idp = Idp::start().await;
    let (code, verifier) = exchange_form(&idp).await;
    let (other_code, _) = exchange_form(&idp).await;
    for (first, second) in [(&code, &other_code), (&other_code, &code), (&code, &code)] {
        let response = token_request(
            &idp,
            &[
                ("grant_type", "authorization_code"),
                ("code", first),
                ("code", second),
                ("redirect_uri", REDIRECT_URI),
                ("code_verifier", &verifier),
            ],
        )
        .await;
        assert_token_error(response, 400, "invalid_request").await;
    }
}

#[tokio::test]
async fn public_client_code_without_its_verifier_is_invalid_request_rfc9700_4_8() {
    // A public client's code is protected by PKCE alone: without the
    // verifier, nothing.
    let idp = Idp::start().await;
    let query = Query::demo("openid")
        .set("client_id", NATIVE_ID)
        .set("redirect_uri", NATIVE_REDIRECT_URI);
    let code = code_as(&idp, &query, &ALICE).await;
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
    let mut settings = mock_idp::Settings::demo();
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
    let response = token_request(
        &idp,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh_token),
        ],
    )
    .await;
    assert_token_error(response, 400, "unauthorized_client").await;
}

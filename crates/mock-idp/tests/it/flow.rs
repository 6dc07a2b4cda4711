//! The whole Authorization Code + PKCE flow against the real IdP over HTTP
//! (steps 2-8), sign-in and consent forms included, and every claim of every
//! token checked against the published JWKS.

use serde_json::Value;
use testkit::{
    ALICE, ALL_SCOPES, REDIRECT_URI, http_client,
    idp::{
        AuthRequest, Idp, authorize, browse_to_callback, consent, exchange_code, sign_in,
        verify_with_jwks,
    },
    location, query_of,
};

#[tokio::test]
async fn discovery_lists_every_endpoint_and_capability() {
    let idp = Idp::start().await;
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let meta: Value = reqwest::get(idp.url(path))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(meta["issuer"], idp.issuer);
        for endpoint in [
            "authorization_endpoint",
            "token_endpoint",
            "userinfo_endpoint",
            "jwks_uri",
            "revocation_endpoint",
            "introspection_endpoint",
            "end_session_endpoint",
        ] {
            let url = meta[endpoint]
                .as_str()
                .unwrap_or_else(|| panic!("{endpoint} missing"));
            assert!(url.starts_with(&idp.issuer), "{endpoint} = {url}");
        }
        assert_eq!(
            meta["response_types_supported"],
            serde_json::json!(["code"])
        );
        assert_eq!(
            meta["code_challenge_methods_supported"],
            serde_json::json!(["S256"])
        );
        assert_eq!(meta["authorization_response_iss_parameter_supported"], true);
        for field in [
            "grant_types_supported",
            "token_endpoint_auth_methods_supported",
            "id_token_signing_alg_values_supported",
            "scopes_supported",
            "claims_supported",
            "subject_types_supported",
        ] {
            assert!(
                meta[field].as_array().is_some_and(|a| !a.is_empty()),
                "{field}"
            );
        }
    }
    // RFC 8414 3: the path-inserted form too.
    let rfc8414 = format!(
        "{}/.well-known/oauth-authorization-server/oauth2/default",
        idp.base_url
    );
    let meta: Value = reqwest::get(rfc8414).await.unwrap().json().await.unwrap();
    assert_eq!(meta["issuer"], idp.issuer);
}

#[tokio::test]
async fn jwks_publishes_public_parts_only_with_kid_alg_use() {
    let idp = Idp::start().await;
    let jwks: Value = reqwest::get(idp.url("/v1/keys"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let key = &keys[0];
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["alg"], "RS256");
    assert_eq!(key["use"], "sig");
    assert!(key["kid"].as_str().is_some_and(|k| !k.is_empty()));
    // RSA private members (RFC 7518 6.3.2) never appear.
    for private in ["d", "p", "q", "dp", "dq", "qi"] {
        assert!(
            key.get(private).is_none(),
            "private member {private} published"
        );
    }
}

#[tokio::test]
async fn whole_flow_issues_tokens_whose_every_claim_checks_out() {
    let idp = Idp::start().await;
    let browser = http_client();
    let params = AuthRequest::demo(ALL_SCOPES);

    // Step 2-3: authorize sends the browser to the sign-in page.
    let response = authorize(&browser, &params.url(&idp)).await;
    assert_eq!(response.status(), 303);
    let signin = location(&response);
    assert!(signin.contains("/signin?tx="), "{signin}");

    // Step 3-4: sign in, then consent.
    let response = sign_in(&browser, &signin, &ALICE).await;
    let consent_url = location(&response);
    assert!(consent_url.contains("/consent?tx="), "{consent_url}");
    let page = browser
        .get(&consent_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Read your notes"),
        "consent lists scopes in words"
    );
    let response = consent(&browser, &consent_url, "allow").await;

    // Step 5: back to the redirect URI with code, state and iss (RFC 9207).
    let callback = location(&response);
    assert!(callback.starts_with(REDIRECT_URI), "{callback}");
    let query = query_of(&callback);
    assert_eq!(query["state"], params.get("state"));
    assert_eq!(query["iss"], idp.issuer);
    let code = &query["code"];
    // RFC 6749 10.10: at least 128 bits; ours are 256 bits of base64url.
    assert!(code.len() >= 43, "code too short: {}", code.len());

    // Steps 6-8.
    let response = exchange_code(&idp, code, &params.verifier).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let tokens: Value = response.json().await.unwrap();
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 300);
    assert_eq!(tokens["scope"], ALL_SCOPES);
    assert!(
        tokens["refresh_token"].as_str().is_some(),
        "offline_access gives a refresh token"
    );

    // The access token: RFC 9068.
    let access_token = tokens["access_token"].as_str().unwrap();
    let (header, at) = verify_with_jwks(&idp, access_token, "api://default").await;
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    for claim in [
        "iss",
        "sub",
        "aud",
        "exp",
        "iat",
        "jti",
        "client_id",
        "scope",
    ] {
        assert!(at.get(claim).is_some(), "access token lacks {claim}");
    }
    assert_eq!(at["client_id"], "bff-demo");
    assert_eq!(at["scope"], ALL_SCOPES);
    assert_eq!(
        at["exp"].as_i64().unwrap() - at["iat"].as_i64().unwrap(),
        300
    );

    // The ID token: OIDC Core 2 and 3.1.3.6.
    let id_token = tokens["id_token"].as_str().unwrap();
    let (_, id) = verify_with_jwks(&idp, id_token, "bff-demo").await;
    assert_eq!(id["sub"], at["sub"]);
    assert_eq!(id["nonce"], params.get("nonce"));
    assert_eq!(id["at_hash"], mock_idp::tokens::at_hash(access_token));
    assert!(id["auth_time"].as_i64().unwrap() <= id["iat"].as_i64().unwrap());
    assert!(id["sid"].as_str().is_some());
    assert_eq!(id["name"], ALICE.name);
    assert_eq!(id["email"], ALICE.username);
    assert_eq!(id["email_verified"], true);

    // Userinfo with the access token.
    let userinfo: Value = reqwest::Client::new()
        .get(idp.url("/v1/userinfo"))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(userinfo["sub"], at["sub"]);
    assert_eq!(userinfo["name"], ALICE.name);
    assert_eq!(userinfo["email"], ALICE.username);
}

#[tokio::test]
async fn id_token_releases_only_the_claims_its_scopes_ask_for_oidc_core_5_4() {
    let idp = Idp::start().await;
    let tokens = testkit::idp::login(&idp, &ALICE, "openid notes:read").await;
    assert!(
        tokens.refresh_token.is_none(),
        "no offline_access, no refresh token"
    );
    let (_, id) = verify_with_jwks(&idp, tokens.id_token.as_deref().unwrap(), "bff-demo").await;
    assert!(id.get("email").is_none());
    assert!(id.get("name").is_none());
    let userinfo: Value = reqwest::Client::new()
        .get(idp.url("/v1/userinfo"))
        .bearer_auth(&tokens.access_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(userinfo.get("email").is_none());
    assert!(userinfo["sub"].is_string());
}

#[tokio::test]
async fn second_login_in_the_same_browser_skips_sign_in_and_consent() {
    let idp = Idp::start().await;
    let browser = http_client();
    let first = AuthRequest::demo(ALL_SCOPES);
    browse_to_callback(&browser, &idp, &first.url(&idp), &ALICE).await;

    // Single sign-on: straight back with a code.
    let second = AuthRequest::demo(ALL_SCOPES);
    let response = authorize(&browser, &second.url(&idp)).await;
    let callback = location(&response);
    assert!(
        callback.starts_with(REDIRECT_URI),
        "expected SSO, got {callback}"
    );
    assert!(query_of(&callback).contains_key("code"));
}

#[tokio::test]
async fn prompt_login_and_max_age_zero_ask_for_the_password_again_oidc_core_3_1_2_1() {
    let idp = Idp::start().await;
    let browser = http_client();
    let first = AuthRequest::demo(ALL_SCOPES);
    browse_to_callback(&browser, &idp, &first.url(&idp), &ALICE).await;
    idp.time.advance(std::time::Duration::from_secs(1));

    for (name, value) in [("prompt", "login"), ("max_age", "0")] {
        let again = AuthRequest::demo(ALL_SCOPES).also(name, value);
        let response = authorize(&browser, &again.url(&idp)).await;
        assert!(
            location(&response).contains("/signin?"),
            "{name}={value} must re-authenticate"
        );
    }
}

#[tokio::test]
async fn prompt_consent_shows_the_consent_page_again() {
    let idp = Idp::start().await;
    let browser = http_client();
    let first = AuthRequest::demo(ALL_SCOPES);
    browse_to_callback(&browser, &idp, &first.url(&idp), &ALICE).await;
    let mut again = AuthRequest::demo(ALL_SCOPES);
    again = again.also("prompt", "consent");
    let response = authorize(&browser, &again.url(&idp)).await;
    assert!(location(&response).contains("/consent?"));
}

#[tokio::test]
async fn public_client_uses_pkce_alone_rfc8252() {
    let idp = Idp::start().await;
    let browser = http_client();
    let params = AuthRequest::native("openid notes:read");
    let callback = browse_to_callback(&browser, &idp, &params.url(&idp), &ALICE).await;
    let code = query_of(&callback)["code"].clone();
    let response = reqwest::Client::new()
        .post(idp.url("/v1/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", "native-demo"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:8765/callback"),
            ("code_verifier", &params.verifier),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn client_secret_post_works_for_a_client_registered_with_it() {
    let mut settings = mock_idp::Settings::demo();
    settings.clients[0].token_endpoint_auth_method =
        mock_idp::clients::AuthMethod::ClientSecretPost;
    let idp = Idp::start_with(settings).await;
    let browser = http_client();
    let params = AuthRequest::demo("openid");
    let callback = browse_to_callback(&browser, &idp, &params.url(&idp), &ALICE).await;
    let code = query_of(&callback)["code"].clone();
    let response = reqwest::Client::new()
        .post(idp.url("/v1/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", "bff-demo"),
            ("client_secret", "bff-demo-secret"),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", &params.verifier),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn es256_keys_sign_tokens_that_verify_against_the_jwks() {
    let idp = Idp::start().await;
    idp.state.rotate_keys("ES256").await.unwrap();
    let tokens = testkit::idp::login(&idp, &ALICE, "openid").await;
    let (header, _) = verify_with_jwks(&idp, &tokens.access_token, "api://default").await;
    assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
    verify_with_jwks(&idp, tokens.id_token.as_deref().unwrap(), "bff-demo").await;
}

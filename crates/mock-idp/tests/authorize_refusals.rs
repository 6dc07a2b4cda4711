//! Attacks on the authorization endpoint (step 2), and what the IdP must
//! answer (RFC 6749 4.1.2.1):
//!
//! - while the client or its redirect URI is in doubt, an HTML error page for
//!   the person and never a redirect (an open redirector, or a code sent to
//!   an attacker's URI);
//! - every other error goes back to the registered redirect URI with
//!   `error`, `error_description`, `state` and `iss` (RFC 9207 2).

mod common;

use common::{Query, assert_error_page, assert_redirect_error};
use testkit::{
    ALICE, ALL_SCOPES, Idp, REDIRECT_URI, authorize, consent, http_client, location, query_of,
    sign_in,
};

/// Sends the request in a browser with no IdP session.
async fn send(idp: &Idp, query: &Query) -> reqwest::Response {
    authorize(&http_client(), &query.url(idp)).await
}

// ---- the client and its redirect URI: a page, never a redirect ----------

#[tokio::test]
async fn unknown_client_id_gets_an_error_page_and_no_redirect_rfc6749_4_1_2_1() {
    let idp = Idp::start().await;
    let query = Query::demo("openid").set("client_id", "evil-client");
    let page = assert_error_page(send(&idp, &query).await, 400).await;
    assert!(page.contains("invalid_client"), "the page names the error");
    assert!(
        !page.contains(REDIRECT_URI),
        "the page offers no way to the redirect URI"
    );
}

#[tokio::test]
async fn missing_client_id_gets_an_error_page_and_no_redirect_rfc6749_4_1_2_1() {
    let idp = Idp::start().await;
    for query in [
        Query::demo("openid").without("client_id"),
        Query::demo("openid").set("client_id", ""),
    ] {
        let page = assert_error_page(send(&idp, &query).await, 400).await;
        assert!(page.contains("client_id"), "the page says what is wrong");
    }
}

#[tokio::test]
async fn redirect_uri_on_another_host_gets_an_error_page_and_no_redirect_rfc6749_4_1_2_1() {
    let idp = Idp::start().await;
    let query = Query::demo("openid").set("redirect_uri", "https://attacker.example/bff/callback");
    let page = assert_error_page(send(&idp, &query).await, 400).await;
    assert!(
        !page.contains("attacker.example"),
        "the attacker's URI is not echoed as a link"
    );
}

#[tokio::test]
async fn redirect_uri_differing_by_slash_case_query_or_path_is_refused_exact_match_rfc9700_4_1_3() {
    let idp = Idp::start().await;
    for near_miss in [
        "http://localhost:3000/bff/callback/",
        "http://localhost:3000/bff/Callback",
        "http://LOCALHOST:3000/bff/callback",
        "http://localhost:3000/bff/callback?next=https://attacker.example",
        "http://localhost:3000/bff/callback/../evil",
        "http://localhost:3000/bff/callbackx",
        "http://localhost:3000/bff/callback/extra",
        "http://localhost:3000/bff/callback#fragment",
        "http://localhost:3001/bff/callback",
        "https://localhost:3000/bff/callback",
        "http://localhost:3000@attacker.example/bff/callback",
        "http://localhost:3000/bff/callback%2F..%2Fevil",
    ] {
        let query = Query::demo("openid").set("redirect_uri", near_miss);
        let response = send(&idp, &query).await;
        assert!(
            response.headers().get("location").is_none(),
            "{near_miss} was accepted: redirected to {:?}",
            response.headers().get("location")
        );
        assert_error_page(response, 400).await;
    }
}

#[tokio::test]
async fn missing_redirect_uri_gets_an_error_page_and_no_redirect_oidc_core_3_1_2_1() {
    let idp = Idp::start().await;
    for query in [
        Query::demo("openid").without("redirect_uri"),
        Query::demo("openid").set("redirect_uri", ""),
    ] {
        let page = assert_error_page(send(&idp, &query).await, 400).await;
        assert!(page.contains("redirect_uri"), "the page says what is wrong");
    }
}

#[tokio::test]
async fn duplicated_redirect_uri_or_client_id_gets_an_error_page_rfc6749_3_1() {
    let idp = Idp::start().await;
    let evil = "https://attacker.example/cb";
    for query in [
        // Either order: one copy must not pass the check and the other be used.
        Query::demo("openid").also("redirect_uri", evil),
        Query::demo("openid")
            .without("redirect_uri")
            .also("redirect_uri", evil)
            .also("redirect_uri", REDIRECT_URI),
        Query::demo("openid").also("redirect_uri", REDIRECT_URI),
        Query::demo("openid").also("client_id", "native-demo"),
    ] {
        let page = assert_error_page(send(&idp, &query).await, 400).await;
        assert!(!page.contains("attacker.example"));
    }
}

// ---- everything else: back to the redirect URI with the error ----------

#[tokio::test]
async fn missing_code_challenge_is_invalid_request_rfc7636_4_4_1() {
    let idp = Idp::start().await;
    let query = Query::demo("openid").without("code_challenge");
    let response = send(&idp, &query).await;
    assert_redirect_error(
        &idp,
        &response,
        REDIRECT_URI,
        "invalid_request",
        query.get("state"),
    );
}

#[tokio::test]
async fn plain_code_challenge_method_is_invalid_request_rfc9700_2_1_1() {
    let idp = Idp::start().await;
    // A verifier sent as its own challenge: what `plain` means.
    let verifier = "a".repeat(43);
    let query = Query::demo("openid")
        .set("code_challenge", &verifier)
        .set("code_challenge_method", "plain");
    let response = send(&idp, &query).await;
    assert_redirect_error(
        &idp,
        &response,
        REDIRECT_URI,
        "invalid_request",
        query.get("state"),
    );
}

#[tokio::test]
async fn missing_code_challenge_method_is_invalid_request_rfc9700_2_1_1() {
    // RFC 7636 4.3: no method means `plain`, which is not accepted.
    let idp = Idp::start().await;
    let query = Query::demo("openid").without("code_challenge_method");
    let response = send(&idp, &query).await;
    assert_redirect_error(
        &idp,
        &response,
        REDIRECT_URI,
        "invalid_request",
        query.get("state"),
    );
}

#[tokio::test]
async fn malformed_code_challenge_is_invalid_request_rfc7636_4_2() {
    let idp = Idp::start().await;
    let good = Query::demo("openid").get("code_challenge").to_owned();
    for bad in [
        good[..42].to_owned(),       // too short for a SHA-256
        format!("{good}A"),          // too long
        format!("{}=", &good[..42]), // padded base64
        format!("{}+", &good[..42]), // not base64url
        format!("{}/", &good[..42]), // not base64url
        "not a challenge at all".to_owned(),
    ] {
        let query = Query::demo("openid").set("code_challenge", &bad);
        let response = send(&idp, &query).await;
        assert_redirect_error(
            &idp,
            &response,
            REDIRECT_URI,
            "invalid_request",
            query.get("state"),
        );
    }
}

#[tokio::test]
async fn implicit_response_type_token_is_unsupported_response_type_rfc6749_4_1_2_1() {
    let idp = Idp::start().await;
    for response_type in ["token", "id_token token", "code token", "code id_token"] {
        let query = Query::demo("openid").set("response_type", response_type);
        let response = send(&idp, &query).await;
        assert_redirect_error(
            &idp,
            &response,
            REDIRECT_URI,
            "unsupported_response_type",
            query.get("state"),
        );
    }
}

#[tokio::test]
async fn missing_response_type_is_invalid_request_rfc6749_4_1_2_1() {
    let idp = Idp::start().await;
    let query = Query::demo("openid").without("response_type");
    let response = send(&idp, &query).await;
    assert_redirect_error(
        &idp,
        &response,
        REDIRECT_URI,
        "invalid_request",
        query.get("state"),
    );
}

#[tokio::test]
async fn scope_the_client_may_not_ask_for_is_invalid_scope_rfc6749_3_3() {
    let idp = Idp::start().await;
    let query = Query::demo("openid notes:read admin:all");
    let response = send(&idp, &query).await;
    assert_redirect_error(
        &idp,
        &response,
        REDIRECT_URI,
        "invalid_scope",
        query.get("state"),
    );
}

#[tokio::test]
async fn missing_scope_is_invalid_scope_rfc6749_3_3() {
    let idp = Idp::start().await;
    let query = Query::demo("openid").without("scope");
    let response = send(&idp, &query).await;
    assert_redirect_error(
        &idp,
        &response,
        REDIRECT_URI,
        "invalid_scope",
        query.get("state"),
    );
}

#[tokio::test]
async fn duplicated_scope_parameter_is_invalid_request_rfc6749_3_1() {
    let idp = Idp::start().await;
    for (name, value) in [
        ("scope", "openid notes:write"),
        (
            "code_challenge",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        ),
        ("response_type", "code"),
        ("nonce", "second-nonce"),
    ] {
        let query = Query::demo("openid notes:read").also(name, value);
        let response = send(&idp, &query).await;
        assert_redirect_error(
            &idp,
            &response,
            REDIRECT_URI,
            "invalid_request",
            query.get("state"),
        );
    }
}

#[tokio::test]
async fn prompt_none_without_a_session_is_login_required_oidc_core_3_1_2_6() {
    let idp = Idp::start().await;
    let query = Query::demo("openid").set("prompt", "none");
    let response = send(&idp, &query).await;
    assert_redirect_error(
        &idp,
        &response,
        REDIRECT_URI,
        "login_required",
        query.get("state"),
    );
}

#[tokio::test]
async fn prompt_none_signed_in_without_consent_is_consent_required_oidc_core_3_1_2_6() {
    let idp = Idp::start().await;
    let browser = http_client();
    // Alice signs in, and leaves at the consent page without answering.
    let first = Query::demo(ALL_SCOPES);
    let response = authorize(&browser, &first.url(&idp)).await;
    let response = sign_in(&browser, &location(&response), &ALICE).await;
    assert!(
        location(&response).contains("/consent?"),
        "consent is asked first"
    );

    let silent = Query::demo(ALL_SCOPES).set("prompt", "none");
    let response = authorize(&browser, &silent.url(&idp)).await;
    assert_redirect_error(
        &idp,
        &response,
        REDIRECT_URI,
        "consent_required",
        silent.get("state"),
    );
}

#[tokio::test]
async fn denied_consent_is_access_denied_with_state_and_iss_rfc6749_4_1_2_1() {
    let idp = Idp::start().await;
    let browser = http_client();
    let query = Query::demo(ALL_SCOPES);
    let response = authorize(&browser, &query.url(&idp)).await;
    let response = sign_in(&browser, &location(&response), &ALICE).await;
    let response = consent(&browser, &location(&response), "deny").await;
    assert_redirect_error(
        &idp,
        &response,
        REDIRECT_URI,
        "access_denied",
        query.get("state"),
    );

    // Nothing was remembered: the next request asks again.
    let again = Query::demo(ALL_SCOPES);
    let response = authorize(&browser, &again.url(&idp)).await;
    assert!(
        location(&response).contains("/consent?"),
        "a denial is not a consent"
    );
}

#[tokio::test]
async fn state_with_odd_characters_comes_back_untouched_rfc6749_4_1_2() {
    let idp = Idp::start().await;
    let odd = "a b+c/d?e=f&g=h#i%20j;k,l'\"<>\\ü€😀~!*()";
    // On an error...
    let query = Query::demo("openid")
        .set("state", odd)
        .set("response_type", "token");
    let response = send(&idp, &query).await;
    assert_redirect_error(
        &idp,
        &response,
        REDIRECT_URI,
        "unsupported_response_type",
        odd,
    );
    // ...and with a code, through the sign-in and consent pages.
    let query = Query::demo("openid").set("state", odd);
    let callback =
        testkit::browse_to_callback(&http_client(), &idp, &query.url(&idp), &ALICE).await;
    let answer = query_of(&callback);
    assert!(answer.contains_key("code"), "{callback}");
    assert_eq!(answer["state"], odd);
    assert_eq!(answer["iss"], idp.issuer);
}

//! Attacks on the authorization endpoint (step 2), and what the IdP must
//! answer (RFC 6749 4.1.2.1):
//!
//! - while the client or its redirect URI is in doubt, an HTML error page for
//!   the person and never a redirect (an open redirector, or a code sent to
//!   an attacker's URI);
//! - every other error goes back to the registered redirect URI with
//!   `error`, `error_description`, `state` and `iss` (RFC 9207 2).
//!
//! Each table row is a test of its own, named after the attack and its rule.

use test_case::test_case;
use testkit::{
    ALICE, ALL_SCOPES, REDIRECT_URI, http_client,
    idp::{AuthRequest, Idp, authorize, browse_to_callback, consent, sign_in},
    location, query_of,
};

use crate::common::{assert_error_page, assert_redirect_error};

/// Sends the request in a browser with no IdP session.
async fn send(idp: &Idp, request: &AuthRequest) -> reqwest::Response {
    authorize(&http_client(), &request.url(idp)).await
}

/// A good request with one thing changed by the attack.
type Attack = fn(AuthRequest) -> AuthRequest;

const EVIL: &str = "https://attacker.example/cb";

// ---- the client and its redirect URI: a page, never a redirect ----------

#[test_case(|q| q.set("client_id", "evil-client") ; "unknown_client_id_rfc6749_4_1_2_1")]
#[test_case(|q| q.without("client_id") ; "missing_client_id_rfc6749_4_1_2_1")]
#[test_case(|q| q.set("client_id", "") ; "empty_client_id_rfc6749_4_1_2_1")]
#[test_case(|q| q.without("redirect_uri") ; "missing_redirect_uri_oidc_core_3_1_2_1")]
#[test_case(|q| q.set("redirect_uri", "") ; "empty_redirect_uri_oidc_core_3_1_2_1")]
#[test_case(|q| q.set("redirect_uri", "https://attacker.example/bff/callback") ; "redirect_uri_on_another_host_rfc6749_4_1_2_1")]
#[test_case(|q| q.set("redirect_uri", "http://localhost:3000/bff/callback/") ; "redirect_uri_with_a_trailing_slash_rfc9700_4_1_3")]
#[test_case(|q| q.set("redirect_uri", "http://localhost:3000/bff/Callback") ; "redirect_uri_in_another_case_rfc9700_4_1_3")]
#[test_case(|q| q.set("redirect_uri", "http://LOCALHOST:3000/bff/callback") ; "redirect_uri_with_an_upper_case_host_rfc9700_4_1_3")]
#[test_case(|q| q.set("redirect_uri", "http://localhost:3000/bff/callback?next=https://attacker.example") ; "redirect_uri_with_a_query_rfc9700_4_1_3")]
#[test_case(|q| q.set("redirect_uri", "http://localhost:3000/bff/callback/../evil") ; "redirect_uri_with_dot_segments_rfc9700_4_1_3")]
#[test_case(|q| q.set("redirect_uri", "http://localhost:3000/bff/callbackx") ; "redirect_uri_with_a_longer_path_rfc9700_4_1_3")]
#[test_case(|q| q.set("redirect_uri", "http://localhost:3000/bff/callback/extra") ; "redirect_uri_with_an_extra_segment_rfc9700_4_1_3")]
#[test_case(|q| q.set("redirect_uri", "http://localhost:3000/bff/callback#fragment") ; "redirect_uri_with_a_fragment_rfc9700_4_1_3")]
#[test_case(|q| q.set("redirect_uri", "http://localhost:3001/bff/callback") ; "redirect_uri_on_another_port_rfc9700_4_1_3")]
#[test_case(|q| q.set("redirect_uri", "https://localhost:3000/bff/callback") ; "redirect_uri_with_another_scheme_rfc9700_4_1_3")]
#[test_case(|q| q.set("redirect_uri", "http://localhost:3000@attacker.example/bff/callback") ; "redirect_uri_with_userinfo_rfc9700_4_1_3")]
#[test_case(|q| q.set("redirect_uri", "http://localhost:3000/bff/callback%2F..%2Fevil") ; "redirect_uri_with_encoded_dot_segments_rfc9700_4_1_3")]
#[test_case(|q| q.also("redirect_uri", EVIL) ; "redirect_uri_repeated_good_first_rfc6749_3_1")]
#[test_case(|q| q.without("redirect_uri").also("redirect_uri", EVIL).also("redirect_uri", REDIRECT_URI) ; "redirect_uri_repeated_evil_first_rfc6749_3_1")]
#[test_case(|q| q.also("redirect_uri", REDIRECT_URI) ; "redirect_uri_repeated_twice_the_same_rfc6749_3_1")]
#[test_case(|q| q.also("client_id", "native-demo") ; "client_id_repeated_rfc6749_3_1")]
#[tokio::test]
async fn an_untrusted_client_or_redirect_uri_gets_a_page_and_no_redirect(attack: Attack) {
    let idp = Idp::start().await;
    let request = attack(AuthRequest::demo("openid"));
    let page = assert_error_page(send(&idp, &request).await, 400).await;
    assert!(
        !page.contains("attacker.example"),
        "the attacker's URI is not echoed as a link"
    );
    assert!(
        page.contains("invalid_client") || page.contains("invalid_request"),
        "the page names the error"
    );
}

// ---- everything else: back to the redirect URI with the error ----------

#[test_case(|q| q.without("code_challenge"), "invalid_request" ; "missing_code_challenge_rfc7636_4_4_1")]
#[test_case(|q| q.set("code_challenge", &"a".repeat(43)).set("code_challenge_method", "plain"), "invalid_request" ; "plain_code_challenge_method_rfc9700_2_1_1")]
#[test_case(|q| q.without("code_challenge_method"), "invalid_request" ; "missing_code_challenge_method_means_plain_rfc9700_2_1_1")]
#[test_case(|q| { let c = q.get("code_challenge")[..42].to_owned(); q.set("code_challenge", &c) }, "invalid_request" ; "code_challenge_too_short_for_sha256_rfc7636_4_2")]
#[test_case(|q| { let c = format!("{}A", q.get("code_challenge")); q.set("code_challenge", &c) }, "invalid_request" ; "code_challenge_too_long_rfc7636_4_2")]
#[test_case(|q| { let c = format!("{}=", &q.get("code_challenge")[..42]); q.set("code_challenge", &c) }, "invalid_request" ; "code_challenge_padded_rfc7636_4_2")]
#[test_case(|q| { let c = format!("{}+", &q.get("code_challenge")[..42]); q.set("code_challenge", &c) }, "invalid_request" ; "code_challenge_not_base64url_rfc7636_4_2")]
#[test_case(|q| q.set("code_challenge", "not a challenge at all"), "invalid_request" ; "code_challenge_not_a_digest_rfc7636_4_2")]
#[test_case(|q| q.set("response_type", "token"), "unsupported_response_type" ; "implicit_response_type_token_rfc6749_4_1_2_1")]
#[test_case(|q| q.set("response_type", "id_token token"), "unsupported_response_type" ; "implicit_response_type_id_token_token_rfc6749_4_1_2_1")]
#[test_case(|q| q.set("response_type", "code token"), "unsupported_response_type" ; "hybrid_response_type_code_token_rfc6749_4_1_2_1")]
#[test_case(|q| q.set("response_type", "code id_token"), "unsupported_response_type" ; "hybrid_response_type_code_id_token_rfc6749_4_1_2_1")]
#[test_case(|q| q.without("response_type"), "invalid_request" ; "missing_response_type_rfc6749_4_1_2_1")]
#[test_case(|q| q.set("scope", "openid notes:read admin:all"), "invalid_scope" ; "scope_the_client_may_not_ask_for_rfc6749_3_3")]
#[test_case(|q| q.without("scope"), "invalid_scope" ; "missing_scope_rfc6749_3_3")]
#[test_case(|q| q.set("scope", " "), "invalid_scope" ; "scope_of_only_a_space_rfc6749_3_3")]
#[test_case(|q| q.also("scope", "openid notes:write"), "invalid_request" ; "scope_repeated_rfc6749_3_1")]
#[test_case(|q| q.also("code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"), "invalid_request" ; "code_challenge_repeated_rfc6749_3_1")]
#[test_case(|q| q.also("response_type", "code"), "invalid_request" ; "response_type_repeated_rfc6749_3_1")]
#[test_case(|q| q.also("nonce", "second-nonce"), "invalid_request" ; "nonce_repeated_rfc6749_3_1")]
#[test_case(|q| q.set("prompt", "none"), "login_required" ; "prompt_none_without_a_session_oidc_core_3_1_2_6")]
#[test_case(|q| q.set("prompt", "none login"), "invalid_request" ; "prompt_none_with_another_value_oidc_core_3_1_2_1")]
#[tokio::test]
async fn a_bad_request_of_a_trusted_client_is_answered_through_its_redirect_uri(
    attack: Attack,
    error: &str,
) {
    let idp = Idp::start().await;
    let request = attack(AuthRequest::demo("openid notes:read"));
    let response = send(&idp, &request).await;
    assert_redirect_error(&idp, &response, REDIRECT_URI, error, request.get("state"));
}

#[tokio::test]
async fn prompt_none_signed_in_without_consent_is_consent_required_oidc_core_3_1_2_6() {
    let idp = Idp::start().await;
    let browser = http_client();
    // Alice signs in, and leaves at the consent page without answering.
    let first = AuthRequest::demo(ALL_SCOPES);
    let response = authorize(&browser, &first.url(&idp)).await;
    let response = sign_in(&browser, &location(&response), &ALICE).await;
    assert!(
        location(&response).contains("/consent?"),
        "consent is asked first"
    );

    let silent = AuthRequest::demo(ALL_SCOPES).set("prompt", "none");
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
    let request = AuthRequest::demo(ALL_SCOPES);
    let response = authorize(&browser, &request.url(&idp)).await;
    let response = sign_in(&browser, &location(&response), &ALICE).await;
    let response = consent(&browser, &location(&response), "deny").await;
    assert_redirect_error(
        &idp,
        &response,
        REDIRECT_URI,
        "access_denied",
        request.get("state"),
    );

    // Nothing was remembered: the next request asks again.
    let again = AuthRequest::demo(ALL_SCOPES);
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
    let request = AuthRequest::demo("openid")
        .set("state", odd)
        .set("response_type", "token");
    let response = send(&idp, &request).await;
    assert_redirect_error(
        &idp,
        &response,
        REDIRECT_URI,
        "unsupported_response_type",
        odd,
    );
    // ...and with a code, through the sign-in and consent pages.
    let request = AuthRequest::demo("openid").set("state", odd);
    let callback = browse_to_callback(&http_client(), &idp, &request.url(&idp), &ALICE).await;
    let answer = query_of(&callback);
    assert!(answer.contains_key("code"), "{callback}");
    assert_eq!(answer["state"], odd);
    assert_eq!(answer["iss"], idp.issuer);
}

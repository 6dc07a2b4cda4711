//! The person's grants page (`/grants`): which applications they let in,
//! and taking that back. A revoked grant leaves no token alive and no
//! consent remembered; the page and its form are the signed-in person's
//! alone.

use crate::common::{assert_error_page, assert_token_error};
use test_case::test_case;
use testkit::{
    ALICE, ALL_SCOPES, claims_of,
    database::Engine,
    form_inputs, http_client,
    idp::{
        AuthRequest, Idp, Tokens, authorize, browse_to_callback, exchange_code, is_active, refresh,
    },
    location, query_of,
};

/// Alice signs in to bff-demo in `browser` and consents; returns her tokens.
async fn signed_in(idp: &Idp, browser: &reqwest::Client) -> Tokens {
    let params = testkit::idp::AuthRequest::demo(ALL_SCOPES);
    let callback = browse_to_callback(browser, idp, &params.url(idp), &ALICE).await;
    let code = query_of(&callback)["code"].clone();
    exchange_code(idp, &code, &params.verifier)
        .await
        .json()
        .await
        .unwrap()
}

async fn grants_page(idp: &Idp, browser: &reqwest::Client) -> reqwest::Response {
    browser
        .get(format!("{}/grants", idp.base_url))
        .send()
        .await
        .unwrap()
}

async fn post_revoke(
    idp: &Idp,
    browser: &reqwest::Client,
    csrf: &str,
    client_id: &str,
) -> reqwest::Response {
    browser
        .post(format!("{}/grants/revoke", idp.base_url))
        .form(&[("csrf", csrf), ("client_id", client_id)])
        .send()
        .await
        .unwrap()
}

/// Where an authorization request of bff-demo in this browser goes next.
async fn next_step(idp: &Idp, browser: &reqwest::Client) -> String {
    location(&authorize(browser, &AuthRequest::demo(ALL_SCOPES).url(idp)).await)
}

#[tokio::test]
async fn grants_page_lists_the_apps_the_person_let_in() {
    let idp = Idp::start().await;
    let browser = http_client();
    signed_in(&idp, &browser).await;
    let response = grants_page(&idp, &browser).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["x-frame-options"],
        "DENY",
        "RFC 9700 4.16: not framed"
    );
    let page = response.text().await.unwrap();
    assert!(page.contains(ALICE.name), "whose grants");
    assert!(page.contains("Notes (BFF demo)"), "the app by name");
    assert!(page.contains("notes:write"), "what it may do");
    let fields = form_inputs(&page);
    assert_eq!(fields["client_id"], "bff-demo");
    assert!(!fields["csrf"].is_empty());
}

#[test_case(Engine::Sqlite ; "sqlite")]
#[test_case(Engine::Postgres ; "postgres")]
#[tokio::test]
async fn revoking_a_grant_kills_its_tokens_and_asks_for_consent_again_rfc7009_2_1(engine: Engine) {
    let Some(db) = engine.database().await else {
        return;
    };
    let idp = Idp::start_on_store(mock_idp::Settings::demo(), db.url()).await;
    let browser = http_client();
    let tokens = signed_in(&idp, &browser).await;
    let refresh_token = tokens.refresh_token.clone().unwrap();
    assert!(
        next_step(&idp, &browser).await.contains("code="),
        "consent remembered before"
    );

    let fields = form_inputs(&grants_page(&idp, &browser).await.text().await.unwrap());
    let response = post_revoke(&idp, &browser, &fields["csrf"], "bff-demo").await;
    assert!(response.status().is_redirection(), "{}", response.status());
    assert!(location(&response).ends_with("/grants"));

    assert_token_error(refresh(&idp, &refresh_token).await, 400, "invalid_grant").await;
    assert!(
        !is_active(&idp, &tokens.access_token).await,
        "the access token outlived its grant"
    );
    let next = next_step(&idp, &browser).await;
    assert!(
        next.contains("/consent?"),
        "consent asked again, got {next}"
    );
    let page = grants_page(&idp, &browser).await.text().await.unwrap();
    assert!(
        !page.contains("Notes (BFF demo)"),
        "the grant is still listed"
    );
}

#[tokio::test]
async fn grants_page_and_revoke_without_a_session_are_401() {
    let idp = Idp::start().await;
    let stranger = http_client();
    let page = assert_error_page(grants_page(&idp, &stranger).await, 401).await;
    assert!(page.contains("not signed in"));
    assert_error_page(
        post_revoke(&idp, &stranger, "anything", "bff-demo").await,
        401,
    )
    .await;
}

#[tokio::test]
async fn grants_revoke_with_a_forged_csrf_field_is_refused_rfc6749_10_12() {
    let idp = Idp::start().await;
    let browser = http_client();
    let tokens = signed_in(&idp, &browser).await;
    let refresh_token = tokens.refresh_token.clone().unwrap();
    // Every client learns the session's sid from its ID tokens: a token
    // derived from it alone would be forgeable by any of them.
    let sid = claims_of(tokens.id_token.as_deref().unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let from_sid = mock_idp::secret::digest(&format!("grants:{sid}"));
    for forged in ["", "forged", from_sid.as_str()] {
        assert_error_page(post_revoke(&idp, &browser, forged, "bff-demo").await, 400).await;
    }
    // Nothing was revoked.
    assert!(is_active(&idp, &refresh_token).await);
    assert!(
        next_step(&idp, &browser).await.contains("code="),
        "consent was revoked"
    );
}

#[tokio::test]
async fn revoking_a_grant_touches_only_the_signed_in_persons_own() {
    let idp = Idp::start().await;
    let alice_browser = http_client();
    let alice = signed_in(&idp, &alice_browser).await;
    let bob_browser = http_client();
    let params = testkit::idp::AuthRequest::demo(ALL_SCOPES);
    browse_to_callback(&bob_browser, &idp, &params.url(&idp), &testkit::BOB).await;

    let fields = form_inputs(&grants_page(&idp, &bob_browser).await.text().await.unwrap());
    let response = post_revoke(&idp, &bob_browser, &fields["csrf"], "bff-demo").await;
    assert!(response.status().is_redirection());
    assert!(
        is_active(&idp, alice.refresh_token.as_deref().unwrap()).await,
        "Bob revoked Alice's grant"
    );
    assert!(next_step(&idp, &alice_browser).await.contains("code="));
}

#[tokio::test]
async fn a_code_issued_before_its_grant_was_revoked_yields_no_tokens_rfc6749_4_1_2() {
    // The person revokes the app while one of its codes is on its way to
    // the token endpoint: the code must not outlive the grant it carries.
    let idp = Idp::start().await;
    let browser = http_client();
    signed_in(&idp, &browser).await;
    let params = AuthRequest::demo(ALL_SCOPES);
    let callback = browse_to_callback(&browser, &idp, &params.url(&idp), &ALICE).await;
    let code = query_of(&callback)["code"].clone();

    let fields = form_inputs(&grants_page(&idp, &browser).await.text().await.unwrap());
    let response = post_revoke(&idp, &browser, &fields["csrf"], "bff-demo").await;
    assert!(response.status().is_redirection(), "{}", response.status());

    assert_token_error(
        exchange_code(&idp, &code, &params.verifier).await,
        400,
        "invalid_grant",
    )
    .await;
}

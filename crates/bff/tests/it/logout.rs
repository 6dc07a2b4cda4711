//! Signing out: the BFF's session ends, the refresh token goes back to the
//! provider, and the browser carries an RP-initiated logout to the provider
//! (OIDC RP-Initiated Logout 1.0) with `id_token_hint` (which Okta and
//! Keycloak require), by POST so the ID token stays out of every URL, and a
//! `state` that the BFF checks when the browser comes back.

use reqwest::Method;
use testkit::{
    ALICE, CLIENT_ID, bff::Received, claims_of, form_action, form_inputs, http_client, location,
    query_of, stack::Stack,
};

/// The ID token the IdP last issued to the BFF.
fn last_id_token(stack: &Stack) -> String {
    stack
        .idp
        .faults
        .issued_tokens()
        .into_iter()
        .rev()
        .find(|t| claims_of(t)["aud"] == CLIENT_ID)
        .expect("an ID token")
}

#[tokio::test]
async fn signing_out_posts_the_id_token_hint_ends_the_idp_session_and_checks_the_state_oidc_rp_logout_2()
 {
    let stack = Stack::start().await;
    let browser = http_client();
    stack
        .bff
        .sign_in(&browser, &ALICE, &mut Received::default())
        .await;
    let csrf = stack.bff.sign_out_token(&browser).await;
    let page = browser
        .post(stack.bff.url("/bff/logout"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(
        page.status(),
        200,
        "a page, not a redirect: no token in a URL"
    );
    assert!(page.headers().get("location").is_none());
    assert_eq!(page.headers()["cache-control"], "no-store");
    let html = page.text().await.unwrap();
    assert!(html.contains("method=\"post\""), "{html}");
    let action = form_action(&html);
    assert_eq!(action, stack.idp.url("/v1/logout"));
    let fields = form_inputs(&html);
    assert_eq!(fields["id_token_hint"], last_id_token(&stack));
    assert_eq!(fields["client_id"], CLIENT_ID);
    assert_eq!(fields["post_logout_redirect_uri"], stack.bff.url("/"));
    assert_eq!(fields["state"].len(), 43, "a fresh random state");
    assert_eq!(
        stack.bff.user(&browser).await.status(),
        401,
        "signed out here"
    );

    // The browser posts the form (app.js does it at once). The hint names
    // the browser's own IdP session, so it ends without a question.
    let back = browser.post(&action).form(&fields).send().await.unwrap();
    assert_eq!(back.status(), 303);
    let target = location(&back);
    assert!(target.starts_with(&stack.bff.url("/?")), "{target}");
    assert_eq!(query_of(&target)["state"], fields["state"], "state echoed");

    // Home checks the state: this browser's logout, done at the provider.
    let home = browser
        .get(&target)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        home.contains("signed out of this app and of the identity provider"),
        "{home}"
    );
    // The IdP session is over: signing in again asks for the password.
    let login = browser
        .get(stack.bff.url("/bff/login"))
        .send()
        .await
        .unwrap();
    let authorize = browser.get(location(&login)).send().await.unwrap();
    assert!(
        location(&authorize).contains("/signin?"),
        "the IdP session ended"
    );
}

#[tokio::test]
async fn a_state_this_browser_did_not_send_is_not_taken_for_its_logout_oidc_rp_logout_3() {
    let stack = Stack::start().await;
    let browser = http_client();
    let home = browser
        .get(stack.bff.url("/?state=made-up"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!home.contains("signed out of this app"), "{home}");
}

#[tokio::test]
async fn logout_method_get_redirects_with_the_hint_for_providers_that_need_it() {
    let stack = Stack::start_with(mock_idp::Settings::demo(), &["--logout-method", "get"]).await;
    let browser = http_client();
    stack
        .bff
        .sign_in(&browser, &ALICE, &mut Received::default())
        .await;
    let response = stack
        .bff
        .json(&browser, Method::POST, "/bff/logout")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let target = location(&response);
    assert!(
        target.starts_with(&stack.idp.url("/v1/logout?")),
        "{target}"
    );
    let query = query_of(&target);
    assert_eq!(query["id_token_hint"], last_id_token(&stack));
    assert_eq!(query["client_id"], CLIENT_ID);
    let back = browser.get(&target).send().await.unwrap();
    assert_eq!(query_of(&location(&back))["state"], query["state"]);
}

#[tokio::test]
async fn logout_without_the_form_token_or_header_does_nothing_bff_csrf() {
    let stack = Stack::start().await;
    let browser = http_client();
    stack
        .bff
        .sign_in(&browser, &ALICE, &mut Received::default())
        .await;
    // Another site's form: no anti-CSRF field, no X-CSRF header.
    for body in [vec![], vec![("csrf", "forged")]] {
        let response = browser
            .post(stack.bff.url("/bff/logout"))
            .form(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
    }
    assert_eq!(
        stack.bff.user(&browser).await.status(),
        200,
        "still signed in"
    );
}

#[tokio::test]
async fn the_idp_logout_confirmation_refuses_a_form_from_elsewhere_oidc_rp_logout_2() {
    let stack = Stack::start().await;
    let browser = http_client();
    stack
        .bff
        .sign_in(&browser, &ALICE, &mut Received::default())
        .await;
    // Another site's form, without this browser's token.
    let forged = browser
        .post(stack.idp.page("/logout/confirm"))
        .form(&[("csrf", "forged"), ("client_id", CLIENT_ID)])
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
    let authorize = browser.get(location(&login)).send().await.unwrap();
    assert!(location(&authorize).contains("/bff/callback"));
}

//! The pages a person sees at the IdP (steps 3-4): sign-in, registration,
//! consent and errors. Attacks on them: clickjacking, account enumeration,
//! login CSRF, forged consent, session fixation.

use crate::common::assert_error_page;
use testkit::{
    ALICE, ALL_SCOPES, REDIRECT_URI, claims_of, cookie_value, form_inputs, http_client,
    idp::{AuthRequest, Idp, authorize, consent, exchange_code, register, sign_in, submit_sign_in},
    location, query_of, set_cookie,
};

use std::sync::Arc;

const SESSION_COOKIE: &str = "mockidp_session";
const GENERIC_FAILURE: &str = "The email or password is not correct.";

/// Starts a request in `browser`; returns the sign-in page's URL.
async fn start(idp: &Idp, browser: &reqwest::Client, scope: &str) -> String {
    let response = authorize(browser, &AuthRequest::demo(scope).url(idp)).await;
    let signin = location(&response);
    assert!(signin.contains("/signin?tx="), "{signin}");
    signin
}

/// The page's form fields, as the browser would post them.
async fn fields_of(
    browser: &reqwest::Client,
    url: &str,
) -> std::collections::HashMap<String, String> {
    let page = browser.get(url).send().await.unwrap();
    assert_eq!(page.status(), 200, "{url}");
    form_inputs(&page.text().await.unwrap())
}

fn assert_cannot_be_framed(response: &reqwest::Response, what: &str) {
    let headers = response.headers();
    assert_eq!(
        headers.get("x-frame-options").map(|v| v.to_str().unwrap()),
        Some("DENY"),
        "{what}: X-Frame-Options"
    );
    let csp = headers
        .get("content-security-policy")
        .unwrap_or_else(|| panic!("{what}: no Content-Security-Policy"))
        .to_str()
        .unwrap();
    assert!(
        csp.split(';').any(|d| d.trim() == "frame-ancestors 'none'"),
        "{what}: CSP {csp}"
    );
}

// ---- clickjacking ---------------------------------------------------------

#[tokio::test]
async fn sign_in_consent_and_error_pages_cannot_be_framed_rfc9700_4_16() {
    let idp = Idp::start().await;
    let browser = http_client();
    let signin = start(&idp, &browser, ALL_SCOPES).await;
    let page = browser.get(&signin).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_cannot_be_framed(&page, "sign-in page");

    let signup = browser
        .get(signin.replace("/signin?", "/signup?"))
        .send()
        .await
        .unwrap();
    assert_eq!(signup.status(), 200);
    assert_cannot_be_framed(&signup, "registration page");

    let response = sign_in(&browser, &signin, &ALICE).await;
    let page = browser.get(location(&response)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_cannot_be_framed(&page, "consent page");

    let error = browser
        .get(
            AuthRequest::demo("openid")
                .set("client_id", "evil")
                .url(&idp),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(error.status(), 400);
    assert_cannot_be_framed(&error, "error page");
}

// ---- account enumeration ----------------------------------------------------

/// Signs in with these credentials in a fresh browser; returns the status,
/// whether a session cookie was set, and the page with its per-request
/// values (tx, csrf, the echoed username) blanked out.
async fn failed_sign_in(idp: &Idp, username: &str, password: &str) -> (u16, bool, String) {
    let browser = http_client();
    let signin = start(idp, &browser, "openid").await;
    let fields = fields_of(&browser, &signin).await;
    let response = submit_sign_in(&browser, &signin, username, password).await;
    let status = response.status().as_u16();
    let session = set_cookie(&response, SESSION_COOKIE).is_some();
    assert!(
        response.headers().get("location").is_none(),
        "a failed sign-in goes nowhere"
    );
    let page = response
        .text()
        .await
        .unwrap()
        .replace(&fields["tx"], "TX")
        .replace(&fields["csrf"], "CSRF")
        .replace(&format!("value=\"{username}\""), "value=\"USERNAME\"");
    (status, session, page)
}

#[tokio::test]
async fn wrong_password_and_unknown_user_get_the_same_generic_refusal_owasp_authentication() {
    let idp = Idp::start().await;
    let (status, session, wrong_password) =
        failed_sign_in(&idp, ALICE.username, "not-wonderland").await;
    assert_eq!(status, 401);
    assert!(!session, "no session after a wrong password");
    let (status, session, unknown_user) =
        failed_sign_in(&idp, "nobody@example.com", ALICE.password).await;
    assert_eq!(status, 401);
    assert!(!session, "no session for an unknown user");

    assert!(
        wrong_password.contains(GENERIC_FAILURE),
        "the generic message is shown"
    );
    // Not a word more in one than in the other: which field was wrong stays unsaid.
    assert_eq!(wrong_password, unknown_user, "the two refusals differ");
}

// ---- login CSRF and stale interactions ----------------------------------------

#[tokio::test]
async fn sign_in_form_with_a_forged_csrf_field_is_refused_without_redirect_rfc6749_10_12() {
    let idp = Idp::start().await;
    let browser = http_client();
    let signin = start(&idp, &browser, "openid").await;
    let mut fields = fields_of(&browser, &signin).await;
    fields.insert("username".into(), ALICE.username.into());
    fields.insert("password".into(), ALICE.password.into());
    for csrf in ["forged", ""] {
        fields.insert("csrf".into(), csrf.into());
        let response = browser
            .post(idp.base_url.clone() + "/signin")
            .form(&fields)
            .send()
            .await
            .unwrap();
        assert!(
            set_cookie(&response, SESSION_COOKIE).is_none(),
            "no session from a forged form"
        );
        assert_error_page(response, 400).await;
    }
}

#[tokio::test]
async fn sign_in_form_posted_from_another_browser_is_refused_rfc6749_10_12() {
    // Login CSRF: the attacker starts a sign-in in their own browser and
    // makes the victim's browser post the form (or the other way round).
    let idp = Idp::start().await;
    let attacker = http_client();
    let signin = start(&idp, &attacker, "openid").await;
    let mut fields = fields_of(&attacker, &signin).await;
    fields.insert("username".into(), ALICE.username.into());
    fields.insert("password".into(), ALICE.password.into());

    let victim = http_client(); // no mockidp_browser cookie, or another one
    let response = victim
        .post(idp.base_url.clone() + "/signin")
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert!(set_cookie(&response, SESSION_COOKIE).is_none());
    assert_error_page(response, 400).await;

    let other_browser = http_client();
    start(&idp, &other_browser, "openid").await; // has its own mockidp_browser
    let response = other_browser
        .post(idp.base_url.clone() + "/signin")
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert!(set_cookie(&response, SESSION_COOKIE).is_none());
    assert_error_page(response, 400).await;

    // The pages themselves are not shown to another browser either.
    assert_error_page(victim.get(&signin).send().await.unwrap(), 400).await;
}

#[tokio::test]
async fn unknown_tx_gets_an_error_page_and_a_finished_one_goes_home_without_a_code_rfc6749_10_12() {
    let idp = Idp::start().await;
    let browser = http_client();
    let signin = start(&idp, &browser, "openid").await;
    let fields = fields_of(&browser, &signin).await;

    let unknown = format!("{}/signin?tx={}", idp.base_url, testkit::random_string());
    assert_error_page(browser.get(&unknown).send().await.unwrap(), 400).await;

    // Finish the flow; its tx is then spent.
    let response = sign_in(&browser, &signin, &ALICE).await;
    let response = consent(&browser, &location(&response), "allow").await;
    assert!(location(&response).starts_with(REDIRECT_URI));
    // The back button: to the application's home (client_uri), no code.
    let back = browser.get(&signin).send().await.unwrap();
    assert_eq!(back.status(), 303);
    assert_eq!(location(&back), "http://localhost:3000/");
    // Replaying the finished form from the same browser issues nothing.
    let mut replay = fields;
    replay.insert("username".into(), ALICE.username.into());
    replay.insert("password".into(), ALICE.password.into());
    let response = browser
        .post(idp.base_url.clone() + "/signin")
        .form(&replay)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert!(
        !location(&response).contains("code="),
        "a finished sign-in gives no second code"
    );
}

#[tokio::test]
async fn consent_form_with_a_forged_csrf_field_is_refused_without_redirect_rfc6749_10_12() {
    let idp = Idp::start().await;
    let browser = http_client();
    let signin = start(&idp, &browser, ALL_SCOPES).await;
    let consent_url = location(&sign_in(&browser, &signin, &ALICE).await);
    let mut fields = fields_of(&browser, &consent_url).await;
    fields.insert("decision".into(), "allow".into());
    fields.insert("csrf".into(), "forged".into());
    let response = browser
        .post(idp.base_url.clone() + "/consent")
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_error_page(response, 400).await;
    // Nothing was granted: the consent page is still what comes next.
    let again = authorize(&browser, &AuthRequest::demo(ALL_SCOPES).url(&idp)).await;
    assert!(
        location(&again).contains("/consent?"),
        "a forged form granted consent"
    );
}

// ---- registration -------------------------------------------------------------

/// The registration page of an interaction, reached from its sign-in page's link.
async fn signup_url(browser: &reqwest::Client, signin: &str) -> String {
    let page = browser
        .get(signin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let start = page
        .find("href=\"/signup?tx=")
        .expect("a link to the registration page")
        + 6;
    let end = start + page[start..].find('"').unwrap();
    url::Url::parse(signin)
        .unwrap()
        .join(&page[start..end].replace("&amp;", "&"))
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn registration_creates_a_user_who_continues_the_flow_and_signs_in_again() {
    let idp = Idp::start().await;
    let email = format!(
        "carol-{}@example.com",
        testkit::random_string().to_lowercase()
    );
    let password = "a long enough password";

    let browser = http_client();
    let params = AuthRequest::demo(ALL_SCOPES);
    let signin = location(&authorize(&browser, &params.url(&idp)).await);
    let signup = signup_url(&browser, &signin).await;
    let response = register(&browser, &signup, &email, password, "Carol Tester").await;
    assert!(
        set_cookie(&response, SESSION_COOKIE).is_some(),
        "registered means signed in"
    );
    let consent_url = location(&response);
    assert!(
        consent_url.contains("/consent?"),
        "the flow goes on to consent: {consent_url}"
    );
    let callback = location(&consent(&browser, &consent_url, "allow").await);
    let code = query_of(&callback)["code"].clone();
    let tokens: testkit::idp::Tokens = exchange_code(&idp, &code, &params.verifier)
        .await
        .json()
        .await
        .unwrap();
    let id = claims_of(tokens.id_token.as_deref().unwrap());
    assert_eq!(id["email"], email);
    assert_eq!(id["name"], "Carol Tester");
    // Nobody checked the address: the IdP must not vouch for it (OIDC Core
    // 5.1 email_verified), or a client matching users by email would take
    // it for the mailbox's owner.
    assert_eq!(id["email_verified"], false);

    // In another browser, the new account signs in with its password; its
    // consent is remembered.
    let fresh = http_client();
    let signin = start(&idp, &fresh, ALL_SCOPES).await;
    let response = submit_sign_in(&fresh, &signin, &email, password).await;
    let callback = location(&response);
    assert!(callback.starts_with(REDIRECT_URI), "{callback}");
    assert!(query_of(&callback).contains_key("code"));
}

#[tokio::test]
async fn registration_with_a_taken_email_is_refused_422() {
    let idp = Idp::start().await;
    // The same address in other letter cases is the same mailbox: an account
    // for it would pass for Alice with any client that matches users by email.
    for taken in [ALICE.username, "Alice@Example.com", " ALICE@EXAMPLE.COM "] {
        let browser = http_client();
        let signin = start(&idp, &browser, "openid").await;
        let signup = signup_url(&browser, &signin).await;
        let response = register(&browser, &signup, taken, "another long password", "Mallory").await;
        assert_eq!(response.status(), 422, "{taken:?} was registered again");
        assert!(
            set_cookie(&response, SESSION_COOKIE).is_none(),
            "no session for a refused registration"
        );
        let page = response.text().await.unwrap();
        assert!(page.contains("already exists"), "the page says why");
    }

    // Alice's account is untouched: her own password still works.
    let fresh = http_client();
    let signin = start(&idp, &fresh, "openid").await;
    let response = submit_sign_in(&fresh, &signin, ALICE.username, ALICE.password).await;
    assert!(
        response.status().is_redirection(),
        "Alice can still sign in"
    );
}

#[tokio::test]
async fn registration_with_a_short_password_is_refused_422() {
    let idp = Idp::start().await;
    let browser = http_client();
    let signin = start(&idp, &browser, "openid").await;
    let signup = signup_url(&browser, &signin).await;
    let email = format!(
        "dave-{}@example.com",
        testkit::random_string().to_lowercase()
    );
    let response = register(&browser, &signup, &email, "short", "Dave").await;
    assert_eq!(response.status(), 422);
    assert!(set_cookie(&response, SESSION_COOKIE).is_none());
    let page = response.text().await.unwrap();
    assert!(
        page.contains("Choose a password of at least 8 characters"),
        "the page says why"
    );
    assert!(
        page.contains("aria-invalid=\"true\""),
        "the field is marked"
    );

    // No account was made.
    let fresh = http_client();
    let signin = start(&idp, &fresh, "openid").await;
    let response = submit_sign_in(&fresh, &signin, &email, "short").await;
    assert_eq!(response.status(), 401);
}

// ---- the session cookie -----------------------------------------------------------

#[tokio::test]
async fn session_cookie_is_httponly_samesite_lax_secure_path_root_rfc6265bis() {
    let idp = Idp::start().await;
    let browser = http_client();
    let signin = start(&idp, &browser, "openid").await;
    let response = sign_in(&browser, &signin, &ALICE).await;
    let cookie = set_cookie(&response, SESSION_COOKIE).expect("a session cookie at sign-in");
    let attributes: Vec<String> = cookie
        .split(';')
        .skip(1)
        .map(|a| a.trim().to_ascii_lowercase())
        .collect();
    for wanted in ["httponly", "samesite=lax", "secure", "path=/"] {
        assert!(
            attributes.iter().any(|a| a == wanted),
            "{wanted} missing from {cookie}"
        );
    }
    assert!(
        !attributes.iter().any(|a| a.starts_with("domain=")),
        "host-only: {cookie}"
    );
    assert!(cookie_value(&cookie).len() >= 43, "a 256-bit secret");
}

#[tokio::test]
async fn session_cookie_changes_at_each_sign_in_no_fixation_owasp_session_management() {
    let idp = Idp::start().await;
    // The attacker plants a session cookie of their choosing in the browser.
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let planted = "planted-by-the-attacker-aaaaaaaaaaaaaaaaaaaaaaaaa";
    jar.add_cookie_str(
        &format!("{SESSION_COOKIE}={planted}; Path=/"),
        &idp.base_url.parse().unwrap(),
    );
    let browser = reqwest::Client::builder()
        .cookie_provider(jar)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let signin = start(&idp, &browser, "openid").await;
    let first = set_cookie(&sign_in(&browser, &signin, &ALICE).await, SESSION_COOKIE)
        .expect("session cookie");
    let first = cookie_value(&first);
    assert_ne!(first, planted, "the planted value became the session");

    // Signing in again (prompt=login) makes yet another value.
    let response = authorize(
        &browser,
        &AuthRequest::demo("openid").set("prompt", "login").url(&idp),
    )
    .await;
    let signin = location(&response);
    assert!(signin.contains("/signin?"));
    let response = sign_in(&browser, &signin, &ALICE).await;
    let second = cookie_value(&set_cookie(&response, SESSION_COOKIE).expect("session cookie"));
    assert_ne!(
        second, first,
        "the session cookie kept its value across a sign-in"
    );
    assert_ne!(second, planted);
}

#[tokio::test]
async fn signing_in_again_renews_the_session_and_the_old_cookie_stops_working_owasp_session_management()
 {
    let idp = Idp::start().await;
    let browser = http_client();
    // First sign-in: keep the cookie value, as someone who copied it would.
    let signin = start(&idp, &browser, "openid").await;
    let response = sign_in(&browser, &signin, &ALICE).await;
    let old_cookie = set_cookie(&response, SESSION_COOKIE).expect("session cookie");
    consent(&browser, &location(&response), "allow").await;

    // prompt=login: the same person signs in again in the same browser.
    let mut again = AuthRequest::demo("openid");
    again = again.also("prompt", "login");
    let signin = location(&authorize(&browser, &again.url(&idp)).await);
    let response = sign_in(&browser, &signin, &ALICE).await;
    let new_cookie = set_cookie(&response, SESSION_COOKIE).expect("session cookie");
    assert_ne!(old_cookie, new_cookie);

    // The old value no longer names a session: SSO with it asks for the
    // password, while the browser's new one still signs in silently.
    let sso = AuthRequest::demo("openid");
    let response = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(sso.url(&idp))
        .header("Cookie", old_cookie.split(';').next().unwrap())
        .send()
        .await
        .unwrap();
    assert!(
        location(&response).contains("/signin?"),
        "the old session was renewed away"
    );
    let response = authorize(&browser, &AuthRequest::demo("openid").url(&idp)).await;
    assert!(location(&response).starts_with(REDIRECT_URI));
}

#[tokio::test]
async fn one_sign_in_page_does_not_take_endless_password_guesses_owasp_authentication() {
    let idp = Idp::start().await;
    let browser = http_client();
    let signin = start(&idp, &browser, "openid").await;
    let mut last = None;
    for _ in 0..5 {
        last = Some(submit_sign_in(&browser, &signin, ALICE.username, "guess").await);
        if last.as_ref().unwrap().status() == 429 {
            break;
        }
        assert_eq!(last.as_ref().unwrap().status(), 401);
    }
    assert_eq!(
        last.unwrap().status(),
        429,
        "the fifth wrong password ends the attempt"
    );
    // The page is gone: even the right password needs a new attempt.
    let page = browser.get(&signin).send().await.unwrap();
    assert_eq!(page.status(), 400);
}

// ---- no dead ends ---------------------------------------------------------------

#[tokio::test]
async fn the_home_page_says_what_the_idp_is_and_links_discovery_grants_and_the_demo_app() {
    let idp = Idp::start().await;
    let response = http_client().get(idp.page("/")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    for needle in [
        "OpenID Provider",
        &idp.issuer,
        &idp.url("/.well-known/openid-configuration"),
        "href=\"/grants\"",
        "http://localhost:3000/",
    ] {
        assert!(html.contains(needle), "{needle} missing from:\n{html}");
    }
}

#[tokio::test]
async fn the_grants_page_offers_a_sign_in_that_leads_back_to_it() {
    let idp = Idp::start().await;
    let browser = http_client();
    let html = assert_error_page(browser.get(idp.page("/grants")).send().await.unwrap(), 401).await;
    assert!(html.contains("href=\"/grants/signin\""), "{html}");
    // Sign in through it: the IdP's own sign-in page, then back to /grants.
    let signin = location(
        &browser
            .get(idp.page("/grants/signin"))
            .send()
            .await
            .unwrap(),
    );
    assert!(signin.contains("/signin?tx="), "{signin}");
    let back = location(&sign_in(&browser, &signin, &ALICE).await);
    assert!(back.starts_with(&idp.page("/grants?")), "{back}");
    let page = browser.get(&back).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Alice"));
}

#[tokio::test]
async fn the_account_page_client_cannot_get_tokens_rfc6749_5_2() {
    let idp = Idp::start().await;
    let browser = http_client();
    let signin = location(
        &browser
            .get(idp.page("/grants/signin"))
            .send()
            .await
            .unwrap(),
    );
    let back = location(&sign_in(&browser, &signin, &ALICE).await);
    let code = query_of(&back)["code"].clone();
    let response = http_client()
        .post(idp.url("/v1/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", "mock-idp-account"),
            ("code", &code),
            ("redirect_uri", &idp.page("/grants")),
            ("code_verifier", &"v".repeat(43)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized_client");
}

#[tokio::test]
async fn every_error_a_person_can_reach_is_the_styled_page() {
    let idp = Idp::start().await;
    let browser = http_client();
    for (request, status) in [
        (browser.get(idp.page("/no-such-page")), 404),
        (browser.get(idp.page("/signin?tx=a&tx=b")), 400),
        (browser.get(idp.page("/consent?tx=a&tx=b")), 400),
        (browser.get(idp.page("/signin")), 400),
        (
            browser
                .post(idp.page("/signin"))
                .body("%%%")
                .header("content-type", "application/x-www-form-urlencoded"),
            400,
        ),
        (browser.delete(idp.page("/grants")), 405),
    ] {
        let html = assert_error_page(request.send().await.unwrap(), status).await;
        assert!(
            html.contains("idp.css") && !html.contains("Failed to deserialize"),
            "{html}"
        );
    }
}

//! The flow in a real browser: headless Chromium, driven through Debian's
//! chromedriver, against the real IdP, API and BFF on free ports of
//! 127.0.0.1 (a secure context for Chromium, so `__Host-`/`Secure` cookies
//! work over plain HTTP there, as on `localhost`).
//!
//! - The core flow a person walks: sign in, notes, a second person, sign out.
//! - The unhappy paths a person meets: wrong password, denied consent, a
//!   foreign `returnUrl`, the back button.
//! - What the browser holds and receives: no token, ever (the BFF pattern),
//!   and the session cookie's attributes as Chromium stored them.
//! - Accessibility: axe-core on every page at laptop and phone widths, and the
//!   whole flow with the keyboard alone. Screenshots of every page go to
//!   `target/screenshots/` (or `SCREENSHOT_DIR`; `just screenshots` writes
//!   the README's, under `docs/screenshots/`).
//!
//! Without Chromium and chromedriver each test says it was skipped and
//! passes; with `REQUIRE_BROWSER=1` (CI) it fails instead.

use std::path::PathBuf;

use fantoccini::key::Key;
use testkit::{
    ALICE, BOB,
    browser::{
        axe,
        chrome::{Browser, Chrome, LAPTOP, PHONE},
        person::{self, notes},
    },
    stack::Stack,
};

// ---- The core flow --------------------------------------------------------

#[tokio::test]
async fn alice_signs_in_sees_her_name_keeps_a_note_across_a_reload_and_deletes_it() {
    let Some(chrome) = Chrome::start() else {
        return;
    };
    let stack = Stack::start().await;
    let browser = chrome.browser().await;

    person::sign_in_as(&browser, &stack, &ALICE).await;
    assert_eq!(
        browser.url().await.as_str(),
        stack.bff.url("/"),
        "back on the app's home page"
    );
    assert_eq!(
        person::bff_user_status(&browser).await,
        200,
        "the BFF has a session"
    );

    person::add_note(&browser, "Buy more tea").await;
    assert_eq!(notes(&browser).await, ["Buy more tea"]);
    browser.client.refresh().await.expect("reload");
    person::wait_until_signed_in(&browser, &stack, &ALICE).await;
    assert_eq!(
        notes(&browser).await,
        ["Buy more tea"],
        "the note survives a reload"
    );

    person::delete_note(&browser, "Buy more tea").await;
    browser.client.refresh().await.expect("reload");
    person::wait_until_signed_in(&browser, &stack, &ALICE).await;
    browser
        .wait_until("document.querySelector('#notes-list .note-empty') !== null")
        .await;
    assert!(notes(&browser).await.is_empty(), "the note stays deleted");
}

/// The stack with the IdP as Okta (its access tokens untyped, `cid`,
/// `scp` as an array) and the API under its `okta` token profile: a person
/// signs in and keeps a note, end to end.
#[tokio::test]
async fn under_the_okta_profile_alice_signs_in_and_keeps_a_note() {
    let Some(chrome) = Chrome::start() else {
        return;
    };
    let mut settings = mock_idp::Settings::demo();
    settings.profile = mock_idp::profile::Profile::Okta;
    let stack = Stack::start_with(settings, &[]).await;
    let browser = chrome.browser().await;

    person::sign_in_as(&browser, &stack, &ALICE).await;
    person::add_note(&browser, "Okta-shaped tokens").await;
    assert_eq!(notes(&browser).await, ["Okta-shaped tokens"]);
    // The API took an Okta access token: no typ, cid, scp.
    let token = stack
        .idp
        .faults
        .issued_tokens()
        .into_iter()
        .find(|t| testkit::claims_of(t).get("cid").is_some())
        .expect("an Okta-shaped access token");
    assert!(testkit::header_of(&token).get("typ").is_none());
    assert!(testkit::claims_of(&token)["scp"].is_array());
}

#[tokio::test]
async fn bob_in_a_fresh_browser_does_not_see_alices_notes() {
    let Some(chrome) = Chrome::start() else {
        return;
    };
    let stack = Stack::start().await;
    let alices = chrome.browser().await;
    person::sign_in(&alices, &stack, &ALICE).await;
    person::add_note(&alices, "Alice's secret").await;

    let bobs = chrome.browser().await;
    person::sign_in(&bobs, &stack, &BOB).await;
    bobs.wait_until("document.querySelector('#notes-list .note-empty') !== null")
        .await;
    assert!(
        notes(&bobs).await.is_empty(),
        "Bob sees none of Alice's notes"
    );
    assert!(!bobs.text().await.contains("Alice's secret"));

    person::add_note(&bobs, "Bob's plan").await;
    alices.client.refresh().await.expect("reload");
    assert_eq!(
        notes(&alices).await,
        ["Alice's secret"],
        "and Alice none of Bob's"
    );
}

#[tokio::test]
async fn after_signing_out_signing_in_again_asks_for_the_password() {
    let Some(chrome) = Chrome::start() else {
        return;
    };
    let stack = Stack::start().await;
    let browser = chrome.browser().await;
    person::sign_in(&browser, &stack, &ALICE).await;
    let has_idp_session = |cookies: &[fantoccini::cookies::Cookie]| {
        cookies.iter().any(|c| c.name() == "mockidp_session")
    };
    let cookies = browser.client.get_all_cookies().await.expect("cookies");
    assert!(has_idp_session(&cookies), "signed in at the IdP too");

    person::sign_out(&browser, &stack).await;
    assert_eq!(
        person::bff_user_status(&browser).await,
        401,
        "the BFF session is gone"
    );
    let cookies = browser.client.get_all_cookies().await.expect("cookies");
    assert!(!has_idp_session(&cookies), "the IdP session cookie is gone");

    person::open_home_and_click_sign_in(&browser, &stack).await;
    assert!(
        browser
            .find("input[name='password']")
            .await
            .is_displayed()
            .await
            .expect("visible"),
        "the IdP asks for the password again"
    );
    person::submit_credentials(&browser, ALICE.username, ALICE.password).await;
    person::wait_until_signed_in(&browser, &stack, &ALICE).await;
}

// ---- The unhappy paths a person meets ------------------------------------

#[tokio::test]
async fn a_wrong_password_shows_the_idps_error_and_makes_no_session() {
    let Some(chrome) = Chrome::start() else {
        return;
    };
    let stack = Stack::start().await;
    let browser = chrome.browser().await;
    person::open_home_and_click_sign_in(&browser, &stack).await;

    person::submit_credentials(&browser, ALICE.username, "not-her-password").await;
    person::wait_for_sign_in_page(&browser, &stack).await;
    let alert = browser
        .find("[role='alert']")
        .await
        .text()
        .await
        .expect("alert text");
    assert!(!alert.trim().is_empty(), "the IdP says what went wrong");
    assert_eq!(
        browser
            .find("input[name='password']")
            .await
            .attr("aria-invalid")
            .await
            .expect("attr"),
        Some("true".into()),
        "the password field is marked invalid"
    );

    let cookies = browser.client.get_all_cookies().await.expect("cookies");
    assert!(
        !cookies.iter().any(|c| c.name() == "mockidp_session"),
        "no IdP session"
    );
    browser.goto(&stack.bff.url("/")).await;
    person::wait_until_signed_out(&browser, &stack).await;
    assert_eq!(
        person::bff_user_status(&browser).await,
        401,
        "no BFF session"
    );
}

#[tokio::test]
async fn denied_consent_ends_on_a_bff_page_that_says_so_and_offers_to_try_again() {
    let Some(chrome) = Chrome::start() else {
        return;
    };
    let stack = Stack::start().await;
    let browser = chrome.browser().await;
    person::open_home_and_click_sign_in(&browser, &stack).await;
    person::submit_credentials(&browser, ALICE.username, ALICE.password).await;
    person::wait_for_consent_page(&browser, &stack).await;

    person::decide(&browser, "deny").await;
    browser.wait_for_url(&stack.bff.url("/bff/callback")).await;
    let heading = browser.find("h1").await.text().await.expect("heading");
    assert_eq!(heading, "Access was denied");
    assert_eq!(
        person::bff_user_status(&browser).await,
        401,
        "not signed in"
    );

    browser.click("a[href^='/bff/login']").await;
    person::wait_for_consent_page(&browser, &stack).await;
    person::decide(&browser, "allow").await;
    person::wait_until_signed_in(&browser, &stack, &ALICE).await;
}

#[tokio::test]
async fn a_return_url_on_another_site_never_leaves_the_bff_origin_rfc9700_4_11() {
    let Some(chrome) = Chrome::start() else {
        return;
    };
    let stack = Stack::start().await;
    let mut browser = chrome.browser().await;
    person::sign_in(&browser, &stack, &ALICE).await;

    let idp_page = stack.idp.url("/v1/keys");
    for evil in [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example",
        "javascript:alert(1)",
        &idp_page,
    ] {
        let encoded: String = url::form_urlencoded::byte_serialize(evil.as_bytes()).collect();
        browser
            .goto(&stack.bff.url(&format!("/bff/login?returnUrl={encoded}")))
            .await;
        // Signed in at the IdP, consent given: straight back to the BFF.
        person::wait_until_signed_in(&browser, &stack, &ALICE).await;
        assert_eq!(
            browser.url().await.as_str(),
            stack.bff.url("/"),
            "returnUrl {evil}"
        );
    }
    browser.record_network().await;
    // Every request that left the browser went to the BFF or the IdP
    // (Chromium's own `chrome://` and `data:` pages aside).
    let stack_origins = [stack.bff.base_url.as_str(), stack.idp.base_url.as_str()];
    let web = browser
        .network
        .requested
        .iter()
        .filter(|u| u.starts_with("http"));
    for url in web {
        assert!(
            stack_origins.iter().any(|o| url.starts_with(o)),
            "the browser was sent to {url}"
        );
    }
}

#[tokio::test]
async fn the_back_button_after_sign_in_never_strands_the_person_on_an_error_page() {
    let Some(chrome) = Chrome::start() else {
        return;
    };
    let stack = Stack::start().await;
    let mut browser = chrome.browser().await;
    person::sign_in(&browser, &stack, &ALICE).await;

    // The callback itself, opened again (a stale tab, a history entry): the
    // person is signed in, so it simply goes home.
    browser.record_network().await;
    let callback = browser
        .network
        .requested
        .iter()
        .find(|u| u.starts_with(&stack.bff.url("/bff/callback?")))
        .expect("the browser went through the callback")
        .clone();
    browser.goto(&callback).await;
    person::wait_until_signed_in(&browser, &stack, &ALICE).await;
    assert_eq!(browser.url().await.as_str(), stack.bff.url("/"));

    // Back through every page of the sign-in (consent, sign-in, the home
    // page signed out): each is a page of the flow or one that leads back
    // to the app, never a dead end.
    let dead_end = format!(
        "const bff = {};
         const visible = e => e.offsetParent !== null;
         const toApp = [...document.querySelectorAll('a[href]')].some(a => visible(a) && a.href.startsWith(bff));
         const forms = [...document.querySelectorAll('form button')].some(visible);
         return !(location.href.startsWith(bff) || toApp || forms);",
        serde_json::to_string(&stack.bff.base_url).expect("JSON")
    );
    for _ in 0..4 {
        browser.client.back().await.expect("back");
        browser
            .wait_until("document.readyState === 'complete'")
            .await;
        let url = browser.url().await;
        assert!(
            browser.js(&dead_end).await == false,
            "Back led to {url}, a page with no way back to the app:\n{}",
            browser.text().await
        );
        assert!(
            !browser.text().await.contains("Sign-in did not finish"),
            "Back replayed the callback into an error"
        );
    }
    // Forward again, or a fresh visit: still signed in.
    browser.goto(&stack.bff.url("/")).await;
    person::wait_until_signed_in(&browser, &stack, &ALICE).await;
}

// ---- From inside the browser ---------------------------------------------

#[tokio::test]
async fn the_session_cookie_is_hidden_from_script_and_stored_host_prefixed_httponly_secure_lax() {
    let Some(chrome) = Chrome::start() else {
        return;
    };
    let stack = Stack::start().await;
    let browser = chrome.browser().await;
    person::sign_in(&browser, &stack, &ALICE).await;

    let script_sees = browser.js("return document.cookie;").await;
    let script_sees = script_sees.as_str().expect("document.cookie");
    assert!(
        !script_sees.contains("__Host-bff"),
        "script sees the session cookie: {script_sees}"
    );

    let cookies = browser.client.get_all_cookies().await.expect("cookies");
    let session = cookies
        .iter()
        .find(|c| c.name() == "__Host-bff")
        .unwrap_or_else(|| panic!("no __Host-bff cookie in {cookies:?}"));
    assert_eq!(session.http_only(), Some(true), "HttpOnly");
    assert_eq!(session.secure(), Some(true), "Secure");
    assert!(
        session.same_site().is_some_and(|s| s.is_lax()),
        "SameSite=Lax"
    );
    assert_eq!(session.path(), Some("/"), "Path=/");
    assert!(
        !session.domain().unwrap_or_default().starts_with('.'),
        "host-only, no Domain"
    );
}

#[tokio::test]
async fn no_token_reaches_the_browser_in_any_response_cookie_or_storage_bff_pattern() {
    let Some(chrome) = Chrome::start() else {
        return;
    };
    // The tokens the IdP hands the BFF are noted on their way (testkit's
    // faults layer), so the test can look for them in what the browser got.
    let stack = Stack::start().await;
    let mut browser = chrome.browser().await;

    browser.goto(&stack.bff.url("/")).await;
    browser.record_network().await;
    browser.click("a[href^='/bff/login']").await;
    person::wait_for_sign_in_page(&browser, &stack).await;
    browser.record_network().await;
    person::submit_credentials(&browser, ALICE.username, ALICE.password).await;
    person::wait_for_consent_page(&browser, &stack).await;
    assert_storage_holds_no_token(&browser).await;
    browser.record_network().await;
    person::decide(&browser, "allow").await;
    person::wait_until_signed_in(&browser, &stack, &ALICE).await;
    notes(&browser).await;
    browser.record_network().await;
    person::add_note(&browser, "Nothing to see here").await;
    browser.record_network().await;
    browser.client.refresh().await.expect("reload");
    person::wait_for_note(&browser, "Nothing to see here").await;
    // What app.js does not ask for, a script could: the BFF's JSON too.
    for path in ["/bff/user", "/bff/api/me"] {
        let status = fetch_status(&browser, path).await;
        assert_eq!(status, 200, "{path}");
    }
    assert_storage_holds_no_token(&browser).await;
    browser.record_network().await;

    let tokens = stack.idp.faults.issued_tokens();
    assert_eq!(
        tokens.len(),
        3,
        "the BFF holds an access, a refresh and an ID token"
    );

    person::delete_note(&browser, "Nothing to see here").await;
    browser.record_network().await;
    // Signing out: the BFF's sign-out page hands the provider the ended
    // session's ID token as id_token_hint, in a form it submits at once (by
    // design, see crates/bff/src/logout.rs and tests/it/logout.rs). That
    // page (and the script and style it loads, read on every other page)
    // is gone before its bodies can be read; every other one is scanned.
    person::sign_out(&browser, &stack).await;
    browser.record_network().await;

    // The scan read every body there was: pages, scripts, API answers.
    let passed_through = ["/bff/logout", "/static/app.js", "/static/app.css"];
    let unread: Vec<_> = browser
        .network
        .unread
        .iter()
        .filter(|entry| !passed_through.iter().any(|path| entry.ends_with(path)))
        .collect();
    assert!(unread.is_empty(), "bodies not read: {unread:?}");
    for read in [
        stack.bff.url("/"),
        stack.bff.url("/bff/api/notes"),
        stack.bff.url("/bff/user"),
    ] {
        assert!(
            browser.network.bodies.contains(&read),
            "the body of {read} was read"
        );
    }
    // The access and refresh tokens: nowhere, ever.
    let (access, refresh) = (&tokens[0], &tokens[1]);
    for token in [access, refresh] {
        assert!(
            !browser.network.contains(token),
            "a token the BFF holds reached the browser"
        );
    }
    // The ID token only in the sign-out hand-off: the BFF's sign-out page
    // and the browser's POST of it to the IdP's end-session endpoint.
    let idp_logout = stack.idp.url("/v1/logout");
    let sign_out_page = stack.bff.url("/bff/logout");
    let hand_off = |r: &str| r.starts_with(&sign_out_page) || r.contains(&idp_logout);
    let elsewhere: Vec<&String> = browser
        .network
        .received
        .iter()
        .filter(|r| !hand_off(r))
        .collect();
    assert!(
        !elsewhere.iter().any(|r| r.contains(tokens[2].as_str())),
        "the ID token reached the browser outside the sign-out hand-off"
    );
    let jwt = elsewhere.iter().find_map(|r| jwt_in(r));
    assert!(
        jwt.is_none(),
        "something JWT-shaped reached the browser: {jwt:?}"
    );
}

async fn fetch_status(browser: &Browser, path: &str) -> u64 {
    browser
        .client
        .execute_async(
            "const [path, done] = arguments;
             fetch(path, { headers: { 'X-CSRF': '1' } }).then(r => r.text().then(() => done(r.status)), e => done(String(e)));",
            vec![path.into()],
        )
        .await
        .expect("fetch")
        .as_u64()
        .expect("an HTTP status")
}

/// Script's view of cookies and Web Storage holds no token and no session.
async fn assert_storage_holds_no_token(browser: &Browser) {
    let seen = browser
        .js(
            "return { cookie: document.cookie, local: JSON.stringify({ ...localStorage }), \
                       session: JSON.stringify({ ...sessionStorage }), \
                       localCount: localStorage.length, sessionCount: sessionStorage.length };",
        )
        .await;
    assert_eq!(
        seen["localCount"], 0,
        "localStorage holds {}",
        seen["local"]
    );
    assert_eq!(
        seen["sessionCount"], 0,
        "sessionStorage holds {}",
        seen["session"]
    );
    let cookie = seen["cookie"].as_str().unwrap_or_default();
    assert!(
        !cookie.contains("__Host-bff") && jwt_in(cookie).is_none(),
        "document.cookie: {cookie}"
    );
}

/// The first `eyJ….eyJ…` (a JWT's base64url JSON header and payload) in a text.
fn jwt_in(text: &str) -> Option<&str> {
    let is_b64url = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    text.match_indices("eyJ").find_map(|(start, _)| {
        let rest = &text[start..];
        let header_end = rest.find(|c: char| !is_b64url(c))?;
        rest[header_end..]
            .strip_prefix(".eyJ")
            .map(|_| &rest[..header_end + 4])
    })
}

// ---- Accessibility ---------------------------------------------------------

/// Where screenshots go: `SCREENSHOT_DIR` (relative to the workspace) or
/// `target/screenshots`.
fn screenshot_dir() -> PathBuf {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    match std::env::var_os("SCREENSHOT_DIR") {
        Some(dir) => workspace.join(dir),
        None => workspace.join("target/screenshots"),
    }
}

/// axe-core's findings on each page, at each width.
#[derive(Default)]
struct Audit {
    lines: Vec<String>,
    blocking: Vec<String>,
}

impl Audit {
    /// Checks the page as it is now at both widths, and takes its screenshots.
    async fn page(&mut self, browser: &Browser, axe: &str, name: &str) {
        for viewport in [LAPTOP, PHONE] {
            browser.view_as(viewport).await;
            let findings = axe::check(browser, axe).await;
            assert!(findings.passed > 0, "axe-core checked nothing on {name}");
            self.lines.push(format!(
                "{name:<20} {:<6} {}",
                viewport.name,
                findings.summary()
            ));
            for v in findings.violations.iter().filter(|v| v.is_blocking()) {
                self.blocking.push(format!(
                    "{name} ({}): {} {} — {} at {:?}",
                    viewport.name, v.impact, v.rule, v.help, v.nodes
                ));
            }
            browser
                .screenshot(&screenshot_dir().join(format!("{name}-{}.png", viewport.name)))
                .await;
        }
        browser.view_as(LAPTOP).await;
    }

    fn report(&self) {
        use std::io::Write;
        // On the real stderr: the results show in `just test` too.
        let mut out = std::io::stderr().lock();
        let _ = writeln!(out, "axe-core results (violations by impact):");
        for line in &self.lines {
            let _ = writeln!(out, "  {line}");
        }
    }
}

#[tokio::test]
async fn every_page_passes_axe_core_at_laptop_and_phone_widths() {
    let Some(chrome) = Chrome::start() else {
        return;
    };
    let Some(axe) = axe::axe_core() else { return };
    let stack = Stack::start().await;
    let browser = chrome.browser().await;
    let mut audit = Audit::default();

    browser.goto(&stack.bff.url("/")).await;
    audit.page(&browser, &axe, "bff-home-signed-out").await;
    browser.click("a[href^='/bff/login']").await;
    person::wait_for_sign_in_page(&browser, &stack).await;
    audit.page(&browser, &axe, "idp-sign-in").await;
    person::submit_credentials(&browser, ALICE.username, "not-her-password").await;
    browser.find("[role='alert']").await;
    audit.page(&browser, &axe, "idp-sign-in-error").await;
    browser.click("a[href*='signup']").await;
    browser.find("input[name='name']").await;
    audit.page(&browser, &axe, "idp-sign-up").await;
    browser.click("a[href*='signin']").await;
    person::wait_for_sign_in_page(&browser, &stack).await;
    person::submit_credentials(&browser, ALICE.username, ALICE.password).await;
    person::wait_for_consent_page(&browser, &stack).await;
    audit.page(&browser, &axe, "idp-consent").await;
    person::decide(&browser, "allow").await;
    person::wait_until_signed_in(&browser, &stack, &ALICE).await;
    person::add_note(&browser, "Read RFC 9700 before lunch").await;
    person::add_note(&browser, "Rotate the signing keys").await;
    audit.page(&browser, &axe, "bff-home-signed-in").await;
    // The flow inspector after this real login, and the lab after an attack.
    browser.goto(&stack.bff.url("/flow")).await;
    browser.find("#step-8").await;
    browser.click("#step-8 summary").await;
    audit.page(&browser, &axe, "bff-flow").await;
    browser.goto(&stack.bff.url("/flow/lab")).await;
    browser
        .click("form[action='/flow/lab/alg-none'] button")
        .await;
    browser.find("#attack-alg-none .lab-verdict").await;
    audit.page(&browser, &axe, "bff-lab").await;
    browser.goto(&stack.bff.url("/")).await;
    // The IdP's own sign-out question, as a request without a hint gets it.
    browser
        .goto(&stack.idp.url("/v1/logout?client_id=bff-demo"))
        .await;
    person::wait_for_sign_out_page(&browser, &stack).await;
    audit.page(&browser, &axe, "idp-sign-out").await;
    browser.goto(&stack.bff.url("/")).await;
    person::sign_out(&browser, &stack).await;
    audit.page(&browser, &axe, "bff-signed-out").await;

    // The error pages, in a second browser: Bob says no.
    let other = chrome.browser().await;
    person::open_home_and_click_sign_in(&other, &stack).await;
    person::submit_credentials(&other, BOB.username, BOB.password).await;
    person::wait_for_consent_page(&other, &stack).await;
    person::decide(&other, "deny").await;
    other.wait_for_url(&stack.bff.url("/bff/callback")).await;
    audit.page(&other, &axe, "bff-access-denied").await;
    other
        .goto(&stack.bff.url("/bff/callback?code=forged&state=forged"))
        .await;
    audit.page(&other, &axe, "bff-sign-in-failed").await;
    other
        .goto(
            &stack
                .idp
                .url("/v1/authorize?client_id=unknown&response_type=code"),
        )
        .await;
    audit.page(&other, &axe, "idp-error").await;
    // The IdP's own pages, for a browser that has no session there.
    let stranger = chrome.browser().await;
    stranger.goto(&stack.idp.page("/")).await;
    stranger.find("dl.facts").await;
    audit.page(&stranger, &axe, "idp-home").await;
    stranger.goto(&stack.idp.page("/grants")).await;
    stranger.find("a[href='/grants/signin']").await;
    audit.page(&stranger, &axe, "idp-grants-signed-out").await;

    // The audit has teeth: an image without a text alternative is caught.
    other
        .js("const img = document.createElement('img'); img.src = '/static/app.css'; document.querySelector('main').append(img); return true;")
        .await;
    let planted = axe::check(&other, &axe).await;
    assert!(
        planted
            .violations
            .iter()
            .any(|v| v.rule == "image-alt" && v.is_blocking()),
        "axe-core missed an image without alt: {}",
        planted.summary()
    );

    audit.report();
    assert!(
        audit.blocking.is_empty(),
        "serious or critical axe-core violations:\n{}",
        audit.blocking.join("\n")
    );
}

#[tokio::test]
async fn the_keyboard_alone_signs_in_consents_adds_and_deletes_a_note_and_signs_out() {
    let Some(chrome) = Chrome::start() else {
        return;
    };
    let stack = Stack::start().await;
    let browser = chrome.browser().await;
    browser.goto(&stack.bff.url("/")).await;

    browser
        .tab_to("a[href^='/bff/login']", Some("Sign in"))
        .await;
    browser.press_key(Key::Enter).await;
    person::wait_for_sign_in_page(&browser, &stack).await;
    type_credentials(&browser, ALICE.username, ALICE.password).await;
    person::wait_for_consent_page(&browser, &stack).await;
    browser.tab_to("button[value='allow']", None).await;
    browser.press_key(Key::Enter).await;
    person::wait_until_signed_in(&browser, &stack, &ALICE).await;

    browser.tab_to("#note-text", None).await;
    browser.press("Typed, not clicked").await;
    browser
        .tab_to("#note-form button[type='submit']", None)
        .await;
    browser.press_key(Key::Enter).await;
    person::wait_for_note(&browser, "Typed, not clicked").await;
    browser.tab_to("button[data-note-id]", Some("Delete")).await;
    browser.press_key(Key::Enter).await;
    person::wait_until_no_note(&browser, "Typed, not clicked").await;

    browser
        .tab_to("form[action='/bff/logout'] button", Some("Sign out"))
        .await;
    browser.press_key(Key::Enter).await;
    person::wait_until_signed_out(&browser, &stack).await;
}

#[tokio::test]
async fn the_keyboard_alone_opens_a_step_of_the_flow_and_tries_an_attack() {
    let Some(chrome) = Chrome::start() else {
        return;
    };
    let stack = Stack::start().await;
    let browser = chrome.browser().await;
    person::sign_in_as(&browser, &stack, &ALICE).await;

    browser.tab_to("a[href='/flow']", None).await;
    browser.press_key(Key::Enter).await;
    browser.find("#step-7").await;
    browser.tab_to("#step-7 summary", None).await;
    browser.press_key(Key::Enter).await;
    browser
        .wait_until("document.querySelector('#step-7 details').open === true")
        .await;
    browser.tab_to("a[href='/flow/lab']", None).await;
    browser.press_key(Key::Enter).await;
    browser
        .tab_to("form[action='/flow/lab/token-in-query'] button", None)
        .await;
    browser.press_key(Key::Enter).await;
    let verdict = browser
        .find("#attack-token-in-query .lab-verdict")
        .await
        .text()
        .await
        .expect("text");
    assert!(verdict.starts_with("Refused"), "{verdict}");
}

#[tokio::test]
async fn the_keyboard_alone_gets_past_a_wrong_password_and_a_denied_consent() {
    let Some(chrome) = Chrome::start() else {
        return;
    };
    let stack = Stack::start().await;
    let browser = chrome.browser().await;
    browser.goto(&stack.bff.url("/")).await;
    browser
        .tab_to("a[href^='/bff/login']", Some("Sign in"))
        .await;
    browser.press_key(Key::Enter).await;
    person::wait_for_sign_in_page(&browser, &stack).await;

    type_credentials(&browser, ALICE.username, "not-her-password").await;
    browser.find("[role='alert']").await;
    // The username is kept: only the password needs typing again.
    browser.tab_to("input[name='password']", None).await;
    browser
        .press(&format!("{}{}", ALICE.password, Key::Enter))
        .await;
    person::wait_for_consent_page(&browser, &stack).await;

    browser.tab_to("button[value='deny']", None).await;
    browser.press_key(Key::Enter).await;
    browser.wait_for_url(&stack.bff.url("/bff/callback")).await;
    browser
        .tab_to("a[href^='/bff/login']", Some("Try signing in again"))
        .await;
    browser.press_key(Key::Enter).await;
    person::wait_for_consent_page(&browser, &stack).await;
    browser.tab_to("button[value='allow']", None).await;
    browser.press_key(Key::Enter).await;
    person::wait_until_signed_in(&browser, &stack, &ALICE).await;
}

/// On the IdP's sign-in page: the username field has the focus (autofocus),
/// or Tab gets there; type, Tab, type, Enter.
async fn type_credentials(browser: &Browser, username: &str, password: &str) {
    let focused = browser
        .js("return document.activeElement?.name === 'username';")
        .await;
    if focused != true {
        browser.tab_to("input[name='username']", None).await;
    }
    browser.press(username).await;
    browser.tab_to("input[name='password']", None).await;
    browser.press(&format!("{password}{}", Key::Enter)).await;
}

#[test]
fn jwt_in_finds_a_jwt_header_and_payload_and_nothing_else() {
    let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln";
    assert_eq!(
        jwt_in(&format!("Set-Cookie: x={jwt}; Path=/")),
        Some("eyJhbGciOiJSUzI1NiJ9.eyJ")
    );
    assert_eq!(jwt_in("csrf=abceyJxyz; state=eyJ.abc"), None);
}

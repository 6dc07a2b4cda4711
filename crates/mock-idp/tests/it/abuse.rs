//! The rules around the person and the machine, tried as an attacker would:
//! re-authentication that cannot be skipped, a logout that cannot be forced,
//! guessing that is throttled, hashing that cannot exhaust memory, pending
//! sign-ins that strangers cannot fill, consent a local program cannot
//! reuse, and one account per email address. Each test names its rule.

use std::time::Duration;

use futures_util::StreamExt;

use test_case::test_case;
use testkit::{
    ALICE, ALL_SCOPES, BOB, NATIVE_REDIRECT_URI, REDIRECT_URI, TempFile, claims_of,
    database::Engine,
    form_action, form_inputs, http_client,
    idp::{
        AuthRequest, Idp, Tokens, authorize, browse_to_callback, consent, exchange_code, register,
        sign_in, submit_sign_in,
    },
    location, query_of,
};

use crate::common::assert_redirect_error;

/// Alice signs in and consents in `browser`; the tokens of that login.
async fn alice_in(idp: &Idp, browser: &reqwest::Client) -> Tokens {
    let request = AuthRequest::demo(ALL_SCOPES);
    let callback = browse_to_callback(browser, idp, &request.url(idp), &ALICE).await;
    let code = query_of(&callback)["code"].clone();
    exchange_code(idp, &code, &request.verifier)
        .await
        .json()
        .await
        .unwrap()
}

/// Whether the IdP session of `browser` is still there: an authorization
/// request goes straight back with a code.
async fn signed_in_at_idp(idp: &Idp, browser: &reqwest::Client) -> bool {
    let response = authorize(browser, &AuthRequest::demo(ALL_SCOPES).url(idp)).await;
    location(&response).contains("code=")
}

/// The consent form of a pending sign-in, posted with `allow` straight away.
async fn allow_without_signing_in(browser: &reqwest::Client, signin: &str) -> reqwest::Response {
    let consent_page = signin.replace("/signin?", "/consent?");
    let page = browser.get(&consent_page).send().await.unwrap();
    assert_eq!(
        page.status(),
        200,
        "the consent page of a signed-in browser"
    );
    let html = page.text().await.unwrap();
    let mut fields = form_inputs(&html);
    fields.insert("decision".into(), "allow".into());
    let action = url::Url::parse(&consent_page)
        .unwrap()
        .join(&form_action(&html))
        .unwrap();
    browser.post(action).form(&fields).send().await.unwrap()
}

// ---- re-authentication ----------------------------------------------------

#[tokio::test]
async fn prompt_login_cannot_be_skipped_through_the_consent_page_oidc_core_3_1_2_1() {
    let idp = Idp::start().await;
    let browser = http_client();
    alice_in(&idp, &browser).await;
    // prompt=login sends the browser to the sign-in page...
    let request = AuthRequest::demo(ALL_SCOPES).set("prompt", "login");
    let signin = location(&authorize(&browser, &request.url(&idp)).await);
    assert!(signin.contains("/signin?"), "{signin}");
    // ...and the consent page of the same request, allowed, gives no code:
    // back to the sign-in page.
    let answer = allow_without_signing_in(&browser, &signin).await;
    let next = location(&answer);
    assert!(
        next.contains("/signin?"),
        "a code without the password: {next}"
    );
    // With the password, the code comes, its auth_time that very sign-in.
    idp.time.advance(Duration::from_secs(30));
    let after = sign_in(&browser, &next, &ALICE).await;
    let callback = location(&after);
    let code = query_of(&callback)["code"].clone();
    let tokens: Tokens = exchange_code(&idp, &code, &request.verifier)
        .await
        .json()
        .await
        .unwrap();
    let id = claims_of(tokens.id_token.as_deref().unwrap());
    assert_eq!(
        id["auth_time"],
        idp.time.now(),
        "auth_time is the new sign-in's"
    );
}

#[tokio::test]
async fn an_exceeded_max_age_cannot_be_skipped_through_the_consent_page_oidc_core_3_1_2_1() {
    let idp = Idp::start().await;
    let browser = http_client();
    alice_in(&idp, &browser).await;
    idp.time.advance(Duration::from_secs(120));
    let request = AuthRequest::demo(ALL_SCOPES).set("max_age", "60");
    let signin = location(&authorize(&browser, &request.url(&idp)).await);
    assert!(signin.contains("/signin?"), "{signin}");
    let answer = allow_without_signing_in(&browser, &signin).await;
    assert!(
        location(&answer).contains("/signin?"),
        "a code for a stale sign-in"
    );
}

// ---- logout -----------------------------------------------------------------

/// `GET /v1/logout` with this hint, as another site would send the browser.
async fn logout_with_hint(idp: &Idp, browser: &reqwest::Client, hint: &str) -> reqwest::Response {
    let mut url = url::Url::parse(&idp.url("/v1/logout")).unwrap();
    url.query_pairs_mut()
        .append_pair("id_token_hint", hint)
        .append_pair("post_logout_redirect_uri", "http://localhost:3000/");
    browser.get(url.as_str()).send().await.unwrap()
}

/// The IdP asks the person first: its confirmation page, nothing ended.
async fn assert_asks_first(response: reqwest::Response) {
    assert_eq!(response.status(), 200, "a page, not a redirect");
    let page = response.text().await.unwrap();
    assert!(
        page.contains("/logout/confirm"),
        "the confirmation form: {page}"
    );
}

#[tokio::test]
async fn another_users_id_token_as_hint_ends_nothing_without_asking_oidc_rp_logout_2() {
    let idp = Idp::start().await;
    let alice = http_client();
    alice_in(&idp, &alice).await;
    // The attacker's own ID token, validly signed by the same IdP.
    let bob = http_client();
    let request = AuthRequest::demo(ALL_SCOPES);
    let callback = browse_to_callback(&bob, &idp, &request.url(&idp), &BOB).await;
    let code = query_of(&callback)["code"].clone();
    let bobs: Tokens = exchange_code(&idp, &code, &request.verifier)
        .await
        .json()
        .await
        .unwrap();
    let hint = bobs.id_token.unwrap();
    assert_asks_first(logout_with_hint(&idp, &alice, &hint).await).await;
    assert!(
        signed_in_at_idp(&idp, &alice).await,
        "Alice's session ended"
    );
    assert!(signed_in_at_idp(&idp, &bob).await, "Bob's session ended");
}

#[tokio::test]
async fn an_expired_id_token_as_hint_is_only_a_hint_oidc_rp_logout_2() {
    let idp = Idp::start().await;
    let browser = http_client();
    let tokens = alice_in(&idp, &browser).await;
    idp.time.advance(Duration::from_secs(301)); // the ID token's lifetime
    let hint = tokens.id_token.unwrap();
    assert_asks_first(logout_with_hint(&idp, &browser, &hint).await).await;
    assert!(signed_in_at_idp(&idp, &browser).await, "the session ended");
}

#[tokio::test]
async fn a_hint_from_a_request_with_no_browser_session_ends_nothing_oidc_rp_logout_2() {
    let idp = Idp::start().await;
    let browser = http_client();
    let tokens = alice_in(&idp, &browser).await;
    // Anyone who holds the ID token, from anywhere, without Alice's cookies.
    let stranger = http_client();
    let response = logout_with_hint(&idp, &stranger, tokens.id_token.as_deref().unwrap()).await;
    assert!(response.status().is_success() || response.status().is_redirection());
    assert!(
        signed_in_at_idp(&idp, &browser).await,
        "the session its sid names ended"
    );
}

// ---- guessing -----------------------------------------------------------------

#[tokio::test]
async fn guesses_at_one_account_are_throttled_across_fresh_sign_ins_nist_800_63b_5_2_2() {
    let idp = Idp::start().await;
    // Fifty guesses at once, each from a fresh pending sign-in (a new page is
    // one GET away), so the five-per-page limit alone would not stop them.
    let mut pages = Vec::new();
    for _ in 0..50 {
        let browser = http_client();
        let signin = location(&authorize(&browser, &AuthRequest::demo("openid").url(&idp)).await);
        pages.push((browser, signin));
    }
    let guesses = pages
        .iter()
        .map(|(browser, signin)| submit_sign_in(browser, signin, ALICE.username, "guess"));
    let answers = futures_util::future::join_all(guesses).await;
    let checked = answers.iter().filter(|r| r.status() == 401).count();
    let throttled: Vec<_> = answers.iter().filter(|r| r.status() == 429).collect();
    assert!(checked <= 5, "{checked} passwords checked of fifty guesses");
    assert_eq!(checked + throttled.len(), 50);
    let wait: u64 = throttled[0].headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "Retry-After {wait}");

    // The real person, meanwhile: the same answer, even with the right password.
    let person = http_client();
    let signin = location(&authorize(&person, &AuthRequest::demo("openid").url(&idp)).await);
    let now = submit_sign_in(&person, &signin, ALICE.username, ALICE.password).await;
    assert_eq!(now.status(), 429);
    assert!(now.text().await.unwrap().contains("Try again in"));
    // After the wait, the right password works.
    idp.time.advance(Duration::from_secs(wait));
    let later = submit_sign_in(&person, &signin, ALICE.username, ALICE.password).await;
    assert!(
        later.status().is_redirection(),
        "signed in: {}",
        later.status()
    );
}

#[tokio::test]
async fn an_unknown_account_is_throttled_just_like_a_real_one_owasp_authentication() {
    let idp = Idp::start().await;
    let mut answers = Vec::new();
    for username in [ALICE.username, "nobody@example.com"] {
        for _ in 0..6 {
            let browser = http_client();
            let signin =
                location(&authorize(&browser, &AuthRequest::demo("openid").url(&idp)).await);
            answers.push((
                username,
                submit_sign_in(&browser, &signin, username, "guess").await,
            ));
        }
    }
    for (nth, (username, answer)) in answers.iter().enumerate() {
        // The sixth try at either account, real or not, is turned away.
        let expected = if nth % 6 == 5 { 429 } else { 401 };
        assert_eq!(answer.status(), expected, "{username}, try {}", nth % 6 + 1);
    }
}

// ---- pending sign-ins -----------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_thousand_anonymous_requests_do_not_lock_a_person_out() {
    let idp = Idp::start().await;
    // The person opens the sign-in page, and takes a while to type.
    let person = http_client();
    let request = AuthRequest::demo("openid");
    let signin = location(&authorize(&person, &request.url(&idp)).await);
    // Meanwhile, from another address, twenty thousand requests without
    // cookies: each a new browser with a new pending sign-in.
    let flood_source = std::net::IpAddr::from([127, 0, 0, 2]);
    let stranger = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .local_address(flood_source)
        .build()
        .unwrap();
    let url = AuthRequest::demo("openid").url(&idp);
    let flood = futures_util::stream::iter(0..20_000).map(|_| {
        let request = stranger.get(&url).send();
        async move { request.await.map(|r| r.status().as_u16()) }
    });
    let statuses: Vec<_> = flood.buffer_unordered(64).collect().await;
    assert!(
        statuses.iter().all(|s| matches!(s, Ok(303))),
        "every request was answered with a redirect to the sign-in page"
    );
    let held = idp.state.interactions.len();
    assert!(held <= 1_001, "{held} pending sign-ins held");
    // The person's sign-in page still works, and so does a new one.
    let signed_in = location(&sign_in(&person, &signin, &ALICE).await);
    assert!(signed_in.contains("/consent?"), "{signed_in}");
    let callback = location(&consent(&person, &signed_in, "allow").await);
    assert!(query_of(&callback).contains_key("code"), "{callback}");
    let other = http_client();
    let callback = browse_to_callback(&other, &idp, &request.url(&idp), &BOB).await;
    assert!(query_of(&callback).contains_key("code"), "{callback}");
}

#[tokio::test]
async fn a_browser_keeps_its_ten_latest_pending_sign_ins() {
    let idp = Idp::start().await;
    let browser = http_client();
    let mut pages = Vec::new();
    for _ in 0..11 {
        pages.push(location(
            &authorize(&browser, &AuthRequest::demo("openid").url(&idp)).await,
        ));
    }
    let first = browser.get(&pages[0]).send().await.unwrap();
    assert_eq!(first.status(), 400, "the oldest made room");
    for page in &pages[1..] {
        assert_eq!(
            browser.get(page).send().await.unwrap().status(),
            200,
            "{page}"
        );
    }
}

#[tokio::test]
async fn expired_pending_sign_ins_are_swept_out() {
    let idp = Idp::start().await;
    for _ in 0..50 {
        authorize(&http_client(), &AuthRequest::demo("openid").url(&idp)).await;
    }
    assert_eq!(idp.state.interactions.len(), 50);
    idp.time.advance(Duration::from_secs(601));
    authorize(&http_client(), &AuthRequest::demo("openid").url(&idp)).await;
    assert_eq!(idp.state.interactions.len(), 1, "only the new one is held");
}

// ---- hashing under load ---------------------------------------------------------

/// The real `mock-idp` binary on its own SQLite file, so its resident memory
/// is the IdP's alone; killed when dropped.
struct Process {
    issuer: String,
    child: std::process::Child,
}

impl Process {
    async fn start(database_url: &str) -> Process {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let issuer = format!("http://localhost:{port}/oauth2/default");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_mock-idp"))
            .args(["--port", &port.to_string(), "--issuer", &issuer])
            .args(["--database-url", database_url, "--log-format", "json"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start mock-idp");
        // Killed by its Drop if it never answers.
        let process = Process { issuer, child };
        let discovery = format!("{}/.well-known/openid-configuration", process.issuer);
        for _ in 0..200 {
            if reqwest::get(&discovery)
                .await
                .is_ok_and(|r| r.status() == 200)
            {
                return process;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("mock-idp did not answer {discovery}");
    }

    /// The most resident memory the process has held (`VmHWM`), in MiB.
    fn peak_memory_mib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("/proc status");
        let kib: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM");
        kib / 1024
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The ceiling the README states: the process at rest, plus one argon2
/// check (19 MiB) per core, plus what the requests themselves hold.
fn memory_ceiling_mib() -> u64 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    MEMORY_AT_REST_MIB + 19 * cores + MEMORY_FOR_REQUESTS_MIB
}
const MEMORY_AT_REST_MIB: u64 = 32;
const MEMORY_FOR_REQUESTS_MIB: u64 = 32;

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_concurrent_sign_ups_are_all_answered_within_the_memory_ceiling() {
    let db = TempFile::new("mock-idp-signups.db");
    let idp = Process::start(&db.sqlite_url()).await;
    let browsers: Vec<reqwest::Client> = (0..500).map(|_| http_client()).collect();
    let sign_ups = browsers.iter().enumerate().map(|(n, browser)| {
        let url = AuthRequest::demo("openid").url_for(&idp.issuer);
        async move {
            let signin = location(&authorize(browser, &url).await);
            let signup = signin.replace("/signin?", "/signup?");
            let (email, name) = (format!("new-{n}@example.com"), format!("New {n}"));
            let answer = register(browser, &signup, &email, "a long enough password", &name).await;
            answer.status().as_u16()
        }
    });
    let answers = futures_util::future::join_all(sign_ups).await;
    for status in &answers {
        assert!(
            [303, 503].contains(status),
            "a sign-up is registered (303) or told to come back (503), not {status}"
        );
    }
    let registered = answers.iter().filter(|status| **status == 303).count();
    assert!(registered > 0, "no sign-up went through");
    let (peak, ceiling) = (idp.peak_memory_mib(), memory_ceiling_mib());
    eprintln!("500 sign-ups: {registered} registered, resident memory peaked at {peak} MiB");
    assert!(
        peak < ceiling,
        "resident memory peaked at {peak} MiB, over {ceiling} MiB"
    );
}

// ---- consent of a public client on loopback -------------------------------------

#[tokio::test]
async fn a_loopback_public_client_gets_no_silent_code_from_a_remembered_consent_rfc8252_8_6() {
    let idp = Idp::start().await;
    let browser = http_client();
    // Alice signs in to the native app and allows it.
    let first = AuthRequest::native(ALL_SCOPES);
    browse_to_callback(&browser, &idp, &first.url(&idp), &ALICE).await;
    // Anything listening on the loopback port can ask again, silently.
    let silent = AuthRequest::native(ALL_SCOPES).set("prompt", "none");
    let response = authorize(&browser, &silent.url(&idp)).await;
    assert_redirect_error(
        &idp,
        &response,
        NATIVE_REDIRECT_URI,
        "consent_required",
        silent.get("state"),
    );
    // Without prompt=none, the person is asked again.
    let again = AuthRequest::native(ALL_SCOPES);
    let response = authorize(&browser, &again.url(&idp)).await;
    assert!(
        location(&response).contains("/consent?"),
        "consent is asked again"
    );
    // The confidential client keeps its remembered consent.
    browse_to_callback(
        &browser,
        &idp,
        &AuthRequest::demo(ALL_SCOPES).url(&idp),
        &ALICE,
    )
    .await;
    let response = authorize(
        &browser,
        &AuthRequest::demo(ALL_SCOPES)
            .set("prompt", "none")
            .url(&idp),
    )
    .await;
    assert!(location(&response).starts_with(REDIRECT_URI) && location(&response).contains("code="));
}

// ---- one account per email address -------------------------------------------

#[test_case(Engine::Sqlite ; "sqlite")]
#[test_case(Engine::Postgres ; "postgres")]
#[tokio::test]
async fn an_account_registered_in_another_letter_case_is_the_same_account(engine: Engine) {
    let Some(db) = engine.database().await else {
        return;
    };
    let url = db.url();
    // Someone registers Carol's address in capitals before the operator
    // adds Carol to the configuration.
    let mut first = Idp::start_on_store(mock_idp::Settings::demo(), url).await;
    let browser = http_client();
    let signin = location(&authorize(&browser, &AuthRequest::demo("openid").url(&first)).await);
    let signup = signin.replace("/signin?", "/signup?");
    let registered = register(
        &browser,
        &signup,
        "CAROL@example.com",
        "the squatter's password",
        "Not Carol",
    )
    .await;
    assert!(registered.status().is_redirection());
    first.shutdown().await;

    let mut settings = mock_idp::Settings::demo();
    let mut carol = settings.users[0].clone();
    carol.username = "carol@example.com".into();
    carol.name = "Carol".into();
    settings.users.push(carol);
    let second = Idp::start_on_store(settings, url).await;
    // One account, the operator's: the squatter's password is gone.
    for (username, password, works) in [
        ("carol@example.com", ALICE.password, true),
        ("CAROL@example.com", ALICE.password, true),
        ("CAROL@example.com", "the squatter's password", false),
    ] {
        let browser = http_client();
        let signin =
            location(&authorize(&browser, &AuthRequest::demo("openid").url(&second)).await);
        let answer = submit_sign_in(&browser, &signin, username, password).await;
        assert_eq!(
            answer.status().is_redirection(),
            works,
            "{username} / {password}"
        );
    }
}

#[tokio::test]
async fn a_database_from_before_with_two_accounts_for_one_address_is_refused_clearly() {
    let db = TempFile::new("mock-idp-twins.db");
    let url = db.sqlite_url();
    // The users table as it was, holding Carol twice.
    let old = sqlx::SqlitePool::connect(&format!("{url}?mode=rwc"))
        .await
        .unwrap();
    sqlx::raw_sql(
        "CREATE TABLE users (sub TEXT PRIMARY KEY, username TEXT NOT NULL UNIQUE,
             password_hash TEXT NOT NULL, name TEXT NOT NULL, given_name TEXT,
             family_name TEXT, email_verified INTEGER NOT NULL DEFAULT 0,
             created_at INTEGER NOT NULL);
         INSERT INTO users (sub, username, password_hash, name, created_at) VALUES
             ('1', 'carol@example.com', 'x', 'Carol', 0),
             ('2', 'CAROL@example.com', 'y', 'Not Carol', 0);",
    )
    .execute(&old)
    .await
    .unwrap();
    old.close().await;
    let Err(error) = mock_idp::store::Store::open(&url).await else {
        panic!("a database with two accounts for one address was opened");
    };
    let error = error.to_string();
    assert!(
        error.contains("carol@example.com") && error.contains("CAROL@example.com"),
        "names both accounts: {error}"
    );
    assert!(error.contains("letter case"), "{error}");
    // Nothing was deleted.
    let again = sqlx::SqlitePool::connect(&url).await.unwrap();
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&again)
        .await
        .unwrap();
    assert_eq!(count, 2);
}

#[test]
fn a_configuration_with_one_address_twice_in_two_letter_cases_is_refused() {
    let text = format!(
        "{}\n[[users]]\nusername = \"ALICE@example.com\"\npassword_hash = \"x\"\nname = \"Twin\"\n",
        mock_idp::config::DEFAULT_SETTINGS
    );
    let error = mock_idp::Settings::parse(&text)
        .err()
        .expect("refused")
        .to_string();
    assert!(error.contains("defined twice"), "{error}");
}

#[tokio::test]
async fn the_sign_in_page_lets_its_form_lead_only_to_the_clients_redirect_uri_rfc9700_4_16() {
    let idp = Idp::start().await;
    let browser = http_client();
    let signin = location(&authorize(&browser, &AuthRequest::demo("openid").url(&idp)).await);
    let page = browser.get(&signin).send().await.unwrap();
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("form-action 'self' http://localhost:3000;"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    let error = browser.get(idp.page("/signin")).send().await.unwrap();
    let csp = error.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("form-action 'none'"),
        "a page without a form: {csp}"
    );
}

//! Faults in one actor, seen from the others: the IdP down, slow or failing
//! during sign-in, refresh and sign-out; the API down; Redis stopped under
//! load; the SQLite store's disk read-only. No fault loses a session that
//! the store kept, none is answered with a bare 500, and every test ends
//! with the flow working again once the fault is gone.
//! (The IdP failing during a refresh alone: `refresh.rs`.)

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use reqwest::{Method, StatusCode};
use serde_json::Value;
use testkit::{
    ALICE, BOB, TempFile, bff::Received, http_client, location, redis::RestartableRedis,
    stack::Stack,
};

use crate::attacks::callback_url;

/// Past the demo access token's lifetime less the BFF's refresh margin.
const PAST_EXPIRY: Duration = Duration::from_secs(280);

fn content_type(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

/// Signs in as a browser would, and checks the session reaches the API.
async fn sign_in_works(stack: &Stack) -> reqwest::Client {
    let browser = http_client();
    stack
        .bff
        .sign_in(&browser, &ALICE, &mut Received::default())
        .await;
    assert_eq!(stack.bff.api(&browser, "me").await.status(), 200);
    browser
}

/// Signs out with the home page's form, as a person does: the BFF sends the
/// browser on to the provider's end-session endpoint (a redirect, or a
/// form that posts there), whatever the provider itself answered.
async fn sign_out(stack: &Stack, browser: &reqwest::Client) {
    let csrf = stack.bff.sign_out_token(browser).await;
    let response = browser
        .post(stack.bff.url("/bff/logout"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    let status = response.status();
    assert!(status.is_redirection() || status == 200, "{status}");
}

#[tokio::test]
async fn the_provider_failing_at_the_code_exchange_shows_a_page_and_the_next_sign_in_works() {
    let mut stack = Stack::start().await;
    for status in [500, 502, 503] {
        let browser = http_client();
        let callback = callback_url(&browser, &stack, "/bff/login?returnUrl=/").await;
        stack.idp.faults.fail("/v1/token", status);
        let response = browser.get(&callback).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_GATEWAY, "token {status}");
        assert!(content_type(&response).starts_with("text/html"));
        stack.idp.faults.clear();
        assert_eq!(
            stack.bff.user(&browser).await.status(),
            401,
            "not signed in"
        );
    }

    // The provider gone between the sign-in page and the callback.
    let browser = http_client();
    let callback = callback_url(&browser, &stack, "/bff/login?returnUrl=/").await;
    stack.idp.shutdown().await;
    let response = browser.get(&callback).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert!(content_type(&response).starts_with("text/html"));
    // Starting a sign-in needs only the discovered metadata: the browser is
    // sent on its way (and finds the provider down itself), or gets a page.
    let start = browser
        .get(stack.bff.url("/bff/login?returnUrl=/"))
        .send()
        .await
        .unwrap();
    assert!(
        start.status().is_redirection() || start.status() == StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        start.status()
    );

    stack.idp.start_again().await;
    sign_in_works(&stack).await;
}

#[tokio::test]
async fn a_provider_slow_by_seconds_slows_sign_in_refresh_and_sign_out_but_each_completes() {
    let stack = Stack::start().await;
    for path in ["/v1/token", "/v1/revoke"] {
        stack.idp.faults.delay(path, Duration::from_secs(2));
    }
    let browser = sign_in_works(&stack).await;

    stack.time.advance(PAST_EXPIRY);
    let before = stack.idp.faults.count("/v1/token");
    assert_eq!(stack.bff.api(&browser, "me").await.status(), 200);
    assert_eq!(stack.idp.faults.count("/v1/token"), before + 1, "refreshed");

    sign_out(&stack, &browser).await;
    assert_eq!(stack.idp.faults.count("/v1/revoke"), 1, "token given back");
    assert_eq!(stack.bff.user(&browser).await.status(), 401);
}

#[tokio::test]
async fn the_provider_down_or_failing_at_sign_out_still_ends_the_session_here() {
    let mut stack = Stack::start().await;
    for fault in ["5xx", "down"] {
        let browser = sign_in_works(&stack).await;
        match fault {
            "5xx" => stack.idp.faults.fail("/v1/revoke", 503),
            _ => stack.idp.shutdown().await,
        }
        sign_out(&stack, &browser).await;
        assert_eq!(
            stack.bff.user(&browser).await.status(),
            401,
            "{fault}: signed out here whatever the provider did"
        );
        stack.idp.faults.clear();
        if fault == "down" {
            stack.idp.start_again().await;
        }
    }
    sign_in_works(&stack).await;
}

#[tokio::test]
async fn the_api_down_is_a_clear_error_and_the_session_is_kept() {
    let mut stack = Stack::start().await;
    let browser = sign_in_works(&stack).await;
    stack.api.shutdown().await;

    let response = stack.bff.api(&browser, "me").await;
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"].is_string(), "{body}");
    let home = browser.get(stack.bff.url("/")).send().await.unwrap();
    assert_eq!(home.status(), 200, "the app's page still shows");
    assert_eq!(
        stack.bff.user(&browser).await.status(),
        200,
        "still signed in"
    );

    stack.api.start_again().await;
    assert_eq!(stack.bff.api(&browser, "me").await.status(), 200);
}

/// Calls `/bff/api/me` for each browser over and over until `stop`,
/// returning every status seen.
fn load(
    stack: &Stack,
    browsers: &[reqwest::Client],
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Vec<u16>> {
    let url = stack.bff.url("/bff/api/me");
    let browsers = browsers.to_vec();
    tokio::spawn(async move {
        let mut statuses = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let calls = browsers.iter().map(|browser| {
                browser
                    .request(Method::GET, &url)
                    .header("X-CSRF", "1")
                    .timeout(Duration::from_secs(10))
                    .send()
            });
            for answer in futures_util::future::join_all(calls).await {
                statuses.push(answer.map(|r| r.status().as_u16()).unwrap_or(0));
            }
        }
        statuses
    })
}

#[tokio::test]
async fn redis_stopped_under_load_is_a_503_and_no_session_it_kept_is_lost() {
    let Some(mut redis) = RestartableRedis::start().await else {
        return;
    };
    let stack =
        Stack::start_with(mock_idp::Settings::demo(), &["--session-store", &redis.url]).await;
    let mut browsers = Vec::new();
    for account in [&ALICE, &BOB, &ALICE, &BOB] {
        browsers.push(stack.bff.signed_in_browser(account).await);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let running = load(&stack, &browsers, stop.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;

    redis.kill();
    for browser in &browsers {
        let response = stack.bff.api(browser, "me").await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(response.headers().contains_key("retry-after"));
        let user = stack.bff.user(browser).await.status();
        assert_eq!(
            user,
            StatusCode::SERVICE_UNAVAILABLE,
            "not taken for signed out"
        );
    }
    let page = browsers[0].get(stack.bff.url("/")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(content_type(&page).starts_with("text/html"));

    redis.start_again().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let statuses = running.await.unwrap();
    assert!(
        statuses.iter().all(|s| [200, 503].contains(s)),
        "only answers or 503 under load: {statuses:?}"
    );
    assert!(statuses.contains(&200) && statuses.contains(&503));
    for browser in &browsers {
        assert_eq!(
            stack.bff.api(browser, "me").await.status(),
            200,
            "the session Redis kept is there again"
        );
    }
    sign_in_works(&stack).await;
}

/// Makes a file immutable (`chattr +i`): writes through descriptors already
/// open fail too, as on a disk remounted read-only. Undone when dropped.
struct Immutable(Vec<std::path::PathBuf>);

impl Immutable {
    /// `None` where `chattr` cannot (not root, or a file system without
    /// the flag): the test is then skipped.
    fn set(db: &TempFile) -> Option<Immutable> {
        let files: Vec<_> = ["", "-wal", "-shm"]
            .iter()
            .map(|suffix| std::path::PathBuf::from(format!("{}{suffix}", db.0.display())))
            .filter(|path| path.exists())
            .collect();
        let done = std::process::Command::new("chattr")
            .arg("+i")
            .args(&files)
            .status()
            .is_ok_and(|s| s.success());
        if !done {
            eprintln!("read-only store test skipped: chattr +i is not permitted here");
            return None;
        }
        Some(Immutable(files))
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .args(&self.0)
            .status();
    }
}

#[tokio::test]
async fn a_read_only_sqlite_store_refuses_writes_with_503_and_works_again_once_writable() {
    let db = TempFile::new("bff-read-only.db");
    let stack = Stack::start_with(
        mock_idp::Settings::demo(),
        &["--session-store", &db.sqlite_url()],
    )
    .await;
    let signed_in = sign_in_works(&stack).await;
    let Some(read_only) = Immutable::set(&db) else {
        return;
    };

    // A sign-in must write its pending login: refused with a page.
    let newcomer = http_client();
    let start = newcomer
        .get(stack.bff.url("/bff/login?returnUrl=/"))
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(content_type(&start).starts_with("text/html"));
    // A session that needs no write goes on.
    assert_eq!(stack.bff.api(&signed_in, "me").await.status(), 200);

    drop(read_only);
    let start = newcomer
        .get(stack.bff.url("/bff/login?returnUrl=/"))
        .send()
        .await
        .unwrap();
    assert!(start.status().is_redirection(), "{}", start.status());
    assert!(location(&start).contains("/authorize?"));
    assert_eq!(stack.bff.user(&signed_in).await.status(), 200);
    sign_in_works(&stack).await;
}

/// The `bff` binary, as an operator runs it, killed with SIGKILL when asked
/// or dropped.
struct BffProcess {
    args: Vec<String>,
    base_url: String,
    child: std::process::Child,
}

impl BffProcess {
    async fn start(args: Vec<String>, base_url: String) -> BffProcess {
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_bff"))
            .args(&args)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("the bff binary starts");
        let process = BffProcess {
            args,
            base_url,
            child,
        };
        process.until_up().await;
        process
    }

    async fn until_up(&self) {
        let health = format!("{}/healthz", self.base_url);
        for _ in 0..200 {
            if reqwest::get(&health).await.is_ok_and(|r| r.status() == 200) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the bff binary does not answer at {health}");
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    async fn start_again(&mut self) {
        self.kill();
        self.child = std::process::Command::new(env!("CARGO_BIN_EXE_bff"))
            .args(&self.args)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("the bff binary starts again");
        self.until_up().await;
    }
}

impl Drop for BffProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

#[test_case::test_case("sqlite" ; "sqlite")]
#[test_case::test_case("redis" ; "redis")]
#[tokio::test]
async fn a_bff_killed_in_the_middle_of_writes_keeps_every_sign_in_it_completed(store: &str) {
    let db = TempFile::new("bff-killed.db");
    let store_url = match store {
        "sqlite" => db.sqlite_url(),
        _ => match testkit::redis::available().await {
            Some(url) => url,
            None => return,
        },
    };
    // The IdP and API in-process; the BFF a process of its own on a port
    // the IdP knows as its redirect URI's.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let base_url = format!("http://127.0.0.1:{port}");
    let mut settings = mock_idp::Settings::demo();
    testkit::stack::register_bff(&mut settings, &base_url);
    let time = testkit::ManualClock::starting_now();
    let idp = testkit::idp::Idp::start_full(settings, "sqlite::memory:", "RS256", time).await;
    let api = testkit::api::Api::start(&idp).await;
    let args = vec![
        "--port".to_owned(),
        port.to_string(),
        "--public-url".to_owned(),
        base_url.clone(),
        "--issuer".to_owned(),
        idp.issuer.clone(),
        "--api-url".to_owned(),
        api.base_url.clone(),
        "--session-store".to_owned(),
        store_url,
        "--redis-key-prefix".to_owned(),
        testkit::redis::prefix(),
        format!("--session-keys={}", bff::session::Sealer::new_key()),
    ];
    let mut bff = BffProcess::start(args, base_url.clone()).await;

    // Sign-ins under way when the process dies: those that came back to
    // the app were confirmed to the person, and must survive.
    let first = http_client();
    testkit::bff::sign_in_at_bff(&first, &base_url, &ALICE, &mut Received::default()).await;
    let completed = Arc::new(std::sync::Mutex::new(vec![first]));
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let completed = completed.clone();
            let base_url = base_url.clone();
            tokio::spawn(async move {
                let browser = http_client();
                let account = if i % 2 == 0 { &ALICE } else { &BOB };
                testkit::bff::sign_in_at_bff(
                    &browser,
                    &base_url,
                    account,
                    &mut Received::default(),
                )
                .await;
                completed.lock().unwrap().push(browser);
            })
        })
        .collect();
    for _ in 0..400 {
        if completed.lock().unwrap().len() >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    bff.kill();
    for task in tasks {
        // The ones cut off panic in their task: a sign-in that failed.
        let _ = task.await;
    }
    let completed = completed.lock().unwrap().clone();
    assert!(completed.len() >= 4, "{} completed", completed.len());

    bff.start_again().await;
    for browser in &completed {
        let me = browser
            .get(format!("{base_url}/bff/api/me"))
            .header("X-CSRF", "1")
            .send()
            .await
            .unwrap();
        assert_eq!(me.status(), 200, "a completed sign-in survived the kill");
    }
    let after = http_client();
    testkit::bff::sign_in_at_bff(&after, &base_url, &BOB, &mut Received::default()).await;
}

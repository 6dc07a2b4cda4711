//! What survives a restart of the IdP on the same database, a SQLite file
//! or a PostgreSQL database: the signing key (so issued tokens stay valid),
//! registered users, consents and the record of issued access tokens.

use test_case::test_case;
use testkit::{
    ALL_SCOPES, REDIRECT_URI,
    database::Engine,
    http_client,
    idp::{
        AuthRequest, Idp, Tokens, authorize, consent, exchange_code, jwks, published_kids, refresh,
        register, submit_sign_in, userinfo_status, verify_with_jwks,
    },
    location, query_of,
};

#[test_case(Engine::Sqlite ; "sqlite")]
#[test_case(Engine::Postgres ; "postgres")]
#[tokio::test]
async fn restart_on_the_same_store_keeps_keys_users_consents_and_tokens(engine: Engine) {
    // The database goes when the test ends, pass or fail.
    let Some(db) = engine.database().await else {
        return;
    };
    let url = db.url();
    let email = format!(
        "erin-{}@example.com",
        testkit::random_string().to_lowercase()
    );
    let password = "erin's long password";

    // First life: register Erin, consent, get tokens.
    let mut first = Idp::start_on_store(mock_idp::Settings::demo(), url).await;
    let kid = published_kids(&first).await;
    assert_eq!(kid.len(), 1);
    let browser = http_client();
    let params = AuthRequest::demo(ALL_SCOPES);
    let signin = location(&authorize(&browser, &params.url(&first)).await);
    let signup = signin.replace("/signin?", "/signup?");
    let response = register(&browser, &signup, &email, password, "Erin Example").await;
    let response = consent(&browser, &location(&response), "allow").await;
    let code = query_of(&location(&response))["code"].clone();
    let tokens: Tokens = exchange_code(&first, &code, &params.verifier)
        .await
        .json()
        .await
        .unwrap();
    first.shutdown().await;
    drop(first);

    // Second life, on the same database.
    let second = Idp::start_on_store(mock_idp::Settings::demo(), url).await;
    assert_eq!(
        published_kids(&second).await,
        kid,
        "the same signing key is published"
    );
    // The new issuer differs (a new port), so check the old token against
    // the new JWKS with the issuer it was minted under.
    let jwks = jwks(&second).await;
    let header = jsonwebtoken::decode_header(&tokens.access_token).unwrap();
    let jwk = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("the old kid is in the new JWKS");
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_audience(&["api://default"]);
    jsonwebtoken::decode::<serde_json::Value>(
        &tokens.access_token,
        &jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap(),
        &validation,
    )
    .expect("a token of the first life verifies against the second's JWKS");

    // Refresh tokens are kept too (as digests): the old one still works.
    let refreshed = refresh(&second, tokens.refresh_token.as_deref().unwrap()).await;
    assert_eq!(refreshed.status(), 200, "a refresh token of the first life");

    // Erin signs in again; her consent is remembered (no consent page).
    let fresh = http_client();
    let params = AuthRequest::demo(ALL_SCOPES);
    let signin = location(&authorize(&fresh, &params.url(&second)).await);
    let response = submit_sign_in(&fresh, &signin, &email, password).await;
    let callback = location(&response);
    assert!(
        callback.starts_with(REDIRECT_URI),
        "no consent page after the restart: {callback}"
    );
    let code = query_of(&callback)["code"].clone();
    let tokens = exchange_code(&second, &code, &params.verifier).await;
    assert_eq!(tokens.status(), 200);
    let tokens: Tokens = tokens.json().await.unwrap();
    let (header, _) = verify_with_jwks(&second, &tokens.access_token, "api://default").await;
    assert_eq!(
        header.kid.as_deref(),
        Some(kid[0].as_str()),
        "still signing with the same key"
    );
    assert_eq!(userinfo_status(&second, &tokens.access_token).await, 200);
}

/// The `mock-idp` binary on a SQLite file and a port of its own, with a
/// refresh-token reuse grace period as Okta's default (30 s); SIGKILLed on
/// `kill` or drop.
struct Killable {
    issuer: String,
    args: Vec<String>,
    child: std::process::Child,
}

impl Killable {
    async fn start(args: Vec<String>, issuer: String) -> Killable {
        let child = Self::spawn(&args);
        let process = Killable {
            issuer,
            args,
            child,
        };
        process.until_up().await;
        process
    }

    fn spawn(args: &[String]) -> std::process::Child {
        std::process::Command::new(env!("CARGO_BIN_EXE_mock-idp"))
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start mock-idp")
    }

    async fn until_up(&self) {
        let discovery = format!("{}/.well-known/openid-configuration", self.issuer);
        for _ in 0..200 {
            if reqwest::get(&discovery)
                .await
                .is_ok_and(|r| r.status() == 200)
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("mock-idp did not answer {discovery}");
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    async fn start_again(&mut self) {
        self.child = Self::spawn(&self.args);
        self.until_up().await;
    }

    async fn refresh(&self, refresh_token: &str) -> reqwest::Response {
        reqwest::Client::new()
            .post(format!("{}/v1/token", self.issuer))
            .basic_auth(testkit::CLIENT_ID, Some(testkit::CLIENT_SECRET))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ])
            .send()
            .await
            .expect("the token endpoint answers")
    }

    async fn jwks(&self) -> serde_json::Value {
        reqwest::get(format!("{}/v1/keys", self.issuer))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

impl Drop for Killable {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Signs in as alice through the binary's pages and exchanges the code.
async fn tokens_from(issuer: &str) -> serde_json::Value {
    let browser = testkit::http_client();
    let request = testkit::idp::AuthRequest::demo("openid offline_access");
    let origin = issuer.trim_end_matches("/oauth2/default");
    let mut url = request.url_for(issuer);
    let code = loop {
        let response = if url.contains("/signin?") {
            testkit::idp::sign_in(&browser, &url, &testkit::ALICE).await
        } else if url.contains("/consent?") {
            testkit::idp::consent(&browser, &url, "allow").await
        } else {
            browser.get(&url).send().await.unwrap()
        };
        let next = testkit::location(&response);
        if next.starts_with(testkit::REDIRECT_URI) {
            break testkit::query_of(&next).remove("code").expect("a code");
        }
        url = if next.starts_with('/') {
            format!("{origin}{next}")
        } else {
            next
        };
    };
    reqwest::Client::new()
        .post(format!("{issuer}/v1/token"))
        .basic_auth(testkit::CLIENT_ID, Some(testkit::CLIENT_SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", testkit::REDIRECT_URI),
            ("code_verifier", &request.verifier),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idp_killed_in_the_middle_of_refresh_grants_keeps_its_keys_and_refresh_tokens() {
    let db = testkit::TempFile::new("mock-idp-killed.db");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let issuer = format!("http://localhost:{port}/oauth2/default");
    let config = testkit::TempFile::new("mock-idp-killed.toml");
    std::fs::write(
        &config.0,
        mock_idp::config::DEFAULT_SETTINGS.replace(
            "refresh_token_reuse_grace_seconds = 0",
            "refresh_token_reuse_grace_seconds = 30",
        ),
    )
    .unwrap();
    let args: Vec<String> = vec![
        "--port".into(),
        port.to_string(),
        "--issuer".into(),
        issuer.clone(),
        "--database-url".into(),
        db.sqlite_url(),
        "--config".into(),
        config.0.display().to_string(),
    ];
    let mut idp = Killable::start(args, issuer.clone()).await;
    let keys = idp.jwks().await;
    // A grant at rest when the process dies, and one being rotated.
    let at_rest = tokens_from(&issuer).await;
    let tokens = tokens_from(&issuer).await;
    let mut refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();

    // Refresh grants one after another, each rotating the token (a write),
    // while the process is killed at a moment of its own.
    let latest = std::sync::Arc::new(std::sync::Mutex::new(refresh_token.clone()));
    let rotating = {
        let latest = latest.clone();
        let issuer = issuer.clone();
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            loop {
                let current = latest.lock().unwrap().clone();
                let answer = client
                    .post(format!("{issuer}/v1/token"))
                    .basic_auth(testkit::CLIENT_ID, Some(testkit::CLIENT_SECRET))
                    .form(&[("grant_type", "refresh_token"), ("refresh_token", &current)])
                    .send()
                    .await;
                let Ok(answer) = answer else { break };
                let Ok(body) = answer.json::<serde_json::Value>().await else {
                    break;
                };
                let Some(next) = body["refresh_token"].as_str() else {
                    break;
                };
                *latest.lock().unwrap() = next.to_owned();
            }
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    idp.kill();
    let _ = rotating.await;
    refresh_token.clone_from(&latest.lock().unwrap());
    assert_ne!(
        refresh_token,
        tokens["refresh_token"].as_str().unwrap(),
        "some grants were made before the kill"
    );

    idp.start_again().await;
    assert_eq!(idp.jwks().await, keys, "the same signing keys");
    let answer = idp
        .refresh(at_rest["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(answer.status(), 200, "a refresh token at rest survives");
    // The one being rotated: the last token the client received works,
    // unless the kill came after the IdP stored its rotation and before the
    // answer arrived. Then it is a reused token: the grace period's answer
    // was in the dead process's memory, and the IdP keeps only digests, so
    // it cannot hand the lost pair out again (RFC 9700 4.14.2).
    let answer = idp.refresh(&refresh_token).await;
    let status = answer.status().as_u16();
    if status != 200 {
        let body: serde_json::Value = answer.json().await.unwrap();
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_grant"))
        );
    }
    assert!(tokens_from(&issuer).await["access_token"].is_string());
}

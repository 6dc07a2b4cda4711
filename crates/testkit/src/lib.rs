//! Test helpers shared by the crates' integration tests: start the real
//! servers in-process on port 0, and walk the flow over HTTP the way a
//! browser and a client would (the IdP's forms included).
//!
//! Nothing here is a mock: every helper drives a real server through its
//! public HTTP interface. Helpers panic on failure, as test code does.

use std::{collections::HashMap, net::SocketAddr};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use clap::Parser;
use rand::RngCore;
use sha2::{Digest, Sha256};
use tokio::{sync::oneshot, task::JoinHandle};

pub use mock_idp;

/// A demo account of CONTRACT.md.
pub struct Account {
    pub username: &'static str,
    pub password: &'static str,
    pub name: &'static str,
}

pub const ALICE: Account = Account {
    username: "alice@example.com",
    password: "wonderland",
    name: "Alice Liddell",
};

pub const BOB: Account = Account {
    username: "bob@example.com",
    password: "builder",
    name: "Bob Builder",
};

/// The demo confidential client.
pub const CLIENT_ID: &str = "bff-demo";
pub const CLIENT_SECRET: &str = "bff-demo-secret";
pub const REDIRECT_URI: &str = "http://localhost:3000/bff/callback";
pub const ALL_SCOPES: &str = "openid profile email offline_access notes:read notes:write";

/// A server running in this process until dropped or shut down.
struct Running {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Running {
    async fn serve(listener: tokio::net::TcpListener, router: axum::Router) -> Running {
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .expect("server runs");
        });
        Running {
            stop: Some(stop),
            task: Some(task),
        }
    }

    async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

async fn listen() -> (tokio::net::TcpListener, SocketAddr) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a free port");
    let addr = listener.local_addr().expect("local addr");
    (listener, addr)
}

/// The real mock IdP, in-process, with an in-memory store.
pub struct Idp {
    pub issuer: String,
    pub base_url: String,
    pub state: mock_idp::AppState,
    server: Running,
}

impl Idp {
    /// The IdP with the demo configuration (CONTRACT.md).
    pub async fn start() -> Idp {
        Idp::start_with(mock_idp::Settings::demo()).await
    }

    /// The IdP with other settings (lifetimes, clients, users).
    pub async fn start_with(settings: mock_idp::Settings) -> Idp {
        Idp::start_on_store(settings, "sqlite::memory:").await
    }

    /// The IdP on a given database URL (a file, for restart tests).
    pub async fn start_on_store(settings: mock_idp::Settings, database_url: &str) -> Idp {
        let (listener, addr) = listen().await;
        let base_url = format!("http://{addr}");
        let issuer = format!("{base_url}/oauth2/default");
        let state = mock_idp::AppState::new(issuer.clone(), settings, database_url, "RS256")
            .await
            .expect("IdP state");
        let server = Running::serve(listener, mock_idp::app(state.clone())).await;
        Idp {
            issuer,
            base_url,
            state,
            server,
        }
    }

    /// Signs arbitrary claims with the IdP's active key and header `typ`.
    pub async fn sign(&self, typ: &str, claims: serde_json::Value) -> String {
        self.state.keys.sign(typ, &claims).expect("sign")
    }

    /// Signs with a header made of these fields (`alg` and `kid` always come
    /// from the IdP's active key).
    pub async fn sign_with_header(
        &self,
        header: serde_json::Value,
        claims: serde_json::Value,
    ) -> String {
        let mut header = header;
        header["alg"] = serde_json::json!("RS256");
        let header: jsonwebtoken::Header = serde_json::from_value(header).expect("header fields");
        self.state
            .keys
            .sign_with_header(header, &claims)
            .expect("sign")
    }

    /// Adds a new signing key (a new `kid`) and makes it the active one.
    pub async fn rotate_keys(&self) -> String {
        self.state.rotate_keys("RS256").await.expect("rotate keys")
    }

    /// Stops the server (its state stays readable).
    pub async fn shutdown(&mut self) {
        self.server.stop().await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }
}

/// The real API, in-process, pointed at an IdP.
pub struct Api {
    pub base_url: String,
    server: Running,
}

impl Api {
    pub async fn start(idp: &Idp) -> Api {
        Api::start_with_args(idp, &[]).await
    }

    /// The API with extra command-line options appended.
    pub async fn start_with_args(idp: &Idp, extra: &[&str]) -> Api {
        let (listener, addr) = listen().await;
        let mut args = vec![
            "api",
            "--issuer",
            &idp.issuer,
            "--database-url",
            "sqlite::memory:",
            "--port",
            "0",
        ];
        args.extend_from_slice(extra);
        let config = api::Config::parse_from(args);
        let router = api::app(&config).await.expect("API app");
        let server = Running::serve(listener, router).await;
        Api {
            base_url: format!("http://{addr}"),
            server,
        }
    }

    pub async fn shutdown(&mut self) {
        self.server.stop().await;
    }
}

/// An HTTP client that keeps cookies, like a browser, and does not follow
/// redirects, so each step of the flow can be looked at.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client")
}

/// A PKCE pair (RFC 7636 4.1, 4.2).
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

pub fn pkce() -> Pkce {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let verifier = URL_SAFE_NO_PAD.encode(bytes);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    Pkce {
        verifier,
        challenge,
    }
}

/// The `Location` header of a redirect, made absolute against `base`.
pub fn location(response: &reqwest::Response) -> String {
    let value = response
        .headers()
        .get(reqwest::header::LOCATION)
        .unwrap_or_else(|| panic!("expected a redirect, got {}", response.status()))
        .to_str()
        .expect("ascii location");
    response
        .url()
        .join(value)
        .expect("location is a URL")
        .to_string()
}

/// The query parameters of a URL.
pub fn query_of(url: &str) -> HashMap<String, String> {
    url::Url::parse(url)
        .expect("URL")
        .query_pairs()
        .into_owned()
        .collect()
}

/// The `name` → `value` of every `<input>` of a page (hidden fields
/// included), as a browser would submit them.
pub fn form_inputs(html: &str) -> HashMap<String, String> {
    let mut fields = HashMap::new();
    for tag in html.split("<input").skip(1) {
        let tag = &tag[..tag.find('>').unwrap_or(tag.len())];
        let attr = |name: &str| {
            let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
            let end = tag[start..].find('"')? + start;
            Some(decode_html(&tag[start..end]))
        };
        if let Some(name) = attr("name") {
            fields.insert(name, attr("value").unwrap_or_default());
        }
    }
    fields
}

fn decode_html(value: &str) -> String {
    value
        .replace("&#x2f;", "/")
        .replace("&#x2F;", "/")
        .replace("&#47;", "/")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// An authorization request of the demo client, as parameters.
pub struct AuthorizeParams {
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub state: String,
    pub nonce: String,
    pub pkce: Pkce,
    /// Extra or overriding parameters.
    pub extra: Vec<(String, String)>,
}

impl AuthorizeParams {
    pub fn demo(scope: &str) -> AuthorizeParams {
        AuthorizeParams {
            client_id: CLIENT_ID.into(),
            redirect_uri: REDIRECT_URI.into(),
            scope: scope.into(),
            state: random_string(),
            nonce: random_string(),
            pkce: pkce(),
            extra: Vec::new(),
        }
    }

    pub fn url(&self, idp: &Idp) -> String {
        let mut url = url::Url::parse(&idp.url("/v1/authorize")).expect("URL");
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &self.client_id)
                .append_pair("redirect_uri", &self.redirect_uri)
                .append_pair("scope", &self.scope)
                .append_pair("state", &self.state)
                .append_pair("nonce", &self.nonce)
                .append_pair("code_challenge", &self.pkce.challenge)
                .append_pair("code_challenge_method", "S256");
            for (k, v) in &self.extra {
                q.append_pair(k, v);
            }
        }
        url.to_string()
    }
}

pub fn random_string() -> String {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Steps 2-3: sends the browser to `/authorize`; returns the redirect it got.
pub async fn authorize(browser: &reqwest::Client, url: &str) -> reqwest::Response {
    browser.get(url).send().await.expect("authorize")
}

/// Step 3-4: on the sign-in page `signin_url`, submits the account's
/// credentials; returns the IdP's answer.
pub async fn sign_in(
    browser: &reqwest::Client,
    signin_url: &str,
    account: &Account,
) -> reqwest::Response {
    submit_sign_in(browser, signin_url, account.username, account.password).await
}

/// The sign-in form with any username and password.
pub async fn submit_sign_in(
    browser: &reqwest::Client,
    signin_url: &str,
    username: &str,
    password: &str,
) -> reqwest::Response {
    let page = browser.get(signin_url).send().await.expect("sign-in page");
    assert_eq!(page.status(), 200, "sign-in page");
    let action = page.url().join("/signin").expect("URL");
    let mut fields = form_inputs(&page.text().await.expect("page"));
    fields.insert("username".into(), username.into());
    fields.insert("password".into(), password.into());
    browser
        .post(action)
        .form(&fields)
        .send()
        .await
        .expect("sign in")
}

/// Step 4: on the consent page, answers `allow` or `deny`.
pub async fn consent(
    browser: &reqwest::Client,
    consent_url: &str,
    decision: &str,
) -> reqwest::Response {
    let page = browser.get(consent_url).send().await.expect("consent page");
    assert_eq!(page.status(), 200, "consent page");
    let action = page.url().join("/consent").expect("URL");
    let mut fields = form_inputs(&page.text().await.expect("page"));
    fields.insert("decision".into(), decision.into());
    browser
        .post(action)
        .form(&fields)
        .send()
        .await
        .expect("consent")
}

/// Steps 2-5 in a browser: authorize, sign in if asked, consent if asked;
/// returns the URL the IdP finally sent the browser to (the redirect URI
/// with `code` or `error`).
pub async fn browse_to_callback(
    browser: &reqwest::Client,
    idp: &Idp,
    url: &str,
    account: &Account,
) -> String {
    let mut response = authorize(browser, url).await;
    loop {
        let next = location(&response);
        if !next.starts_with(&idp.base_url) {
            return next;
        }
        response = if next.contains("/signin?") {
            sign_in(browser, &next, account).await
        } else if next.contains("/consent?") {
            consent(browser, &next, "allow").await
        } else {
            panic!("unexpected IdP page {next}");
        };
        assert!(
            response.status().is_redirection(),
            "IdP answered {} instead of a redirect",
            response.status()
        );
    }
}

/// The token response.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Tokens {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: u64,
    pub scope: String,
    pub id_token: Option<String>,
    pub refresh_token: Option<String>,
}

/// Step 6: posts a token request with `client_secret_basic` as the demo
/// client; returns the raw response.
pub async fn token_request(idp: &Idp, form: &[(&str, &str)]) -> reqwest::Response {
    reqwest::Client::new()
        .post(idp.url("/v1/token"))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(form)
        .send()
        .await
        .expect("token request")
}

/// Step 6-8: exchanges a code with its verifier.
pub async fn exchange_code(idp: &Idp, code: &str, verifier: &str) -> reqwest::Response {
    token_request(
        idp,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", verifier),
        ],
    )
    .await
}

/// The whole flow as client `bff-demo` for an account, over HTTP: returns
/// the tokens of step 8.
pub async fn login(idp: &Idp, account: &Account, scope: &str) -> Tokens {
    let browser = http_client();
    let params = AuthorizeParams::demo(scope);
    let callback = browse_to_callback(&browser, idp, &params.url(idp), account).await;
    let query = query_of(&callback);
    let code = query
        .get("code")
        .unwrap_or_else(|| panic!("no code in {callback}"));
    let response = exchange_code(idp, code, &params.pkce.verifier).await;
    assert_eq!(response.status(), 200, "token exchange");
    response.json().await.expect("token JSON")
}

/// The whole stack in-process: IdP, API and BFF on free ports, the IdP's
/// demo client registered with the BFF's real callback URL.
pub struct Stack {
    pub idp: Idp,
    pub api: Api,
    pub bff: Bff,
}

/// The real BFF, in-process.
pub struct Bff {
    pub base_url: String,
    pub config: bff::Config,
    server: Running,
}

impl Stack {
    pub async fn start() -> Stack {
        Stack::start_with(mock_idp::Settings::demo(), &[]).await
    }

    /// The stack with other IdP settings and extra BFF options (e.g.
    /// `--session-store redis://…`).
    pub async fn start_with(mut settings: mock_idp::Settings, bff_args: &[&str]) -> Stack {
        let (listener, addr) = listen().await;
        let bff_url = format!("http://{addr}");
        let client = settings
            .clients
            .iter_mut()
            .find(|c| c.client_id == CLIENT_ID)
            .expect("demo client");
        client.redirect_uris = vec![
            mock_idp::clients::RedirectUri::parse(&format!("{bff_url}/bff/callback")).expect("URI"),
        ];
        client.post_logout_redirect_uris =
            vec![mock_idp::clients::RedirectUri::parse(&format!("{bff_url}/")).expect("URI")];
        client.backchannel_logout_uri = Some(format!("{bff_url}/bff/backchannel"));
        client.client_uri = Some(format!("{bff_url}/"));
        let idp = Idp::start_with(settings).await;
        let api = Api::start(&idp).await;
        let bff = Bff::start_on(listener, &bff_url, &idp, &api, bff_args).await;
        Stack { idp, api, bff }
    }
}

impl Bff {
    async fn start_on(
        listener: tokio::net::TcpListener,
        url: &str,
        idp: &Idp,
        api: &Api,
        extra: &[&str],
    ) -> Bff {
        let mut args = vec![
            "bff",
            "--public-url",
            url,
            "--issuer",
            &idp.issuer,
            "--api-url",
            &api.base_url,
            "--session-store",
            "memory",
        ];
        args.extend_from_slice(extra);
        let config = bff::Config::parse_from(args);
        let router = bff::app(&config).await.expect("BFF app");
        let server = Running::serve(listener, router).await;
        Bff {
            base_url: url.to_owned(),
            config,
            server,
        }
    }

    /// Starts another BFF instance with the same settings on a new port
    /// (`url` is what its config says, for restart tests on the same URL
    /// use `restart`).
    pub async fn restart(&mut self) {
        self.server.stop().await;
        let addr: SocketAddr = self
            .base_url
            .trim_start_matches("http://")
            .parse()
            .expect("BFF address");
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .expect("rebind the BFF port");
        let router = bff::app(&self.config).await.expect("BFF app");
        self.server = Running::serve(listener, router).await;
    }

    pub async fn shutdown(&mut self) {
        self.server.stop().await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }
}

/// Everything a browser received: each response's URL, status, headers and
/// body, for scanning.
#[derive(Default)]
pub struct Received(pub Vec<String>);

impl Received {
    /// Records a response and returns its body.
    pub async fn record(
        &mut self,
        response: reqwest::Response,
    ) -> (reqwest::StatusCode, reqwest::header::HeaderMap, String) {
        let status = response.status();
        let headers = response.headers().clone();
        let url = response.url().to_string();
        let body = response.text().await.expect("body");
        let mut text = format!("{url} {status}\n");
        for (name, value) in &headers {
            text.push_str(&format!("{name}: {}\n", value.to_str().unwrap_or("")));
        }
        text.push_str(&body);
        self.0.push(text);
        (status, headers, body)
    }

    pub fn contains(&self, needle: &str) -> bool {
        self.0.iter().any(|r| r.contains(needle))
    }
}

/// Signs in through the BFF as a browser would: `/bff/login`, the IdP's
/// sign-in and consent pages, back to the callback, following every
/// redirect by hand. Returns the final redirect target after the callback.
pub async fn sign_in_through_bff(
    browser: &reqwest::Client,
    stack: &Stack,
    account: &Account,
    received: &mut Received,
) -> String {
    sign_in_at_bff(browser, &stack.bff.base_url, account, received).await
}

/// [`sign_in_through_bff`] for a BFF at any base URL (a real binary, say).
pub async fn sign_in_at_bff(
    browser: &reqwest::Client,
    bff_base_url: &str,
    account: &Account,
    received: &mut Received,
) -> String {
    let mut url = format!("{bff_base_url}/bff/login?returnUrl=/");
    loop {
        let response = if url.contains("/signin?") {
            sign_in(browser, &url, account).await
        } else if url.contains("/consent?") {
            consent(browser, &url, "allow").await
        } else {
            browser.get(&url).send().await.expect("GET")
        };
        let status = response.status();
        let next = status.is_redirection().then(|| location(&response));
        received.record(response).await;
        let Some(next) = next else {
            panic!("flow stopped at {url} with {status}");
        };
        if next.starts_with(bff_base_url) && !next.contains("/bff/") {
            return next;
        }
        url = next;
    }
}

/// A GET or other request to the BFF's JSON endpoints, with `X-CSRF: 1`.
pub fn bff_json(
    browser: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
) -> reqwest::RequestBuilder {
    browser.request(method, url).header("X-CSRF", "1")
}

/// `GET /bff/user` with `X-CSRF: 1`: who the BFF thinks this browser is
/// (200 with claims, or 401).
pub async fn bff_user(browser: &reqwest::Client, stack: &Stack) -> reqwest::Response {
    bff_json(browser, reqwest::Method::GET, &stack.bff.url("/bff/user"))
        .send()
        .await
        .expect("GET /bff/user")
}

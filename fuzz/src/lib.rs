//! The fuzz targets' harness: the real IdP, API and BFF of testkit's stack,
//! started once per process, and their routers called in-process, one
//! request per input (no socket, so tens of thousands of inputs a second).
//!
//! Each target is a function of [`targets`]; `fuzz_targets/NAME.rs` hands it
//! libFuzzer's input, and `tests/replay.rs` replays every committed seed and
//! every past crash through the same function in `just test`. A target
//! panics exactly when an answer breaks the rule it names, so libFuzzer
//! reports the input as a crash.

pub mod targets;

use std::{
    net::{Ipv4Addr, SocketAddr},
    sync::{
        OnceLock,
        atomic::{AtomicU32, Ordering},
    },
};

use axum::{
    Router,
    body::Body,
    extract::ConnectInfo,
    http::{HeaderMap, Request, StatusCode, header},
};
use testkit::{ALICE, CLIENT_ID, bff::Received, stack::Stack};
use tower::ServiceExt;

/// The largest answer body read back; every page and error is far smaller.
const MAX_BODY: usize = 4 * 1024 * 1024;

/// Which server a request goes to.
#[derive(Clone, Copy)]
pub enum Server {
    Idp,
    Api,
    Bff,
}

/// One answer, read whole.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// State the targets splice into their inputs (`{tx}`, `{state}` …), so
/// that mutated inputs reach past the first lookup of each handler.
pub struct Known {
    /// A pending sign-in at the IdP: its `tx`, its form's `csrf`, and the
    /// browser cookie it is bound to.
    pub tx: String,
    pub csrf: String,
    pub idp_browser_cookie: String,
    /// The IdP session cookie of a person signed in there.
    pub idp_session_cookie: String,
    /// A BFF session cookie (name=value) of a signed-in browser.
    pub bff_session_cookie: String,
    /// The BFF's redirect URI registered at the IdP.
    pub redirect_uri: String,
    /// The issuer, as its tokens say it, and the API's audience.
    pub issuer: String,
    pub audience: String,
    /// The `kid` of the IdP's active signing key.
    pub kid: String,
    /// Paths of the IdP's protocol endpoints (below the issuer's path).
    pub authorize_path: String,
    pub token_path: String,
    pub logout_path: String,
}

pub struct Harness {
    runtime: tokio::runtime::Runtime,
    pub stack: Stack,
    idp: Router,
    api: Router,
    pub known: Known,
}

/// The harness of this process, started on first use.
pub fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(Harness::start)
}

impl Harness {
    fn start() -> Harness {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let (stack, known) = runtime.block_on(async {
            let stack = Stack::start().await;
            let known = Known::gather(&stack).await;
            (stack, known)
        });
        let idp = mock_idp::app(stack.idp.state.clone());
        let api = api::router(stack.api.state.clone());
        Harness {
            runtime,
            stack,
            idp,
            api,
            known,
        }
    }

    /// Sends one request to a server's router and reads the answer whole.
    /// Each request comes from one of 4,096 addresses, so per-address
    /// limits are met now and then, as they would be.
    pub fn call(&self, server: Server, mut request: Request<Body>) -> Answer {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed) % 4096;
        let address = SocketAddr::from((Ipv4Addr::from(0x7f00_0000 | (n + 2)), 40000));
        request.extensions_mut().insert(ConnectInfo(address));
        let router = match server {
            Server::Idp => self.idp.clone(),
            Server::Api => self.api.clone(),
            Server::Bff => self.stack.bff.router.clone(),
        };
        self.runtime.block_on(async move {
            let response = router
                .oneshot(request)
                .await
                .expect("routers are infallible");
            let (parts, body) = response.into_parts();
            let body = axum::body::to_bytes(body, MAX_BODY)
                .await
                .expect("an answer body within 4 MiB");
            Answer {
                status: parts.status,
                headers: parts.headers,
                body: body.to_vec(),
            }
        })
    }

    /// Replaces the `{name}` placeholders of an input with known values.
    pub fn splice(&self, input: &str) -> String {
        let k = &self.known;
        let now = self.stack.time.clock().now();
        input
            .replace("{tx}", &k.tx)
            .replace("{csrf}", &k.csrf)
            .replace("{redirect_uri}", &k.redirect_uri)
            .replace("{client_id}", CLIENT_ID)
            .replace("{iss}", &k.issuer)
            .replace("{aud}", &k.audience)
            .replace("{kid}", &k.kid)
            .replace("{now}", &now.to_string())
            .replace("{later}", &(now + 300).to_string())
            .replace("{bff_session}", &k.bff_session_cookie)
            .replace("{idp_session}", &k.idp_session_cookie)
            .replace("{idp_browser}", &k.idp_browser_cookie)
    }
}

impl Known {
    async fn gather(stack: &Stack) -> Known {
        let idp = &stack.idp;
        let path = |endpoint: &str| {
            url::Url::parse(&idp.url(endpoint))
                .expect("endpoint URL")
                .path()
                .to_owned()
        };
        let redirect_uri = format!("{}/bff/callback", stack.bff.base_url);

        // A person signed in through the BFF: its session cookie, and the
        // IdP's session cookie set on the way.
        let browser = testkit::http_client();
        let mut received = Received::default();
        stack.bff.sign_in(&browser, &ALICE, &mut received).await;
        let bff_session_cookie =
            last_cookie(&received, &stack.bff.base_url, bff::session::COOKIE_NAME);
        let idp_session_cookie =
            last_cookie(&received, &idp.base_url, mock_idp::session::SESSION_COOKIE);

        // A pending sign-in at the IdP, from a browser of its own.
        let pkce = testkit::pkce();
        let stranger = testkit::http_client();
        let authorize = stranger
            .get(idp.url(mock_idp::paths::AUTHORIZE))
            .query(&[
                ("response_type", "code"),
                ("client_id", CLIENT_ID),
                ("redirect_uri", redirect_uri.as_str()),
                ("scope", "openid profile"),
                ("state", "fuzz-state"),
                ("nonce", "fuzz-nonce"),
                ("code_challenge", pkce.challenge.as_str()),
                ("code_challenge_method", "S256"),
            ])
            .send()
            .await
            .expect("authorize");
        let idp_browser_cookie = set_cookie(authorize.headers(), mock_idp::session::BROWSER_COOKIE)
            .expect("the IdP marks the browser");
        let sign_in_url = testkit::location(&authorize);
        let tx = testkit::query_of(&sign_in_url)
            .remove("tx")
            .expect("a tx on the sign-in page's URL");
        let page = stranger
            .get(&sign_in_url)
            .send()
            .await
            .expect("sign-in page")
            .text()
            .await
            .expect("sign-in page text");
        let csrf = testkit::form_inputs(&page)
            .remove("csrf")
            .expect("the sign-in form's csrf");

        Known {
            tx,
            csrf,
            idp_browser_cookie,
            idp_session_cookie,
            bff_session_cookie,
            redirect_uri,
            issuer: idp.issuer.clone(),
            audience: idp.state.settings.profile.api_audience().to_owned(),
            kid: idp.state.keys.active().expect("an active key").kid.clone(),
            authorize_path: path(mock_idp::paths::AUTHORIZE),
            token_path: path(mock_idp::paths::TOKEN),
            logout_path: path(mock_idp::paths::LOGOUT),
        }
    }
}

/// `name=value` of the last cookie `name` set by a response from `base_url`.
fn last_cookie(received: &Received, base_url: &str, name: &str) -> String {
    let prefix = format!("set-cookie: {name}=");
    received
        .0
        .iter()
        .filter(|response| response.starts_with(base_url))
        .flat_map(|response| response.lines())
        .filter_map(|line| line.strip_prefix(&prefix))
        .filter_map(|rest| rest.split(';').next())
        .rfind(|value| !value.is_empty())
        .map(|value| format!("{name}={value}"))
        .unwrap_or_else(|| panic!("no {name} cookie from {base_url}"))
}

/// `name=value` of a cookie set by these headers.
fn set_cookie(headers: &reqwest::header::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .and_then(|v| v.split(';').next())
        .map(str::to_owned)
}

impl Answer {
    fn content_type(&self) -> &str {
        self.headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Bad input never gets a 5xx: whatever a client sends is its fault,
    /// and is answered as such.
    pub fn no_server_error(&self, what: &str) {
        assert!(
            !self.status.is_server_error(),
            "{what}: {} {}",
            self.status,
            self.text()
        );
    }

    /// A page for a person: a refusal is an HTML page.
    pub fn page_or_redirect(&self, what: &str) {
        self.no_server_error(what);
        if self.status.is_client_error() {
            assert!(
                self.content_type().starts_with("text/html"),
                "{what}: {} answered as {:?}, not a page",
                self.status,
                self.content_type()
            );
        }
    }

    /// RFC 6749 5.2: a refused token request is JSON with an `error` code
    /// made only of the characters that section allows.
    pub fn oauth_error_json(&self, what: &str) {
        self.no_server_error(what);
        if self.status.is_success() {
            return;
        }
        assert!(
            self.content_type().starts_with("application/json"),
            "{what}: {} answered as {:?} (RFC 6749 5.2)",
            self.status,
            self.content_type()
        );
        let body: serde_json::Value =
            serde_json::from_slice(&self.body).expect("RFC 6749 5.2: a JSON error body");
        let error = body["error"].as_str().expect("RFC 6749 5.2: an error code");
        assert!(
            !error.is_empty()
                && error
                    .bytes()
                    .all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5b | 0x5d..=0x7e)),
            "RFC 6749 5.2: error {error:?} has characters outside %x20-21 / %x23-5B / %x5D-7E"
        );
    }

    /// RFC 6750 3: a request refused for its token says so in
    /// `WWW-Authenticate: Bearer`.
    pub fn bearer_challenge_on_401(&self, what: &str) {
        self.no_server_error(what);
        if self.status == StatusCode::UNAUTHORIZED {
            let challenge = self
                .headers
                .get(header::WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            assert!(
                challenge.starts_with("Bearer"),
                "RFC 6750 3: 401 without a Bearer challenge ({challenge:?})"
            );
        }
    }
}

/// A request with a method, a path-and-query, headers and a body, or `None`
/// when the fuzzer's bytes cannot be an HTTP request at all (a URI or
/// header value no HTTP parser would pass on).
pub fn request(
    method: &str,
    path_and_query: &str,
    headers: &[(&str, &[u8])],
    body: Vec<u8>,
) -> Option<Request<Body>> {
    let mut builder = Request::builder()
        .method(method)
        .uri(axum::http::Uri::try_from(path_and_query).ok()?);
    for (name, value) in headers {
        builder = builder.header(*name, axum::http::HeaderValue::from_bytes(value).ok()?);
    }
    builder.body(Body::from(body)).ok()
}

/// Splits an input at its first `\n`: a line of one field, the rest another.
pub fn split_line(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[]),
    }
}

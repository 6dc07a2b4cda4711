//! Malformed input at every route of the three servers, over real HTTP and
//! raw TCP: oversized headers and bodies, invalid UTF-8, repeated and empty
//! parameters, wrong content types, deeply nested and huge JSON, very long
//! paths, unknown methods. Each answer is a 4xx in the route's own form (an
//! RFC 6749 error object, a page for a person, a bearer challenge), never a
//! 5xx, and always in time. The table of routes is checked against the
//! sources, so a new route cannot miss the sweep.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use testkit::{bff::Received, http_client, stack::Stack};

/// How a route answers a request it refuses.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Form {
    /// A page a person reads: `text/html` (or a redirect).
    Page,
    /// JSON with an `error` member (RFC 6749 5.2, the BFF's JSON API).
    Json,
    /// A resource: JSON, with `WWW-Authenticate` on 401 (RFC 6750 3).
    Bearer,
    /// Static content, answered the same whatever the request holds.
    Fixed,
}

#[derive(Clone)]
struct Route {
    /// The server's base URL.
    base: String,
    method: &'static str,
    /// The path as routed (parameters filled in).
    path: String,
    form: Form,
}

/// Every route of the stack.
fn routes(stack: &Stack) -> Vec<Route> {
    let idp = stack.idp.base_url.clone();
    let issuer = stack.idp.issuer.clone();
    let issuer_path = issuer.strip_prefix(&idp).unwrap_or("").to_owned();
    let api = stack.api.base_url.clone();
    let bff = stack.bff.base_url.clone();
    let route = |base: &str, method, path: &str, form| Route {
        base: base.to_owned(),
        method,
        path: path.to_owned(),
        form,
    };
    let protocol = |method, path: &str, form| Route {
        base: idp.clone(),
        method,
        path: format!("{issuer_path}{path}"),
        form,
    };
    vec![
        protocol("GET", "/.well-known/openid-configuration", Form::Fixed),
        protocol(
            "GET",
            "/.well-known/oauth-authorization-server",
            Form::Fixed,
        ),
        route(
            &idp,
            "GET",
            &format!("/.well-known/oauth-authorization-server{issuer_path}"),
            Form::Fixed,
        ),
        protocol("GET", "/v1/keys", Form::Fixed),
        protocol("GET", "/v1/authorize", Form::Page),
        protocol("POST", "/v1/token", Form::Json),
        protocol("GET", "/v1/userinfo", Form::Bearer),
        protocol("POST", "/v1/userinfo", Form::Bearer),
        protocol("POST", "/v1/revoke", Form::Json),
        protocol("POST", "/v1/introspect", Form::Json),
        protocol("GET", "/v1/logout", Form::Page),
        protocol("POST", "/v1/logout", Form::Page),
        route(&idp, "GET", "/signin", Form::Page),
        route(&idp, "POST", "/signin", Form::Page),
        route(&idp, "GET", "/signup", Form::Page),
        route(&idp, "POST", "/signup", Form::Page),
        route(&idp, "GET", "/consent", Form::Page),
        route(&idp, "POST", "/consent", Form::Page),
        route(&idp, "GET", "/", Form::Page),
        route(&idp, "GET", "/grants", Form::Page),
        route(&idp, "GET", "/grants/signin", Form::Page),
        route(&idp, "POST", "/grants/revoke", Form::Page),
        route(&idp, "POST", "/logout/confirm", Form::Page),
        route(&idp, "GET", "/static/idp.css", Form::Fixed),
        route(&idp, "GET", "/healthz", Form::Fixed),
        route(&idp, "GET", "/metrics", Form::Fixed),
        route(&api, "GET", "/healthz", Form::Fixed),
        route(&api, "GET", "/api/me", Form::Bearer),
        route(&api, "GET", "/api/notes", Form::Bearer),
        route(&api, "POST", "/api/notes", Form::Bearer),
        route(&api, "DELETE", "/api/notes/1", Form::Bearer),
        route(&api, "GET", "/metrics", Form::Fixed),
        route(&bff, "GET", "/", Form::Page),
        route(&bff, "GET", "/bff/login", Form::Page),
        route(&bff, "GET", "/bff/callback", Form::Page),
        route(&bff, "POST", "/bff/logout", Form::Page),
        route(&bff, "GET", "/flow", Form::Page),
        route(&bff, "GET", "/flow/lab", Form::Page),
        route(&bff, "POST", "/flow/lab/replay", Form::Page),
        route(&bff, "GET", "/bff/user", Form::Json),
        route(&bff, "GET", "/flow.json", Form::Json),
        route(&bff, "GET", "/bff/api/me", Form::Json),
        route(&bff, "POST", "/bff/api/notes", Form::Json),
        route(&bff, "POST", "/bff/backchannel", Form::Json),
        route(&bff, "GET", "/static/app.css", Form::Fixed),
        route(&bff, "GET", "/static/app.js", Form::Fixed),
        route(&bff, "GET", "/healthz", Form::Fixed),
        route(&bff, "GET", "/metrics", Form::Fixed),
    ]
}

/// The paths the sources route, to hold the table above to them: string
/// literals in `.route("…"` and the IdP's `paths.rs` constants.
fn routed_in_sources() -> Vec<String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates");
    let mut paths = Vec::new();
    for file in [
        "bff/src/lib.rs",
        "api/src/lib.rs",
        "api/src/notes.rs",
        "telemetry/src/metrics.rs",
    ] {
        let text = std::fs::read_to_string(root.join(file)).expect("a source file");
        let squeezed: String = text.split_whitespace().collect();
        for piece in squeezed.split(".route(\"").skip(1) {
            paths.push(piece.split('"').next().unwrap_or("").to_owned());
        }
    }
    let idp_paths = std::fs::read_to_string(root.join("mock-idp/src/paths.rs")).expect("paths.rs");
    for line in idp_paths.lines() {
        if let Some(rest) = line.strip_prefix("pub const ") {
            paths.push(rest.split('"').nth(1).unwrap_or("").to_owned());
        }
    }
    paths
}

#[tokio::test]
async fn the_sweep_covers_every_routed_path() {
    let stack = Stack::start().await;
    let table = routes(&stack);
    for routed in routed_in_sources() {
        // `{id}`-style parameters match the filled-in path's shape.
        let prefix = routed.split('{').next().unwrap_or(&routed);
        assert!(
            table
                .iter()
                .any(|r| r.path.ends_with(&routed)
                    || (routed.contains('{') && r.path.contains(prefix))),
            "{routed} is routed but not in the sweep's table"
        );
    }
}

/// An answer, as far as the checks need it.
struct Answer {
    status: u16,
    content_type: String,
    challenge: bool,
    body: Vec<u8>,
}

impl Answer {
    async fn of(response: reqwest::Response) -> Answer {
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        let content_type = header("content-type");
        let challenge = !header("www-authenticate").is_empty();
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map(|b| b.to_vec())
            .unwrap_or_default();
        Answer {
            status,
            content_type,
            challenge,
            body,
        }
    }

    /// A refusal in the route's own form, and never a server error:
    /// what is wrong, if anything.
    fn check(&self, route: &Route, what: &str) -> Option<String> {
        let path: String = route.path.chars().take(60).collect();
        let label = format!("{} {}{path} with {what}", route.method, route.base);
        if self.status >= 500 {
            return Some(format!("{label}: {}", self.status));
        }
        if !(400..500).contains(&self.status) {
            return None;
        }
        let fine = match route.form {
            Form::Page => self.content_type.starts_with("text/html"),
            Form::Json => serde_json::from_slice::<serde_json::Value>(&self.body)
                .is_ok_and(|json| json["error"].is_string()),
            Form::Bearer => self.content_type.contains("json") || self.challenge,
            Form::Fixed => true,
        };
        (!fine).then(|| {
            format!(
                "{label}: {} as {:?}, not in the form of a {:?} route",
                self.status, self.content_type, route.form
            )
        })
    }
}

/// Fails with every problem found, not only the first.
fn assert_none(problems: Vec<String>) {
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Sends one request with a deadline: a hang fails the test.
async fn send(
    browser: &reqwest::Client,
    route: &Route,
    query: &str,
    headers: &[(&str, Vec<u8>)],
    body: Vec<u8>,
) -> Answer {
    let url = format!("{}{}{query}", route.base, route.path);
    let method = reqwest::Method::from_bytes(route.method.as_bytes()).expect("method");
    let mut request = browser
        .request(method, &url)
        .timeout(Duration::from_secs(20));
    for (name, value) in headers {
        let value = reqwest::header::HeaderValue::from_bytes(value).expect("a header value");
        request = request.header(*name, value);
    }
    let response = request.body(body).send().await;
    let response = response.unwrap_or_else(|e| panic!("{} {url}: no answer: {e}", route.method));
    Answer::of(response).await
}

/// Headers to send, by name.
type Headers = Vec<(&'static str, Vec<u8>)>;

/// What every route is sent: (what, query, headers, body).
fn malformations() -> Vec<(&'static str, String, Headers, Vec<u8>)> {
    let form = vec![
        (
            "content-type",
            b"application/x-www-form-urlencoded".to_vec(),
        ),
        ("x-csrf", b"1".to_vec()),
    ];
    let json = vec![
        ("content-type", b"application/json".to_vec()),
        ("x-csrf", b"1".to_vec()),
    ];
    let repeated = "client_id=a&client_id=b&state=a&state=b&code=a&code=b&tx=a&tx=b\
                    &returnUrl=a&returnUrl=b&redirect_uri=a&redirect_uri=b&grant_type=a\
                    &grant_type=b&csrf=a&csrf=b&token=a&token=b&logout_token=a&logout_token=b";
    let empty = "client_id=&state=&code=&tx=&returnUrl=&redirect_uri=&grant_type=&csrf=&token=\
                 &logout_token=&username=&password=&code_verifier=&scope=&response_type=";
    let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let huge_json = format!("[{}0]", "0,".repeat(1_500_000));
    vec![
        ("nothing", String::new(), vec![], vec![]),
        (
            "invalid UTF-8 in the query",
            "?%FF%FE=%C3%28&state=%80".into(),
            vec![],
            vec![],
        ),
        (
            "a bad percent escape",
            "?state=%ZZ&tx=%".into(),
            vec![],
            vec![],
        ),
        (
            "repeated parameters",
            format!("?{repeated}"),
            vec![],
            vec![],
        ),
        ("empty parameters", format!("?{empty}"), vec![], vec![]),
        (
            "a 60 KB query",
            format!("?state={}", "a".repeat(60_000)),
            vec![],
            vec![],
        ),
        (
            "a repeated form",
            String::new(),
            form.clone(),
            repeated.as_bytes().to_vec(),
        ),
        (
            "an empty form",
            String::new(),
            form.clone(),
            empty.as_bytes().to_vec(),
        ),
        (
            "invalid UTF-8 in a form",
            String::new(),
            form.clone(),
            b"grant_type=\xff\xfe&csrf=\xc3\x28&username=\x80".to_vec(),
        ),
        (
            "JSON where a form belongs",
            String::new(),
            json.clone(),
            b"{\"a\":1}".to_vec(),
        ),
        (
            "deeply nested JSON",
            String::new(),
            json.clone(),
            nested.into_bytes(),
        ),
        (
            "3 MB of JSON",
            String::new(),
            json.clone(),
            huge_json.into_bytes(),
        ),
        (
            "a multipart body",
            String::new(),
            vec![("content-type", b"multipart/form-data; boundary=x".to_vec())],
            b"--x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nb\r\n--x--\r\n".to_vec(),
        ),
        (
            "a content type that is not one",
            String::new(),
            vec![("content-type", b"\xff;;;=".to_vec())],
            b"a=b".to_vec(),
        ),
        (
            "broken credentials",
            String::new(),
            vec![
                ("authorization", b"Basic %%%\xff".to_vec()),
                ("cookie", b"__Host-bff=\xff%%; idp_session=; a".to_vec()),
            ],
            vec![],
        ),
        (
            "a bearer header of 16 KB",
            String::new(),
            vec![(
                "authorization",
                format!("Bearer {}", "a".repeat(16_000)).into_bytes(),
            )],
            vec![],
        ),
    ]
}

#[tokio::test]
async fn every_route_refuses_malformed_input_in_its_own_form_and_never_with_a_5xx() {
    let stack = Stack::start().await;
    // Signed in, so that the malformed input also reaches signed-in code.
    let browser = http_client();
    stack
        .bff
        .sign_in(&browser, &testkit::ALICE, &mut Received::default())
        .await;
    let strangers = http_client();
    let mut problems = Vec::new();
    // Sign-out last: with `X-CSRF: 1` it is a real sign-out.
    let mut table = routes(&stack);
    table.sort_by_key(|route| route.path == "/bff/logout");
    for route in table {
        if route.path == "/bff/logout" {
            assert_eq!(
                stack.bff.user(&browser).await.status(),
                200,
                "no malformed request ended the session"
            );
        }
        for (what, query, headers, body) in malformations() {
            // A cookie of its own would replace the signed-in browser's
            // (a new session's `Set-Cookie`): strangers send it.
            let sets_cookie = headers.iter().any(|(name, _)| *name == "cookie");
            let clients = if sets_cookie {
                vec![&strangers]
            } else {
                vec![&browser, &strangers]
            };
            for client in clients {
                let answer = send(client, &route, &query, &headers, body.clone()).await;
                problems.extend(answer.check(&route, what));
            }
        }
        // Methods the route does not take.
        for method in ["PUT", "PATCH", "OPTIONS"] {
            let other = Route {
                method,
                ..route.clone()
            };
            let answer = send(&browser, &other, "", &[], vec![]).await;
            problems.extend(answer.check(&other, "an unknown method"));
        }
    }
    assert_none(problems);
}

#[tokio::test]
async fn long_paths_and_invalid_utf8_paths_are_refused_in_each_servers_form() {
    let stack = Stack::start().await;
    let browser = http_client();
    let mut problems = Vec::new();
    let servers = [
        (stack.idp.base_url.clone(), Form::Page),
        (stack.api.base_url.clone(), Form::Bearer),
        (stack.bff.base_url.clone(), Form::Page),
    ];
    for (base, form) in servers {
        for path in [
            format!("/{}", "a".repeat(60_000)),
            "/%FF%FE/%C3%28".to_owned(),
            "/api/notes/%FF".to_owned(),
            "/api/notes/99999999999999999999999".to_owned(),
            "/bff/api/%2e%2e/%2e%2e/healthz".to_owned(),
            "/flow/lab/%00".to_owned(),
            format!("/{}", "x/".repeat(10_000)),
        ] {
            let route = Route {
                base: base.clone(),
                method: "GET",
                path,
                form,
            };
            let answer = send(&browser, &route, "", &[("x-csrf", b"1".to_vec())], vec![]).await;
            problems.extend(answer.check(&route, "an odd path"));
        }
    }
    assert_none(problems);
}

/// Sends raw bytes to a server and returns the status of its answer, or 0
/// when it closed the connection without one.
async fn raw(base: &str, request: &[u8]) -> u16 {
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    // The server may answer (and close) before it has read everything.
    let _ = stream.write_all(request).await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "{base}: no answer in time");
    let text = String::from_utf8_lossy(&answer);
    text.split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn raw_requests_no_client_would_send_are_refused_at_the_http_layer() {
    let stack = Stack::start().await;
    for base in [
        &stack.idp.base_url,
        &stack.api.base_url,
        &stack.bff.base_url,
    ] {
        let huge_header = format!(
            "GET / HTTP/1.1\r\nhost: x\r\ncookie: {}\r\nconnection: close\r\n\r\n",
            "a".repeat(1_000_000)
        );
        let many_headers = format!(
            "GET / HTTP/1.1\r\nhost: x\r\n{}connection: close\r\n\r\n",
            "x-a: b\r\n".repeat(500)
        );
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("a 1 MB header", huge_header.into_bytes()),
            ("500 headers", many_headers.into_bytes()),
            (
                "invalid UTF-8 in the path",
                b"GET /\xff\xfe HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".to_vec(),
            ),
            (
                "a chunked body that never ends",
                b"POST /api/notes HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\nzz\r\n"
                    .to_vec(),
            ),
            ("garbage", b"\x00\x01\x02 / HTTP/9\r\n\r\n".to_vec()),
        ];
        for (what, request) in cases {
            let status = raw(base, &request).await;
            assert!(
                status == 0 || (400..500).contains(&status),
                "{base} with {what}: {status}"
            );
        }
        // And it still answers.
        assert_eq!(
            raw(
                base,
                b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
            )
            .await,
            200
        );
    }
}

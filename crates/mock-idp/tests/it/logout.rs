//! Ending the IdP session: OIDC RP-Initiated Logout 1.0 (the browser comes
//! to `/v1/logout` with an `id_token_hint`), and OIDC Back-Channel Logout
//! 1.0 (the IdP then POSTs a signed logout token to each client the session
//! signed in to).

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{Form, Router, extract::State, http::StatusCode, routing::post};
use reqwest::cookie::{CookieStore, Jar};
use testkit::{
    ALICE, ALL_SCOPES, CLIENT_ID, claims_of,
    idp::{
        AuthRequest, Idp, Tokens, authorize, browse_to_callback, exchange_code, verify_with_jwks,
    },
    location, query_of, set_cookie,
};

use crate::common::assert_error_page;

const POST_LOGOUT_URI: &str = "http://localhost:3000/";
const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// A browser whose cookies the test can read.
struct Browser {
    client: reqwest::Client,
    jar: Arc<Jar>,
}

impl Browser {
    fn new() -> Browser {
        let jar = Arc::new(Jar::default());
        let client = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Browser { client, jar }
    }

    /// The browser's IdP session cookie, as a `Cookie` header value.
    fn session_cookie(&self, idp: &Idp) -> Option<String> {
        let cookies = self.jar.cookies(&idp.base_url.parse().unwrap())?;
        cookies
            .to_str()
            .unwrap()
            .split("; ")
            .find(|c| c.starts_with("mockidp_session="))
            .map(str::to_owned)
    }
}

/// Alice signs in to bff-demo in `browser`; returns the tokens.
async fn signed_in(idp: &Idp, browser: &Browser) -> Tokens {
    let params = AuthRequest::demo(ALL_SCOPES);
    let callback = browse_to_callback(&browser.client, idp, &params.url(idp), &ALICE).await;
    let code = query_of(&callback)["code"].clone();
    let response = exchange_code(idp, &code, &params.verifier).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// Whether this `Cookie` header still names a live IdP session: an
/// authorization request with it goes straight back with a code.
async fn session_alive(idp: &Idp, cookie: &str) -> bool {
    let response = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(AuthRequest::demo(ALL_SCOPES).url(idp))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    let next = location(&response);
    assert!(
        next.contains("/signin?") || next.contains("code="),
        "{next}"
    );
    next.contains("code=")
}

fn logout_url(idp: &Idp, params: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(&idp.url("/v1/logout")).unwrap();
    url.query_pairs_mut().extend_pairs(params);
    url.to_string()
}

// ---- RP-initiated logout --------------------------------------------------------

#[tokio::test]
async fn rp_logout_to_a_registered_uri_redirects_with_state_and_ends_the_session_oidc_rp_logout_2_3()
 {
    let idp = Idp::start().await;
    let browser = Browser::new();
    let tokens = signed_in(&idp, &browser).await;
    let cookie = browser.session_cookie(&idp).expect("a session cookie");
    assert!(session_alive(&idp, &cookie).await);

    let state = "odd state/+?&=é";
    let response = browser
        .client
        .get(logout_url(
            &idp,
            &[
                ("id_token_hint", tokens.id_token.as_deref().unwrap()),
                ("post_logout_redirect_uri", POST_LOGOUT_URI),
                ("state", state),
            ],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let target = location(&response);
    assert!(
        target.starts_with(&format!("{POST_LOGOUT_URI}?")),
        "{target}"
    );
    assert_eq!(query_of(&target)["state"], state, "state echoed");

    // The session is gone at the IdP, not just the cookie in this browser.
    assert!(
        !session_alive(&idp, &cookie).await,
        "the old session cookie still works"
    );
    let next = authorize(&browser.client, &AuthRequest::demo(ALL_SCOPES).url(&idp)).await;
    assert!(
        location(&next).contains("/signin?"),
        "the browser is still signed in"
    );
}

#[tokio::test]
async fn rp_logout_to_an_unregistered_uri_does_not_redirect_but_ends_the_session_oidc_rp_logout_3()
{
    let idp = Idp::start().await;
    for foreign in [
        "https://attacker.example/",
        "http://localhost:3000",
        "http://localhost:3000/?next=https://attacker.example",
        "http://localhost:3000/bff/callback",
    ] {
        let browser = Browser::new();
        let tokens = signed_in(&idp, &browser).await;
        let cookie = browser.session_cookie(&idp).unwrap();
        let response = browser
            .client
            .get(logout_url(
                &idp,
                &[
                    ("id_token_hint", tokens.id_token.as_deref().unwrap()),
                    ("post_logout_redirect_uri", foreign),
                    ("state", "s"),
                ],
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{foreign}");
        assert!(
            response.headers().get("location").is_none(),
            "redirected to {foreign}"
        );
        assert!(!response.text().await.unwrap().contains("attacker.example"));
        assert!(
            !session_alive(&idp, &cookie).await,
            "session survived the logout ({foreign})"
        );
    }
}

#[tokio::test]
async fn rp_logout_without_or_with_a_forged_id_token_hint_is_refused_and_keeps_the_session_oidc_rp_logout_2()
 {
    let idp = Idp::start().await;
    let browser = Browser::new();
    let tokens = signed_in(&idp, &browser).await;
    let cookie = browser.session_cookie(&idp).unwrap();
    let id_token = tokens.id_token.clone().unwrap();

    // The ID token with its claims changed but the old signature.
    let mut parts: Vec<String> = id_token.split('.').map(str::to_owned).collect();
    let mut claims = claims_of(&id_token);
    claims["sub"] = serde_json::json!("someone-else");
    parts[1] = base64_url(&serde_json::to_vec(&claims).unwrap());
    let tampered = parts.join(".");
    // Signed with a key the IdP never published (HMAC with a guessable secret).
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = jsonwebtoken::decode_header(&id_token).unwrap().kid;
    let foreign = jsonwebtoken::encode(
        &header,
        &claims_of(&id_token),
        &jsonwebtoken::EncodingKey::from_secret(b"guess"),
    )
    .unwrap();
    // Unsigned.
    let unsigned = format!(
        "{}.{}.",
        base64_url(br#"{"alg":"none","typ":"JWT"}"#),
        parts[1]
    );

    let hints: [Option<&str>; 5] = [
        None,
        Some(&tampered),
        Some(&foreign),
        Some(&unsigned),
        Some(&tokens.access_token), // an access token is not an ID token
    ];
    for hint in hints {
        let mut params = vec![
            ("post_logout_redirect_uri", POST_LOGOUT_URI),
            ("state", "s"),
        ];
        if let Some(hint) = hint {
            params.push(("id_token_hint", hint));
        }
        let response = browser
            .client
            .get(logout_url(&idp, &params))
            .send()
            .await
            .unwrap();
        assert!(
            set_cookie(&response, "mockidp_session").is_none(),
            "the cookie was touched"
        );
        assert_error_page(response, 400).await;
        assert!(
            session_alive(&idp, &cookie).await,
            "a refused logout ended the session"
        );
    }
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

// ---- back-channel logout ---------------------------------------------------------

/// A client's back-channel logout endpoint, in the test: records every
/// `logout_token` it is sent and answers with `status` after `delay`.
#[derive(Clone)]
struct Receiver {
    tokens: Arc<Mutex<Vec<String>>>,
    status: StatusCode,
    delay: Duration,
}

#[derive(serde::Deserialize)]
struct LogoutForm {
    logout_token: String,
}

async fn receive(State(receiver): State<Receiver>, Form(form): Form<LogoutForm>) -> StatusCode {
    receiver.tokens.lock().unwrap().push(form.logout_token);
    tokio::time::sleep(receiver.delay).await;
    receiver.status
}

impl Receiver {
    /// Starts listening on 127.0.0.1:0; returns the receiver and its URL.
    async fn start(status: StatusCode, delay: Duration) -> (Receiver, String) {
        let receiver = Receiver {
            tokens: Arc::default(),
            status,
            delay,
        };
        let app = Router::new()
            .route("/backchannel", post(receive))
            .with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/backchannel", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (receiver, url)
    }

    fn received(&self) -> Vec<String> {
        self.tokens.lock().unwrap().clone()
    }

    /// Waits (up to 5 s) until at least `n` tokens arrived.
    async fn wait_for(&self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.received().len() < n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.received()
    }
}

/// The IdP with bff-demo's back-channel logout URI pointing at `url`.
async fn idp_calling(url: &str) -> Idp {
    let mut settings = mock_idp::Settings::demo();
    assert_eq!(settings.clients[0].client_id, CLIENT_ID);
    settings.clients[0].backchannel_logout_uri = Some(url.to_owned());
    Idp::start_with(settings).await
}

#[tokio::test]
async fn backchannel_logout_token_is_delivered_once_with_every_required_claim_oidc_backchannel_2_4()
{
    let (receiver, url) = Receiver::start(StatusCode::OK, Duration::ZERO).await;
    let idp = idp_calling(&url).await;
    let browser = Browser::new();
    let tokens = signed_in(&idp, &browser).await;
    let id = claims_of(tokens.id_token.as_deref().unwrap());
    assert!(receiver.received().is_empty(), "nothing before the logout");

    let response = browser
        .client
        .get(logout_url(
            &idp,
            &[("id_token_hint", tokens.id_token.as_deref().unwrap())],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let received = receiver.wait_for(1).await;
    assert_eq!(received.len(), 1, "a logout token arrives");
    tokio::time::sleep(Duration::from_millis(800)).await; // past the first retry's time
    assert_eq!(receiver.received().len(), 1, "exactly one, once accepted");

    // 2.4: a signed JWT, explicitly typed, from this issuer, for this client.
    let (header, claims) = verify_with_jwks(&idp, &received[0], CLIENT_ID).await;
    assert_eq!(header.typ.as_deref(), Some("logout+jwt"));
    assert_eq!(claims["iss"], idp.issuer);
    assert_eq!(claims["aud"], CLIENT_ID);
    assert!(claims["iat"].as_i64().is_some(), "iat");
    assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()), "jti");
    assert_eq!(claims["sid"], id["sid"], "the session the ID token named");
    assert_eq!(claims["sub"], id["sub"]);
    assert!(
        claims["events"]
            .as_object()
            .is_some_and(|e| e.contains_key(BACKCHANNEL_EVENT)),
        "events: {}",
        claims["events"]
    );
    assert!(
        claims.get("nonce").is_none(),
        "a logout token never has a nonce"
    );
}

#[tokio::test]
async fn backchannel_delivery_is_retried_and_never_delays_the_person_oidc_backchannel_2_8() {
    // The client's endpoint is slow and failing.
    let (receiver, url) = Receiver::start(
        StatusCode::INTERNAL_SERVER_ERROR,
        Duration::from_millis(1500),
    )
    .await;
    let idp = idp_calling(&url).await;
    let browser = Browser::new();
    let tokens = signed_in(&idp, &browser).await;

    let started = Instant::now();
    let response = browser
        .client
        .get(logout_url(
            &idp,
            &[
                ("id_token_hint", tokens.id_token.as_deref().unwrap()),
                ("post_logout_redirect_uri", POST_LOGOUT_URI),
            ],
        ))
        .send()
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(response.status(), 303);
    assert!(
        took < Duration::from_millis(1500),
        "the person waited {took:?} for the back channel"
    );

    let received = receiver.wait_for(2).await;
    assert!(
        received.len() >= 2,
        "a failed delivery is retried: {} attempt(s)",
        received.len()
    );
    assert_eq!(
        received[0], received[1],
        "the same logout token is offered again"
    );
}

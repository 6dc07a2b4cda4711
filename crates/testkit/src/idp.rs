//! The authorization server: the real mock IdP in-process, and the flow
//! walked at it as a browser and a client would, over HTTP: authorize,
//! sign in, consent, exchange the code, refresh, introspect, revoke.

use std::collections::HashMap;

use jsonwebtoken::{DecodingKey, Validation, jwk::JwkSet};
use serde_json::Value;

use crate::{
    ALICE, Account, CLIENT_ID, CLIENT_SECRET, ManualClock, NATIVE_ID, NATIVE_REDIRECT_URI,
    REDIRECT_URI, form_inputs, http_client, location, pkce, query_of, random_string,
    server::{Faults, Running, listen},
};

/// The real mock IdP, in-process, with an in-memory store unless told
/// otherwise.
pub struct Idp {
    pub issuer: String,
    pub base_url: String,
    pub state: mock_idp::AppState,
    /// Slows, fails and counts requests on their way to the IdP.
    pub faults: Faults,
    /// The IdP's clock.
    pub time: ManualClock,
    server: Running,
}

impl Idp {
    /// The IdP with the demo configuration (`config/default.toml`).
    pub async fn start() -> Idp {
        Idp::start_with(mock_idp::Settings::demo()).await
    }

    /// The IdP with other settings (lifetimes, clients, users).
    pub async fn start_with(settings: mock_idp::Settings) -> Idp {
        Idp::start_on_store(settings, "sqlite::memory:").await
    }

    /// The IdP on a given database URL (a file, for restart tests).
    pub async fn start_on_store(settings: mock_idp::Settings, database_url: &str) -> Idp {
        Idp::start_full(settings, database_url, "RS256", ManualClock::starting_now()).await
    }

    /// Every choice: settings, store, signing algorithm, and the clock it
    /// shares with the other servers of the test.
    pub async fn start_full(
        settings: mock_idp::Settings,
        database_url: &str,
        signing_alg: &str,
        time: ManualClock,
    ) -> Idp {
        let (listener, addr) = listen().await;
        let base_url = format!("http://{addr}");
        // Shaped as the profile's provider shapes it.
        let issuer = settings.profile.issuer(&base_url);
        let state = mock_idp::AppState::new(
            issuer.clone(),
            settings,
            database_url,
            signing_alg,
            time.clock(),
        )
        .await
        .expect("IdP state");
        let faults = Faults::default();
        let server = Running::serve(
            listener,
            faults.around(mock_idp::app_with_metrics(state.clone(), true)),
        )
        .await;
        Idp {
            issuer,
            base_url,
            state,
            faults,
            time,
            server,
        }
    }

    /// Signs arbitrary claims with the IdP's active key and header `typ`.
    pub fn sign(&self, typ: &str, claims: &Value) -> String {
        self.state.keys.sign(typ, claims).expect("sign")
    }

    /// Signs with a header made of these fields (`alg` and `kid` always come
    /// from the IdP's active key).
    pub fn sign_with_header(&self, header: Value, claims: &Value) -> String {
        let mut header = header;
        header["alg"] = serde_json::json!("RS256");
        let header: jsonwebtoken::Header = serde_json::from_value(header).expect("header fields");
        self.state
            .keys
            .sign_with_header(header, claims)
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

    /// Serves the same state again on the same address, after [`Idp::shutdown`]:
    /// the provider is back.
    pub async fn start_again(&mut self) {
        let addr: std::net::SocketAddr = self
            .base_url
            .trim_start_matches("http://")
            .parse()
            .expect("IdP address");
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .expect("rebind the IdP port");
        self.server = Running::serve(
            listener,
            self.faults
                .around(mock_idp::app_with_metrics(self.state.clone(), true)),
        )
        .await;
    }

    /// A URL below the issuer.
    pub fn url(&self, path: &str) -> String {
        self.state.endpoint(path)
    }

    /// A URL of the IdP's pages, at its root.
    pub fn page(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }
}

/// An authorization request as an ordered list of query parameters, so a
/// test can drop, change or repeat any one of them; it keeps the PKCE
/// verifier that goes with its challenge.
#[derive(Clone)]
pub struct AuthRequest {
    pub params: Vec<(String, String)>,
    pub verifier: String,
}

impl AuthRequest {
    /// A good request of the demo client (PKCE S256, state, nonce).
    pub fn demo(scope: &str) -> AuthRequest {
        AuthRequest::of(CLIENT_ID, REDIRECT_URI, scope)
    }

    /// The same for the public native client.
    pub fn native(scope: &str) -> AuthRequest {
        AuthRequest::of(NATIVE_ID, NATIVE_REDIRECT_URI, scope)
    }

    pub fn of(client_id: &str, redirect_uri: &str, scope: &str) -> AuthRequest {
        let pkce = pkce();
        let params = [
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", redirect_uri),
            ("scope", scope),
            ("state", &random_string()),
            ("nonce", &random_string()),
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        AuthRequest {
            params,
            verifier: pkce.verifier,
        }
    }

    /// Replaces every value of `name` (or adds it).
    pub fn set(self, name: &str, value: &str) -> AuthRequest {
        self.without(name).also(name, value)
    }

    pub fn without(mut self, name: &str) -> AuthRequest {
        self.params.retain(|(n, _)| n != name);
        self
    }

    /// Adds one more `name` (a repeated parameter).
    pub fn also(mut self, name: &str, value: &str) -> AuthRequest {
        self.params.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The (first) value of `name`, or "".
    pub fn get(&self, name: &str) -> &str {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    pub fn url(&self, idp: &Idp) -> String {
        self.url_for(&idp.issuer)
    }

    /// The request at the `/v1/authorize` of the IdP whose issuer is `issuer`
    /// (one started as a separate process).
    pub fn url_for(&self, issuer: &str) -> String {
        let issuer = issuer.trim_end_matches('/');
        let mut url = url::Url::parse(&format!("{issuer}/v1/authorize")).expect("URL");
        url.query_pairs_mut().extend_pairs(&self.params);
        url.to_string()
    }
}

/// Steps 2-3: sends the browser to `/authorize`; returns the redirect it got.
pub async fn authorize(browser: &reqwest::Client, url: &str) -> reqwest::Response {
    browser.get(url).send().await.expect("authorize")
}

/// Steps 3-4: on the sign-in page `signin_url`, submits the account's
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

/// Steps 2-5 in a fresh browser as `account`: the code for this request.
pub async fn code_as(idp: &Idp, request: &AuthRequest, account: &Account) -> String {
    let callback = browse_to_callback(&http_client(), idp, &request.url(idp), account).await;
    query_of(&callback)
        .remove("code")
        .unwrap_or_else(|| panic!("no code in {callback}"))
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

/// A back-channel request (token, revoke, introspect) as `bff-demo` with
/// `client_secret_basic`.
pub async fn post_as_bff(idp: &Idp, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
    reqwest::Client::new()
        .post(idp.url(path))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(form)
        .send()
        .await
        .expect("IdP answers")
}

/// The same as the public client `native-demo` (its `client_id` only).
pub async fn post_as_native(idp: &Idp, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
    let mut form = form.to_vec();
    form.push(("client_id", NATIVE_ID));
    reqwest::Client::new()
        .post(idp.url(path))
        .form(&form)
        .send()
        .await
        .expect("IdP answers")
}

/// Steps 6-8: exchanges a code with its verifier as `bff-demo`.
pub async fn exchange_code(idp: &Idp, code: &str, verifier: &str) -> reqwest::Response {
    post_as_bff(
        idp,
        "/v1/token",
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
    let request = AuthRequest::demo(scope);
    let code = code_as(idp, &request, account).await;
    let response = exchange_code(idp, &code, &request.verifier).await;
    assert_eq!(response.status(), 200, "token exchange");
    response.json().await.expect("token JSON")
}

/// [`login`] as Alice with every scope.
pub async fn alice(idp: &Idp) -> Tokens {
    login(idp, &ALICE, crate::ALL_SCOPES).await
}

/// RFC 6749 6: the refresh grant as `bff-demo`.
pub async fn refresh(idp: &Idp, refresh_token: &str) -> reqwest::Response {
    post_as_bff(
        idp,
        "/v1/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
    .await
}

/// A refresh that must succeed: the new tokens.
pub async fn refreshed(idp: &Idp, refresh_token: &str) -> Tokens {
    let response = refresh(idp, refresh_token).await;
    assert_eq!(response.status(), 200, "refresh");
    response.json().await.expect("token JSON")
}

/// RFC 7662 as `bff-demo`: the introspection answer.
pub async fn introspect(idp: &Idp, token: &str) -> Value {
    let response = post_as_bff(idp, "/v1/introspect", &[("token", token)]).await;
    assert_eq!(response.status(), 200, "introspection");
    response.json().await.expect("introspection JSON")
}

/// Whether introspection says the token is active; an inactive answer must
/// be `{"active": false}` and nothing else (RFC 7662 2.2).
pub async fn is_active(idp: &Idp, token: &str) -> bool {
    let answer = introspect(idp, token).await;
    match answer["active"].as_bool() {
        Some(true) => true,
        Some(false) => {
            assert_eq!(
                answer,
                serde_json::json!({"active": false}),
                "an inactive token says nothing more"
            );
            false
        }
        None => panic!("no active member in {answer}"),
    }
}

/// RFC 7009 as `bff-demo`.
pub async fn revoke(idp: &Idp, token: &str) -> reqwest::Response {
    post_as_bff(idp, "/v1/revoke", &[("token", token)]).await
}

/// The status of `GET /v1/userinfo` with this access token.
pub async fn userinfo_status(idp: &Idp, access_token: &str) -> u16 {
    reqwest::Client::new()
        .get(idp.url("/v1/userinfo"))
        .bearer_auth(access_token)
        .send()
        .await
        .expect("userinfo")
        .status()
        .as_u16()
}

/// The IdP's JWKS, fetched over HTTP.
pub async fn jwks(idp: &Idp) -> JwkSet {
    reqwest::get(idp.url("/v1/keys"))
        .await
        .expect("JWKS")
        .json()
        .await
        .expect("JWKS JSON")
}

/// The `kid`s the JWKS publishes.
pub async fn published_kids(idp: &Idp) -> Vec<String> {
    jwks(idp)
        .await
        .keys
        .iter()
        .filter_map(|k| k.common.key_id.clone())
        .collect()
}

/// The one JWKS verifier of the tests: a JWT checked against the IdP's
/// JWKS over HTTP (signature with the key's algorithm, `iss`, `aud`,
/// `exp`); its header and claims, or `None`.
pub async fn try_verify_with_jwks(
    idp: &Idp,
    token: &str,
    audience: &str,
) -> Option<(jsonwebtoken::Header, Value)> {
    let jwks = jwks(idp).await;
    let header = jsonwebtoken::decode_header(token).ok()?;
    let jwk = jwks.find(header.kid.as_deref()?)?;
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[&idp.issuer]);
    validation.set_audience(&[audience]);
    let data = jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk).ok()?, &validation)
        .ok()?;
    Some((header, data.claims))
}

/// [`try_verify_with_jwks`] that must succeed.
pub async fn verify_with_jwks(
    idp: &Idp,
    token: &str,
    audience: &str,
) -> (jsonwebtoken::Header, Value) {
    try_verify_with_jwks(idp, token, audience)
        .await
        .expect("signature and claims verify against the JWKS")
}

/// Fields of a form page, ready to post back with changes.
pub async fn form_of(browser: &reqwest::Client, url: &str) -> HashMap<String, String> {
    let page = browser.get(url).send().await.expect("page");
    form_inputs(&page.text().await.expect("page text"))
}

/// Step 4 for a new person: posts the registration form at `signup_url`
/// (the sign-in page's `/signup?tx=…` twin) with these fields.
pub async fn register(
    browser: &reqwest::Client,
    signup_url: &str,
    username: &str,
    password: &str,
    name: &str,
) -> reqwest::Response {
    let page = browser
        .get(signup_url)
        .send()
        .await
        .expect("registration page");
    assert_eq!(page.status(), 200, "registration page {signup_url}");
    let action = page.url().join("/signup").expect("URL");
    let mut fields = form_inputs(&page.text().await.expect("page"));
    fields.insert("username".into(), username.into());
    fields.insert("password".into(), password.into());
    fields.insert("name".into(), name.into());
    browser
        .post(action)
        .form(&fields)
        .send()
        .await
        .expect("register")
}

/// A client's own key pair, for `private_key_jwt`: its private key (PEM,
/// in a file as the BFF reads it) and the public JWK Set a provider
/// registers.
pub struct ClientKey {
    pub alg: jsonwebtoken::Algorithm,
    pub pem: String,
    pub file: crate::TempFile,
    pub kid: String,
    pub jwks: Value,
}

impl ClientKey {
    /// A fresh key pair: `RS256` (RSA-2048) or `ES256` (P-256).
    pub fn generate(alg: &str) -> ClientKey {
        let (key, pem) = mock_idp::keys::SigningKey::generate(alg).expect("client key");
        let file = crate::TempFile::new("client-key.pem");
        std::fs::write(&file.0, &pem).expect("write the client key");
        ClientKey {
            alg: key.alg,
            pem,
            file,
            kid: key.kid.clone(),
            jwks: serde_json::json!({ "keys": [key.jwk] }),
        }
    }

    /// A client assertion (RFC 7523) signed with this key, with these
    /// claims and header fields (`alg` and `kid` filled in unless given).
    pub fn sign(&self, header: Value, claims: &Value) -> String {
        let mut header = header;
        if header.get("alg").is_none() {
            header["alg"] = serde_json::to_value(self.alg).expect("alg");
        }
        if header.get("kid").is_none() {
            header["kid"] = serde_json::json!(self.kid);
        }
        let header: jsonwebtoken::Header = serde_json::from_value(header).expect("header");
        let key = match header.alg {
            jsonwebtoken::Algorithm::ES256 => {
                jsonwebtoken::EncodingKey::from_ec_pem(self.pem.as_bytes())
            }
            _ => jsonwebtoken::EncodingKey::from_rsa_pem(self.pem.as_bytes()),
        }
        .expect("encoding key");
        jsonwebtoken::encode(&header, claims, &key).expect("sign")
    }
}

/// The demo client `bff-demo` switched to `private_key_jwt` with `key`.
pub fn with_private_key_jwt(settings: &mut mock_idp::Settings, key: &ClientKey) {
    let client = settings
        .clients
        .iter_mut()
        .find(|c| c.client_id == CLIENT_ID)
        .expect("demo client");
    client.token_endpoint_auth_method = mock_idp::clients::AuthMethod::PrivateKeyJwt;
    client.client_secret = None;
    client.jwks = Some(serde_json::from_value(key.jwks.clone()).expect("JWK Set"));
}

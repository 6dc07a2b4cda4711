//! Helpers for the API's tests, read like the flow: mint a token at the real
//! mock IdP, forge one as an attacker would, call the API, check the answer.
#![allow(dead_code)] // each test binary uses its own subset

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clap::Parser;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey;
use serde_json::{Value, json};
use testkit::Idp;

pub const AUDIENCE: &str = "api://default";
pub const ALL_SCOPES: &str = "openid profile email offline_access notes:read notes:write";

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// The claims of a good RFC 9068 access token from `idp`: what an attack
/// test changes one thing in.
pub fn access_claims(idp: &Idp) -> Value {
    let now = now();
    json!({
        "iss": idp.issuer,
        "sub": "attacker-test-subject",
        "aud": AUDIENCE,
        "exp": now + 300,
        "iat": now,
        "jti": format!("jti-{now}-{}", rand::random::<u64>()),
        "client_id": "bff-demo",
        "scope": "notes:read notes:write",
    })
}

/// `GET {api}/api/me` with `Authorization: Bearer {token}`.
pub async fn get_me(api_base: &str, token: &str) -> reqwest::Response {
    testkit::http_client()
        .get(format!("{api_base}/api/me"))
        .bearer_auth(token)
        .send()
        .await
        .expect("the API answers")
}

/// RFC 6750 3.1: 401, `invalid_token`, and nothing that says which check failed.
pub async fn assert_invalid_token(response: reqwest::Response) {
    assert_eq!(response.status(), 401, "status");
    let challenge = response
        .headers()
        .get("www-authenticate")
        .expect("a WWW-Authenticate challenge")
        .to_str()
        .expect("ASCII")
        .to_owned();
    assert_eq!(
        challenge, r#"Bearer realm="api", error="invalid_token""#,
        "challenge, with no detail"
    );
    let body: Value = response.json().await.expect("a JSON body");
    assert_eq!(
        body,
        json!({"error": "invalid_token"}),
        "body, with no detail"
    );
}

/// The header of a compact JWS, decoded.
pub fn header_of(token: &str) -> Value {
    let header = token.split('.').next().expect("a header part");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).expect("base64url")).expect("JSON")
}

/// The IdP's current `kid`, from the header of a token it signed.
pub async fn idp_kid(idp: &Idp) -> String {
    let token = idp.sign("at+jwt", access_claims(idp)).await;
    header_of(&token)["kid"].as_str().expect("a kid").to_owned()
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A compact JWS assembled by hand from any header and claims, with any
/// signature bytes: for tokens no JOSE library would produce.
pub fn hand_made(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes()),
        b64(signature)
    )
}

/// An attacker's own RSA key pair.
pub struct AttackerKey {
    pub private: rsa::RsaPrivateKey,
}

impl AttackerKey {
    pub fn generate() -> Self {
        Self {
            private: rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("RSA key"),
        }
    }

    /// Signs `claims` RS256 with the attacker's key under `header` (its alg is set to RS256).
    pub fn sign(&self, mut header: Header, claims: &Value) -> String {
        header.alg = Algorithm::RS256;
        let der = self.private.to_pkcs1_der().expect("PKCS#1");
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_rsa_der(der.as_bytes()))
            .expect("signed")
    }

    /// The public half as a JWK, as an attacker would embed or host it.
    pub fn public_jwk(&self, kid: &str) -> Value {
        use rsa::traits::PublicKeyParts;
        json!({
            "kty": "RSA",
            "kid": kid,
            "alg": "RS256",
            "use": "sig",
            "n": b64(&self.private.n().to_bytes_be()),
            "e": b64(&self.private.e().to_bytes_be()),
        })
    }
}

/// A header as the IdP writes it for access tokens, with the attacker's `kid`.
pub fn at_jwt_header(kid: &str) -> Header {
    let mut header = Header::new(Algorithm::RS256);
    header.typ = Some("at+jwt".into());
    header.kid = Some(kid.into());
    header
}

/// The API in-process on port 0, with its state in hand so that a test can
/// read the JWKS fetch counter (`AppState::jwks_fetch_count`).
pub struct ApiWithState {
    pub base_url: String,
    pub state: api::AppState,
    server: tokio::task::JoinHandle<()>,
}

impl ApiWithState {
    pub async fn start(idp: &Idp, extra_args: &[&str]) -> Self {
        let mut args = vec![
            "api",
            "--issuer",
            &idp.issuer,
            "--database-url",
            "sqlite::memory:",
            "--port",
            "0",
        ];
        args.extend_from_slice(extra_args);
        let config = api::Config::parse_from(args);
        let state = api::AppState::new(&config).await.expect("the API builds");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port");
        let base_url = format!("http://{}", listener.local_addr().expect("an address"));
        let app = api::router(state.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            base_url,
            state,
            server,
        }
    }
}

impl Drop for ApiWithState {
    fn drop(&mut self) {
        self.server.abort();
    }
}

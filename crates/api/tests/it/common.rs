//! Helpers for the API's tests, read like the flow: mint a token at the real
//! mock IdP, forge one as an attacker would, call the API, check the answer.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey;
use serde_json::{Value, json};
use testkit::{api::access_claims, header_of, idp::Idp};

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

/// The IdP's current `kid`, from the header of a token it signed.
pub fn idp_kid(idp: &Idp) -> String {
    let token = idp.sign("at+jwt", &access_claims(idp));
    header_of(&token)["kid"].as_str().expect("a kid").to_owned()
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn unb64(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(text).expect("base64url")
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

//! How the BFF proves it is the client at the provider's token and
//! revocation endpoints (`--client-auth-method`).
//!
//! - `client_secret_basic` (the default; RFC 6749 2.3.1) and
//!   `client_secret_post`: the shared secret, in the `Authorization` header
//!   or in the form.
//! - `private_key_jwt` (RFC 7523 2.2, OIDC Core 9): a short-lived JWT signed
//!   with the BFF's own private key (`--client-key-file`), whose public half
//!   is registered at the provider. No secret crosses the wire, nothing at
//!   the provider can be replayed as the client: Okta and Entra ID recommend
//!   it for confidential clients.

use jsonwebtoken::{Algorithm, EncodingKey, Header, jwk::Jwk};
use serde::Serialize;

use crate::config::{Config, Secret};

/// RFC 7523 2.2: the `client_assertion_type` of a JWT client assertion.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How long an assertion lives: it is made for one request.
const ASSERTION_LIFETIME: i64 = 60;

#[derive(Clone)]
pub enum ClientAuth {
    SecretBasic(Secret),
    SecretPost(Secret),
    PrivateKeyJwt(Box<SigningKey>),
}

/// The BFF's private key, with what goes in the assertion's header.
#[derive(Clone)]
pub struct SigningKey {
    key: EncodingKey,
    alg: Algorithm,
    /// The key's id at the provider: `--client-key-id`, or its RFC 7638
    /// thumbprint.
    kid: String,
    /// `x5t#S256` of the certificate registered for the key (Entra ID
    /// identifies an uploaded certificate by it).
    x5t_s256: Option<String>,
    /// The public key, as a JWK to register at the provider.
    pub public_jwk: Jwk,
}

/// OIDC Core 9: the claims of a client assertion.
#[derive(Serialize)]
struct AssertionClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
    jti: String,
}

impl ClientAuth {
    pub fn from_config(config: &Config) -> anyhow::Result<ClientAuth> {
        Ok(match config.client_auth_method.as_str() {
            "client_secret_post" => ClientAuth::SecretPost(config.client_secret.clone()),
            "private_key_jwt" => {
                ClientAuth::PrivateKeyJwt(Box::new(SigningKey::from_config(config)?))
            }
            _ => ClientAuth::SecretBasic(config.client_secret.clone()),
        })
    }

    /// The secret the oauth2 client holds: none for `private_key_jwt`.
    pub fn secret(&self) -> Option<&Secret> {
        match self {
            ClientAuth::SecretBasic(secret) | ClientAuth::SecretPost(secret) => Some(secret),
            ClientAuth::PrivateKeyJwt(_) => None,
        }
    }

    /// Form parameters of a request to the provider that the oauth2 client
    /// does not add itself: the assertion, for `audience` (the token
    /// endpoint, or the issuer: `--client-assertion-audience`).
    pub fn extra_params(
        &self,
        client_id: &str,
        audience: &str,
        now: i64,
    ) -> anyhow::Result<Vec<(&'static str, String)>> {
        match self {
            ClientAuth::PrivateKeyJwt(key) => Ok(vec![
                ("client_assertion_type", JWT_BEARER.to_owned()),
                ("client_assertion", key.assertion(client_id, audience, now)?),
            ]),
            _ => Ok(Vec::new()),
        }
    }

    /// The credentials on a request made by hand (revocation, RFC 7009 2.1:
    /// authenticated as at the token endpoint); `form` gets what goes in
    /// the body.
    pub fn authenticate(
        &self,
        request: reqwest::RequestBuilder,
        form: &mut Vec<(&'static str, String)>,
        client_id: &str,
        audience: &str,
        now: i64,
    ) -> anyhow::Result<reqwest::RequestBuilder> {
        Ok(match self {
            ClientAuth::SecretBasic(secret) => {
                // RFC 6749 2.3.1: each part form-urlencoded first.
                request.basic_auth(form_encode(client_id), Some(form_encode(secret.expose())))
            }
            ClientAuth::SecretPost(secret) => {
                form.push(("client_id", client_id.to_owned()));
                form.push(("client_secret", secret.expose().to_owned()));
                request
            }
            ClientAuth::PrivateKeyJwt(_) => {
                form.push(("client_id", client_id.to_owned()));
                form.extend(self.extra_params(client_id, audience, now)?);
                request
            }
        })
    }
}

fn form_encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

impl SigningKey {
    fn from_config(config: &Config) -> anyhow::Result<SigningKey> {
        let path = config.client_key_file.as_ref().ok_or_else(|| {
            anyhow::anyhow!("--client-auth-method private_key_jwt needs --client-key-file")
        })?;
        let pem = std::fs::read(path).map_err(|e| {
            anyhow::anyhow!("--client-key-file {}: cannot read: {e}", path.display())
        })?;
        let certificate = match &config.client_certificate_file {
            Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
                anyhow::anyhow!(
                    "--client-certificate-file {}: cannot read: {e}",
                    path.display()
                )
            })?),
            None => None,
        };
        let alg = match config.client_key_alg.as_deref() {
            Some("PS256") => Some(Algorithm::PS256),
            Some("RS256") => Some(Algorithm::RS256),
            Some("ES256") => Some(Algorithm::ES256),
            _ => None,
        };
        SigningKey::from_pem(
            &pem,
            alg,
            config.client_key_id.clone(),
            certificate.as_deref(),
        )
        .map_err(|e| anyhow::anyhow!("--client-key-file {}: {e}", path.display()))
    }

    /// A PKCS#8 PEM private key: RSA (signs RS256, or PS256) or EC P-256
    /// (ES256).
    pub fn from_pem(
        pem: &[u8],
        alg: Option<Algorithm>,
        kid: Option<String>,
        certificate_pem: Option<&str>,
    ) -> anyhow::Result<SigningKey> {
        let (key, alg) = match EncodingKey::from_rsa_pem(pem) {
            Ok(key) => match alg {
                None | Some(Algorithm::RS256) => (key, Algorithm::RS256),
                Some(Algorithm::PS256) => (key, Algorithm::PS256),
                Some(other) => anyhow::bail!("an RSA key does not sign {other:?}"),
            },
            Err(_) => {
                let key = EncodingKey::from_ec_pem(pem)
                    .map_err(|_| anyhow::anyhow!("not a PEM RSA or EC P-256 private key"))?;
                if alg.is_some_and(|a| a != Algorithm::ES256) {
                    anyhow::bail!("a P-256 key signs ES256 only");
                }
                (key, Algorithm::ES256)
            }
        };
        let mut public_jwk = Jwk::from_encoding_key(&key, alg)?;
        // The key may sign only with this algorithm.
        public_jwk.common.public_key_use = Some(jsonwebtoken::jwk::PublicKeyUse::Signature);
        let kid = match kid {
            Some(kid) => kid,
            None => public_jwk.thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)?,
        };
        public_jwk.common.key_id = Some(kid.clone());
        let x5t_s256 = certificate_pem.map(certificate_thumbprint).transpose()?;
        Ok(SigningKey {
            key,
            alg,
            kid,
            x5t_s256,
            public_jwk,
        })
    }

    /// A client assertion for one request (RFC 7523 3: its audience names
    /// the authorization server).
    fn assertion(&self, client_id: &str, audience: &str, now: i64) -> anyhow::Result<String> {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        header.x5t_s256 = self.x5t_s256.clone();
        let claims = AssertionClaims {
            iss: client_id,
            sub: client_id,
            aud: audience,
            iat: now,
            exp: now + ASSERTION_LIFETIME,
            jti: crate::random_token(),
        };
        Ok(jsonwebtoken::encode(&header, &claims, &self.key)?)
    }
}

/// RFC 7515 4.1.8: base64url of the SHA-256 of the certificate's DER.
fn certificate_thumbprint(pem: &str) -> anyhow::Result<String> {
    use base64::{
        Engine,
        engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
    };
    use sha2::{Digest, Sha256};
    let body: String = pem
        .lines()
        .skip_while(|line| !line.starts_with("-----BEGIN CERTIFICATE-----"))
        .skip(1)
        .take_while(|line| !line.starts_with("-----END"))
        .collect();
    let der = STANDARD
        .decode(body.trim())
        .map_err(|_| anyhow::anyhow!("--client-certificate-file: not a PEM certificate"))?;
    if der.is_empty() {
        anyhow::bail!("--client-certificate-file: not a PEM certificate");
    }
    Ok(URL_SAFE_NO_PAD.encode(Sha256::digest(&der)))
}

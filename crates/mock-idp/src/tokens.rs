//! Step 8: the tokens the IdP issues, and what is in them.
//!
//! - Access token: a JWT per RFC 9068 (header `typ: at+jwt`; `iss`, `sub`,
//!   `aud`, `exp`, `iat`, `jti`, `client_id`, `scope`), for the API.
//! - ID token: OIDC Core 2 and 3.1.3.6 (`iss`, `sub`, `aud`, `exp`, `iat`,
//!   `auth_time`, `nonce`, `at_hash`, `sid`, profile and email claims by
//!   scope), for the client.
//! - Refresh token: an opaque random string, stored as a digest, in a family
//!   that rotation keeps and reuse revokes (RFC 9700 4.14.2).

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::{
    AppState,
    clients::Client,
    profile::{AccessToken, ENTRA_TENANT, Profile},
    secret,
    store::{IssuedAccessToken, NewAccessToken, NewRefreshToken, StoreError, User},
};

/// RFC 9068 2.2 claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    pub jti: String,
    pub client_id: String,
    pub scope: String,
    pub auth_time: i64,
}

impl AccessClaims {
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split(' ').filter(|s| !s.is_empty())
    }
}

/// OIDC Core 2 claims of an ID token (with the profile claims of 5.1).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    pub auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    pub at_hash: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    #[serde(flatten)]
    pub profile: serde_json::Map<String, serde_json::Value>,
}

/// The successful token response (RFC 6749 5.1).
/// No `Debug`: it holds the tokens themselves.
#[derive(Clone, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

/// Who the tokens are for and what they allow.
pub struct Subject<'a> {
    pub user: &'a User,
    pub client: &'a Client,
    /// The scopes of this access token.
    pub scopes: &'a [String],
    /// Everything the grant holds; the refresh token keeps it even when an
    /// access token is narrowed (RFC 6749 6).
    pub granted: &'a [String],
    pub auth_time: i64,
    pub sid: Option<&'a str>,
    pub nonce: Option<&'a str>,
    /// The refresh token that goes with the new access token.
    pub refresh: Refresh,
}

/// The refresh token of a token response.
pub enum Refresh {
    /// A new one, in the family.
    New,
    /// The one the client used, handed back (no rotation).
    Same(String),
    /// None: not asked for, or the client keeps the one it has.
    None,
}

/// The refresh token family the new tokens belong to.
pub struct Family<'a> {
    pub id: &'a str,
    /// When the family ends whatever happens (absolute lifetime).
    pub expires_at: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum MintError {
    #[error(transparent)]
    Sign(#[from] crate::keys::KeyError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The claims the scopes release about a user (OIDC Core 5.4), shared by
/// the ID token and userinfo.
pub fn user_claims<'s>(
    user: &User,
    scopes: impl IntoIterator<Item = &'s str>,
    profile: Profile,
) -> serde_json::Map<String, serde_json::Value> {
    let mut claims = serde_json::Map::new();
    for scope in scopes {
        match scope {
            "profile" => {
                claims.insert("name".into(), user.name.clone().into());
                if let Some(g) = &user.given_name {
                    claims.insert("given_name".into(), g.clone().into());
                }
                if let Some(f) = &user.family_name {
                    claims.insert("family_name".into(), f.clone().into());
                }
                claims.insert("preferred_username".into(), user.username.clone().into());
                claims.insert("updated_at".into(), updated_at(user.updated_at, profile));
            }
            "email" => {
                claims.insert("email".into(), user.username.clone().into());
                claims.insert("email_verified".into(), user.email_verified.into());
            }
            _ => {}
        }
    }
    claims
}

/// OIDC Core 5.1: seconds since the epoch; as an ISO 8601 string where the
/// profile's provider sends one (Auth0).
fn updated_at(unix: i64, profile: Profile) -> serde_json::Value {
    if profile.updated_at_as_string() {
        let at = chrono::DateTime::from_timestamp(unix, 0).unwrap_or_default();
        at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            .into()
    } else {
        unix.into()
    }
}

/// OIDC Core 3.1.3.6: the left half of SHA-256 of the access token, base64url
/// (RS256 and ES256 both hash with SHA-256).
pub fn at_hash(access_token: &str) -> String {
    let digest = Sha256::digest(access_token.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..16])
}

/// Signs the access token, the ID token (with `openid`) and the refresh
/// token the subject says, and records them.
pub async fn mint(
    state: &AppState,
    subject: &Subject<'_>,
    access_jti: &str,
    family: &Family<'_>,
) -> Result<TokenResponse, MintError> {
    let now = state.clock.now();
    let profile = state.settings.profile;
    // When the tokens say they were issued (Entra ID: five minutes early).
    let issued_at = now - profile.backdated_by();
    let nbf = (profile.backdated_by() > 0).then_some(issued_at);
    let lifetimes = &state.settings.tokens;
    let access_lifetime = subject
        .client
        .access_token_seconds
        .unwrap_or(lifetimes.access_token_seconds) as i64;
    let scope = subject.scopes.join(" ");
    let access_token = access_token(
        state,
        subject,
        &AccessTimes {
            jti: access_jti,
            issued_at,
            nbf,
            expires_at: now + access_lifetime,
        },
    )?;
    state
        .store
        .insert_access_token(&NewAccessToken {
            jti: access_jti,
            token_hash: &secret::digest(&access_token),
            family_id: Some(family.id),
            client_id: &subject.client.id,
            sub: &subject.user.sub,
            scope: &scope,
            issued_at,
            expires_at: now + access_lifetime,
        })
        .await?;

    let has = |s: &str| subject.scopes.iter().any(|x| x == s);
    let id_token = if has("openid") {
        let claims = IdClaims {
            iss: state.issuer.clone(),
            sub: subject.user.sub.clone(),
            aud: subject.client.id.clone(),
            exp: now + lifetimes.id_token_seconds as i64,
            iat: issued_at,
            nbf,
            auth_time: subject.auth_time,
            nonce: subject.nonce.map(str::to_owned),
            at_hash: at_hash(&access_token),
            sid: subject.sid.map(str::to_owned),
            profile: user_claims(
                subject.user,
                subject.scopes.iter().map(String::as_str),
                profile,
            ),
        };
        Some(state.keys.sign("JWT", &claims)?)
    } else {
        None
    };

    let refresh_token = match &subject.refresh {
        Refresh::New => Some(new_refresh_token(state, subject, family).await?),
        Refresh::Same(token) => Some(token.clone()),
        Refresh::None => None,
    };

    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: access_lifetime,
        scope,
        id_token,
        refresh_token,
    })
}

/// A new refresh token in the subject's family, stored by its digest.
async fn new_refresh_token(
    state: &AppState,
    subject: &Subject<'_>,
    family: &Family<'_>,
) -> Result<String, MintError> {
    let now = state.clock.now();
    let lifetimes = &state.settings.tokens;
    let idle = now + lifetimes.refresh_token_idle_seconds as i64;
    let expires_at = idle.min(family.expires_at);
    let token = if state.settings.profile.jwt_refresh_tokens() {
        keycloak_refresh_token(state, subject, expires_at)?
    } else {
        secret::random_token()
    };
    {
        state
            .store
            .insert_refresh_token(
                &NewRefreshToken {
                    token_hash: &secret::digest(&token),
                    family_id: family.id,
                    client_id: &subject.client.id,
                    sub: &subject.user.sub,
                    scope: &subject.granted.join(" "),
                    sid: subject.sid,
                    auth_time: subject.auth_time,
                    expires_at,
                    family_expires_at: family.expires_at,
                },
                now,
            )
            .await?;
    }
    Ok(token)
}

/// A refresh token shaped as Keycloak's: a JWT (`typ` "Refresh") signed
/// with a key the IdP does not publish. Only its digest is stored, as for
/// any other; nobody is meant to read it but the IdP.
fn keycloak_refresh_token(
    state: &AppState,
    subject: &Subject<'_>,
    expires_at: i64,
) -> Result<String, MintError> {
    let now = state.clock.now();
    let claims = serde_json::json!({
        "exp": expires_at,
        "iat": now,
        "jti": secret::random_id(),
        "iss": state.issuer,
        "aud": state.issuer,
        "sub": subject.user.sub,
        "typ": "Refresh",
        "azp": subject.client.id,
        "sid": subject.sid,
        "scope": subject.granted.join(" "),
    });
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS512);
    let key = jsonwebtoken::EncodingKey::from_secret(&state.internal_key);
    jsonwebtoken::encode(&header, &claims, &key).map_err(|e| MintError::Sign(e.into()))
}

/// An access token this IdP issued, unexpired and not revoked (userinfo,
/// revocation and introspection read them): known by its digest, whatever
/// its shape.
pub async fn verify_access_token(state: &AppState, token: &str) -> Option<IssuedAccessToken> {
    let hash = secret::digest(token);
    state
        .store
        .access_token(&hash, state.clock.now())
        .await
        .ok()
        .flatten()
}

/// The id and times of an access token being made.
struct AccessTimes<'a> {
    jti: &'a str,
    issued_at: i64,
    nbf: Option<i64>,
    expires_at: i64,
}

/// The access token, shaped as the profile's provider shapes it.
fn access_token(
    state: &AppState,
    subject: &Subject<'_>,
    times: &AccessTimes<'_>,
) -> Result<String, MintError> {
    let profile = state.settings.profile;
    let (iss, sub, client) = (&state.issuer, &subject.user.sub, &subject.client.id);
    let audience = profile.api_audience();
    let scope = subject.scopes.join(" ");
    let token = match profile.access_token() {
        // RFC 9068 2.1: explicitly typed, so it can't pass for an ID token.
        AccessToken::Rfc9068 => state.keys.sign(
            "at+jwt",
            &AccessClaims {
                iss: iss.clone(),
                sub: sub.clone(),
                aud: audience.to_owned(),
                exp: times.expires_at,
                iat: times.issued_at,
                nbf: times.nbf,
                jti: times.jti.to_owned(),
                client_id: client.clone(),
                scope,
                auth_time: subject.auth_time,
            },
        )?,
        // Okta's header has `alg` and `kid` only.
        AccessToken::Okta => state.keys.sign_untyped(&json!({
            "ver": 1,
            "jti": times.jti,
            "iss": iss,
            "aud": audience,
            "iat": times.issued_at,
            "exp": times.expires_at,
            "cid": client,
            "uid": sub,
            "scp": subject.scopes,
            "auth_time": subject.auth_time,
            "sub": sub,
        }))?,
        AccessToken::Entra => state.keys.sign(
            "JWT",
            &json!({
                "aud": audience,
                "iss": iss,
                "iat": times.issued_at,
                "nbf": times.nbf,
                "exp": times.expires_at,
                "azp": client,
                "azpacr": "1",
                "scp": scope,
                "ver": "2.0",
                "oid": sub,
                "sub": sub,
                "tid": ENTRA_TENANT,
                "uti": times.jti,
            }),
        )?,
        AccessToken::Auth0 => state.keys.sign(
            "JWT",
            &json!({
                "iss": iss,
                "sub": sub,
                "aud": [audience, format!("{iss}userinfo")],
                "iat": times.issued_at,
                "exp": times.expires_at,
                "azp": client,
                "scope": scope,
            }),
        )?,
        AccessToken::Keycloak => state.keys.sign(
            "JWT",
            &json!({
                "exp": times.expires_at,
                "iat": times.issued_at,
                "jti": times.jti,
                "iss": iss,
                "aud": [audience, "account"],
                "sub": sub,
                "typ": "Bearer",
                "azp": client,
                "sid": subject.sid,
                "scope": scope,
            }),
        )?,
        // Google's `ya29.` tokens: nothing in them to read.
        AccessToken::Opaque => format!("ya29.{}", secret::random_token()),
    };
    Ok(token)
}

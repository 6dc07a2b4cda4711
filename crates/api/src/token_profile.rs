//! Token profiles (`--token-profile`): the access tokens real providers
//! issue, mapped to the one caller the routes see (subject, client, scopes).
//!
//! RFC 9068 types access tokens (`typ: at+jwt`) so that an ID token, signed
//! by the same key for the same client, cannot pass for one (RFC 8725
//! 3.11). Okta, Entra ID, Auth0 (by default) and Keycloak do not type them.
//! What typing protects is kept another way under their profiles: the
//! audience must be this API's (always checked), and a token carrying what
//! only an ID token carries (`nonce`, `at_hash`, an `aud` naming the client
//! itself) is refused. [`TokenProfile::reads`] says, per profile, where each
//! part of the caller comes from.

use serde_json::{Map, Value};

/// Whose access tokens this API takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[value(rename_all = "lowercase")]
pub enum TokenProfile {
    /// RFC 9068: `typ: at+jwt`, `client_id`, `scope`, `jti`. The mock IdP,
    /// node-oidc-provider, Auth0's "RFC 9068" token profile.
    Rfc9068,
    /// Okta custom authorization servers: no `typ`; `cid`, `scp` (an array),
    /// `ver: 1`, `jti`, `uid`
    /// (developer.okta.com/docs/api/openapi/okta-oauth/guides/overview/).
    Okta,
    /// Entra ID v2.0 access tokens: `typ: JWT`; `azp`, `scp` (a
    /// space-separated string) and/or `roles`, `ver: "2.0"`, `uti`; `aud` is
    /// the API's application id (learn.microsoft.com, access token claims
    /// reference).
    Entra,
    /// Auth0's default token profile: `typ: JWT`; `azp`, `scope`, no `jti`
    /// (auth0.com/docs/secure/tokens/access-tokens/access-token-profiles).
    Auth0,
    /// Keycloak: `typ: JWT`; `azp`, `scope`, `jti`, `typ: "Bearer"` in the
    /// claims; the API's audience from an Audience mapper.
    Keycloak,
}

/// What a token says of its caller, read by a profile.
#[derive(Debug, PartialEq, Eq)]
pub struct CallerClaims {
    pub client_id: String,
    pub scopes: Vec<String>,
}

/// Why the claims do not make an access token of this profile.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProfileRefusal {
    #[error("typ {0:?} is not this profile's")]
    Typ(Option<String>),
    #[error("{0} is missing or empty")]
    Missing(&'static str),
    #[error("{0} is not this profile's version")]
    Version(String),
    #[error("carries {0}, which only an ID token carries")]
    IdTokenClaim(&'static str),
}

impl TokenProfile {
    pub fn name(self) -> &'static str {
        match self {
            TokenProfile::Rfc9068 => "rfc9068",
            TokenProfile::Okta => "okta",
            TokenProfile::Entra => "entra",
            TokenProfile::Auth0 => "auth0",
            TokenProfile::Keycloak => "keycloak",
        }
    }

    /// Check 5: the header's `typ`. RFC 9068 4 requires `at+jwt` (or its
    /// full media type); Okta sends none; the others send `JWT`.
    pub fn check_typ(self, typ: Option<&str>) -> Result<(), ProfileRefusal> {
        let is = |expected: &str| typ.is_some_and(|t| t.eq_ignore_ascii_case(expected));
        let fits = match self {
            TokenProfile::Rfc9068 => is("at+jwt") || is("application/at+jwt"),
            TokenProfile::Okta => typ.is_none() || is("JWT"),
            TokenProfile::Entra | TokenProfile::Auth0 | TokenProfile::Keycloak => is("JWT"),
        };
        if fits {
            Ok(())
        } else {
            Err(ProfileRefusal::Typ(typ.map(str::to_owned)))
        }
    }

    /// Whether tokens of this profile are explicitly typed.
    pub fn is_typed(self) -> bool {
        self == TokenProfile::Rfc9068
    }

    /// Where the caller comes from, for people to read (`/api/me`).
    pub fn reads(self) -> &'static str {
        match self {
            TokenProfile::Rfc9068 => {
                "client from client_id, scopes from scope, jti required (RFC 9068 2.2)"
            }
            TokenProfile::Okta => {
                "client from cid, scopes from scp (an array), ver 1, jti required (Okta)"
            }
            TokenProfile::Entra => {
                "client from azp, scopes from scp (a string) and app roles from roles, ver \"2.0\", uti required (Entra ID)"
            }
            TokenProfile::Auth0 => "client from azp, scopes from scope (Auth0)",
            TokenProfile::Keycloak => "client from azp, scopes from scope, jti required (Keycloak)",
        }
    }

    /// Check 12: the caller, from the claims of a token whose signature,
    /// issuer, audience and times have been checked.
    pub fn read(self, claims: &Map<String, Value>) -> Result<CallerClaims, ProfileRefusal> {
        // What typing would have caught (RFC 8725 3.11), caught by content.
        if !self.is_typed() {
            for claim in ["nonce", "at_hash"] {
                if claims.contains_key(claim) {
                    return Err(ProfileRefusal::IdTokenClaim(claim));
                }
            }
        }
        let text = |name: &'static str| {
            claims
                .get(name)
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty())
                .ok_or(ProfileRefusal::Missing(name))
        };
        let words = |name: &'static str| -> Vec<String> {
            match claims.get(name) {
                Some(Value::String(s)) => s.split_ascii_whitespace().map(str::to_owned).collect(),
                Some(Value::Array(items)) => items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect(),
                _ => Vec::new(),
            }
        };
        let (client_id, scopes) = match self {
            TokenProfile::Rfc9068 => {
                text("jti")?;
                (text("client_id")?, words("scope"))
            }
            TokenProfile::Okta => {
                text("jti")?;
                if claims.get("ver") != Some(&Value::from(1)) {
                    return Err(ProfileRefusal::Version(display(claims.get("ver"))));
                }
                (text("cid")?, words("scp"))
            }
            TokenProfile::Entra => {
                text("uti")?;
                if claims.get("ver").and_then(Value::as_str) != Some("2.0") {
                    return Err(ProfileRefusal::Version(display(claims.get("ver"))));
                }
                let mut scopes = words("scp");
                scopes.extend(words("roles"));
                (text("azp")?, scopes)
            }
            TokenProfile::Auth0 => (text("azp")?, words("scope")),
            TokenProfile::Keycloak => {
                text("jti")?;
                (text("azp")?, words("scope"))
            }
        };
        // An `aud` that names the client itself is an ID token's (OIDC Core
        // 2: the ID token's audience is the client).
        if !self.is_typed() && audiences(claims).any(|aud| aud == client_id) {
            return Err(ProfileRefusal::IdTokenClaim("an aud naming the client"));
        }
        Ok(CallerClaims {
            client_id: client_id.to_owned(),
            scopes,
        })
    }
}

fn audiences(claims: &Map<String, Value>) -> impl Iterator<Item = &str> {
    let list: Vec<&str> = match claims.get("aud") {
        Some(Value::String(one)) => vec![one.as_str()],
        Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    list.into_iter()
}

fn display(value: Option<&Value>) -> String {
    value.map_or_else(|| "no ver".to_owned(), |v| format!("ver {v}"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn map(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn each_profile_finds_the_client_and_the_scopes_where_its_provider_puts_them() {
        let cases = [
            (
                TokenProfile::Rfc9068,
                json!({"client_id": "c", "scope": "a b", "jti": "j"}),
            ),
            (
                TokenProfile::Okta,
                json!({"cid": "c", "scp": ["a", "b"], "ver": 1, "jti": "j"}),
            ),
            (
                TokenProfile::Entra,
                json!({"azp": "c", "scp": "a", "roles": ["b"], "ver": "2.0", "uti": "u"}),
            ),
            (TokenProfile::Auth0, json!({"azp": "c", "scope": "a b"})),
            (
                TokenProfile::Keycloak,
                json!({"azp": "c", "scope": "a b", "jti": "j", "typ": "Bearer"}),
            ),
        ];
        for (profile, claims) in cases {
            let caller = profile.read(&map(claims)).unwrap();
            assert_eq!(caller.client_id, "c", "{profile:?}");
            assert_eq!(caller.scopes, ["a", "b"], "{profile:?}");
        }
    }

    #[test]
    fn an_untyped_token_with_what_only_id_tokens_carry_is_refused_rfc8725_3_11() {
        for (claims, what) in [
            (json!({"azp": "c", "scope": "a", "nonce": "n"}), "nonce"),
            (json!({"azp": "c", "scope": "a", "at_hash": "h"}), "at_hash"),
            (
                json!({"azp": "c", "scope": "a", "aud": ["api", "c"]}),
                "an aud naming the client",
            ),
        ] {
            let refusal = TokenProfile::Auth0.read(&map(claims)).unwrap_err();
            assert_eq!(refusal, ProfileRefusal::IdTokenClaim(what));
        }
    }

    #[test]
    fn the_version_claim_must_be_the_profiles() {
        let okta = json!({"cid": "c", "scp": [], "ver": "2.0", "jti": "j"});
        assert!(matches!(
            TokenProfile::Okta.read(&map(okta)),
            Err(ProfileRefusal::Version(_))
        ));
        let entra_v1 = json!({"azp": "c", "scp": "a", "ver": "1.0", "uti": "u"});
        assert!(matches!(
            TokenProfile::Entra.read(&map(entra_v1)),
            Err(ProfileRefusal::Version(_))
        ));
    }

    #[test]
    fn typ_is_checked_per_profile_rfc9068_4() {
        assert!(TokenProfile::Rfc9068.check_typ(Some("at+jwt")).is_ok());
        assert!(
            TokenProfile::Rfc9068
                .check_typ(Some("application/AT+JWT"))
                .is_ok()
        );
        assert!(TokenProfile::Rfc9068.check_typ(Some("JWT")).is_err());
        assert!(TokenProfile::Rfc9068.check_typ(None).is_err());
        assert!(TokenProfile::Okta.check_typ(None).is_ok());
        assert!(TokenProfile::Entra.check_typ(Some("JWT")).is_ok());
        assert!(TokenProfile::Entra.check_typ(Some("at+jwt")).is_err());
    }
}

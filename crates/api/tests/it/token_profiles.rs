//! `--token-profile`: the API takes the access tokens Okta, Entra ID, Auth0
//! and Keycloak really issue (the mock IdP's provider profiles mint them),
//! and under each profile refuses what RFC 9068's explicit typing and the
//! usual checks refuse, each attack naming its rule.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mock_idp::profile::Profile;
use serde_json::{Value, json};
use test_case::test_case;
use testkit::{
    ALICE, ALL_SCOPES, CLIENT_ID,
    api::Api,
    claims_of, header_of,
    idp::{Idp, login},
};

use crate::common::{AttackerKey, assert_invalid_token, hand_made};

/// The IdP in `profile`, the API under the matching token profile, and a
/// genuine login's tokens.
async fn genuine(profile: Profile) -> (Idp, Api, testkit::idp::Tokens) {
    let mut settings = mock_idp::Settings::demo();
    settings.profile = profile;
    let idp = Idp::start_with(settings).await;
    let api = Api::start(&idp).await;
    let tokens = login(&idp, &ALICE, ALL_SCOPES).await;
    (idp, api, tokens)
}

/// Signs `claims` with the IdP's key and the header its provider writes.
fn as_provider(idp: &Idp, claims: &Value) -> String {
    match idp.state.settings.profile {
        Profile::Plain => idp.sign("at+jwt", claims),
        Profile::Okta => idp.state.keys.sign_untyped(claims).unwrap(),
        _ => idp.sign("JWT", claims),
    }
}

const PROFILES: [Profile; 5] = [
    Profile::Plain,
    Profile::Okta,
    Profile::Entra,
    Profile::Auth0,
    Profile::Keycloak,
];

#[tokio::test]
async fn each_providers_genuine_access_token_is_taken_and_its_caller_is_right() {
    for profile in PROFILES {
        let (_idp, api, tokens) = genuine(profile).await;
        let response = api.me(&tokens.access_token).await;
        assert_eq!(response.status(), 200, "{profile:?}");
        let me: Value = response.json().await.unwrap();
        let id = claims_of(tokens.id_token.as_deref().unwrap());
        assert_eq!(me["sub"], id["sub"], "{profile:?}");
        assert_eq!(me["client_id"], CLIENT_ID, "{profile:?}");
        let scopes = me["scopes"].to_string();
        assert!(
            scopes.contains("notes:read") && scopes.contains("notes:write"),
            "{profile:?}: {scopes}"
        );
        // And it may use the notes, which need those scopes.
        let notes = reqwest::Client::new()
            .get(api.url("/api/notes"))
            .bearer_auth(&tokens.access_token)
            .send()
            .await
            .unwrap();
        assert_eq!(notes.status(), 200, "{profile:?}");
    }
}

#[tokio::test]
async fn entra_app_roles_count_as_scopes() {
    // An app-only token (client credentials) has `roles` and no `scp`.
    let (idp, api, tokens) = genuine(Profile::Entra).await;
    let mut claims = claims_of(&tokens.access_token);
    claims.as_object_mut().unwrap().remove("scp");
    claims["roles"] = json!(["notes:read"]);
    let token = as_provider(&idp, &claims);
    let me: Value = api.me(&token).await.json().await.unwrap();
    assert_eq!(me["scopes"], json!(["notes:read"]));
    let write = reqwest::Client::new()
        .post(api.url("/api/notes"))
        .bearer_auth(&token)
        .json(&json!({"text": "no"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        write.status(),
        403,
        "insufficient_scope, as for any profile"
    );
}

/// One attack on a genuine token of the profile; the API must refuse it.
type Attack = fn(&Idp, &testkit::idp::Tokens) -> String;

fn changed(idp: &Idp, tokens: &testkit::idp::Tokens, name: &str, value: Value) -> String {
    let mut claims = claims_of(&tokens.access_token);
    claims[name] = value;
    as_provider(idp, &claims)
}

#[test_case(|idp, t| changed(idp, t, "iss", json!("https://evil.example/")) ; "another_issuer_rfc9068_4")]
#[test_case(|idp, t| changed(idp, t, "aud", json!("https://another-api.example")) ; "another_audience_rfc9068_4")]
#[test_case(|idp, t| changed(idp, t, "exp", json!(idp.time.now() - 120)) ; "expired_rfc7519_4_1_4")]
#[test_case(|_, t| none_alg(&t.access_token) ; "alg_none_rfc8725_3_1")]
#[test_case(|idp, t| hmac_with_the_public_key(idp, &t.access_token) ; "hmac_with_the_public_key_rfc8725_3_2")]
#[test_case(|_, t| unknown_kid(&t.access_token) ; "unknown_kid_rfc8725_3_10")]
#[test_case(|_, t| t.id_token.clone().unwrap() ; "the_id_token_rfc8725_3_11")]
#[test_case(another_profiles_shape ; "another_profiles_shape_rfc8725_3_11")]
#[tokio::test]
async fn under_every_profile_a_forged_or_misused_token_is_refused(attack: Attack) {
    for profile in PROFILES {
        let (idp, api, tokens) = genuine(profile).await;
        let token = attack(&idp, &tokens);
        let response = api.me(&token).await;
        assert_eq!(
            response.status(),
            401,
            "{profile:?} took {}",
            claims_of(&token)
        );
        assert_invalid_token(response).await;
    }
}

#[tokio::test]
async fn under_every_profile_a_token_in_the_query_string_is_refused_rfc6750_2_3() {
    for profile in PROFILES {
        let (_idp, api, tokens) = genuine(profile).await;
        let url = format!(
            "{}?access_token={}",
            api.url("/api/me"),
            tokens.access_token
        );
        let response = reqwest::Client::new()
            .get(url)
            .bearer_auth(&tokens.access_token)
            .send()
            .await
            .unwrap();
        assert_invalid_token(response).await;
    }
}

/// The same token with `alg: none` and no signature.
fn none_alg(token: &str) -> String {
    let mut header = header_of(token);
    header["alg"] = json!("none");
    hand_made(&header, &claims_of(token), b"")
}

/// HS256 keyed with the IdP's public key (as its JWK text), under its kid.
fn hmac_with_the_public_key(idp: &Idp, token: &str) -> String {
    let kid = header_of(token)["kid"].as_str().unwrap().to_owned();
    let jwk = idp.state.keys.jwks()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .unwrap()
        .clone();
    let mut header = Header::new(Algorithm::HS256);
    header.typ = header_of(token)["typ"].as_str().map(str::to_owned);
    header.kid = Some(kid);
    let secret = jwk.to_string();
    jsonwebtoken::encode(
        &header,
        &claims_of(token),
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

/// The same claims signed by a key the issuer never published.
fn unknown_kid(token: &str) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.typ = header_of(token)["typ"].as_str().map(str::to_owned);
    header.kid = Some("made-up-kid".into());
    AttackerKey::generate().sign(header, &claims_of(token))
}

/// A genuine-looking token of another provider's shape, signed by this
/// issuer: an RFC 9068 token where the profile expects its provider's, and
/// an Okta-shaped one (untyped) where RFC 9068's typing is expected.
fn another_profiles_shape(idp: &Idp, tokens: &testkit::idp::Tokens) -> String {
    let genuine = claims_of(&tokens.access_token);
    let now = idp.time.now();
    let common = |mut claims: Value| {
        for name in ["iss", "aud", "sub", "exp", "iat"] {
            claims[name] = genuine[name].clone();
        }
        claims
    };
    match idp.state.settings.profile {
        Profile::Plain => idp
            .state
            .keys
            .sign_untyped(&common(json!({
                "ver": 1, "jti": format!("j{now}"), "cid": CLIENT_ID,
                "scp": ["notes:read", "notes:write"],
            })))
            .unwrap(),
        _ => idp.sign(
            "at+jwt",
            &common(json!({
                "jti": format!("j{now}"), "client_id": CLIENT_ID,
                "scope": "notes:read notes:write",
            })),
        ),
    }
}

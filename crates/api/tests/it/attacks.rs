//! Step 10 from the attacker's side: one test per attack on the API's
//! token validation, each named after the rule it breaks. Every forged
//! token is answered 401 `Bearer realm="api", error="invalid_token"` with
//! the same body, so the answer says nothing about which check failed
//! (RFC 6750 3.1). The attacks that differ only in one claim or header are
//! tables, a test per row.
//!
//! Tokens come from the real mock IdP, in-process: its own flow, or its own
//! signing key over claims the test picks. Keys and JWKS are built by hand
//! only to forge attacks.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPublicKey;
use rsa::pkcs8::EncodePublicKey;
use serde_json::{Value, json};
use test_case::test_case;
use testkit::{
    ALICE, ALL_SCOPES, AUDIENCE,
    api::{Api, access_claims},
    header_of,
    idp::{Idp, login},
};

use crate::common::{
    AttackerKey, assert_invalid_token, at_jwt_header, b64, hand_made, idp_kid, unb64,
};

/// Claims of a good token, changed by an attack; `now` is the IdP's clock.
type ClaimsAttack = fn(&mut Value, i64);

fn remove(claims: &mut Value, name: &str) {
    claims.as_object_mut().expect("an object").remove(name);
}

#[test_case(|c, now| { c["exp"] = json!(now - 120); c["iat"] = json!(now - 600); } ; "expired_beyond_the_leeway_rfc7519_4_1_4")]
#[test_case(|c, now| { c["nbf"] = json!(now + 600); c["exp"] = json!(now + 1200); } ; "not_yet_valid_rfc7519_4_1_5")]
#[test_case(|c, now| c["iat"] = json!(now + 600) ; "issued_in_the_future_rfc9068_2_2")]
#[test_case(|c, _| c["iss"] = json!("http://evil.example/oauth2/default") ; "another_issuer_rfc9068_4")]
#[test_case(|c, _| { let iss = format!("{}/", c["iss"].as_str().unwrap()); c["iss"] = json!(iss); } ; "issuer_with_a_trailing_slash_rfc9068_4")]
#[test_case(|c, _| { let iss = c["iss"].clone(); c["iss"] = json!([iss]); } ; "issuer_as_an_array_rfc9068_4")]
#[test_case(|c, _| c["aud"] = json!("api://other") ; "another_audience_rfc9068_4")]
#[test_case(|c, _| c["aud"] = json!(["api://other", "bff-demo"]) ; "audiences_without_this_api_rfc9068_4")]
#[test_case(|c, _| c["aud"] = json!([]) ; "empty_audience_rfc9068_4")]
#[test_case(|c, _| remove(c, "aud") ; "missing_audience_rfc9068_4")]
#[test_case(|c, _| remove(c, "sub") ; "missing_sub_rfc9068_2_2")]
#[test_case(|c, _| remove(c, "client_id") ; "missing_client_id_rfc9068_2_2")]
#[test_case(|c, _| remove(c, "jti") ; "missing_jti_rfc9068_2_2")]
#[test_case(|c, _| remove(c, "iat") ; "missing_iat_rfc9068_2_2")]
#[test_case(|c, _| remove(c, "exp") ; "missing_exp_rfc9068_2_2")]
#[test_case(|c, _| remove(c, "iss") ; "missing_iss_rfc9068_2_2")]
#[test_case(|c, _| c["sub"] = json!("") ; "empty_sub_rfc9068_2_2")]
#[test_case(|c, _| c["padding"] = json!("x".repeat(9 * 1024)) ; "oversized_token_refused_before_parsing_rfc6750_3_1")]
#[tokio::test]
async fn a_token_the_idp_signed_with_a_bad_claim_is_refused(attack: ClaimsAttack) {
    let idp = Idp::start().await;
    let api = Api::start(&idp).await;
    let mut claims = access_claims(&idp);
    attack(&mut claims, idp.time.now());
    let token = idp.sign("at+jwt", &claims);
    assert_invalid_token(api.me(&token).await).await;
}

/// Header fields of a token the IdP signs with its own key (`alg` and
/// `kid` stay the key's).
#[test_case(json!({"typ": null}) ; "missing_typ_rfc8725_3_11")]
#[test_case(json!({"typ": "JWT"}) ; "typ_jwt_as_an_id_token_has_rfc8725_3_11")]
#[test_case(json!({"typ": "at+jwt", "crit": ["exp"]}) ; "crit_header_rfc7515_4_1_11")]
#[test_case(json!({"typ": "at+jwt", "x5c": ["MIIB"]}) ; "x5c_header_rfc8725_3_10")]
#[tokio::test]
async fn a_token_the_idp_signed_with_a_bad_header_is_refused(header: Value) {
    let idp = Idp::start().await;
    let api = Api::start(&idp).await;
    let token = idp.sign_with_header(header, &access_claims(&idp));
    assert_invalid_token(api.me(&token).await).await;
}

/// Control: the attack tests below change one thing each in this token.
#[tokio::test]
async fn a_well_formed_token_signed_by_the_idp_is_accepted_rfc9068_4() {
    let idp = Idp::start().await;
    let api = Api::start(&idp).await;
    let token = idp.sign("at+jwt", &access_claims(&idp));
    let response = api.me(&token).await;
    assert_eq!(response.status(), 200);
}

/// Control: a token from the real flow (authorize, sign-in, consent, token).
#[tokio::test]
async fn an_access_token_from_the_real_flow_is_accepted_rfc9068_4() {
    let idp = Idp::start().await;
    let api = Api::start(&idp).await;
    let tokens = login(&idp, &ALICE, ALL_SCOPES).await;
    let response = api.me(&tokens.access_token).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn missing_token_gets_a_bare_challenge_without_error_rfc6750_3_1() {
    let idp = Idp::start().await;
    let api = Api::start(&idp).await;
    let client = testkit::http_client();
    for request in [
        client.get(format!("{}/api/me", api.base_url)),
        client
            .get(format!("{}/api/me", api.base_url))
            .basic_auth("alice", Some("wonderland")),
    ] {
        let response = request.send().await.expect("the API answers");
        assert_eq!(response.status(), 401);
        assert_eq!(
            response.headers()["www-authenticate"],
            r#"Bearer realm="api""#
        );
    }
}

#[tokio::test]
async fn alg_none_is_refused_rfc8725_3_1() {
    let idp = Idp::start().await;
    let api = Api::start(&idp).await;
    let header = json!({"alg": "none", "typ": "at+jwt", "kid": idp_kid(&idp)});
    let claims = access_claims(&idp);
    // RFC 7519 6.1: an unsecured JWT has an empty signature; try junk too.
    for signature in [&b""[..], b"not a signature"] {
        let token = hand_made(&header, &claims, signature);
        assert_invalid_token(api.me(&token).await).await;
    }
}

/// The classic alg confusion: the attacker takes the IdP's public RSA key,
/// uses it as an HMAC secret, and asks for HS256 under the IdP's `kid`.
#[tokio::test]
async fn hs256_signed_with_the_public_key_is_refused_rfc8725_3_2() {
    let idp = Idp::start().await;
    let api = Api::start(&idp).await;
    let kid = idp_kid(&idp);
    let jwks: Value = testkit::http_client()
        .get(format!("{}/v1/keys", idp.issuer))
        .send()
        .await
        .expect("JWKS")
        .json()
        .await
        .expect("JSON");
    let jwk = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .expect("the key");
    let n = unb64(jwk["n"].as_str().expect("n"));
    let e = unb64(jwk["e"].as_str().expect("e"));
    let public = rsa::RsaPublicKey::new(
        rsa::BigUint::from_bytes_be(&n),
        rsa::BigUint::from_bytes_be(&e),
    )
    .expect("RSA");

    let secrets: Vec<Vec<u8>> = vec![
        public
            .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
            .expect("PEM")
            .into_bytes(),
        public
            .to_pkcs1_pem(rsa::pkcs8::LineEnding::LF)
            .expect("PEM")
            .into_bytes(),
        public.to_pkcs1_der().expect("DER").as_bytes().to_vec(),
        jwk.to_string().into_bytes(),
    ];
    for secret in secrets {
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some("at+jwt".into());
        header.kid = Some(kid.clone());
        let token = jsonwebtoken::encode(
            &header,
            &access_claims(&idp),
            &EncodingKey::from_secret(&secret),
        )
        .expect("HS256");
        assert_invalid_token(api.me(&token).await).await;
    }
}

#[tokio::test]
async fn unknown_kid_is_refused_rfc7515_4_1_4() {
    let idp = Idp::start().await;
    let api = Api::start(&idp).await;
    let attacker = AttackerKey::generate();
    let token = attacker.sign(at_jwt_header("made-up-kid"), &access_claims(&idp));
    assert_invalid_token(api.me(&token).await).await;
}

#[tokio::test]
async fn kid_with_path_characters_is_refused_rfc8725_3_10() {
    let idp = Idp::start().await;
    let api = Api::start(&idp).await;
    let attacker = AttackerKey::generate();
    for kid in [
        "../../../../dev/null",
        "..\\..\\keys\\a",
        "/etc/passwd",
        "k' OR '1'='1",
        "http://127.0.0.1/k",
    ] {
        let token = attacker.sign(at_jwt_header(kid), &access_claims(&idp));
        assert_invalid_token(api.me(&token).await).await;
    }
}

#[tokio::test]
async fn jku_header_pointing_elsewhere_is_refused_and_never_fetched_rfc8725_3_10() {
    let idp = Idp::start().await;
    let api = Api::start(&idp).await;
    let attacker = AttackerKey::generate();
    let evil = EvilKeyServer::start(json!({"keys": [attacker.public_jwk("evil-kid")]})).await;

    let mut header = at_jwt_header("evil-kid");
    header.jku = Some(evil.url.clone());
    let token = attacker.sign(header, &access_claims(&idp));
    assert_invalid_token(api.me(&token).await).await;

    // Even signed by the IdP's own key, the header alone is refused.
    let token = idp.sign_with_header(
        json!({"typ": "at+jwt", "jku": evil.url}),
        &access_claims(&idp),
    );
    assert_invalid_token(api.me(&token).await).await;
    assert_eq!(evil.hits(), 0, "the API fetched the token's jku");
}

#[tokio::test]
async fn x5u_header_pointing_elsewhere_is_refused_and_never_fetched_rfc8725_3_10() {
    let idp = Idp::start().await;
    let api = Api::start(&idp).await;
    let attacker = AttackerKey::generate();
    let evil = EvilKeyServer::start(json!({"keys": [attacker.public_jwk("evil-kid")]})).await;

    let mut header = at_jwt_header("evil-kid");
    header.x5u = Some(evil.url.clone());
    let token = attacker.sign(header, &access_claims(&idp));
    assert_invalid_token(api.me(&token).await).await;

    let token = idp.sign_with_header(
        json!({"typ": "at+jwt", "x5u": evil.url}),
        &access_claims(&idp),
    );
    assert_invalid_token(api.me(&token).await).await;
    assert_eq!(evil.hits(), 0, "the API fetched the token's x5u");
}

#[tokio::test]
async fn embedded_jwk_header_is_refused_rfc8725_3_10() {
    let idp = Idp::start().await;
    let api = Api::start(&idp).await;
    let attacker = AttackerKey::generate();
    let jwk: jsonwebtoken::jwk::Jwk =
        serde_json::from_value(attacker.public_jwk("evil-kid")).expect("a JWK");

    // Self-signed: "trust the key I carry".
    let mut header = at_jwt_header("evil-kid");
    header.jwk = Some(jwk);
    let token = attacker.sign(header, &access_claims(&idp));
    assert_invalid_token(api.me(&token).await).await;

    // Signed by the IdP, with a jwk header beside its own kid.
    let token = idp.sign_with_header(
        json!({"typ": "at+jwt", "jwk": attacker.public_jwk("evil-kid")}),
        &access_claims(&idp),
    );
    assert_invalid_token(api.me(&token).await).await;
}

#[tokio::test]
async fn stripped_signature_is_refused_rfc7515_5_2() {
    let idp = Idp::start().await;
    let api = Api::start(&idp).await;
    let token = idp.sign("at+jwt", &access_claims(&idp));
    let unsigned = &token[..=token.rfind('.').expect("two dots")];
    assert_invalid_token(api.me(unsigned).await).await;
    let two_parts = &token[..token.rfind('.').expect("two dots")];
    assert_invalid_token(api.me(two_parts).await).await;
}

#[tokio::test]
async fn altered_signature_is_refused_rfc7515_5_2() {
    let idp = Idp::start().await;
    let api = Api::start(&idp).await;
    let token = idp.sign("at+jwt", &access_claims(&idp));
    let (signed, signature) = token.rsplit_once('.').expect("three parts");
    let mut bytes = unb64(signature);
    bytes[10] ^= 0x01;
    let altered = format!("{signed}.{}", b64(&bytes));
    assert_invalid_token(api.me(&altered).await).await;
}

#[tokio::test]
async fn altered_claims_under_the_original_signature_are_refused_rfc7515_5_2() {
    let idp = Idp::start().await;
    let api = Api::start(&idp).await;
    let token = idp.sign("at+jwt", &access_claims(&idp));
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: Value = serde_json::from_slice(&unb64(parts[1])).expect("claims");
    claims["sub"] = json!("someone-else");
    let altered = format!(
        "{}.{}.{}",
        parts[0],
        b64(claims.to_string().as_bytes()),
        parts[2]
    );
    assert_invalid_token(api.me(&altered).await).await;
}

#[tokio::test]
async fn valid_signature_from_another_key_with_a_known_kid_is_refused_rfc7515_5_2() {
    let idp = Idp::start().await;
    let api = Api::start(&idp).await;
    let attacker = AttackerKey::generate();
    let token = attacker.sign(at_jwt_header(&idp_kid(&idp)), &access_claims(&idp));
    assert_invalid_token(api.me(&token).await).await;
}

/// Same IdP, same key, same user: an ID token is still not an access token.
#[tokio::test]
async fn id_token_presented_as_access_token_is_refused_rfc9068_4() {
    let idp = Idp::start().await;
    let api = Api::start(&idp).await;
    let tokens = login(&idp, &ALICE, ALL_SCOPES).await;
    let id_token = tokens.id_token.expect("an ID token for scope openid");
    let id_typ = header_of(&id_token)["typ"].clone();
    assert_ne!(id_typ, "at+jwt");
    assert_invalid_token(api.me(&id_token).await).await;

    // The real ID token is also for another audience (the client). Here is
    // one the IdP signed for this API's audience, with every access token
    // claim: only its type says it is not an access token.
    let mut claims: Value =
        serde_json::from_slice(&unb64(id_token.split('.').nth(1).expect("claims"))).expect("JSON");
    let access = access_claims(&idp);
    claims["aud"] = json!(AUDIENCE);
    for claim in ["client_id", "jti", "scope"] {
        claims[claim] = access[claim].clone();
    }
    let token = idp.sign_with_header(json!({"typ": id_typ}), &claims);
    assert_invalid_token(api.me(&token).await).await;
}

#[tokio::test]
async fn token_with_bad_base64_is_refused_rfc6750_3_1() {
    let idp = Idp::start().await;
    let api = Api::start(&idp).await;
    let token = idp.sign("at+jwt", &access_claims(&idp));
    let parts: Vec<&str> = token.split('.').collect();
    for bad in [
        format!("{}=.{}.{}", parts[0], parts[1], parts[2]), // padding
        format!("{}+/.{}.{}", parts[0], parts[1], parts[2]), // base64, not base64url
        format!("{}.{}!.{}", parts[0], parts[1], parts[2]),
        "%%%.%%%.%%%".to_owned(),
        "a.b.c".to_owned(),
    ] {
        assert_invalid_token(api.me(&bad).await).await;
    }
}

#[tokio::test]
async fn token_with_bad_json_is_refused_rfc6750_3_1() {
    let idp = Idp::start().await;
    let api = Api::start(&idp).await;
    let token = idp.sign("at+jwt", &access_claims(&idp));
    let parts: Vec<&str> = token.split('.').collect();
    for header in [
        r#"{"alg":"RS256","typ":"at+jwt""#,
        "[]",
        "null",
        r#"{"alg":"RS256","alg":"none","typ":"at+jwt"}"#,
    ] {
        let bad = format!("{}.{}.{}", b64(header.as_bytes()), parts[1], parts[2]);
        assert_invalid_token(api.me(&bad).await).await;
    }
    let bad_claims = format!("{}.{}.{}", parts[0], b64(b"{\"sub\":"), parts[2]);
    assert_invalid_token(api.me(&bad_claims).await).await;
}

#[tokio::test]
async fn deeply_nested_json_is_refused_without_harm_rfc6750_3_1() {
    let idp = Idp::start().await;
    let api = Api::start(&idp).await;
    let kid = idp_kid(&idp);
    let nested = format!("{}{}", "[".repeat(300), "]".repeat(300));
    let header = format!(r#"{{"alg":"RS256","typ":"at+jwt","kid":"{kid}","x":{nested}}}"#);
    let claims = format!(r#"{{"x":{}0{}}}"#, "{\"a\":".repeat(600), "}".repeat(600));
    let token = format!(
        "{}.{}.{}",
        b64(header.as_bytes()),
        b64(claims.as_bytes()),
        b64(b"sig")
    );
    assert_invalid_token(api.me(&token).await).await;
    let token = idp.sign("at+jwt", &access_claims(&idp));
    let parts: Vec<&str> = token.split('.').collect();
    let token = format!("{}.{}.{}", parts[0], b64(claims.as_bytes()), parts[2]);
    assert_invalid_token(api.me(&token).await).await;
}

#[tokio::test]
async fn token_in_the_query_string_is_refused_rfc6750_2_3() {
    let idp = Idp::start().await;
    let api = Api::start(&idp).await;
    let token = idp.sign("at+jwt", &access_claims(&idp));
    let response = testkit::http_client()
        .get(format!("{}/api/me", api.base_url))
        .query(&[("access_token", &token)])
        .send()
        .await
        .expect("the API answers");
    assert_invalid_token(response).await;
}

/// RFC 9700 4.3.2: even beside a good header, a token in the URL has leaked;
/// the request is refused so the client learns it.
#[tokio::test]
async fn token_in_the_query_string_beside_a_valid_header_is_refused_rfc9700_4_3_2() {
    let idp = Idp::start().await;
    let api = Api::start(&idp).await;
    let token = idp.sign("at+jwt", &access_claims(&idp));
    let response = testkit::http_client()
        .get(format!("{}/api/me", api.base_url))
        .query(&[("access_token", &token)])
        .bearer_auth(&token)
        .send()
        .await
        .expect("the API answers");
    assert_invalid_token(response).await;
}

/// An attacker's server hosting its own JWKS, counting every request: the
/// API must never call it.
struct EvilKeyServer {
    url: String,
    hits: Arc<AtomicUsize>,
    server: tokio::task::JoinHandle<()>,
}

impl EvilKeyServer {
    async fn start(jwks: Value) -> Self {
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let app = axum::Router::new().fallback(move || {
            let counter = counter.clone();
            let jwks = jwks.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                axum::Json(jwks)
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port");
        let url = format!(
            "http://{}/jwks.json",
            listener.local_addr().expect("an address")
        );
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, hits, server }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for EvilKeyServer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

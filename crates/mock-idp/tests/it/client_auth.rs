//! `private_key_jwt` (RFC 7523 2.2, OIDC Core 9) at the token, revocation
//! and introspection endpoints: a client assertion signed with the client's
//! own key authenticates it; every way to forge, stretch or replay one is
//! refused as `invalid_client`.

use serde_json::{Value, json};
use testkit::{
    ALICE, ALL_SCOPES, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI,
    idp::{AuthRequest, ClientKey, Idp, code_as, with_private_key_jwt},
    random_string,
};

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The IdP with `bff-demo` registered for `private_key_jwt` with `key`.
async fn idp_with(key: &ClientKey) -> Idp {
    let mut settings = mock_idp::Settings::demo();
    with_private_key_jwt(&mut settings, key);
    Idp::start_with(settings).await
}

/// The claims of a good assertion for the IdP's token endpoint.
fn claims(idp: &Idp) -> Value {
    let now = idp.time.now();
    json!({
        "iss": CLIENT_ID,
        "sub": CLIENT_ID,
        "aud": idp.url("/v1/token"),
        "iat": now,
        "exp": now + 60,
        "jti": random_string(),
    })
}

/// A code exchange authenticated by `assertion` (and any extra fields).
async fn exchange_with(idp: &Idp, assertion: &str, extra: &[(&str, &str)]) -> reqwest::Response {
    let request = AuthRequest::demo(ALL_SCOPES);
    let code = code_as(idp, &request, &ALICE).await;
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("code_verifier", request.verifier.as_str()),
        ("client_id", CLIENT_ID),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", assertion),
    ];
    form.extend_from_slice(extra);
    reqwest::Client::new()
        .post(idp.url("/v1/token"))
        .form(&form)
        .send()
        .await
        .unwrap()
}

async fn assert_invalid_client(response: reqwest::Response) {
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client", "{body}");
}

#[tokio::test]
async fn a_signed_client_assertion_authenticates_the_client_rfc7523_2_2() {
    for alg in ["RS256", "ES256"] {
        let key = ClientKey::generate(alg);
        let idp = idp_with(&key).await;
        let assertion = key.sign(json!({}), &claims(&idp));
        let response = exchange_with(&idp, &assertion, &[]).await;
        assert_eq!(response.status(), 200, "{alg}");
        let tokens: Value = response.json().await.unwrap();
        // The same way at the revocation endpoint.
        let revoke = reqwest::Client::new()
            .post(idp.url("/v1/revoke"))
            .form(&[
                ("token", tokens["refresh_token"].as_str().unwrap()),
                ("client_id", CLIENT_ID),
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", &key.sign(json!({}), &claims(&idp))),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(revoke.status(), 200, "{alg} revocation");
    }
}

#[tokio::test]
async fn the_client_id_may_be_left_out_the_assertion_names_the_client_rfc7523_3() {
    let key = ClientKey::generate("RS256");
    let idp = idp_with(&key).await;
    let request = AuthRequest::demo(ALL_SCOPES);
    let code = code_as(&idp, &request, &ALICE).await;
    let response = reqwest::Client::new()
        .post(idp.url("/v1/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", request.verifier.as_str()),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &key.sign(json!({}), &claims(&idp))),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// One way to spoil an assertion; the refusal it must get.
type Spoil = fn(&Idp, &ClientKey, &ClientKey) -> String;

#[test_case::test_case(|idp, _, other| other.sign(json!({}), &claims(idp)) ; "signed_by_another_key_rfc7523_3_9")]
#[test_case::test_case(|idp, key, _| { let mut c = claims(idp); c["exp"] = json!(idp.time.now() - 1); key.sign(json!({}), &c) } ; "expired_rfc7523_3_4")]
#[test_case::test_case(|idp, key, _| { let mut c = claims(idp); c["exp"] = json!(idp.time.now() + 3600); key.sign(json!({}), &c) } ; "living_an_hour_oidc_core_9")]
#[test_case::test_case(|idp, key, _| { let mut c = claims(idp); c.as_object_mut().unwrap().remove("exp"); key.sign(json!({}), &c) } ; "without_exp_rfc7523_3_4")]
#[test_case::test_case(|idp, key, _| { let mut c = claims(idp); c["aud"] = json!("https://another.example/token"); key.sign(json!({}), &c) } ; "for_another_audience_rfc7523_3_3")]
#[test_case::test_case(|idp, key, _| { let mut c = claims(idp); c["iss"] = json!("native-demo"); key.sign(json!({}), &c) } ; "issued_by_another_client_oidc_core_9")]
#[test_case::test_case(|idp, key, _| { let mut c = claims(idp); c["sub"] = json!("native-demo"); key.sign(json!({}), &c) } ; "about_another_client_oidc_core_9")]
#[test_case::test_case(|idp, _, _| unsigned(&claims(idp)) ; "alg_none_rfc8725_3_1")]
#[test_case::test_case(|idp, key, _| hmac_with_public_key(key, &claims(idp)) ; "hmac_with_the_public_key_rfc8725_3_2")]
#[tokio::test]
async fn a_spoiled_assertion_is_refused(spoil: Spoil) {
    let key = ClientKey::generate("RS256");
    let other = ClientKey::generate("RS256");
    let idp = idp_with(&key).await;
    let assertion = spoil(&idp, &key, &other);
    assert_invalid_client(exchange_with(&idp, &assertion, &[]).await).await;
}

fn unsigned(claims: &Value) -> String {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{payload}.")
}

/// HS256 keyed with the client's public key, the classic confusion attack.
fn hmac_with_public_key(key: &ClientKey, claims: &Value) -> String {
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    let secret = key.jwks.to_string();
    jsonwebtoken::encode(
        &header,
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

#[tokio::test]
async fn an_assertion_used_twice_is_refused_the_second_time_oidc_core_9() {
    let key = ClientKey::generate("RS256");
    let idp = idp_with(&key).await;
    let assertion = key.sign(json!({}), &claims(&idp));
    assert_eq!(exchange_with(&idp, &assertion, &[]).await.status(), 200);
    assert_invalid_client(exchange_with(&idp, &assertion, &[]).await).await;
}

#[tokio::test]
async fn an_assertion_and_a_secret_together_are_refused_rfc6749_2_3() {
    let key = ClientKey::generate("RS256");
    let idp = idp_with(&key).await;
    let assertion = key.sign(json!({}), &claims(&idp));
    let response = exchange_with(&idp, &assertion, &[("client_secret", CLIENT_SECRET)]).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
}

#[tokio::test]
async fn a_private_key_jwt_client_cannot_use_a_secret_and_a_secret_client_cannot_use_a_key() {
    let key = ClientKey::generate("RS256");
    // Registered for private_key_jwt: its old secret gets nowhere.
    let idp = idp_with(&key).await;
    let request = AuthRequest::demo(ALL_SCOPES);
    let code = code_as(&idp, &request, &ALICE).await;
    let response = testkit::idp::exchange_code(&idp, &code, &request.verifier).await;
    assert_invalid_client(response).await;
    // Registered for a secret: a well-made assertion gets nowhere either.
    let plain = Idp::start().await;
    let assertion = key.sign(json!({}), &claims(&plain));
    assert_invalid_client(exchange_with(&plain, &assertion, &[]).await).await;
}

#[tokio::test]
async fn discovery_says_private_key_jwt_and_its_algorithms() {
    let idp = Idp::start().await;
    let metadata: Value = reqwest::get(idp.url("/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let methods = metadata["token_endpoint_auth_methods_supported"].to_string();
    assert!(methods.contains("private_key_jwt"), "{methods}");
    let algs = metadata["token_endpoint_auth_signing_alg_values_supported"].to_string();
    assert!(algs.contains("RS256") && !algs.contains("HS256"), "{algs}");
}

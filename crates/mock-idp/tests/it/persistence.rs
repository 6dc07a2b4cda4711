//! What survives a restart of the IdP on the same database, a SQLite file
//! or a PostgreSQL database: the signing key (so issued tokens stay valid),
//! registered users, consents and the record of issued access tokens.

use test_case::test_case;
use testkit::{
    ALL_SCOPES, REDIRECT_URI,
    database::Engine,
    http_client,
    idp::{
        AuthRequest, Idp, Tokens, authorize, consent, exchange_code, jwks, published_kids, refresh,
        register, submit_sign_in, userinfo_status, verify_with_jwks,
    },
    location, query_of,
};

#[test_case(Engine::Sqlite ; "sqlite")]
#[test_case(Engine::Postgres ; "postgres")]
#[tokio::test]
async fn restart_on_the_same_store_keeps_keys_users_consents_and_tokens(engine: Engine) {
    // The database goes when the test ends, pass or fail.
    let Some(db) = engine.database().await else {
        return;
    };
    let url = db.url();
    let email = format!(
        "erin-{}@example.com",
        testkit::random_string().to_lowercase()
    );
    let password = "erin's long password";

    // First life: register Erin, consent, get tokens.
    let mut first = Idp::start_on_store(mock_idp::Settings::demo(), url).await;
    let kid = published_kids(&first).await;
    assert_eq!(kid.len(), 1);
    let browser = http_client();
    let params = AuthRequest::demo(ALL_SCOPES);
    let signin = location(&authorize(&browser, &params.url(&first)).await);
    let signup = signin.replace("/signin?", "/signup?");
    let response = register(&browser, &signup, &email, password, "Erin Example").await;
    let response = consent(&browser, &location(&response), "allow").await;
    let code = query_of(&location(&response))["code"].clone();
    let tokens: Tokens = exchange_code(&first, &code, &params.verifier)
        .await
        .json()
        .await
        .unwrap();
    first.shutdown().await;
    drop(first);

    // Second life, on the same database.
    let second = Idp::start_on_store(mock_idp::Settings::demo(), url).await;
    assert_eq!(
        published_kids(&second).await,
        kid,
        "the same signing key is published"
    );
    // The new issuer differs (a new port), so check the old token against
    // the new JWKS with the issuer it was minted under.
    let jwks = jwks(&second).await;
    let header = jsonwebtoken::decode_header(&tokens.access_token).unwrap();
    let jwk = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("the old kid is in the new JWKS");
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_audience(&["api://default"]);
    jsonwebtoken::decode::<serde_json::Value>(
        &tokens.access_token,
        &jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap(),
        &validation,
    )
    .expect("a token of the first life verifies against the second's JWKS");

    // Refresh tokens are kept too (as digests): the old one still works.
    let refreshed = refresh(&second, tokens.refresh_token.as_deref().unwrap()).await;
    assert_eq!(refreshed.status(), 200, "a refresh token of the first life");

    // Erin signs in again; her consent is remembered (no consent page).
    let fresh = http_client();
    let params = AuthRequest::demo(ALL_SCOPES);
    let signin = location(&authorize(&fresh, &params.url(&second)).await);
    let response = submit_sign_in(&fresh, &signin, &email, password).await;
    let callback = location(&response);
    assert!(
        callback.starts_with(REDIRECT_URI),
        "no consent page after the restart: {callback}"
    );
    let code = query_of(&callback)["code"].clone();
    let tokens = exchange_code(&second, &code, &params.verifier).await;
    assert_eq!(tokens.status(), 200);
    let tokens: Tokens = tokens.json().await.unwrap();
    let (header, _) = verify_with_jwks(&second, &tokens.access_token, "api://default").await;
    assert_eq!(
        header.kid.as_deref(),
        Some(kid[0].as_str()),
        "still signing with the same key"
    );
    assert_eq!(userinfo_status(&second, &tokens.access_token).await, 200);
}

//! A strict third-party client against the real IdP: the `openidconnect`
//! crate does discovery, builds the authorization request (PKCE S256,
//! nonce), exchanges the code, verifies the ID token (signature from the
//! JWKS, `iss`, `aud`, `exp`, nonce, at_hash) and calls userinfo, each the
//! way OIDC Core 3.1.3.7 and 5.3 ask a client to. If the IdP bends a rule,
//! this client says so.

use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
    core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims},
    reqwest,
};
use testkit::{
    ALICE, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, http_client,
    idp::{Idp, browse_to_callback},
    query_of,
};

#[tokio::test]
async fn strict_openidconnect_client_completes_the_code_flow_with_pkce_nonce_and_at_hash_oidc_core_3_1_3_7()
 {
    let idp = Idp::start().await;
    // Following redirects from the back channel opens a client to SSRF.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // Discovery: the metadata must parse and name this very issuer.
    let issuer = IssuerUrl::new(idp.issuer.clone()).unwrap();
    let metadata = CoreProviderMetadata::discover_async(issuer, &http)
        .await
        .expect("discovery document and JWKS a strict client accepts");
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(CLIENT_ID.into()),
        Some(ClientSecret::new(CLIENT_SECRET.into())),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT_URI.into()).unwrap());

    // Step 2: the authorization request, PKCE S256 and a nonce.
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (authorize_url, state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("notes:read".into()))
        .set_pkce_challenge(challenge)
        .url();

    // Steps 3-5 in a browser.
    let callback = browse_to_callback(&http_client(), &idp, authorize_url.as_str(), &ALICE).await;
    assert!(callback.starts_with(REDIRECT_URI), "{callback}");
    let answer = query_of(&callback);
    assert_eq!(&answer["state"], state.secret(), "state comes back");
    assert_eq!(answer["iss"], idp.issuer, "RFC 9207 iss comes back");

    // Steps 6-8.
    let tokens = client
        .exchange_code(AuthorizationCode::new(answer["code"].clone()))
        .expect("token endpoint in the metadata")
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("the token response a strict client accepts");

    // OIDC Core 3.1.3.7: the ID token, with the nonce of this request.
    let id_token = tokens.id_token().expect("an ID token for scope openid");
    let id_verifier = client.id_token_verifier();
    let claims = id_token
        .claims(&id_verifier, &nonce)
        .expect("the ID token verifies");
    assert_eq!(claims.issuer().as_str(), idp.issuer);
    assert_eq!(claims.audiences().len(), 1);
    assert_eq!(claims.audiences()[0].as_str(), CLIENT_ID);
    assert_eq!(claims.email().map(|e| e.as_str()), Some(ALICE.username));
    assert!(claims.auth_time().is_some(), "auth_time");

    // The same ID token with another nonce is refused: the check is real.
    assert!(
        id_token
            .claims(&id_verifier, &Nonce::new("another-nonce".into()))
            .is_err(),
        "a wrong nonce was accepted"
    );

    // OIDC Core 3.1.3.6: at_hash binds the access token to the ID token.
    let expected = claims.access_token_hash().expect("at_hash in the ID token");
    let actual = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&id_verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(&actual, expected, "at_hash matches the access token");

    // OIDC Core 5.3: userinfo, for the subject of the ID token only.
    let userinfo: CoreUserInfoClaims = client
        .user_info(
            tokens.access_token().clone(),
            Some(claims.subject().clone()),
        )
        .expect("userinfo endpoint in the metadata")
        .request_async(&http)
        .await
        .expect("userinfo a strict client accepts");
    assert_eq!(userinfo.subject(), claims.subject());
    assert_eq!(userinfo.email().map(|e| e.as_str()), Some(ALICE.username));
    assert!(userinfo.name().is_some(), "profile scope releases the name");
}

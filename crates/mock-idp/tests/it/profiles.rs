//! Provider profiles (`--profile`): each reproduces, over HTTP, what its
//! provider does where clients break (sources in `mock_idp::profile`). The
//! BFF's side of each is in `crates/bff/tests/it/providers.rs`.

use mock_idp::profile::{ENTRA_TENANT, Profile};
use serde_json::Value;
use testkit::{
    ALICE, ALL_SCOPES, CLIENT_ID, claims_of, header_of,
    idp::{AuthRequest, Idp, Tokens, code_as, exchange_code, post_as_bff, refresh},
};

async fn idp(profile: Profile) -> Idp {
    let mut settings = mock_idp::Settings::demo();
    settings.profile = profile;
    Idp::start_with(settings).await
}

async fn discovery(idp: &Idp) -> Value {
    reqwest::get(idp.url("/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Alice's tokens for `request`, exchanged by `bff-demo`.
async fn tokens(idp: &Idp, request: AuthRequest) -> Tokens {
    let code = code_as(idp, &request, &ALICE).await;
    let response = exchange_code(idp, &code, &request.verifier).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn each_profile_publishes_its_providers_issuer_and_endpoints() {
    for (profile, issuer_ends, end_session, backchannel) in [
        (Profile::Plain, "/oauth2/default", true, true),
        (Profile::Okta, "/oauth2/default", true, false),
        (
            Profile::Entra,
            &format!("/{ENTRA_TENANT}/v2.0") as &str,
            true,
            false,
        ),
        (Profile::Auth0, "/", true, true),
        (Profile::Keycloak, "/realms/demo", true, true),
        (Profile::Google, "", false, false),
    ] {
        let idp = idp(profile).await;
        let metadata = discovery(&idp).await;
        let issuer = metadata["issuer"].as_str().unwrap();
        assert_eq!(issuer, idp.issuer, "{profile:?}");
        assert_eq!(
            issuer,
            format!("{}{issuer_ends}", idp.base_url),
            "{profile:?}"
        );
        assert!(
            !metadata["token_endpoint"]
                .as_str()
                .unwrap()
                .contains("//v1"),
            "{profile:?}"
        );
        assert_eq!(
            metadata.get("end_session_endpoint").is_some(),
            end_session,
            "{profile:?}"
        );
        assert_eq!(
            metadata["backchannel_logout_supported"], backchannel,
            "{profile:?}"
        );
    }
}

#[tokio::test]
async fn entra_issues_its_tokens_five_minutes_in_the_past() {
    let idp = idp(Profile::Entra).await;
    let tokens = tokens(&idp, AuthRequest::demo(ALL_SCOPES)).await;
    let now = idp.time.now();
    for token in [&tokens.access_token, tokens.id_token.as_ref().unwrap()] {
        let claims = claims_of(token);
        assert_eq!(claims["iat"], now - 300);
        assert_eq!(claims["nbf"], now - 300);
        assert!(
            claims["exp"].as_i64().unwrap() > now + 200,
            "exp from the real time"
        );
    }
}

#[tokio::test]
async fn entra_refuses_a_refresh_without_its_scope() {
    let idp = idp(Profile::Entra).await;
    let tokens = tokens(&idp, AuthRequest::demo(ALL_SCOPES)).await;
    let refresh_token = tokens.refresh_token.unwrap();
    let bare = refresh(&idp, &refresh_token).await;
    assert_eq!(bare.status(), 400);
    let error: Value = bare.json().await.unwrap();
    assert_eq!(error["error"], "invalid_request");
    // With the scope, a new refresh token; the old one still works (no
    // reuse detection).
    let first: Tokens = refresh_with_scope(&idp, &refresh_token)
        .await
        .json()
        .await
        .unwrap();
    assert_ne!(first.refresh_token.as_deref(), Some(refresh_token.as_str()));
    let again = refresh_with_scope(&idp, &refresh_token).await;
    assert_eq!(again.status(), 200, "the old one, again");
}

async fn refresh_with_scope(idp: &Idp, token: &str) -> reqwest::Response {
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", token),
        ("scope", ALL_SCOPES),
    ];
    post_as_bff(idp, "/v1/token", &form).await
}

#[tokio::test]
async fn each_profile_refreshes_as_its_provider_does() {
    for (profile, expect) in [
        (Profile::Plain, "new, old one revoked"),
        (Profile::Okta, "same"),
        (Profile::Keycloak, "new, old one valid"),
        (Profile::Auth0, "none"),
        (Profile::Google, "none"),
    ] {
        let idp = idp(profile).await;
        let request = AuthRequest::demo(ALL_SCOPES).set("access_type", "offline");
        let old = tokens(&idp, request).await.refresh_token.unwrap();
        let answer: Value = refresh(&idp, &old).await.json().await.unwrap();
        let new = answer["refresh_token"].as_str();
        let again = refresh(&idp, &old).await.status();
        let seen = match (new, again.as_u16()) {
            (Some(new), 400) if new != old => "new, old one revoked",
            (Some(new), 200) if new != old => "new, old one valid",
            (Some(_), 200) => "same",
            (None, 200) => "none",
            other => panic!("{profile:?}: {other:?}"),
        };
        assert_eq!(seen, expect, "{profile:?}");
        assert!(answer["access_token"].is_string(), "{profile:?}");
    }
}

#[tokio::test]
async fn keycloak_refresh_tokens_are_jwts_signed_with_an_unpublished_key() {
    let idp = idp(Profile::Keycloak).await;
    let tokens = tokens(&idp, AuthRequest::demo(ALL_SCOPES)).await;
    let refresh_token = tokens.refresh_token.unwrap();
    assert_eq!(header_of(&refresh_token)["alg"], "HS512");
    let claims = claims_of(&refresh_token);
    assert_eq!(claims["typ"], "Refresh");
    assert_eq!(claims["azp"], CLIENT_ID);
}

#[tokio::test]
async fn auth0_sends_updated_at_as_an_iso_8601_string_and_the_others_as_seconds() {
    for (profile, is_string) in [(Profile::Auth0, true), (Profile::Plain, false)] {
        let idp = idp(profile).await;
        let tokens = tokens(&idp, AuthRequest::demo(ALL_SCOPES)).await;
        let id = claims_of(tokens.id_token.as_deref().unwrap());
        assert_eq!(id["updated_at"].is_string(), is_string, "{profile:?}: {id}");
        assert_eq!(id["updated_at"].is_i64(), !is_string, "{profile:?}");
    }
}

#[tokio::test]
async fn google_gives_a_refresh_token_for_access_type_offline_only() {
    let idp = idp(Profile::Google).await;
    let online = tokens(&idp, AuthRequest::demo(ALL_SCOPES)).await;
    assert!(
        online.refresh_token.is_none(),
        "offline_access alone is not enough"
    );
    let offline = tokens(
        &idp,
        AuthRequest::demo(ALL_SCOPES).set("access_type", "offline"),
    )
    .await;
    assert!(offline.refresh_token.is_some());
}

#[tokio::test]
async fn okta_refuses_a_logout_without_id_token_hint() {
    let idp = idp(Profile::Okta).await;
    let response = reqwest::get(idp.url(&format!("/v1/logout?client_id={CLIENT_ID}")))
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("id_token_hint"));
}

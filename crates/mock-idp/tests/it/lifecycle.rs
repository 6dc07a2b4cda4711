//! What happens to tokens after step 8: refresh with rotation and reuse
//! detection, revocation (RFC 7009), introspection (RFC 7662), per-client
//! lifetimes, and signing key rotation.

use std::time::Duration;

use serde_json::{Value, json};
use test_case::test_case;
use testkit::{
    ALICE, ALL_SCOPES, CLIENT_ID, NATIVE_REDIRECT_URI, claims_of,
    database::Engine,
    idp::{
        AuthRequest, Idp, Tokens, code_as, introspect, is_active, login, post_as_bff,
        post_as_native, published_kids, refresh, refreshed, revoke, userinfo_status,
        verify_with_jwks,
    },
};

use crate::common::assert_token_error;

/// Alice's tokens for the demo client, with a refresh token.
async fn alice(idp: &Idp) -> (Tokens, String) {
    let tokens = login(idp, &ALICE, ALL_SCOPES).await;
    let refresh_token = tokens
        .refresh_token
        .clone()
        .expect("offline_access gives a refresh token");
    (tokens, refresh_token)
}

fn settings(change: impl FnOnce(&mut mock_idp::Settings)) -> mock_idp::Settings {
    let mut settings = mock_idp::Settings::demo();
    change(&mut settings);
    settings
}

// ---- refresh: rotation and reuse detection ----------------------------------

#[tokio::test]
async fn refresh_rotates_the_refresh_token_on_every_use_rfc9700_4_14_2() {
    let idp = Idp::start().await;
    let (tokens, rt0) = alice(&idp).await;
    let first = refreshed(&idp, &rt0).await;
    let rt1 = first.refresh_token.clone().expect("a new refresh token");
    let second = refreshed(&idp, &rt1).await;
    let rt2 = second.refresh_token.clone().expect("a new refresh token");
    assert!(
        rt0 != rt1 && rt1 != rt2 && rt0 != rt2,
        "a refresh token was handed out twice"
    );
    assert_ne!(first.access_token, tokens.access_token);
    assert_ne!(second.access_token, first.access_token);
    // A used refresh token is spent; the newest one is live.
    assert!(!is_active(&idp, &rt0).await);
    assert!(!is_active(&idp, &rt1).await);
    assert!(is_active(&idp, &rt2).await);
    // The refreshed ID token has no nonce (OIDC Core 12.2) and the same subject.
    let id = claims_of(
        second
            .id_token
            .as_deref()
            .expect("openid gives an ID token"),
    );
    assert!(id.get("nonce").is_none());
    assert_eq!(id["sub"], claims_of(&tokens.access_token)["sub"]);
}

#[test_case(Engine::Sqlite ; "sqlite")]
#[test_case(Engine::Postgres ; "postgres")]
#[tokio::test]
async fn reused_rotated_refresh_token_revokes_the_whole_family_rfc9700_4_14_2(engine: Engine) {
    let Some(db) = engine.database().await else {
        return;
    };
    let idp = Idp::start_on_store(mock_idp::Settings::demo(), db.url()).await;
    let (tokens, rt0) = alice(&idp).await;
    let first = refreshed(&idp, &rt0).await;
    let second = refreshed(&idp, first.refresh_token.as_deref().unwrap()).await;
    let newest = second.refresh_token.clone().unwrap();
    assert!(is_active(&idp, &newest).await);

    // The attacker replays the refresh token they stole before it rotated.
    assert_token_error(refresh(&idp, &rt0).await, 400, "invalid_grant").await;

    // The legitimate client's newest tokens die with it.
    assert!(
        !is_active(&idp, &newest).await,
        "newest refresh token survived the reuse"
    );
    for access_token in [
        &tokens.access_token,
        &first.access_token,
        &second.access_token,
    ] {
        assert!(
            !is_active(&idp, access_token).await,
            "an access token of the family survived"
        );
    }
    assert_eq!(userinfo_status(&idp, &second.access_token).await, 401);
    assert_token_error(refresh(&idp, &newest).await, 400, "invalid_grant").await;
}

#[tokio::test]
async fn reuse_within_the_grace_period_returns_the_same_pair_and_keeps_the_family_rfc9700_4_14_2() {
    let idp = Idp::start_with(settings(|s| s.tokens.refresh_token_reuse_grace_seconds = 5)).await;
    let (_, rt0) = alice(&idp).await;
    let first = refreshed(&idp, &rt0).await;
    // Two racing requests of the same client: the second gets the same answer.
    let again = refreshed(&idp, &rt0).await;
    assert_eq!(again.access_token, first.access_token, "same access token");
    assert_eq!(
        again.refresh_token, first.refresh_token,
        "same refresh token"
    );
    // The family lives on.
    let rt1 = first.refresh_token.clone().unwrap();
    assert!(is_active(&idp, &first.access_token).await);
    assert!(is_active(&idp, &rt1).await);
    let next = refreshed(&idp, &rt1).await;
    assert!(is_active(&idp, next.refresh_token.as_deref().unwrap()).await);
}

#[tokio::test]
async fn reuse_after_the_grace_period_revokes_the_family_rfc9700_4_14_2() {
    let idp = Idp::start_with(settings(|s| {
        s.tokens.refresh_token_reuse_grace_seconds = 30
    }))
    .await;
    let (_, rt0) = alice(&idp).await;
    let first = refreshed(&idp, &rt0).await;
    let rt1 = first.refresh_token.clone().unwrap();
    idp.time.advance(Duration::from_secs(31));
    assert_token_error(refresh(&idp, &rt0).await, 400, "invalid_grant").await;
    assert!(
        !is_active(&idp, &rt1).await,
        "the family survived a reuse after the grace"
    );
    assert!(!is_active(&idp, &first.access_token).await);
    assert_token_error(refresh(&idp, &rt1).await, 400, "invalid_grant").await;
}

#[test_case(Engine::Sqlite ; "sqlite")]
#[test_case(Engine::Postgres ; "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_token_reused_while_it_rotates_still_revokes_the_new_tokens_rfc9700_4_14_2(
    engine: Engine,
) {
    let Some(db) = engine.database().await else {
        return;
    };
    // Attacker and client present the same refresh token at once: the reuse
    // must also kill the pair the other request is minting at that moment.
    // (On PostgreSQL, before the family's lock, one round in three or so
    // let the new refresh token live.)
    let idp = Idp::start_on_store(mock_idp::Settings::demo(), db.url()).await;
    for _ in 0..25 {
        let (_, rt) = alice(&idp).await;
        let (a, b) = tokio::join!(refresh(&idp, &rt), refresh(&idp, &rt));
        let mut issued = Vec::new();
        for response in [a, b] {
            if response.status() == 200 {
                issued.push(response.json::<Tokens>().await.unwrap());
            } else {
                assert_token_error(response, 400, "invalid_grant").await;
            }
        }
        assert!(issued.len() <= 1, "one refresh token rotated twice");
        for tokens in issued {
            assert!(
                !is_active(&idp, &tokens.access_token).await,
                "access token survived the reuse"
            );
            let newest = tokens.refresh_token.expect("refresh token");
            assert!(
                !is_active(&idp, &newest).await,
                "refresh token survived the reuse"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_refreshes_within_the_grace_period_both_get_the_same_pair_rfc9700_4_14_2() {
    // What the grace period is for: two requests of the client in flight at
    // once (two tabs, a retry) must not look like theft.
    let idp = Idp::start_with(settings(|s| s.tokens.refresh_token_reuse_grace_seconds = 5)).await;
    for _ in 0..10 {
        let (_, rt) = alice(&idp).await;
        let (a, b) = tokio::join!(refresh(&idp, &rt), refresh(&idp, &rt));
        assert_eq!(
            (a.status().as_u16(), b.status().as_u16()),
            (200, 200),
            "a racing refresh was refused"
        );
        let (a, b): (Tokens, Tokens) = (a.json().await.unwrap(), b.json().await.unwrap());
        assert_eq!(a.access_token, b.access_token);
        assert_eq!(a.refresh_token, b.refresh_token);
        assert!(
            is_active(&idp, a.refresh_token.as_deref().unwrap()).await,
            "the family died"
        );
    }
}

#[tokio::test]
async fn refresh_token_of_bff_demo_presented_by_native_demo_is_invalid_grant_rfc6749_10_4() {
    let idp = Idp::start().await;
    let (_, rt) = alice(&idp).await;
    let response = post_as_native(
        &idp,
        "/v1/token",
        &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
    )
    .await;
    assert_token_error(response, 400, "invalid_grant").await;
}

#[tokio::test]
async fn refresh_may_narrow_the_scope_and_keeps_the_grant_rfc6749_6() {
    let idp = Idp::start().await;
    let (_, rt) = alice(&idp).await;
    let response = post_as_bff(
        &idp,
        "/v1/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt),
            ("scope", "openid notes:read"),
        ],
    )
    .await;
    assert_eq!(response.status(), 200);
    let narrow: Tokens = response.json().await.unwrap();
    assert_eq!(narrow.scope, "openid notes:read");
    let (_, at) = verify_with_jwks(&idp, &narrow.access_token, "api://default").await;
    assert_eq!(
        at["scope"], "openid notes:read",
        "the access token is narrower"
    );
    // The grant itself is unchanged: without `scope`, all of it again.
    let full = refreshed(
        &idp,
        narrow
            .refresh_token
            .as_deref()
            .expect("still a refresh token"),
    )
    .await;
    assert_eq!(full.scope, ALL_SCOPES);
}

#[tokio::test]
async fn refresh_that_widens_the_scope_is_invalid_scope_rfc6749_6() {
    let idp = Idp::start().await;
    let tokens = login(&idp, &ALICE, "openid offline_access notes:read").await;
    let rt = tokens.refresh_token.unwrap();
    for wider in [
        "openid offline_access notes:read notes:write",
        "notes:write",
        "admin",
    ] {
        let response = post_as_bff(
            &idp,
            "/v1/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &rt),
                ("scope", wider),
            ],
        )
        .await;
        assert_token_error(response, 400, "invalid_scope").await;
    }
}

#[tokio::test]
async fn idle_refresh_token_expires_rfc9700_4_14_2() {
    let idp = Idp::start().await;
    let (_, rt) = alice(&idp).await;
    // Default idle lifetime: a day without use.
    idp.time.advance(Duration::from_secs(86_399));
    assert!(is_active(&idp, &rt).await, "alive until its idle lifetime");
    idp.time.advance(Duration::from_secs(1));
    assert!(!is_active(&idp, &rt).await);
    assert_token_error(refresh(&idp, &rt).await, 400, "invalid_grant").await;
}

#[tokio::test]
async fn per_client_access_token_lifetime_shows_in_expires_in_and_exp_rfc6749_5_1() {
    let idp = Idp::start_with(settings(|s| s.clients[0].access_token_seconds = Some(2))).await;
    let (tokens, rt) = alice(&idp).await;
    assert_eq!(tokens.expires_in, 2);
    let at = claims_of(&tokens.access_token);
    assert_eq!(at["exp"].as_i64().unwrap() - at["iat"].as_i64().unwrap(), 2);
    let again = refreshed(&idp, &rt).await;
    assert_eq!(again.expires_in, 2, "refreshed tokens too");

    // Only that client: the public client keeps the default.
    let native = AuthRequest::native("openid");
    let code = code_as(&idp, &native, &ALICE).await;
    let response = post_as_native(
        &idp,
        "/v1/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", NATIVE_REDIRECT_URI),
            ("code_verifier", &native.verifier),
        ],
    )
    .await;
    let native_tokens: Tokens = response.json().await.unwrap();
    assert_eq!(native_tokens.expires_in, 300);
}

// ---- revocation (RFC 7009) ------------------------------------------------------

#[test_case(Engine::Sqlite ; "sqlite")]
#[test_case(Engine::Postgres ; "postgres")]
#[tokio::test]
async fn revoking_a_refresh_token_revokes_its_family_and_access_tokens_rfc7009_2_1(engine: Engine) {
    let Some(db) = engine.database().await else {
        return;
    };
    let idp = Idp::start_on_store(mock_idp::Settings::demo(), db.url()).await;
    let (tokens, rt0) = alice(&idp).await;
    let first = refreshed(&idp, &rt0).await;
    let rt1 = first.refresh_token.clone().unwrap();
    let response = revoke(&idp, &rt1).await;
    assert_eq!(response.status(), 200);
    assert!(!is_active(&idp, &rt1).await);
    assert!(!is_active(&idp, &first.access_token).await);
    assert!(
        !is_active(&idp, &tokens.access_token).await,
        "an older access token of the family"
    );
    assert_eq!(userinfo_status(&idp, &first.access_token).await, 401);
    assert_token_error(refresh(&idp, &rt1).await, 400, "invalid_grant").await;
}

#[tokio::test]
async fn revoking_an_access_token_makes_it_inactive_rfc7009_2_1() {
    let idp = Idp::start().await;
    let (tokens, _) = alice(&idp).await;
    let response = post_as_bff(
        &idp,
        "/v1/revoke",
        &[
            ("token", &tokens.access_token),
            ("token_type_hint", "access_token"),
        ],
    )
    .await;
    assert_eq!(response.status(), 200);
    assert!(!is_active(&idp, &tokens.access_token).await);
    assert_eq!(userinfo_status(&idp, &tokens.access_token).await, 401);

    // Without a hint too.
    let (other, _) = alice(&idp).await;
    assert_eq!(revoke(&idp, &other.access_token).await.status(), 200);
    assert!(!is_active(&idp, &other.access_token).await);
}

#[tokio::test]
async fn revoking_an_unknown_token_answers_200_rfc7009_2_2() {
    let idp = Idp::start().await;
    for token in [
        testkit::random_string(),
        "eyJhbGciOiJub25lIn0.e30.".to_owned(),
        "x".repeat(500),
    ] {
        let response = revoke(&idp, &token).await;
        assert_eq!(response.status(), 200, "{token}");
        assert_eq!(response.headers()["cache-control"], "no-store");
    }
}

#[tokio::test]
async fn revoking_another_clients_token_answers_200_and_leaves_it_active_rfc7009_2_1() {
    let idp = Idp::start().await;
    let (tokens, rt) = alice(&idp).await;
    for token in [&tokens.access_token, &rt] {
        let response = post_as_native(&idp, "/v1/revoke", &[("token", token)]).await;
        assert_eq!(
            response.status(),
            200,
            "the answer tells the other client nothing"
        );
        assert!(
            is_active(&idp, token).await,
            "another client revoked bff-demo's token"
        );
    }
}

#[tokio::test]
async fn revocation_without_client_authentication_is_401_rfc7009_2_1() {
    let idp = Idp::start().await;
    let (tokens, rt) = alice(&idp).await;
    for token in [&tokens.access_token, &rt] {
        let response = reqwest::Client::new()
            .post(idp.url("/v1/revoke"))
            .form(&[("token", token.as_str())])
            .send()
            .await
            .unwrap();
        assert_token_error(response, 401, "invalid_client").await;
        assert!(
            is_active(&idp, token).await,
            "revoked without client authentication"
        );
    }
    let wrong_secret = reqwest::Client::new()
        .post(idp.url("/v1/revoke"))
        .basic_auth(CLIENT_ID, Some("not-the-secret"))
        .form(&[("token", rt.as_str())])
        .send()
        .await
        .unwrap();
    assert_token_error(wrong_secret, 401, "invalid_client").await;
    assert!(is_active(&idp, &rt).await);
}

// ---- introspection (RFC 7662) ---------------------------------------------------

#[tokio::test]
async fn introspection_without_client_authentication_is_401_rfc7662_2_1() {
    let idp = Idp::start().await;
    let (tokens, _) = alice(&idp).await;
    let anonymous = reqwest::Client::new()
        .post(idp.url("/v1/introspect"))
        .form(&[("token", tokens.access_token.as_str())])
        .send()
        .await
        .unwrap();
    let body = assert_token_error(anonymous, 401, "invalid_client").await;
    assert!(body.get("active").is_none(), "nothing about the token");
    let wrong_secret = reqwest::Client::new()
        .post(idp.url("/v1/introspect"))
        .basic_auth(CLIENT_ID, Some("guess"))
        .form(&[("token", tokens.access_token.as_str())])
        .send()
        .await
        .unwrap();
    assert_token_error(wrong_secret, 401, "invalid_client").await;
}

#[tokio::test]
async fn introspection_by_a_public_client_is_refused_rfc7662_2_1() {
    let idp = Idp::start().await;
    let (tokens, _) = alice(&idp).await;
    let response = post_as_native(&idp, "/v1/introspect", &[("token", &tokens.access_token)]).await;
    let body = assert_token_error(response, 401, "invalid_client").await;
    assert!(body.get("active").is_none());
}

#[tokio::test]
async fn introspection_of_an_active_token_returns_its_claims_rfc7662_2_2() {
    let idp = Idp::start().await;
    let (tokens, rt) = alice(&idp).await;
    let answer = introspect(&idp, &tokens.access_token).await;
    let at = claims_of(&tokens.access_token);
    assert_eq!(answer["active"], true);
    for claim in [
        "iss",
        "sub",
        "aud",
        "exp",
        "iat",
        "jti",
        "client_id",
        "scope",
    ] {
        assert_eq!(answer[claim], at[claim], "{claim}");
    }
    assert_eq!(answer["client_id"], CLIENT_ID);
    assert_eq!(answer["scope"], ALL_SCOPES);

    let answer = introspect(&idp, &rt).await;
    assert_eq!(answer["active"], true);
    assert_eq!(answer["client_id"], CLIENT_ID);
    assert_eq!(answer["sub"], at["sub"]);
    assert_eq!(answer["scope"], ALL_SCOPES);
    assert!(answer["exp"].as_i64().is_some());
}

#[tokio::test]
async fn introspection_of_expired_revoked_malformed_or_random_tokens_is_only_inactive_rfc7662_2_2()
{
    let idp = Idp::start().await;
    let (expiring, _) = alice(&idp).await;
    let (revoked, revoked_rt) = alice(&idp).await;
    assert_eq!(revoke(&idp, &revoked_rt).await.status(), 200);
    // The access tokens' default lifetime, five minutes, is over.
    idp.time.advance(Duration::from_secs(300));
    for token in [
        expiring.access_token.clone(),
        revoked.access_token.clone(),
        revoked_rt,
        "not.a.jwt".to_owned(),
        format!("{}x", expiring.access_token),
        testkit::random_string(),
    ] {
        // is_active checks that an inactive answer is {"active": false}, alone.
        assert!(!is_active(&idp, &token).await, "{token} is active");
    }
}

#[tokio::test]
async fn only_a_token_the_idp_issued_introspects_active_rfc7662_4() {
    let idp = Idp::start().await;
    let (tokens, _) = alice(&idp).await;
    assert!(is_active(&idp, &tokens.access_token).await);
    // The same claims signed again by the IdP's own key are not the token it
    // issued (it knows its tokens by their digest), nor is one for another
    // audience, nor an ID token.
    let mut claims: Value = claims_of(&tokens.access_token);
    let copy = idp.sign("at+jwt", &claims);
    claims["aud"] = json!("other");
    let other_audience = idp.sign("at+jwt", &claims);
    for token in [&copy, &other_audience, tokens.id_token.as_ref().unwrap()] {
        assert!(!is_active(&idp, token).await, "{token} is active");
    }
}

// ---- signing key rotation -----------------------------------------------------------

#[tokio::test]
async fn after_key_rotation_old_and_new_tokens_both_verify_against_the_jwks_oidc_core_10_1_1() {
    let idp = Idp::start().await;
    let (old, _) = alice(&idp).await;
    let old_kid = published_kids(&idp).await;
    let new_kid = idp.rotate_keys().await;
    let (new, _) = alice(&idp).await;

    let kids = published_kids(&idp).await;
    assert_eq!(kids.len(), 2, "both keys published: {kids:?}");
    assert!(kids.contains(&old_kid[0]) && kids.contains(&new_kid));
    let (old_header, _) = verify_with_jwks(&idp, &old.access_token, "api://default").await;
    let (new_header, _) = verify_with_jwks(&idp, &new.access_token, "api://default").await;
    assert_eq!(old_header.kid.as_deref(), Some(old_kid[0].as_str()));
    assert_eq!(
        new_header.kid.as_deref(),
        Some(new_kid.as_str()),
        "the new key signs"
    );
    verify_with_jwks(&idp, old.id_token.as_deref().unwrap(), CLIENT_ID).await;
    verify_with_jwks(&idp, new.id_token.as_deref().unwrap(), CLIENT_ID).await;
    assert_eq!(userinfo_status(&idp, &old.access_token).await, 200);
    assert_eq!(userinfo_status(&idp, &new.access_token).await, 200);
}

#[tokio::test]
async fn retired_key_leaves_the_jwks_once_its_tokens_expired_oidc_core_10_1_1() {
    // Tokens live 300 s; a retired key stays 300 s more (the margin).
    let idp = Idp::start().await;
    let old_kid = published_kids(&idp).await;
    let (old, _) = alice(&idp).await;
    let new_kid = idp.rotate_keys().await;
    idp.time.advance(Duration::from_secs(599));
    assert!(
        published_kids(&idp).await.contains(&old_kid[0]),
        "the old key left while a token it signed could still be in use"
    );
    assert!(claims_of(&old.access_token)["exp"].as_i64().unwrap() < idp.time.now());
    idp.time.advance(Duration::from_secs(1));
    assert_eq!(
        published_kids(&idp).await,
        vec![new_kid],
        "only the new key is left"
    );
    // And the IdP still signs and verifies with the new key.
    let (tokens, _) = alice(&idp).await;
    assert_eq!(userinfo_status(&idp, &tokens.access_token).await, 200);
}

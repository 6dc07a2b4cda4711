//! The issuer's keys over time (step 10): rotation is picked up without a
//! restart, the IdP being down leaves cached keys working, and a flood of
//! made-up `kid`s cannot make the API hammer the IdP. Time is the test's
//! clock: the cache's lifetimes pass without waiting.

use std::time::Duration;

use testkit::{
    api::{Api, access_claims},
    header_of,
    idp::Idp,
};

use crate::common::{AttackerKey, assert_invalid_token, at_jwt_header};

#[tokio::test]
async fn key_rotation_at_the_idp_is_picked_up_without_a_restart_oidc_core_10_1_1() {
    let idp = Idp::start().await;
    let api = Api::start_with_args(&idp, &["--jwks-min-refetch-seconds", "1"]).await;
    let old = idp.sign("at+jwt", &access_claims(&idp));
    assert_eq!(api.me(&old).await.status(), 200);

    idp.rotate_keys().await;
    let new = idp.sign("at+jwt", &access_claims(&idp));
    assert_ne!(
        header_of(&old)["kid"],
        header_of(&new)["kid"],
        "rotation made a new kid"
    );
    // Past the refetch rate limit, the unknown kid makes the API fetch again.
    idp.time.advance(Duration::from_secs(1));
    assert_eq!(api.me(&new).await.status(), 200);
}

#[tokio::test]
async fn the_idp_being_down_leaves_cached_keys_working() {
    let mut idp = Idp::start().await;
    // Keys go stale after 1 s, so the API tries (and fails) to refetch them.
    let api = Api::start_with_args(
        &idp,
        &["--jwks-ttl-seconds", "1", "--jwks-min-refetch-seconds", "1"],
    )
    .await;
    let first = idp.sign("at+jwt", &access_claims(&idp));
    // A second token, never seen by the API: it cannot come from the
    // verified-token cache, so its signature is checked with the cached key.
    let second = idp.sign("at+jwt", &access_claims(&idp));
    assert_eq!(api.me(&first).await.status(), 200);

    idp.shutdown().await;
    idp.time.advance(Duration::from_secs(1));
    assert_eq!(api.me(&second).await.status(), 200);
    assert_eq!(api.me(&first).await.status(), 200);
}

#[tokio::test]
async fn the_api_starts_without_the_idp_and_says_so_until_it_has_keys() {
    let mut idp = Idp::start().await;
    let token = idp.sign("at+jwt", &access_claims(&idp));
    idp.shutdown().await;
    let api = Api::start(&idp).await;

    let health = testkit::http_client()
        .get(format!("{}/healthz", api.base_url))
        .send()
        .await
        .expect("answer");
    assert_eq!(health.status(), 200);
    let response = api.me(&token).await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn a_flood_of_unknown_kids_causes_at_most_one_refetch_per_window_rfc8725_3_10() {
    let idp = Idp::start().await;
    let api = Api::start_with_args(&idp, &["--jwks-min-refetch-seconds", "1"]).await;
    let good = idp.sign("at+jwt", &access_claims(&idp));
    assert_eq!(api.me(&good).await.status(), 200);
    assert_eq!(
        api.state.jwks_fetch_count(),
        1,
        "the first token fetched the JWKS once"
    );

    // Within the window of that fetch: made-up kids fetch nothing.
    let attacker = AttackerKey::generate();
    flood(&api, &attacker, &idp, "early").await;
    assert_eq!(
        api.state.jwks_fetch_count(),
        1,
        "refetched inside the rate-limit window"
    );

    // Once the window has passed: a flood causes one refetch, not fifty.
    idp.time.advance(Duration::from_secs(1));
    flood(&api, &attacker, &idp, "late").await;
    assert_eq!(
        api.state.jwks_fetch_count(),
        2,
        "one refetch for the whole flood"
    );

    // Known keys keep working throughout.
    let another = idp.sign("at+jwt", &access_claims(&idp));
    assert_eq!(api.me(&another).await.status(), 200);
}

/// Fifty concurrent requests, each with a token under a different made-up kid.
async fn flood(api: &Api, attacker: &AttackerKey, idp: &Idp, tag: &str) {
    let requests = (0..50).map(|i| {
        let token = attacker.sign(
            at_jwt_header(&format!("made-up-{tag}-{i}")),
            &access_claims(idp),
        );
        async move { api.me(&token).await }
    });
    for response in futures_util::future::join_all(requests).await {
        assert_invalid_token(response).await;
    }
}

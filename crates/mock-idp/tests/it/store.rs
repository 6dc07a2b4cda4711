//! The store's own promises, on each database it runs on (SQLite and
//! PostgreSQL): the queries are written once for both, and these are the
//! ones whose meaning is easiest to lose between two SQL dialects.

use mock_idp::store::{NewAccessToken, NewRefreshToken, Store, StoreError, User};
use test_case::test_case;
use testkit::database::Engine;

const NOW: i64 = 1_800_000_000;

fn user(sub: &str, username: &str) -> User {
    User {
        sub: sub.into(),
        username: username.into(),
        password_hash: "$argon2id$not-checked-here".into(),
        name: "Dana".into(),
        given_name: None,
        family_name: None,
        email_verified: false,
        updated_at: NOW,
    }
}

fn refresh_token<'a>(token_hash: &'a str, family_id: &'a str) -> NewRefreshToken<'a> {
    NewRefreshToken {
        token_hash,
        family_id,
        client_id: "bff-demo",
        sub: "dana",
        scope: "openid offline_access",
        sid: None,
        auth_time: NOW,
        expires_at: NOW + 3600,
        family_expires_at: NOW + 86_400,
    }
}

fn access_token<'a>(jti: &'a str, token_hash: &'a str, family_id: &'a str) -> NewAccessToken<'a> {
    NewAccessToken {
        jti,
        token_hash,
        family_id: Some(family_id),
        client_id: "bff-demo",
        sub: "dana",
        scope: "openid notes:read",
        issued_at: NOW,
        expires_at: NOW + 300,
    }
}

#[test_case(Engine::Sqlite ; "sqlite")]
#[test_case(Engine::Postgres ; "postgres")]
#[tokio::test]
async fn one_account_per_email_address_whatever_its_letter_case(engine: Engine) {
    let Some(db) = engine.database().await else {
        return;
    };
    let store = Store::open(db.url()).await.unwrap();
    store
        .insert_user(&user("s1", "Dana@example.com"), NOW)
        .await
        .unwrap();
    let twin = store
        .insert_user(&user("s2", "dana@EXAMPLE.com"), NOW)
        .await;
    assert!(matches!(twin, Err(StoreError::UsernameTaken)), "a twin");
    let found = store.user_by_username("DANA@example.com").await.unwrap();
    assert_eq!(found.map(|u| u.sub).as_deref(), Some("s1"));

    // The configuration's account takes the registered one over, `sub`
    // and all, and its profile change moves `updated_at`.
    let mut configured = user("s3", "dana@example.com");
    configured.email_verified = true;
    configured.updated_at = NOW + 10;
    store.upsert_user(&configured, NOW + 10).await.unwrap();
    let dana = store.user_by_sub("s3").await.unwrap().expect("taken over");
    assert_eq!(dana.username, "dana@example.com");
    assert!(dana.email_verified);
    assert_eq!(dana.updated_at, NOW + 10);
    assert!(store.user_by_sub("s1").await.unwrap().is_none());
    // The same profile again leaves `updated_at` alone.
    configured.updated_at = NOW + 20;
    store.upsert_user(&configured, NOW + 20).await.unwrap();
    let dana = store.user_by_sub("s3").await.unwrap().unwrap();
    assert_eq!(dana.updated_at, NOW + 10);
}

#[test_case(Engine::Sqlite ; "sqlite")]
#[test_case(Engine::Postgres ; "postgres")]
#[tokio::test]
async fn a_refresh_token_rotates_once_and_its_family_is_revoked_whole_rfc9700_4_14_2(
    engine: Engine,
) {
    let Some(db) = engine.database().await else {
        return;
    };
    let store = Store::open(db.url()).await.unwrap();
    store
        .insert_refresh_token(&refresh_token("rt0", "family"), NOW)
        .await
        .unwrap();
    store
        .insert_access_token(&access_token("at0", "at0-hash", "family"))
        .await
        .unwrap();
    assert!(store.mark_rotated("rt0", NOW + 1).await.unwrap());
    assert!(
        !store.mark_rotated("rt0", NOW + 2).await.unwrap(),
        "a refresh token rotates once"
    );
    let rt0 = store.refresh_token("rt0").await.unwrap().unwrap();
    assert_eq!(rt0.rotated_at, Some(NOW + 1));
    assert!(!rt0.revoked);
    assert!(store.access_token("at0-hash", NOW).await.unwrap().is_some());
    assert!(!store.family_revoked("family").await.unwrap());

    store.revoke_family("family").await.unwrap();
    assert!(store.refresh_token("rt0").await.unwrap().unwrap().revoked);
    assert!(
        store.access_token("at0-hash", NOW).await.unwrap().is_none(),
        "an access token of the family survived"
    );
    // A rotation that raced the revocation reads the family's mark.
    assert!(store.family_revoked("family").await.unwrap());
    assert!(!store.family_revoked("another").await.unwrap());
    // The mark stays while the family has a refresh token, then goes.
    store.prune(NOW + 3600).await.unwrap();
    assert!(store.family_revoked("family").await.unwrap());
    store.prune(NOW + 86_400).await.unwrap();
    assert!(store.refresh_token("rt0").await.unwrap().is_none());
    assert!(
        !store.family_revoked("family").await.unwrap(),
        "the mark outlived its family"
    );
}

#[test_case(Engine::Sqlite ; "sqlite")]
#[test_case(Engine::Postgres ; "postgres")]
#[tokio::test]
async fn a_refresh_token_is_read_with_its_user_and_without_one_that_is_gone(engine: Engine) {
    let Some(db) = engine.database().await else {
        return;
    };
    let store = Store::open(db.url()).await.unwrap();
    store
        .insert_user(&user("dana", "dana@example.com"), NOW)
        .await
        .unwrap();
    store
        .insert_refresh_token(&refresh_token("rt0", "family"), NOW)
        .await
        .unwrap();
    let orphan = NewRefreshToken {
        sub: "gone",
        ..refresh_token("rt1", "other")
    };
    store.insert_refresh_token(&orphan, NOW).await.unwrap();

    let (token, owner) = store.refresh_token_and_user("rt0").await.unwrap().unwrap();
    assert_eq!(token.family_id, "family");
    assert_eq!(token.scope, "openid offline_access");
    let owner = owner.expect("dana exists");
    assert_eq!((owner.sub.as_str(), owner.name.as_str()), ("dana", "Dana"));
    let (token, owner) = store.refresh_token_and_user("rt1").await.unwrap().unwrap();
    assert_eq!(token.sub, "gone");
    assert!(owner.is_none(), "a user that does not exist");
    assert!(store.refresh_token_and_user("rt2").await.unwrap().is_none());
}

#[test_case(Engine::Sqlite ; "sqlite")]
#[test_case(Engine::Postgres ; "postgres")]
#[tokio::test]
async fn an_access_token_revoked_before_it_is_recorded_stays_revoked_rfc6749_4_1_2(engine: Engine) {
    let Some(db) = engine.database().await else {
        return;
    };
    let store = Store::open(db.url()).await.unwrap();
    // A replayed code's revocation overtakes the first exchange's record.
    store.revoke_access_token("at1", NOW).await.unwrap();
    store
        .insert_access_token(&access_token("at1", "at1-hash", "family"))
        .await
        .unwrap();
    assert!(store.access_token("at1-hash", NOW).await.unwrap().is_none());

    // The same token twice under two ids is one token, recorded once.
    store
        .insert_access_token(&access_token("at2", "same-hash", "family"))
        .await
        .unwrap();
    store
        .insert_access_token(&access_token("at3", "same-hash", "family"))
        .await
        .unwrap();
    let recorded = store.access_token("same-hash", NOW).await.unwrap().unwrap();
    assert_eq!(recorded.jti, "at2");
    assert_eq!(
        recorded.scopes().collect::<Vec<_>>(),
        ["openid", "notes:read"]
    );
}

#[test_case(Engine::Sqlite ; "sqlite")]
#[test_case(Engine::Postgres ; "postgres")]
#[tokio::test]
async fn signing_keys_keep_the_order_they_were_made_in_within_one_second(engine: Engine) {
    let Some(db) = engine.database().await else {
        return;
    };
    let store = Store::open(db.url()).await.unwrap();
    store
        .insert_signing_key("k1", "RS256", "pem 1", NOW)
        .await
        .unwrap();
    store
        .rotate_signing_key("k2", "ES256", "pem 2", NOW)
        .await
        .unwrap();
    store
        .rotate_signing_key("k3", "RS256", "pem 3", NOW)
        .await
        .unwrap();
    let keys = store.signing_keys().await.unwrap();
    let order: Vec<_> = keys.iter().map(|k| k.private_pem.as_str()).collect();
    assert_eq!(order, ["pem 1", "pem 2", "pem 3"]);
    let retired: Vec<_> = keys.iter().map(|k| k.retired_at).collect();
    assert_eq!(retired, [Some(NOW), Some(NOW), None], "the newest signs");
}

#[test_case(Engine::Sqlite ; "sqlite")]
#[test_case(Engine::Postgres ; "postgres")]
#[tokio::test]
async fn consents_add_up_and_a_revoked_grant_takes_its_tokens(engine: Engine) {
    let Some(db) = engine.database().await else {
        return;
    };
    let store = Store::open(db.url()).await.unwrap();
    let scopes = |s: &str| s.split(' ').map(str::to_owned).collect::<Vec<_>>();
    store
        .grant_consent("dana", "bff-demo", &scopes("openid"), NOW)
        .await
        .unwrap();
    store
        .grant_consent("dana", "bff-demo", &scopes("openid notes:read"), NOW + 1)
        .await
        .unwrap();
    assert_eq!(
        store.consented_scopes("dana", "bff-demo").await.unwrap(),
        scopes("openid notes:read")
    );
    assert_eq!(
        store.consents_of("dana").await.unwrap(),
        [("bff-demo".to_owned(), "openid notes:read".to_owned(), NOW)]
    );
    store
        .insert_refresh_token(&refresh_token("rt", "family"), NOW)
        .await
        .unwrap();
    store
        .insert_access_token(&access_token("at", "at-hash", "family"))
        .await
        .unwrap();

    store.revoke_grant("dana", "bff-demo").await.unwrap();
    assert!(
        store
            .consented_scopes("dana", "bff-demo")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.refresh_token("rt").await.unwrap().unwrap().revoked);
    assert!(store.access_token("at-hash", NOW).await.unwrap().is_none());
}

/// A rotation of `rt` that raced the revocation: it had marked `rt` rotated
/// before, and stores its new token after; then it reads the family's mark.
#[test_case(Engine::Sqlite ; "sqlite")]
#[test_case(Engine::Postgres ; "postgres")]
#[tokio::test]
async fn a_rotation_racing_a_revoked_grant_sees_its_family_revoked_rfc9700_4_14_2(engine: Engine) {
    let Some(db) = engine.database().await else {
        return;
    };
    let store = Store::open(db.url()).await.unwrap();
    store
        .insert_refresh_token(&refresh_token("rt", "family"), NOW)
        .await
        .unwrap();
    store
        .insert_refresh_token(&refresh_token("other-rt", "other-family"), NOW)
        .await
        .unwrap();
    assert!(store.mark_rotated("rt", NOW + 1).await.unwrap());

    store.revoke_grant("dana", "bff-demo").await.unwrap();

    store
        .insert_refresh_token(&refresh_token("rt-next", "family"), NOW + 1)
        .await
        .unwrap();
    assert!(
        store.family_revoked("family").await.unwrap(),
        "a rotation racing the grant's revocation would hand out a live token"
    );
    assert!(store.family_revoked("other-family").await.unwrap());
    assert!(
        !store
            .family_revoked("a-family-of-another-grant")
            .await
            .unwrap()
    );
}

#[test_case(Engine::Sqlite ; "sqlite")]
#[test_case(Engine::Postgres ; "postgres")]
#[tokio::test]
async fn a_session_ends_with_the_list_of_its_clients(engine: Engine) {
    let Some(db) = engine.database().await else {
        return;
    };
    let store = Store::open(db.url()).await.unwrap();
    let session = mock_idp::store::Session {
        sid: "sid".into(),
        sub: "dana".into(),
        auth_time: NOW,
    };
    store
        .insert_session("cookie", &session, NOW + 60)
        .await
        .unwrap();
    for client in ["bff-demo", "native-demo", "bff-demo"] {
        store.add_session_client("sid", client).await.unwrap();
    }
    assert_eq!(
        store.session("cookie", NOW).await.unwrap().unwrap().sid,
        "sid"
    );
    assert!(
        store.session("cookie", NOW + 60).await.unwrap().is_none(),
        "expired"
    );

    let mut clients = store.delete_session("sid").await.unwrap();
    clients.sort();
    assert_eq!(clients, ["bff-demo", "native-demo"]);
    assert!(store.session("cookie", NOW).await.unwrap().is_none());
}

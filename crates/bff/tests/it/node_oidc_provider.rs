//! The BFF and the API against a certified OpenID Provider that is not ours:
//! node-oidc-provider, from npm, pinned in `interop/node-oidc-provider`. The
//! BFF knows it only through discovery; the API only by its issuer and the
//! audience of its access tokens.
//!
//! Sign-in, API calls, refresh with rotation, key rotation at the provider,
//! RP-initiated logout with the ID token as hint, and back-channel logout.
//!
//! This provider keeps real time, so the tests move the BFF's clock only a
//! little: its access tokens live a minute, and the BFF refreshes one 30 s
//! before it expires.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use testkit::{
    ALICE, CLIENT_ID, CLIENT_SECRET, ManualClock,
    api::Api,
    bff::{self, Bff},
    form_action, form_inputs, header_of, http_client,
    idp::ClientKey,
    interop::NodeOp,
    location, query_of,
    server::listen,
};

/// node-oidc-provider with the BFF registered as at any provider, the API
/// for its issuer, the BFF for both; `None` without Node.js or the packages.
async fn start() -> Option<(NodeOp, Api, Bff, ManualClock)> {
    start_with(None).await
}

/// [`start`], the BFF authenticating with `key` (`private_key_jwt`) when
/// given, else with its client secret.
async fn start_with(key: Option<&ClientKey>) -> Option<(NodeOp, Api, Bff, ManualClock)> {
    let (listener, addr) = listen().await;
    let bff_url = format!("http://{addr}");
    let mut client = json!({
        "client_id": CLIENT_ID,
        "redirect_uris": [format!("{bff_url}/bff/callback")],
        "post_logout_redirect_uris": [format!("{bff_url}/")],
        "backchannel_logout_uri": format!("{bff_url}/bff/backchannel"),
        "backchannel_logout_session_required": true,
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
    });
    let key_path = key.map(|k| k.file.0.display().to_string());
    // OIDC Core 11: this provider grants offline_access (a refresh token)
    // only with prompt=consent.
    let mut bff_args = vec!["--authorize-param", "prompt=consent"];
    match (key, &key_path) {
        (Some(key), Some(path)) => {
            client["token_endpoint_auth_method"] = json!("private_key_jwt");
            client["jwks"] = key.jwks.clone();
            bff_args.extend([
                "--client-auth-method",
                "private_key_jwt",
                "--client-key-file",
                path,
            ]);
        }
        _ => {
            client["token_endpoint_auth_method"] = json!("client_secret_basic");
            client["client_secret"] = json!(CLIENT_SECRET);
        }
    }
    let op = NodeOp::start(&json!([client]), 60)?;
    let time = ManualClock::starting_now();
    let api = Api::start_for(&op.issuer, &time, &[]).await;
    let config = bff::config(&bff_url, &op.issuer, &api.base_url, &bff_args);
    let bff = Bff::start_on(listener, config, &time).await;
    Some((op, api, bff, time))
}

async fn me(bff: &Bff, browser: &reqwest::Client) -> Value {
    let response = bff.api(browser, "me").await;
    assert_eq!(response.status(), 200, "the API answers through the BFF");
    response.json().await.unwrap()
}

#[tokio::test]
async fn the_bff_signs_in_calls_the_api_and_refreshes_against_node_oidc_provider() {
    let Some((op, _api, bff, time)) = start().await else {
        return;
    };
    let browser = http_client();
    let back = op.sign_in(&browser, &bff.url("/bff/login"), &ALICE).await;
    assert!(back.starts_with(&bff.url("/bff/callback?")), "{back}");
    // RFC 9207: this provider sends iss, and the BFF checked it.
    assert_eq!(query_of(&back)["iss"], op.issuer);
    let landed = browser.get(&back).send().await.unwrap();
    assert_eq!(landed.status(), 303, "signed in");
    let user: Value = bff.user(&browser).await.json().await.unwrap();
    assert_eq!(user["sub"], ALICE.username);
    assert!(
        user["claims"]["sid"].is_string(),
        "the provider's sid is kept"
    );

    // The API validates this provider's RFC 9068 access tokens by itself.
    let first = me(&bff, &browser).await;
    assert_eq!(first["sub"], ALICE.username);
    assert_eq!(first["client_id"], CLIENT_ID);

    // Twice due for refresh: the provider rotates the refresh token each
    // time and revokes the whole grant on reuse, so a second success means
    // the BFF stored the rotated one.
    for refreshes in 1..=2 {
        time.advance(Duration::from_secs(31));
        me(&bff, &browser).await;
        assert_eq!(op.grants("refresh_token").await, refreshes);
    }
}

#[tokio::test]
async fn the_bff_signs_in_and_refreshes_with_private_key_jwt_at_node_oidc_provider_rfc7523_2_2() {
    let key = ClientKey::generate("RS256");
    let Some((op, _api, bff, time)) = start_with(Some(&key)).await else {
        return;
    };
    let browser = http_client();
    let back = op.sign_in(&browser, &bff.url("/bff/login"), &ALICE).await;
    let landed = browser.get(&back).send().await.unwrap();
    assert_eq!(landed.status(), 303, "signed in with a client assertion");
    me(&bff, &browser).await;
    time.advance(Duration::from_secs(31));
    me(&bff, &browser).await;
    assert_eq!(
        op.grants("refresh_token").await,
        1,
        "refreshed with one too"
    );
}

#[tokio::test]
async fn a_key_rotated_at_node_oidc_provider_is_taken_at_the_next_refresh_oidc_core_10_1_1() {
    let Some((op, _api, bff, time)) = start().await else {
        return;
    };
    let browser = http_client();
    let back = op.sign_in(&browser, &bff.url("/bff/login"), &ALICE).await;
    browser.get(&back).send().await.unwrap();
    me(&bff, &browser).await;
    let kid = op.rotate_keys().await;
    time.advance(Duration::from_secs(31));
    // The refreshed ID token and access token are signed with the new key:
    // the BFF and the API each fetch the provider's keys again.
    me(&bff, &browser).await;
    assert_eq!(op.grants("refresh_token").await, 1, "refreshed once");
    let user: Value = bff.user(&browser).await.json().await.unwrap();
    assert_eq!(user["sub"], ALICE.username, "still signed in");
    let keys: Value = reqwest::get(format!("{}/jwks", op.issuer))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        keys["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == kid.as_str())
    );
}

#[tokio::test]
async fn sign_out_posts_the_hint_to_node_oidc_provider_and_the_state_comes_back_oidc_rp_logout_2() {
    let Some((op, _api, bff, _time)) = start().await else {
        return;
    };
    let browser = http_client();
    let back = op.sign_in(&browser, &bff.url("/bff/login"), &ALICE).await;
    browser.get(&back).send().await.unwrap();
    let page = bff
        .json(&browser, Method::POST, "/bff/logout")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let fields = form_inputs(&page);
    assert!(
        header_of(&fields["id_token_hint"])["kid"].is_string(),
        "the ID token as hint"
    );
    // The browser posts the BFF's form to the provider; it asks the person
    // (its own rule), who confirms.
    let confirm = browser
        .post(form_action(&page))
        .form(&fields)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let done = op.confirm_logout(&browser, &confirm).await;
    let target = location(&done);
    assert!(target.starts_with(&bff.url("/?")), "{target}");
    assert_eq!(query_of(&target)["state"], fields["state"], "state echoed");
    let home = browser
        .get(&target)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(home.contains("signed out of this app and of the identity provider"));
    assert_eq!(bff.user(&browser).await.status(), 401);
}

#[tokio::test]
async fn a_sign_out_at_node_oidc_provider_ends_the_bff_session_by_back_channel_oidc_backchannel_2_7()
 {
    let Some((op, _api, bff, _time)) = start().await else {
        return;
    };
    let browser = http_client();
    let back = op.sign_in(&browser, &bff.url("/bff/login"), &ALICE).await;
    browser.get(&back).send().await.unwrap();
    assert_eq!(bff.user(&browser).await.status(), 200);
    // The person signs out at the provider itself, not through the BFF.
    let confirm = browser
        .get(format!("{}/session/end", op.issuer))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let done = op.confirm_logout(&browser, &confirm).await;
    assert!(done.status().is_success() || done.status().is_redirection());
    // The provider POSTs its logout token before it answers.
    assert_eq!(
        bff.user(&browser).await.status(),
        401,
        "ended by the back channel"
    );
}

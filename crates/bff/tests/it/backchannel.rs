//! OIDC Back-Channel Logout 1.0 at the BFF: a session ended at the provider
//! ends here too, on every instance; and every logout token that is not
//! exactly right is refused (400, a JSON error) and ends nothing. Each
//! attack names its rule.

use reqwest::StatusCode;
use serde_json::{Value, json};
use test_case::test_case;
use testkit::{
    ALICE, BOB, CLIENT_ID, bff::Received, claims_of, random_string, redis, stack::Stack,
};

const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// Signs in `account` in a fresh browser; returns it and its session's `sid`
/// at the IdP (from the ID token the BFF received).
async fn signed_in(stack: &Stack, account: &testkit::Account) -> (reqwest::Client, String) {
    let browser = stack.bff.signed_in_browser(account).await;
    let user: Value = stack.bff.user(&browser).await.json().await.unwrap();
    let sid = user["claims"]["sid"].as_str().expect("a sid").to_owned();
    (browser, sid)
}

/// The claims of a good logout token for `sid` (2.4).
fn logout_claims(stack: &Stack, sid: &str, sub: &str) -> Value {
    let now = stack.time.now();
    json!({
        "iss": stack.idp.issuer,
        "aud": CLIENT_ID,
        "iat": now,
        "exp": now + 120,
        "jti": random_string(),
        "sid": sid,
        "sub": sub,
        "events": {EVENT: {}},
    })
}

async fn post_logout_token(bff: &testkit::bff::Bff, token: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(bff.url("/bff/backchannel"))
        .form(&[("logout_token", token)])
        .send()
        .await
        .unwrap()
}

/// 2.8: a refusal is 400 with a JSON error, not cached.
async fn assert_refused(response: reqwest::Response) {
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert!(body["error"].is_string(), "{body}");
}

#[tokio::test]
async fn a_session_ended_at_the_idp_ends_on_every_instance_sharing_redis_oidc_backchannel_2_7() {
    let Some(url) = redis::available().await else {
        return;
    };
    let prefix = redis::prefix();
    let stack = Stack::start_with(
        mock_idp::Settings::demo(),
        &["--session-store", &url, "--redis-key-prefix", &prefix],
    )
    .await;
    let second = stack.bff.another().await;
    let (browser, _) = signed_in(&stack, &ALICE).await;
    let (bob, _) = signed_in(&stack, &BOB).await;
    assert_eq!(second.user(&browser).await.status(), 200);

    // Alice signs out at the IdP itself (its logout page, confirmed): the
    // IdP tells the BFF over the back channel.
    let confirm = browser
        .get(stack.idp.url(&format!("/v1/logout?client_id={CLIENT_ID}")))
        .send()
        .await
        .unwrap();
    let fields = testkit::form_inputs(&confirm.text().await.unwrap());
    let done = browser
        .post(stack.idp.page("/logout/confirm"))
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert!(done.status().is_success() || done.status().is_redirection());

    // The logout token is delivered in the background: wait for it.
    let mut statuses = (0, 0);
    for _ in 0..100 {
        statuses = (
            stack.bff.user(&browser).await.status().as_u16(),
            second.user(&browser).await.status().as_u16(),
        );
        if statuses == (401, 401) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(statuses, (401, 401), "ended on both instances");
    assert_eq!(
        second.user(&bob).await.status(),
        200,
        "Bob's session lives on"
    );
}

#[tokio::test]
async fn a_logout_token_with_only_sub_ends_every_session_of_that_user_oidc_backchannel_2_7() {
    let stack = Stack::start().await;
    let (first, _) = signed_in(&stack, &ALICE).await;
    let (second, _) = signed_in(&stack, &ALICE).await;
    let (bob, _) = signed_in(&stack, &BOB).await;
    let sub = claims_of(&stack.idp.faults.issued_tokens()[0])["sub"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut claims = logout_claims(&stack, "", &sub);
    claims.as_object_mut().unwrap().remove("sid");
    let token = stack.idp.sign("logout+jwt", &claims);
    let response = post_logout_token(&stack.bff, &token).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(stack.bff.user(&first).await.status(), 401);
    assert_eq!(stack.bff.user(&second).await.status(), 401);
    assert_eq!(stack.bff.user(&bob).await.status(), 200);
}

/// A logout token changed by an attack: its claims, and how it is signed.
type Attack = fn(&Stack, Value) -> String;

fn signed(stack: &Stack, claims: Value) -> String {
    stack.idp.sign("logout+jwt", &claims)
}

fn with(mut claims: Value, name: &str, value: Value) -> Value {
    claims[name] = value;
    claims
}

fn without(mut claims: Value, name: &str) -> Value {
    claims.as_object_mut().unwrap().remove(name);
    claims
}

#[test_case(|s, c| { let t = signed(s, c); let (body, sig) = t.rsplit_once('.').unwrap(); format!("{body}.{}{}", if sig.starts_with('A') { "B" } else { "A" }, &sig[1..]) } ; "bad_signature_oidc_backchannel_2_6")]
#[test_case(|_, c| { let b = |v: &Value| testkit::b64url(v.to_string().as_bytes()); format!("{}.{}.", b(&json!({"alg": "none", "typ": "logout+jwt"})), b(&c)) } ; "alg_none_rfc8725_3_1")]
#[test_case(|s, c| signed(s, with(c, "nonce", json!("n"))) ; "a_nonce_oidc_backchannel_2_4")]
#[test_case(|s, c| signed(s, with(c, "aud", json!("another-client"))) ; "wrong_aud_oidc_backchannel_2_6")]
#[test_case(|s, c| signed(s, with(c, "iss", json!("http://evil.example"))) ; "wrong_iss_oidc_backchannel_2_6")]
#[test_case(|s, c| { let old = s.time.now() - 3600; signed(s, with(with(c, "iat", json!(old)), "exp", json!(old + 120))) } ; "old_iat_oidc_backchannel_2_6")]
#[test_case(|s, c| signed(s, without(c, "events")) ; "no_events_oidc_backchannel_2_4")]
#[test_case(|s, c| signed(s, with(c, "events", json!({EVENT: "not an object"}))) ; "events_member_not_an_object_oidc_backchannel_2_4")]
#[test_case(|s, c| signed(s, with(c, "events", json!({"http://example/other-event": {}}))) ; "another_event_oidc_backchannel_2_4")]
#[test_case(|s, c| s.idp.sign("JWT", &c) ; "wrong_typ_oidc_backchannel_2_4")]
#[test_case(|s, c| signed(s, without(without(c, "sid"), "sub")) ; "neither_sid_nor_sub_oidc_backchannel_2_4")]
#[test_case(|s, c| signed(s, without(c, "jti")) ; "no_jti_oidc_backchannel_2_4")]
#[tokio::test]
async fn a_bad_logout_token_is_refused_and_ends_no_session(attack: Attack) {
    let stack = Stack::start().await;
    let (browser, sid) = signed_in(&stack, &ALICE).await;
    let sub = claims_of(&stack.idp.faults.issued_tokens()[0])["sub"].clone();
    let claims = logout_claims(&stack, &sid, sub.as_str().unwrap());
    let token = attack(&stack, claims);
    assert_refused(post_logout_token(&stack.bff, &token).await).await;
    assert_eq!(
        stack.bff.user(&browser).await.status(),
        200,
        "the session lives on"
    );
}

#[tokio::test]
async fn a_logout_token_replayed_to_the_same_or_another_instance_is_refused_oidc_backchannel_2_6() {
    let Some(url) = redis::available().await else {
        return;
    };
    let prefix = redis::prefix();
    let stack = Stack::start_with(
        mock_idp::Settings::demo(),
        &["--session-store", &url, "--redis-key-prefix", &prefix],
    )
    .await;
    let second = stack.bff.another().await;
    let (alice, sid) = signed_in(&stack, &ALICE).await;
    let sub = claims_of(&stack.idp.faults.issued_tokens()[0])["sub"].clone();
    let token = stack.idp.sign(
        "logout+jwt",
        &logout_claims(&stack, &sid, sub.as_str().unwrap()),
    );
    assert_eq!(post_logout_token(&stack.bff, &token).await.status(), 200);
    assert_eq!(stack.bff.user(&alice).await.status(), 401);

    // Alice signs in again in the same browser: her IdP session still
    // stands, so the new login has the same sid. The old token, replayed to
    // either instance, must end nothing.
    stack
        .bff
        .sign_in(&alice, &ALICE, &mut Received::default())
        .await;
    let user: Value = stack.bff.user(&alice).await.json().await.unwrap();
    assert_eq!(user["claims"]["sid"], sid.as_str(), "the same IdP session");
    assert_refused(post_logout_token(&stack.bff, &token).await).await;
    assert_refused(post_logout_token(&second, &token).await).await;
    assert_eq!(second.user(&alice).await.status(), 200);
}

#[tokio::test]
async fn a_logout_token_signed_by_an_unknown_key_is_refused_rfc8725_3_10() {
    let stack = Stack::start().await;
    let (browser, sid) = signed_in(&stack, &ALICE).await;
    let sub = claims_of(&stack.idp.faults.issued_tokens()[0])["sub"].clone();
    // An attacker's own key, under the IdP's kid.
    let attacker = rsa_key();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.typ = Some("logout+jwt".into());
    header.kid = testkit::header_of(&stack.idp.faults.issued_tokens()[0])["kid"]
        .as_str()
        .map(str::to_owned);
    let token = jsonwebtoken::encode(
        &header,
        &logout_claims(&stack, &sid, sub.as_str().unwrap()),
        &attacker,
    )
    .unwrap();
    assert_refused(post_logout_token(&stack.bff, &token).await).await;
    assert_eq!(stack.bff.user(&browser).await.status(), 200);
}

fn rsa_key() -> jsonwebtoken::EncodingKey {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
    jsonwebtoken::EncodingKey::from_rsa_der(key.to_pkcs1_der().unwrap().as_bytes())
}

#[tokio::test]
async fn a_request_without_a_logout_token_gets_a_json_error_oidc_backchannel_2_8() {
    let stack = Stack::start().await;
    let url = stack.bff.url("/bff/backchannel");
    let client = reqwest::Client::new();
    for request in [
        client.post(&url),
        client.post(&url).json(&json!({"logout_token": "x"})),
        client.post(&url).form(&[("logout_token", "")]),
        client.post(&url).form(&[("logout_token", "not.a.jwt")]),
    ] {
        assert_refused(request.send().await.unwrap()).await;
    }
}

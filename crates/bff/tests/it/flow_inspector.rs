//! The flow inspector (`/flow`, `/flow.json`) and the attack lab
//! (`/flow/lab`): a login's ten steps with that login's own values and no
//! secret, a session's trace seen by that session only, and each attack
//! carried out for real, refused for its stated reason, harming no other
//! session.

use std::time::Duration;

use reqwest::Method;
use serde_json::Value;
use testkit::{ALICE, BOB, claims_of, form_inputs, http_client, location, stack::Stack};

async fn signed_in(stack: &Stack, account: &testkit::Account) -> reqwest::Client {
    stack.bff.signed_in_browser(account).await
}

async fn trace(stack: &Stack, browser: &reqwest::Client) -> Value {
    let response = stack
        .bff
        .json(browser, Method::GET, "/flow.json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// Every secret of Alice's login: what neither page nor JSON may show.
fn secrets(stack: &Stack) -> Vec<String> {
    let mut secrets: Vec<String> = stack.idp.faults.issued_tokens();
    for body in stack.idp.faults.token_requests() {
        for (name, value) in url::form_urlencoded::parse(body.as_bytes()) {
            if ["code", "code_verifier", "refresh_token", "client_assertion"]
                .contains(&name.as_ref())
            {
                secrets.push(value.into_owned());
            }
        }
    }
    secrets.push("bff-demo-secret".to_owned());
    secrets
}

#[tokio::test]
async fn after_a_login_the_trace_holds_the_ten_steps_with_that_logins_values() {
    let stack = Stack::start().await;
    let browser = signed_in(&stack, &ALICE).await;
    let trace = trace(&stack, &browser).await;
    let steps = trace["steps"].as_array().unwrap();
    let numbers: Vec<&str> = steps
        .iter()
        .map(|s| s["number"].as_str().unwrap())
        .collect();
    assert_eq!(numbers, ["1", "2", "3-4", "5", "6", "7", "8", "9", "10"]);
    let detail = |step: &Value, label: &str| -> String {
        step["details"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d[0] == label)
            .map(|d| d[1].as_str().unwrap().to_owned())
            .unwrap_or_else(|| panic!("no {label} in {step}"))
    };
    // The challenge shown is S256 of the verifier the BFF really sent.
    let sent = stack.idp.faults.token_requests();
    let verifier = url::form_urlencoded::parse(sent[0].as_bytes())
        .find(|(name, _)| name == "code_verifier")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    let challenge = detail(
        &steps[0],
        "code_challenge = BASE64URL(SHA-256(code_verifier))",
    );
    assert_eq!(challenge, bff::flow::s256(&verifier));
    assert!(detail(&steps[0], "code_verifier").starts_with(&verifier[..4]));
    let authorize = &steps[1]["request"]["params"];
    let sent_challenge = authorize
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p[0] == "code_challenge")
        .unwrap()[1]
        .clone();
    assert_eq!(
        sent_challenge,
        challenge.as_str(),
        "the authorize request's challenge"
    );
    assert_eq!(
        detail(&steps[5], "BASE64URL(SHA-256(code_verifier))"),
        challenge,
        "step 7 shows the check with the values"
    );
    // The decoded tokens are the issued ones, claim for claim.
    let issued = stack.idp.faults.issued_tokens();
    let tokens = steps[6]["tokens"].as_array().unwrap();
    for token in tokens {
        let claims = &token["claims"];
        assert!(
            issued
                .iter()
                .any(|t| t.split('.').count() == 3 && &claims_of(t) == claims),
            "{} is not an issued token's claims",
            token["name"]
        );
    }
    assert!(tokens.iter().any(|t| t["name"] == "ID token"));
    assert!(tokens.iter().any(|t| t["name"] == "access token"));
    // Step 10: the API's own list of checks.
    assert!(steps[8]["outcome"].as_str().unwrap().starts_with("200"));
    assert!(steps[8]["details"].as_array().unwrap().len() >= 10);
}

#[tokio::test]
async fn neither_the_page_nor_the_json_holds_a_token_code_verifier_or_secret_bff_pattern() {
    let stack = Stack::start().await;
    let browser = signed_in(&stack, &ALICE).await;
    // A refresh and a sign-out add their events too.
    stack.time.advance(Duration::from_secs(280));
    assert_eq!(stack.bff.api(&browser, "me").await.status(), 200);
    let page = browser
        .get(stack.bff.url("/flow?expand=all"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let json = trace(&stack, &browser).await.to_string();
    assert!(
        page.contains("The BFF refreshes the access token"),
        "{page}"
    );
    for secret in secrets(&stack) {
        assert!(!page.contains(&secret), "the page shows a secret");
        assert!(!json.contains(&secret), "the JSON shows a secret");
    }
    for text in [&page, &json] {
        assert!(!jwt_shaped(text), "something JWT-shaped is shown whole");
    }
}

/// Whether `text` holds the start of an encoded JOSE header longer than a
/// masked token's four characters.
fn jwt_shaped(text: &str) -> bool {
    text.match_indices("eyJ").any(|(at, _)| {
        text[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .count()
            > 12
    })
}

#[tokio::test]
async fn one_session_sees_its_own_trace_and_no_other() {
    let stack = Stack::start().await;
    let alice = signed_in(&stack, &ALICE).await;
    let bob = signed_in(&stack, &BOB).await;
    let subject_of = |trace: &Value| -> String {
        let steps = trace["steps"].as_array().unwrap();
        let tokens = steps[6]["tokens"].as_array().unwrap();
        tokens.iter().find(|t| t["name"] == "ID token").unwrap()["claims"]["email"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(subject_of(&trace(&stack, &alice).await), ALICE.username);
    assert_eq!(subject_of(&trace(&stack, &bob).await), BOB.username);
    // A browser that never signed in has no trace, and the page explains.
    let stranger = http_client();
    assert_eq!(
        trace(&stack, &stranger).await["steps"],
        serde_json::json!([])
    );
    let page = stranger
        .get(stack.bff.url("/flow"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("How signing in works"), "{page}");
    assert!(!page.contains(ALICE.username) && !page.contains(BOB.username));
}

#[tokio::test]
async fn the_json_needs_the_csrf_header_bff_csrf() {
    let stack = Stack::start().await;
    let browser = signed_in(&stack, &ALICE).await;
    let bare = browser
        .get(stack.bff.url("/flow.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), 401);
}

#[tokio::test]
async fn the_sign_out_is_the_traces_last_event_and_the_trace_outlives_the_session() {
    let stack = Stack::start().await;
    let browser = signed_in(&stack, &ALICE).await;
    let csrf = stack.bff.sign_out_token(&browser).await;
    browser
        .post(stack.bff.url("/bff/logout"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    let trace = trace(&stack, &browser).await;
    assert_eq!(trace["signed_in"], false);
    let last = trace["steps"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["kind"], "sign_out");
    assert!(last["details"].to_string().contains("revoked"), "{last}");
}

// ---- the attack lab ---------------------------------------------------------

/// Tries attack `id` from the lab's page; the lab page after it.
async fn attack(stack: &Stack, browser: &reqwest::Client, id: &str) -> String {
    let lab = browser
        .get(stack.bff.url("/flow/lab"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = form_inputs(&lab).remove("csrf").expect("the lab's forms");
    let mut response = browser
        .post(stack.bff.url(&format!("/flow/lab/{id}")))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    // Follow the redirects by hand (the wrong-verifier attack goes by the
    // IdP and the callback), as the browser would.
    while response.status().is_redirection() {
        let next = location(&response);
        let next = if next.starts_with('/') {
            stack.bff.url(&next)
        } else {
            next
        };
        response = browser.get(&next).send().await.unwrap();
    }
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

/// The result section of attack `id` in the lab's page.
fn section<'a>(page: &'a str, id: &str) -> &'a str {
    let start = page
        .find(&format!("id=\"attack-{id}\""))
        .unwrap_or_else(|| panic!("no attack {id}"));
    let rest = &page[start..];
    let end = rest.find("</section>").unwrap_or(rest.len());
    &rest[..end]
}

/// Bob's session, to show that an attack harmed no other session.
async fn assert_unharmed(stack: &Stack, bob: &reqwest::Client) {
    assert_eq!(
        stack.bff.api(bob, "me").await.status(),
        200,
        "Bob's session"
    );
}

#[test_case::test_case("wrong-verifier", "invalid_grant", "/v1/token" ; "a_fresh_code_with_the_wrong_verifier_rfc7636_4_6")]
#[test_case::test_case("no-pkce", "invalid_request", "/v1/authorize" ; "authorize_without_pkce_rfc9700_2_1_1")]
#[test_case::test_case("plain-pkce", "invalid_request", "/v1/authorize" ; "authorize_with_plain_rfc9700_2_1_1")]
#[test_case::test_case("altered-signature", "invalid_token", "/api/me" ; "an_altered_signature_rfc7515_5_2")]
#[test_case::test_case("alg-none", "invalid_token", "/api/me" ; "alg_none_rfc8725_3_1")]
#[test_case::test_case("id-token", "invalid_token", "/api/me" ; "the_id_token_for_an_access_token_rfc8725_3_11")]
#[test_case::test_case("token-in-query", "invalid_token", "/api/me" ; "a_token_in_the_query_string_rfc6750_2_3")]
#[test_case::test_case("forged-state", "state", "/bff/callback" ; "a_state_never_issued_rfc6749_10_12")]
#[tokio::test]
async fn each_attack_is_carried_out_and_refused_for_its_reason(
    id: &str,
    error: &str,
    target: &str,
) {
    let stack = Stack::start().await;
    let alice = signed_in(&stack, &ALICE).await;
    let bob = signed_in(&stack, &BOB).await;
    let counted = |s: &Stack| match target {
        "/api/me" => s.api.faults.count(target),
        "/bff/callback" => s.bff.faults.count(target),
        _ => s.idp.faults.count(target),
    };
    let before = counted(&stack);
    let page = attack(&stack, &alice, id).await;
    assert!(counted(&stack) > before, "the attack reached {target}");
    for secret in secrets(&stack) {
        assert!(!page.contains(&secret), "the lab shows a secret");
    }
    assert!(!jwt_shaped(&page), "the lab shows a token whole");
    let result = section(&page, id);
    assert!(result.contains("Refused:"), "{result}");
    assert!(result.contains(error), "{result}");
    assert!(!result.contains("Not refused"), "{result}");
    assert_unharmed(&stack, &bob).await;
    // Alice's own session lives on too.
    assert_eq!(stack.bff.api(&alice, "me").await.status(), 200);
}

#[tokio::test]
async fn replaying_this_logins_code_is_refused_and_revokes_only_its_tokens_rfc6749_4_1_2() {
    let stack = Stack::start().await;
    let alice = signed_in(&stack, &ALICE).await;
    let bob = signed_in(&stack, &BOB).await;
    let page = attack(&stack, &alice, "replay-code").await;
    let result = section(&page, "replay-code");
    assert!(
        result.contains("Refused:") && result.contains("invalid_grant"),
        "{result}"
    );
    assert!(
        result.contains("Sign in again"),
        "the lab says what happened: {result}"
    );
    // Alice's refresh token was revoked by the IdP: at the next refresh her
    // session ends. Bob's goes on.
    stack.time.advance(Duration::from_secs(280));
    assert_eq!(stack.bff.api(&alice, "me").await.status(), 401);
    assert_eq!(stack.bff.api(&bob, "me").await.status(), 200);
}

#[tokio::test]
async fn an_attack_needs_the_labs_form_token_and_is_rate_limited_per_session() {
    let stack = Stack::start().await;
    let alice = signed_in(&stack, &ALICE).await;
    let forged = alice
        .post(stack.bff.url("/flow/lab/no-pkce"))
        .form(&[("csrf", "made-up")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401, "no attack without the page's token");
    let lab = alice
        .get(stack.bff.url("/flow/lab"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = form_inputs(&lab).remove("csrf").unwrap();
    let mut statuses = Vec::new();
    for _ in 0..(bff::flow::lab::PER_MINUTE + 1) {
        let response = alice
            .post(stack.bff.url("/flow/lab/no-pkce"))
            .form(&[("csrf", csrf.as_str())])
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 303).count(),
        bff::flow::lab::PER_MINUTE as usize
    );
    assert_eq!(*statuses.last().unwrap(), 429);
    // Another session has its own allowance.
    let bob = signed_in(&stack, &BOB).await;
    let page = attack(&stack, &bob, "no-pkce").await;
    assert!(section(&page, "no-pkce").contains("Refused:"));
}

//! `/metrics` of the three services (`--metrics`), scraped around a login,
//! a refused token and a refresh: the counters move as they should, and no
//! secret, user or token is in what they show.

use std::time::Duration;

use testkit::{ALICE, stack::Stack};

async fn scrape(url: &str) -> String {
    let response = reqwest::get(url).await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(content_type.contains("openmetrics-text"), "{content_type}");
    response.text().await.unwrap()
}

/// The value of the sample `name{labels}` (0 when absent).
fn sample(text: &str, name: &str, labels: &str) -> f64 {
    text.lines()
        .find(|line| line.starts_with(&format!("{name}{{{labels}}} ")))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0.0)
}

struct Scrape {
    idp: String,
    api: String,
    bff: String,
}

async fn scrape_all(stack: &Stack) -> Scrape {
    Scrape {
        idp: scrape(&stack.idp.page("/metrics")).await,
        api: scrape(&stack.api.url("/metrics")).await,
        bff: scrape(&stack.bff.url("/metrics")).await,
    }
}

#[tokio::test]
async fn the_counters_move_with_a_login_a_refused_token_and_a_refresh_and_show_no_secret() {
    let stack = Stack::start().await;
    let before = scrape_all(&stack).await;
    // A login, a proxied call.
    let browser = stack.bff.signed_in_browser(&ALICE).await;
    assert_eq!(stack.bff.api(&browser, "me").await.status(), 200);
    // A refused token, straight at the API.
    assert_eq!(stack.api.me("not.a.token").await.status(), 401);
    // A refresh: the access token is due.
    stack.time.advance(Duration::from_secs(280));
    assert_eq!(stack.bff.api(&browser, "me").await.status(), 200);
    let after = scrape_all(&stack).await;

    let moved = |text_before: &str, text_after: &str, name: &str, labels: &str| {
        sample(text_after, name, labels) - sample(text_before, name, labels)
    };
    assert_eq!(
        moved(
            &before.idp,
            &after.idp,
            "idp_sign_ins_total",
            r#"outcome="signed_in""#
        ),
        1.0
    );
    assert_eq!(
        moved(
            &before.idp,
            &after.idp,
            "idp_token_grants_total",
            r#"grant_type="authorization_code",outcome="ok""#
        ),
        1.0
    );
    assert_eq!(
        moved(
            &before.idp,
            &after.idp,
            "idp_token_grants_total",
            r#"grant_type="refresh_token",outcome="ok""#
        ),
        1.0
    );
    assert_eq!(
        moved(
            &before.bff,
            &after.bff,
            "bff_logins_total",
            r#"outcome="signed_in""#
        ),
        1.0
    );
    assert_eq!(
        moved(
            &before.bff,
            &after.bff,
            "bff_refreshes_total",
            r#"outcome="made""#
        ),
        1.0
    );
    assert_eq!(
        moved(
            &before.bff,
            &after.bff,
            "bff_proxied_calls_total",
            r#"status="2xx""#
        ),
        2.0
    );
    assert!(
        after.bff.contains("bff_proxy_seconds_bucket"),
        "a latency histogram"
    );
    assert_eq!(
        moved(
            &before.api,
            &after.api,
            "api_token_validations_total",
            r#"outcome="refused",reason="bad_header""#
        ),
        1.0
    );
    assert!(
        moved(
            &before.api,
            &after.api,
            "api_token_validations_total",
            r#"outcome="valid",reason="""#
        ) >= 1.0
    );

    // Nothing of the person or their tokens.
    let all = format!("{}{}{}", after.idp, after.api, after.bff);
    let mut secrets = stack.idp.faults.issued_tokens();
    secrets.extend([
        ALICE.password.to_owned(),
        ALICE.username.to_owned(),
        "bff-demo-secret".to_owned(),
    ]);
    for secret in secrets {
        assert!(!all.contains(&secret), "a secret in /metrics");
    }
    assert!(!all.contains("eyJ"));
}

#[test]
fn metrics_are_off_unless_asked_for() {
    let plain = <bff::Config as clap::Parser>::parse_from(["bff"]);
    assert!(!plain.metrics, "the BFF: off by default");
    let idp = <mock_idp::Cli as clap::Parser>::parse_from(["mock-idp"]);
    assert!(!idp.config.metrics, "the IdP: off by default");
}

//! The provider matrix: the BFF's whole lifecycle (sign-in, API call,
//! refresh, key rotation, sign-out, back-channel logout) against the mock
//! IdP in each provider profile (`mock_idp::profile`), with the flags the
//! README gives for that provider. Each lifecycle test finds its row of
//! [`MATRIX`]; the README's table is [`MATRIX`] rendered, checked here and
//! rewritten by `just matrix`.
//!
//! Then one test per quirk, showing that the BFF's handling of it (a
//! default, a flag) is what makes that provider work.

use std::time::Duration;

use mock_idp::profile::Profile;
use serde_json::Value;
use testkit::{
    ALICE, BOB, CLIENT_ID,
    bff::Received,
    form_action, form_inputs, header_of, http_client,
    idp::{ClientKey, with_private_key_jwt},
    location, query_of,
    stack::Stack,
};

/// Time enough for the 300 s access tokens to be due for refresh.
const PAST_EXPIRY: Duration = Duration::from_secs(280);

/// The scopes, again, on a refresh at Entra ID.
const ENTRA_REFRESH_SCOPE: &str =
    "--refresh-param=scope=openid profile email offline_access notes:read notes:write";

/// One provider: the BFF flags it needs, and what each step does.
pub struct Row {
    pub provider: &'static str,
    pub profile: Profile,
    pub flags: &'static [&'static str],
    /// sign-in, API call, refresh, key rotation, sign-out, back-channel logout.
    pub cells: [&'static str; 6],
}

const WORKS: &str = "✓";
const LOCAL_SIGN_OUT: &str = "local only: no end-session endpoint";
const NO_BACKCHANNEL: &str = "not offered";
const OPAQUE: &str = "no: opaque access tokens, for Google's APIs";

pub const MATRIX: [Row; 6] = [
    Row {
        provider: "the specifications",
        profile: Profile::Plain,
        flags: &[],
        cells: [WORKS, WORKS, WORKS, WORKS, WORKS, WORKS],
    },
    Row {
        provider: "Okta",
        profile: Profile::Okta,
        flags: &[],
        cells: [WORKS, WORKS, WORKS, WORKS, WORKS, NO_BACKCHANNEL],
    },
    Row {
        provider: "Entra ID",
        profile: Profile::Entra,
        flags: &[ENTRA_REFRESH_SCOPE],
        cells: [WORKS, WORKS, WORKS, WORKS, WORKS, NO_BACKCHANNEL],
    },
    Row {
        provider: "Auth0",
        profile: Profile::Auth0,
        flags: &[],
        cells: [WORKS, WORKS, WORKS, WORKS, WORKS, WORKS],
    },
    Row {
        provider: "Keycloak",
        profile: Profile::Keycloak,
        flags: &[],
        cells: [WORKS, WORKS, WORKS, WORKS, WORKS, WORKS],
    },
    Row {
        provider: "Google",
        profile: Profile::Google,
        flags: &["--authorize-param", "access_type=offline"],
        cells: [WORKS, OPAQUE, WORKS, WORKS, LOCAL_SIGN_OUT, NO_BACKCHANNEL],
    },
];

fn row(profile: Profile) -> &'static Row {
    MATRIX.iter().find(|r| r.profile == profile).expect("a row")
}

fn settings(profile: Profile) -> mock_idp::Settings {
    let mut settings = mock_idp::Settings::demo();
    settings.profile = profile;
    settings
}

/// The stack with the IdP in `profile` and the BFF with its row's flags.
async fn stack(profile: Profile) -> Stack {
    Stack::start_with(settings(profile), row(profile).flags).await
}

/// How many token requests the IdP has answered.
fn grants(stack: &Stack) -> usize {
    stack.idp.faults.count("/v1/token")
}

/// A browser signed in to the BFF as `account`.
async fn signed_in(stack: &Stack, account: &testkit::Account) -> reqwest::Client {
    stack.bff.signed_in_browser(account).await
}

/// The whole lifecycle, a cell per step.
async fn lifecycle(profile: Profile) -> [&'static str; 6] {
    let stack = stack(profile).await;
    let browser = signed_in(&stack, &ALICE).await;
    let me = stack.bff.user(&browser).await;
    assert_eq!(me.status(), 200, "sign-in");
    let sign_in = WORKS;

    // The API takes the provider's access tokens, under its token profile;
    // Google's are opaque, for Google's own APIs.
    let api = stack.bff.api(&browser, "me").await.status();
    let api_call = match (api.as_u16(), profile) {
        (200, _) => WORKS,
        (401, Profile::Google) => OPAQUE,
        (status, _) => panic!("API call: {status}"),
    };
    let api_answers = |status: reqwest::StatusCode| match api_call {
        WORKS => status == 200,
        _ => status == 401,
    };

    // Two refreshes: the second with whatever refresh token the first left.
    let before = grants(&stack);
    for n in 1..=2 {
        stack.time.advance(PAST_EXPIRY);
        let api = stack.bff.api(&browser, "me").await.status();
        assert!(api_answers(api), "API call after refresh {n}: {api}");
        assert_eq!(
            stack.bff.user(&browser).await.status(),
            200,
            "still signed in"
        );
    }
    assert_eq!(grants(&stack), before + 2, "two refresh grants");
    let refresh = WORKS;

    // The provider rotates its keys: a refreshed ID token and a new
    // sign-in are both signed by the new key.
    let kid = stack.idp.rotate_keys().await;
    stack.time.advance(PAST_EXPIRY);
    let api = stack.bff.api(&browser, "me").await.status();
    assert!(api_answers(api), "refresh after rotation: {api}");
    assert_eq!(
        stack.bff.user(&browser).await.status(),
        200,
        "still signed in"
    );
    let newcomer = signed_in(&stack, &BOB).await;
    assert_eq!(
        stack.bff.user(&newcomer).await.status(),
        200,
        "sign-in after rotation"
    );
    assert_eq!(header_of(&last_id_token(&stack))["kid"], kid.as_str());
    let key_rotation = WORKS;

    let sign_out = sign_out(&stack, &browser).await;
    let backchannel = backchannel(&stack).await;
    [
        sign_in,
        api_call,
        refresh,
        key_rotation,
        sign_out,
        backchannel,
    ]
}

/// Signs out at the BFF and carries the browser through the provider's
/// logout, checking that the provider's session ended too.
async fn sign_out(stack: &Stack, browser: &reqwest::Client) -> &'static str {
    let csrf = stack.bff.sign_out_token(browser).await;
    let answer = browser
        .post(stack.bff.url("/bff/logout"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(
        stack.bff.user(browser).await.status(),
        401,
        "signed out here"
    );
    if answer.status().is_redirection() {
        // No end-session endpoint: the BFF says the sign-out was local.
        let target = location(&answer);
        assert!(target.ends_with("/?signed_out=local"), "{target}");
        let home = browser
            .get(&target)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            home.contains("The identity provider offers no sign-out"),
            "{home}"
        );
        return LOCAL_SIGN_OUT;
    }
    let html = answer.text().await.unwrap();
    let fields = form_inputs(&html);
    let back = browser
        .post(form_action(&html))
        .form(&fields)
        .send()
        .await
        .unwrap();
    let target = location(&back);
    assert_eq!(query_of(&target)["state"], fields["state"], "state echoed");
    let home = browser
        .get(&target)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(home.contains("and of the identity provider"), "{home}");
    let login = browser
        .get(stack.bff.url("/bff/login"))
        .send()
        .await
        .unwrap();
    let authorize = browser.get(location(&login)).send().await.unwrap();
    assert!(
        location(&authorize).contains("/signin?"),
        "the IdP session ended"
    );
    WORKS
}

/// A person signs out at the provider itself (its end-session endpoint,
/// with the ID token as hint): where the provider offers back-channel
/// logout, the BFF session ends too; where it does not, none arrives.
async fn backchannel(stack: &Stack) -> &'static str {
    let metadata: Value = reqwest::get(stack.idp.url("/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let offered = metadata["backchannel_logout_supported"] == true;
    let browser = signed_in(stack, &ALICE).await;
    let Some(end_session) = metadata["end_session_endpoint"].as_str() else {
        assert!(
            !offered,
            "back-channel logout without an end-session endpoint"
        );
        return NO_BACKCHANNEL;
    };
    let hint = last_id_token(stack);
    let mut url = url::Url::parse(end_session).unwrap();
    url.query_pairs_mut().append_pair("id_token_hint", &hint);
    let ended = browser.get(url.as_str()).send().await.unwrap();
    assert!(ended.status().is_success() || ended.status().is_redirection());
    // The logout token is delivered in the background.
    for _ in 0..40 {
        if stack.bff.user(&browser).await.status() == 401 {
            assert!(
                offered,
                "a logout token from a provider that says it sends none"
            );
            return WORKS;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!offered, "the BFF session outlived the provider's");
    assert_eq!(
        stack.bff.faults.count("/bff/backchannel"),
        0,
        "no logout token came"
    );
    NO_BACKCHANNEL
}

/// The ID token the IdP issued last.
fn last_id_token(stack: &Stack) -> String {
    stack
        .idp
        .faults
        .issued_tokens()
        .into_iter()
        .rev()
        .find(|t| testkit::claims_of(t)["aud"] == CLIENT_ID)
        .expect("an ID token")
}

macro_rules! lifecycle_tests {
    ($($name:ident: $profile:expr;)*) => {$(
        #[tokio::test]
        async fn $name() {
            let profile = $profile;
            assert_eq!(lifecycle(profile).await, row(profile).cells, "{profile:?}");
        }
    )*};
}

lifecycle_tests! {
    the_whole_lifecycle_per_the_specifications: Profile::Plain;
    the_whole_lifecycle_against_okta: Profile::Okta;
    the_whole_lifecycle_against_entra_id: Profile::Entra;
    the_whole_lifecycle_against_auth0: Profile::Auth0;
    the_whole_lifecycle_against_keycloak: Profile::Keycloak;
    the_whole_lifecycle_against_google: Profile::Google;
}

/// The matrix as the README shows it.
pub fn render() -> String {
    let mut table = String::from(
        "| provider | sign-in | API call | refresh | key rotation | sign-out | back-channel logout | BFF flags | API `--token-profile` |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    for row in &MATRIX {
        let flags = if row.flags.is_empty() {
            "none".to_owned()
        } else {
            // As a shell takes them: a flag with spaces, quoted.
            let words: Vec<String> = (row.flags.iter())
                .map(|f| match f.contains(' ') {
                    true => format!("\"{f}\""),
                    false => (*f).to_owned(),
                })
                .collect();
            format!("`{}`", words.join(" "))
        };
        let token_profile = match row.profile {
            Profile::Google => "none".to_owned(),
            profile => format!("`{}`", testkit::api::token_profile(profile)),
        };
        table.push_str(&format!(
            "| {} (`--profile {}`) | {} | {flags} | {token_profile} |\n",
            row.provider,
            row.profile.name(),
            row.cells.join(" | ")
        ));
    }
    table
}

#[test]
fn the_readme_shows_the_tested_matrix() {
    const START: &str = "<!-- provider-matrix: `just matrix` writes this table -->\n";
    const END: &str = "<!-- /provider-matrix -->";
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md");
    let readme = std::fs::read_to_string(path).unwrap();
    let (before, rest) = readme.split_once(START).expect("the matrix markers");
    let (current, after) = rest.split_once(END).expect("the matrix end marker");
    let tested = render();
    if std::env::var("UPDATE_README_MATRIX").is_ok_and(|v| v == "1") {
        std::fs::write(path, format!("{before}{START}{tested}{END}{after}")).unwrap();
        return;
    }
    assert_eq!(
        current, tested,
        "the README's matrix is stale: run `just matrix`"
    );
}

// ---- each quirk, and the handling that makes it work --------------------

/// Sign-in at a BFF started with `bff_args`: the callback's status.
async fn sign_in_status(profile: Profile, bff_args: &[&str]) -> (Stack, reqwest::Client, u16) {
    let stack = Stack::start_with(settings(profile), bff_args).await;
    let browser = http_client();
    let mut url = stack.bff.url("/bff/login");
    loop {
        let response = if url.contains("/signin?") {
            testkit::idp::sign_in(&browser, &url, &ALICE).await
        } else if url.contains("/consent?") {
            testkit::idp::consent(&browser, &url, "allow").await
        } else {
            browser.get(&url).send().await.unwrap()
        };
        if !response.status().is_redirection() || url.contains("/bff/callback") {
            let status = response.status().as_u16();
            return (stack, browser, status);
        }
        url = location(&response);
        if url.starts_with(&stack.bff.base_url) && !url.contains("/bff/") {
            return (stack, browser, 303);
        }
    }
}

#[tokio::test]
async fn entra_back_dates_iat_five_minutes_which_the_default_id_token_age_admits() {
    // OIDC Core 3.1.3.7 item 10 leaves the window to the client; 300 s is
    // too narrow for Entra ID.
    let (_, _, narrow) =
        sign_in_status(Profile::Entra, &["--id-token-max-age-seconds", "290"]).await;
    assert_eq!(narrow, 400, "an ID token five minutes old, refused");
    let (stack, browser, default) = sign_in_status(Profile::Entra, &[]).await;
    assert_eq!(default, 303);
    let user: Value = stack.bff.user(&browser).await.json().await.unwrap();
    let iat = user["claims"]["iat"].as_i64().unwrap();
    assert_eq!(stack.time.now() - iat, 300, "back-dated by five minutes");
}

#[tokio::test]
async fn entra_wants_the_scope_again_on_refresh_which_refresh_param_sends() {
    let without = Stack::start_with(settings(Profile::Entra), &[]).await;
    let browser = signed_in(&without, &ALICE).await;
    without.time.advance(PAST_EXPIRY);
    let refused = without.bff.api(&browser, "me").await;
    assert_eq!(refused.status(), 503, "the provider refused the refresh");
    let with = Stack::start_with(settings(Profile::Entra), &[ENTRA_REFRESH_SCOPE]).await;
    let browser = signed_in(&with, &ALICE).await;
    with.time.advance(PAST_EXPIRY);
    assert_eq!(with.bff.api(&browser, "me").await.status(), 200);
}

#[tokio::test]
async fn entra_issuer_carries_the_tenant_and_is_compared_exactly() {
    let (stack, browser, status) = sign_in_status(Profile::Entra, &[]).await;
    assert_eq!(status, 303);
    assert!(
        stack
            .idp
            .issuer
            .ends_with(&format!("/{}/v2.0", mock_idp::profile::ENTRA_TENANT)),
        "{}",
        stack.idp.issuer
    );
    let user: Value = stack.bff.user(&browser).await.json().await.unwrap();
    assert_eq!(user["claims"]["iss"], stack.idp.issuer.as_str());
}

#[tokio::test]
async fn auth0_issuer_ends_in_a_slash_and_is_compared_as_published_oidc_core_3_1_3_7() {
    let (stack, browser, status) = sign_in_status(Profile::Auth0, &[]).await;
    assert_eq!(status, 303);
    assert!(stack.idp.issuer.ends_with('/'), "{}", stack.idp.issuer);
    let user: Value = stack.bff.user(&browser).await.json().await.unwrap();
    assert_eq!(
        user["claims"]["iss"],
        stack.idp.issuer.as_str(),
        "slash and all"
    );
}

#[tokio::test]
async fn auth0_sends_updated_at_as_a_string_which_the_bff_accepts() {
    let (stack, browser, status) = sign_in_status(Profile::Auth0, &[]).await;
    assert_eq!(status, 303, "openidconnect's accept-rfc3339-timestamps");
    let user: Value = stack.bff.user(&browser).await.json().await.unwrap();
    let updated_at = user["claims"]["updated_at"].as_str().expect("a string");
    assert!(
        updated_at.ends_with('Z') && updated_at.contains('T'),
        "{updated_at}"
    );
}

#[tokio::test]
async fn keycloak_refresh_tokens_are_jwts_the_bff_keeps_opaque() {
    let stack = stack(Profile::Keycloak).await;
    let browser = signed_in(&stack, &ALICE).await;
    stack.time.advance(PAST_EXPIRY);
    assert_eq!(stack.bff.api(&browser, "me").await.status(), 200);
    let refresh_tokens: Vec<String> = stack
        .idp
        .faults
        .issued_tokens()
        .into_iter()
        .filter(|t| testkit::claims_of(t)["typ"] == "Refresh")
        .collect();
    assert!(!refresh_tokens.is_empty(), "JWT refresh tokens were issued");
    // Signed with a key nobody outside the provider has.
    assert_eq!(header_of(&refresh_tokens[0])["alg"], "HS512");
}

#[tokio::test]
async fn google_has_no_end_session_endpoint_so_sign_out_is_local_and_says_so() {
    let stack = stack(Profile::Google).await;
    let browser = signed_in(&stack, &ALICE).await;
    assert_eq!(sign_out(&stack, &browser).await, LOCAL_SIGN_OUT);
}

#[tokio::test]
async fn google_gives_a_refresh_token_only_for_access_type_offline() {
    let without = Stack::start_with(settings(Profile::Google), &[]).await;
    let browser = signed_in(&without, &ALICE).await;
    without.time.advance(PAST_EXPIRY);
    let ended = without.bff.api(&browser, "me").await;
    assert_eq!(
        ended.status(),
        401,
        "no refresh token: the session ends at expiry"
    );
    let with = stack(Profile::Google).await;
    let browser = signed_in(&with, &ALICE).await;
    let before = grants(&with);
    with.time.advance(PAST_EXPIRY);
    with.bff.api(&browser, "me").await;
    assert_eq!(grants(&with), before + 1, "refreshed");
    assert_eq!(
        with.bff.user(&browser).await.status(),
        200,
        "still signed in"
    );
}

#[tokio::test]
async fn okta_refuses_a_logout_without_id_token_hint_which_the_bff_always_sends() {
    let stack = stack(Profile::Okta).await;
    let browser = signed_in(&stack, &ALICE).await;
    // As a client that sends only its client_id would.
    let bare = browser
        .get(stack.idp.url(&format!("/v1/logout?client_id={CLIENT_ID}")))
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), 400);
    assert_eq!(sign_out(&stack, &browser).await, WORKS);
}

// ---- client authentication ----------------------------------------------

/// The stack with `bff-demo` registered for `private_key_jwt` under
/// `profile`, the BFF holding the private key.
async fn with_client_key(profile: Profile, alg: &str, extra: &[&str]) -> (Stack, ClientKey) {
    let key = ClientKey::generate(alg);
    let mut settings = settings(profile);
    with_private_key_jwt(&mut settings, &key);
    let path = key.file.0.display().to_string();
    let mut args = vec![
        "--client-auth-method",
        "private_key_jwt",
        "--client-key-file",
        &path,
    ];
    args.extend_from_slice(extra);
    let stack = Stack::start_with(settings, &args).await;
    (stack, key)
}

/// Whether the IdP holds `token` as a revoked refresh token.
async fn revoked(stack: &Stack, token: &str) -> bool {
    let hash = mock_idp::secret::digest(token);
    let stored = stack.idp.state.store.refresh_token(&hash).await.unwrap();
    stored.expect("a refresh token the IdP issued").revoked
}

#[tokio::test]
async fn private_key_jwt_signs_in_refreshes_and_revokes_without_a_secret_rfc7523_2_2() {
    for alg in ["RS256", "ES256"] {
        let (stack, _key) = with_client_key(Profile::Plain, alg, &[]).await;
        let browser = signed_in(&stack, &ALICE).await;
        assert_eq!(stack.bff.user(&browser).await.status(), 200, "{alg}");
        stack.time.advance(PAST_EXPIRY);
        assert_eq!(
            stack.bff.api(&browser, "me").await.status(),
            200,
            "{alg} refresh"
        );
        let refresh_token = stack
            .idp
            .faults
            .issued_tokens()
            .into_iter()
            .rfind(|t| t.split('.').count() != 3)
            .expect("a refresh token");
        // Sign-out revokes the refresh token, authenticated the same way.
        assert_eq!(sign_out(&stack, &browser).await, WORKS);
        assert!(
            revoked(&stack, &refresh_token).await,
            "{alg}: revoked at sign-out"
        );
    }
}

#[tokio::test]
async fn auth0_wants_its_tenant_url_as_the_assertion_audience() {
    // RFC 7523 3 leaves the audience to the server; Auth0 takes only its
    // issuer, trailing slash included.
    let (stack, _key) = with_client_key(Profile::Auth0, "RS256", &[]).await;
    let browser = http_client();
    let mut received = Received::default();
    let refused = sign_in_until_callback(&stack, &browser, &mut received).await;
    assert_eq!(refused, 502, "the token endpoint refused the client");
    let (stack, _key) = with_client_key(
        Profile::Auth0,
        "RS256",
        &["--client-assertion-audience", "issuer"],
    )
    .await;
    let browser = signed_in(&stack, &ALICE).await;
    assert_eq!(stack.bff.user(&browser).await.status(), 200);
}

/// Walks a sign-in up to the callback; its status.
async fn sign_in_until_callback(
    stack: &Stack,
    browser: &reqwest::Client,
    received: &mut Received,
) -> u16 {
    let mut url = stack.bff.url("/bff/login");
    loop {
        let response = if url.contains("/signin?") {
            testkit::idp::sign_in(browser, &url, &ALICE).await
        } else if url.contains("/consent?") {
            testkit::idp::consent(browser, &url, "allow").await
        } else {
            browser.get(&url).send().await.unwrap()
        };
        if url.contains("/bff/callback") {
            let status = response.status().as_u16();
            received.record(response).await;
            return status;
        }
        url = location(&response);
    }
}

#[tokio::test]
async fn client_secret_post_sends_the_secret_in_the_form_rfc6749_2_3_1() {
    let mut settings = settings(Profile::Plain);
    let client = settings
        .clients
        .iter_mut()
        .find(|c| c.client_id == CLIENT_ID)
        .unwrap();
    client.token_endpoint_auth_method = mock_idp::clients::AuthMethod::ClientSecretPost;
    let stack = Stack::start_with(settings, &["--client-auth-method", "client_secret_post"]).await;
    let browser = signed_in(&stack, &ALICE).await;
    stack.time.advance(PAST_EXPIRY);
    assert_eq!(stack.bff.api(&browser, "me").await.status(), 200);
}

#[test]
fn client_jwk_prints_the_public_half_of_the_key_only() {
    let key = ClientKey::generate("RS256");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_bff"))
        .args(["client-jwk", "--client-key-file"])
        .arg(&key.file.0)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let jwks: Value = serde_json::from_slice(&output.stdout).unwrap();
    let jwk = &jwks["keys"][0];
    assert_eq!(jwk["kty"], "RSA");
    assert_eq!(jwk["n"], key.jwks["keys"][0]["n"]);
    assert!(jwk.get("d").is_none(), "no private part: {jwk}");
    assert!(jwk["kid"].as_str().is_some_and(|k| !k.is_empty()));
}

// ---- several audiences (Keycloak's Audience mapper, "Add to ID token") ---

/// Signs in with the ID token's `aud` and `azp` changed as `change` says,
/// re-signed by the IdP's own key: the callback's status.
async fn sign_in_with_id_token(change: fn(&mut Value)) -> u16 {
    let stack = Stack::start().await;
    let keys = stack.idp.state.keys.clone();
    stack.idp.faults.tamper_token_responses(move |response| {
        let Some(id_token) = response["id_token"].as_str() else {
            return;
        };
        let mut claims = testkit::claims_of(id_token);
        change(&mut claims);
        response["id_token"] = keys.sign("JWT", &claims).unwrap().into();
    });
    let browser = http_client();
    sign_in_until_callback(&stack, &browser, &mut Received::default()).await
}

#[tokio::test]
async fn an_id_token_for_several_audiences_is_taken_when_azp_is_this_client_oidc_core_3_1_3_7() {
    let status = sign_in_with_id_token(|claims| {
        claims["aud"] = serde_json::json!([CLIENT_ID, "account"]);
        claims["azp"] = CLIENT_ID.into();
    })
    .await;
    assert_eq!(status, 303);
}

#[tokio::test]
async fn an_id_token_for_several_audiences_without_azp_is_refused_oidc_core_3_1_3_7() {
    let status = sign_in_with_id_token(|claims| {
        claims["aud"] = serde_json::json!([CLIENT_ID, "account"]);
    })
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn an_id_token_authorized_for_another_client_is_refused_oidc_core_3_1_3_7() {
    let status = sign_in_with_id_token(|claims| {
        claims["aud"] = serde_json::json!([CLIENT_ID, "account"]);
        claims["azp"] = "account".into();
    })
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn okta_refuses_scopes_its_authorization_server_does_not_define_and_scopes_leaves_them_out() {
    // Okta: "One or more scopes are not configured for the authorization
    // server resource" (invalid_scope), as the mock answers any client.
    let (_, _, refused) =
        sign_in_status(Profile::Okta, &["--scopes", "openid profile notes:admin"]).await;
    assert_eq!(refused, 400, "a page that says the provider refused");
    let (stack, browser, ok) = sign_in_status(
        Profile::Okta,
        &["--scopes", "openid profile email offline_access"],
    )
    .await;
    assert_eq!(ok, 303);
    assert_eq!(stack.bff.user(&browser).await.status(), 200);
}

#[tokio::test]
async fn a_refresh_answered_without_an_id_token_keeps_the_last_one_oidc_core_12_2() {
    // OIDC Core 12.2: a refresh response MAY leave the ID token out.
    let stack = Stack::start().await;
    let browser = signed_in(&stack, &ALICE).await;
    let first = last_id_token(&stack);
    stack.idp.faults.tamper_token_responses(|response| {
        drop(response.as_object_mut().unwrap().remove("id_token"))
    });
    stack.time.advance(PAST_EXPIRY);
    assert_eq!(
        stack.bff.api(&browser, "me").await.status(),
        200,
        "refreshed"
    );
    // The session keeps the ID token it had: sign-out still has its hint.
    let csrf = stack.bff.sign_out_token(&browser).await;
    let page = browser
        .post(stack.bff.url("/bff/logout"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(form_inputs(&page)["id_token_hint"], first);
}

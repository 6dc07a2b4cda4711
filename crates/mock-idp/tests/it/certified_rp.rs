//! The mock IdP driven by a certified relying party that is not ours:
//! openid-client, from npm, pinned in `interop/openid-client`. Through
//! discovery alone it signs in with code + PKCE (checking `iss`, `state`,
//! the ID token's signature, `nonce` and `at_hash`), reads userinfo,
//! refreshes with rotation and sees reuse refused, revokes, introspects,
//! and signs out with `id_token_hint`, for a confidential and a public
//! client.

use serde_json::Value;
use testkit::{ALICE, CLIENT_ID, CLIENT_SECRET, NATIVE_ID, NATIVE_REDIRECT_URI, idp::Idp, interop};

/// The demo settings, with a sign-out URI for the public client too and no
/// back-channel receiver (nothing listens at the demo BFF's). The public
/// client gets its consent remembered, as an operator may configure: the
/// script signs in again silently (`prompt=none`), which the IdP otherwise
/// refuses a loopback client (RFC 8252 8.6).
fn settings() -> mock_idp::Settings {
    let mut settings = mock_idp::Settings::demo();
    for client in &mut settings.clients {
        client.backchannel_logout_uri = None;
        if client.client_id == NATIVE_ID {
            client.post_logout_redirect_uris =
                vec![mock_idp::clients::RedirectUri::parse("http://127.0.0.1:8765/").unwrap()];
            client.remember_consent = Some(true);
        }
    }
    settings
}

/// Runs openid-client as `client`; its report, every step passed.
async fn run(idp: &Idp, client: &[(&str, &str)]) -> Option<Value> {
    let mut env = vec![
        ("RP_USERNAME", ALICE.username),
        ("RP_PASSWORD", ALICE.password),
    ];
    env.extend_from_slice(client);
    let output = interop::run_openid_client(&idp.issuer, &env).await?;
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "openid-client's report ({e}):\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    assert!(
        output.status.success() && report["ok"] == true,
        "openid-client refused the IdP: {report:#}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(report)
}

fn steps(report: &Value) -> Vec<&str> {
    report["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["name"].as_str().expect("a name"))
        .collect()
}

#[tokio::test]
async fn openid_client_completes_every_step_as_a_confidential_client() {
    let idp = Idp::start_with(settings()).await;
    let Some(report) = run(
        &idp,
        &[
            ("RP_CLIENT_ID", CLIENT_ID),
            ("RP_CLIENT_SECRET", CLIENT_SECRET),
            ("RP_REDIRECT_URI", "http://localhost:3000/bff/callback"),
            ("RP_POST_LOGOUT_REDIRECT_URI", "http://localhost:3000/"),
        ],
    )
    .await
    else {
        return;
    };
    let steps = steps(&report);
    for step in [
        "discovery",
        "authorization_code_grant",
        "id_token_at_hash",
        "userinfo",
        "token_introspection",
        "refresh_token_rotation",
        "refresh_token_reuse_refused",
        "token_revocation",
        "end_session",
        "session_ended",
    ] {
        assert!(steps.contains(&step), "{step} in {steps:?}");
    }
}

#[tokio::test]
async fn openid_client_completes_every_step_as_a_public_client() {
    let idp = Idp::start_with(settings()).await;
    let Some(report) = run(
        &idp,
        &[
            ("RP_CLIENT_ID", NATIVE_ID),
            ("RP_REDIRECT_URI", NATIVE_REDIRECT_URI),
            ("RP_POST_LOGOUT_REDIRECT_URI", "http://127.0.0.1:8765/"),
        ],
    )
    .await
    else {
        return;
    };
    assert!(steps(&report).contains(&"refresh_token_rotation"));
}

//! Steps 1-2: `GET /bff/login` makes a fresh PKCE verifier and challenge
//! (S256), a `state` and a `nonce` for this attempt, keeps them in the
//! server-side session, and sends the browser to the provider's
//! authorization endpoint.
//!
//! - RFC 9700 2.1.1: PKCE S256 on every login, fresh per attempt.
//! - RFC 6749 10.12 / RFC 9700 4.7: `state` is one-time and bound to this
//!   browser's session; several tabs may log in at once, each with its own.
//! - RFC 9700 4.11: `returnUrl` is only ever a same-site relative path.

use axum::{
    extract::State,
    response::{IntoResponse, Redirect, Response},
};
use oauth2::{CsrfToken, PkceCodeChallenge, Scope};
use openidconnect::{Nonce, core::CoreAuthenticationFlow};
use serde::Deserialize;
use tower_sessions::Session;
use tracing::instrument;

use crate::{
    AppState,
    flow::{self, Kind, Step},
    reply,
    session::{self, PendingLogin, Purpose},
};

#[derive(Deserialize)]
pub struct LoginQuery {
    #[serde(rename = "returnUrl")]
    return_url: Option<String>,
}

/// The return URL if it is a path on this site, else `/`.
///
/// Refused: absolute URLs (`https://evil`), scheme-relative ones (`//evil`),
/// backslashes (`/\evil`, which browsers read as `//evil`), control
/// characters, and anything that would resolve to another origin.
pub fn safe_return_url(raw: Option<&str>) -> String {
    let Some(raw) = raw else {
        return "/".into();
    };
    let plausible = raw.starts_with('/')
        && !raw.starts_with("//")
        && !raw.contains('\\')
        && !raw.chars().any(char::is_control)
        && raw.len() <= 2048;
    if !plausible {
        return "/".into();
    }
    let Ok(base) = url::Url::parse("http://bff.invalid/") else {
        return "/".into();
    };
    match base.join(raw) {
        Ok(resolved) if resolved.origin() == base.origin() => raw.to_owned(),
        _ => "/".into(),
    }
}

/// Steps 1-2: start a login.
#[instrument(name = "step1_2_login", skip_all)]
pub async fn login(
    State(state): State<AppState>,
    session: Session,
    reply::PageQuery(q): reply::PageQuery<LoginQuery>,
) -> Response {
    let return_url = safe_return_url(q.return_url.as_deref());
    match begin(&state, &session, return_url, Purpose::SignIn, &[]).await {
        Ok(url) => {
            tracing::info!("step2_redirect_to_authorize");
            // Step 2: to the authorization endpoint, with the challenge.
            Redirect::to(&url).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "could not store the login attempt");
            reply::unavailable_page()
        }
    }
}

/// Makes a login attempt (step 1), keeps it in this browser's session, and
/// returns the authorization request's URL (step 2), with `extra`
/// parameters beside the configured ones.
pub async fn begin(
    state: &AppState,
    session: &Session,
    return_url: String,
    purpose: Purpose,
    extra: &[(&str, &str)],
) -> Result<String, session::SessionError> {
    // Step 1: verifier (32 random bytes, 43 characters) and its S256 challenge.
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let provider = state.provider.get();
    let mut request = provider.client.authorize_url(
        CoreAuthenticationFlow::AuthorizationCode,
        CsrfToken::new_random,
        Nonce::new_random,
    );
    // openidconnect adds `openid` itself.
    for scope in state.config.scopes().filter(|s| *s != "openid") {
        request = request.add_scope(Scope::new(scope.to_owned()));
    }
    for (name, value) in &state.config.authorize_params {
        request = request.add_extra_param(name.clone(), value.clone());
    }
    for (name, value) in extra {
        request = request.add_extra_param(*name, *value);
    }
    let challenge_text = challenge.as_str().to_owned();
    let (url, csrf_state, nonce) = request.set_pkce_challenge(challenge).url();
    let now = state.clock.now();
    // The flow inspector's steps 1-2, every secret masked.
    let trace = vec![
        Step::new(Kind::Verifier, now, crate::here!("begin"))
            .detail("code_verifier", flow::mask(verifier.secret()))
            .detail("made from", "32 random bytes, base64url-encoded")
            .detail("code_challenge_method", "S256")
            .detail(
                "code_challenge = BASE64URL(SHA-256(code_verifier))",
                challenge_text,
            )
            .detail("state", flow::mask(csrf_state.secret()))
            .detail("nonce", flow::mask(nonce.secret()))
            .outcome("kept in this browser's server-side session; only the challenge leaves"),
        Step::new(Kind::Authorize, now, crate::here!("begin"))
            .request(
                "GET",
                &flow::without_query(url.as_str()),
                flow::params_of(url.as_str(), &["state", "nonce"]),
            )
            .outcome("303 See Other: the browser goes to the authorization endpoint"),
    ];
    let pending = PendingLogin {
        state: csrf_state.secret().clone(),
        pkce_verifier: verifier.secret().clone(),
        nonce: nonce.secret().clone(),
        return_url,
        started_at: now,
        trace,
        purpose,
    };
    session::add_pending(state, session, pending).await?;
    Ok(url.to_string())
}

#[cfg(test)]
mod tests {
    use super::safe_return_url;

    #[test]
    fn only_same_site_paths_are_kept_rfc9700_4_11() {
        for good in ["/", "/notes", "/a/b?c=d#e"] {
            assert_eq!(safe_return_url(Some(good)), good);
        }
        for bad in [
            "https://evil.example/",
            "//evil.example/",
            "/\\evil.example",
            "\\\\evil.example",
            "javascript:alert(1)",
            "evil.example",
            "/\tevil",
            "http:/evil.example",
            "",
        ] {
            assert_eq!(safe_return_url(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(safe_return_url(None), "/");
    }
}

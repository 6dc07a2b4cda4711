//! `POST /v1/token`: steps 6-8. The client sends the code and the PKCE
//! verifier, the IdP checks them (step 7) and answers with tokens (step 8).
//! The `refresh_token` grant is [`crate::refresh`]'s.
//!
//! Every check of a code exchange is in [`CodeExchange::parse`] (the
//! request's shape) and [`check_grant`] (the request against what the code
//! was issued for), top to bottom, in the order of RFC 6749 4.1.3 and RFC
//! 7636 4.6; both take plain values, and [`exchange_code`] does the rest.
//! Errors are RFC 6749 5.2 JSON; every answer carries `Cache-Control:
//! no-store` (RFC 6749 5.1).

use axum::{
    Json,
    extract::State,
    http::HeaderMap,
    response::{IntoResponse, Response},
};
use tracing::instrument;

use crate::{
    AppState,
    clients::Client,
    codes::{Grant, Redeemed, Voided},
    form::{BackChannelBody, Form},
    pkce::CodeVerifier,
    refresh,
    token_error::{TokenError, no_store},
    tokens::{Family, Refresh, Subject, TokenResponse, mint},
};

/// The token endpoint.
pub async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    BackChannelBody(body): BackChannelBody,
) -> Response {
    let result = handle(&state, &headers, &body).await;
    let grant_type = url::form_urlencoded::parse(&body)
        .find(|(name, _)| name == "grant_type")
        .map(|(_, value)| value.into_owned());
    let outcome = result.as_ref().map_or_else(|e| e.code(), |_| "ok");
    state.metrics.grant(grant_type.as_deref(), outcome);
    match result {
        Ok(tokens) => (no_store(), Json(tokens)).into_response(),
        Err(e) => {
            tracing::info!(error = e.code(), "token request refused");
            e.into_response()
        }
    }
}

async fn handle(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<TokenResponse, TokenError> {
    let form = Form::read_body(headers, body)?;
    let client = crate::client_auth::authenticate(state, headers, &form)?;
    let grant_type = form
        .get("grant_type")
        .ok_or_else(|| TokenError::InvalidRequest("grant_type is missing".into()))?;
    if !matches!(grant_type, "authorization_code" | "refresh_token") {
        return Err(TokenError::UnsupportedGrantType);
    }
    // RFC 6749 5.2: a grant this client is not registered for.
    if !client.allows_grant(grant_type) {
        return Err(TokenError::UnauthorizedClient);
    }
    if grant_type == "authorization_code" {
        exchange_code(state, client, &form).await
    } else {
        refresh::grant(state, client, &form).await
    }
}

/// A code exchange request (RFC 6749 4.1.3), its shape checked.
pub struct CodeExchange<'a> {
    pub code: &'a str,
    pub redirect_uri: &'a str,
    pub verifier: CodeVerifier,
}

impl<'a> CodeExchange<'a> {
    /// The parameters of step 6, each one there and well-formed.
    pub fn parse(form: &'a Form) -> Result<CodeExchange<'a>, TokenError> {
        let code = form
            .get("code")
            .ok_or_else(|| TokenError::InvalidRequest("code is missing".into()))?;
        let redirect_uri = form
            .get("redirect_uri")
            .ok_or_else(|| TokenError::InvalidRequest("redirect_uri is missing".into()))?;
        // RFC 7636 4.1 shape first; RFC 9700 4.8: no verifier, no tokens.
        let verifier = form
            .get("code_verifier")
            .ok_or_else(|| TokenError::InvalidRequest("code_verifier is missing (PKCE)".into()))
            .and_then(|v| {
                CodeVerifier::parse(v).map_err(|e| TokenError::InvalidRequest(e.to_string()))
            })?;
        Ok(CodeExchange {
            code,
            redirect_uri,
            verifier,
        })
    }
}

/// Step 7: every check of a redeemed code against the request that
/// presented it, in order.
pub fn check_grant(
    grant: &Grant,
    client: &Client,
    request: &CodeExchange<'_>,
) -> Result<(), TokenError> {
    // RFC 6749 4.1.3: issued to this client (the code store already
    // refuses others; checked again here where a reader looks for it)...
    if grant.client_id != client.id {
        return Err(TokenError::InvalidGrant(
            "the code was issued to another client",
        ));
    }
    // ...for this redirect URI, to the letter.
    if grant.redirect_uri != request.redirect_uri {
        return Err(TokenError::InvalidGrant(
            "redirect_uri does not match the authorization request",
        ));
    }
    // RFC 7636 4.6: S256(verifier) must equal the challenge.
    if !grant.challenge.is_satisfied_by(&request.verifier) {
        return Err(TokenError::InvalidGrant(
            "code_verifier does not match the code_challenge",
        ));
    }
    Ok(())
}

/// Steps 6-8: code + verifier in, tokens out.
#[instrument(name = "step7_check_code_and_pkce", skip_all, fields(client_id = %client.id))]
async fn exchange_code(
    state: &AppState,
    client: &Client,
    form: &Form,
) -> Result<TokenResponse, TokenError> {
    let request = CodeExchange::parse(form)?;
    let now = state.clock.now();
    // RFC 6749 4.1.2: single use. A second use revokes what the first got.
    let (grant, issued) = match state.codes.redeem(request.code, &client.id, now) {
        Redeemed::Fresh(grant, issued) => (grant, issued),
        Redeemed::Replayed(issued) => {
            tracing::warn!("authorization code replayed; revoking its tokens");
            state
                .store
                .revoke_access_token(&issued.access_jti, now)
                .await?;
            state.store.revoke_family(&issued.family_id).await?;
            return Err(TokenError::InvalidGrant("the code has already been used"));
        }
        Redeemed::Invalid => {
            return Err(TokenError::InvalidGrant("the code is invalid or expired"));
        }
    };
    check_grant(&grant, client, &request)?;
    let user = state
        .store
        .user_by_sub(&grant.sub)
        .await?
        .ok_or(TokenError::InvalidGrant("the user no longer exists"))?;

    let family_expires_at = now + state.settings.tokens.refresh_token_absolute_seconds as i64;
    // A refresh token for `offline_access` (OIDC Core 11); at Google, for
    // `access_type=offline`.
    let wants_refresh = if state.settings.profile.refresh_needs_access_type_offline() {
        grant.offline
    } else {
        grant.scopes.iter().any(|s| s == "offline_access")
    };
    let tokens = mint(
        state,
        &Subject {
            user: &user,
            client,
            scopes: &grant.scopes,
            granted: &grant.scopes,
            auth_time: grant.auth_time,
            sid: Some(&grant.sid),
            nonce: grant.nonce.as_deref(),
            refresh: if wants_refresh {
                Refresh::New
            } else {
                Refresh::None
            },
        },
        &issued.access_jti,
        &Family {
            id: &issued.family_id,
            expires_at: family_expires_at,
        },
    )
    .await?;
    // RFC 6749 4.1.2, 10.5: a replay racing this exchange revoked the family
    // before these tokens were stored; now that they are, revoke them too.
    // (The replay marks the code before it revokes, so one of the two
    // always sees the other.) The same holds for the person revoking the
    // grant on the IdP's grants page while the code was being exchanged.
    if let Some(voided) = state.codes.voided(request.code) {
        tracing::warn!(
            replayed = matches!(voided, Voided::Replayed),
            "authorization code voided during its exchange; revoking its tokens"
        );
        state
            .store
            .revoke_access_token(&issued.access_jti, now)
            .await?;
        state.store.revoke_family(&issued.family_id).await?;
        return Err(TokenError::InvalidGrant(match voided {
            Voided::Replayed => "the code has already been used",
            Voided::Withdrawn => "the grant was revoked",
        }));
    }
    tracing::info!(sub = %user.sub, "step8_tokens_issued");
    Ok(tokens)
}

//! What the load generator's workers do, one operation each time.

use std::sync::Arc;

use testkit::{ALICE, http_client};

use crate::{
    load::{Op, Worker},
    oauth::Client,
};

/// A password login: a new browser, the sign-in form, the code (consent
/// remembered), the token exchange.
pub struct PasswordLogin {
    pub client: Arc<Client>,
    pub http: reqwest::Client,
    pub extra: Vec<(&'static str, &'static str)>,
}

impl Worker for PasswordLogin {
    fn op(&mut self) -> Op<'_> {
        Box::pin(async move {
            let browser = http_client();
            let (url, verifier) = self.client.authorize_url(&self.extra);
            let code = self.client.code(&browser, &url, &ALICE).await?;
            self.client.exchange(&self.http, &code, &verifier).await?;
            Ok(())
        })
    }
}

/// A single-sign-on login: a browser already signed in at the provider, so
/// the authorization request comes straight back with a code.
pub struct SsoLogin {
    pub client: Arc<Client>,
    pub browser: reqwest::Client,
    pub http: reqwest::Client,
}

impl SsoLogin {
    /// A browser signed in once (with `first`, e.g. `prompt=consent` for a
    /// provider that grants `offline_access` only so).
    pub async fn new(
        client: Arc<Client>,
        http: reqwest::Client,
        first: &[(&str, &str)],
    ) -> anyhow::Result<SsoLogin> {
        let browser = http_client();
        let (url, verifier) = client.authorize_url(first);
        let code = client.code(&browser, &url, &ALICE).await?;
        client.exchange(&http, &code, &verifier).await?;
        Ok(SsoLogin {
            client,
            browser,
            http,
        })
    }
}

impl Worker for SsoLogin {
    fn op(&mut self) -> Op<'_> {
        Box::pin(async move {
            let (url, verifier) = self.client.authorize_url(&[]);
            let response = self.browser.get(&url).send().await?;
            let next = testkit::location(&response);
            anyhow::ensure!(
                next.starts_with(&self.client.redirect_uri),
                "not single sign-on: {next}"
            );
            let code = testkit::query_of(&next)
                .remove("code")
                .ok_or_else(|| anyhow::anyhow!("no code in {next}"))?;
            self.client.exchange(&self.http, &code, &verifier).await?;
            Ok(())
        })
    }
}

/// A refresh grant with the worker's own refresh token, rotated each time.
pub struct Refresh {
    pub client: Arc<Client>,
    pub http: reqwest::Client,
    pub token: String,
}

impl Refresh {
    /// A login with `first`, for its refresh token.
    pub async fn new(
        client: Arc<Client>,
        http: reqwest::Client,
        first: &[(&str, &str)],
    ) -> anyhow::Result<Refresh> {
        let browser = http_client();
        let (url, verifier) = client.authorize_url(first);
        let code = client.code(&browser, &url, &ALICE).await?;
        let tokens = client.exchange(&http, &code, &verifier).await?;
        let token = tokens["refresh_token"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("no refresh token: {tokens}"))?
            .to_owned();
        Ok(Refresh {
            client,
            http,
            token,
        })
    }
}

impl Worker for Refresh {
    fn op(&mut self) -> Op<'_> {
        Box::pin(async move {
            let tokens = self.client.refresh(&self.http, &self.token).await?;
            if let Some(next) = tokens["refresh_token"].as_str() {
                self.token = next.to_owned();
            }
            Ok(())
        })
    }
}

/// A GET with a bearer token (or none), and the status it must get.
pub struct Get {
    pub http: reqwest::Client,
    pub url: String,
    pub bearer: Option<String>,
    pub headers: Vec<(&'static str, &'static str)>,
}

impl Worker for Get {
    fn op(&mut self) -> Op<'_> {
        Box::pin(async move {
            let mut request = self.http.get(&self.url);
            if let Some(token) = &self.bearer {
                request = request.bearer_auth(token);
            }
            for (name, value) in &self.headers {
                request = request.header(*name, *value);
            }
            let response = request.send().await?;
            let status = response.status();
            let _ = response.bytes().await?;
            anyhow::ensure!(status == 200, "{} answered {status}", self.url);
            Ok(())
        })
    }
}

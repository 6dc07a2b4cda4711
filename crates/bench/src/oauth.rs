//! The client side of the flows the bench drives, the same against the mock
//! IdP and node-oidc-provider: everything comes from discovery; the
//! provider's pages are filled in as a person would (sign-in, consent).

use anyhow::Context;
use serde_json::Value;
use testkit::{Account, form_action, form_inputs, location, pkce};

/// A registered client of a provider.
#[derive(Clone)]
pub struct Client {
    pub authorize: String,
    pub token: String,
    pub client_id: String,
    pub client_secret: String,
    pub redirect_uri: String,
    pub scope: String,
}

impl Client {
    /// The provider at `issuer`, from its discovery document.
    pub async fn discover(
        issuer: &str,
        client_id: &str,
        client_secret: &str,
        redirect_uri: &str,
        scope: &str,
    ) -> anyhow::Result<Client> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let metadata: Value = reqwest::get(&url).await?.json().await?;
        let endpoint = |name: &str| -> anyhow::Result<String> {
            Ok(metadata[name]
                .as_str()
                .with_context(|| format!("no {name} in {url}"))?
                .to_owned())
        };
        Ok(Client {
            authorize: endpoint("authorization_endpoint")?,
            token: endpoint("token_endpoint")?,
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            redirect_uri: redirect_uri.to_owned(),
            scope: scope.to_owned(),
        })
    }

    /// An authorization request with a fresh PKCE pair; its verifier.
    pub fn authorize_url(&self, extra: &[(&str, &str)]) -> (String, String) {
        let pkce = pkce();
        let mut url = url::Url::parse(&self.authorize).expect("authorization endpoint");
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", &self.redirect_uri)
            .append_pair("scope", &self.scope)
            .append_pair("state", &testkit::random_string())
            .append_pair("nonce", &testkit::random_string())
            .append_pair("code_challenge", &pkce.challenge)
            .append_pair("code_challenge_method", "S256")
            .extend_pairs(extra);
        (url.to_string(), pkce.verifier)
    }

    /// Takes `browser` from `url` through the provider's pages (signing in
    /// as `account` and allowing, if asked) to the redirect URI; the code.
    pub async fn code(
        &self,
        browser: &reqwest::Client,
        url: &str,
        account: &Account,
    ) -> anyhow::Result<String> {
        let mut response = browser.get(url).send().await?;
        for _ in 0..12 {
            if response.status().is_redirection() {
                let next = location(&response);
                if next.starts_with(&self.redirect_uri) {
                    let query = testkit::query_of(&next);
                    return query
                        .get("code")
                        .cloned()
                        .with_context(|| format!("no code: {next}"));
                }
                let next = url::Url::parse(url)?.join(&next)?.to_string();
                response = browser.get(&next).send().await?;
                continue;
            }
            anyhow::ensure!(
                response.status() == 200,
                "{} at a provider page",
                response.status()
            );
            let page_url = response.url().clone();
            let page = response.text().await?;
            let mut fields = form_inputs(&page);
            if fields.contains_key("username") {
                // The mock IdP's sign-in form.
                fields.insert("username".into(), account.username.into());
                fields.insert("password".into(), account.password.into());
            } else if fields.get("prompt").map(String::as_str) == Some("login") {
                // node-oidc-provider's.
                fields.insert("login".into(), account.username.into());
                fields.insert("password".into(), account.password.into());
            } else if page.contains("name=\"decision\"") {
                fields.insert("decision".into(), "allow".into());
            }
            let action = page_url.join(&form_action(&page))?;
            response = browser.post(action).form(&fields).send().await?;
        }
        anyhow::bail!("the provider's pages never led back")
    }

    /// Step 6: code + verifier for tokens.
    pub async fn exchange(
        &self,
        http: &reqwest::Client,
        code: &str,
        verifier: &str,
    ) -> anyhow::Result<Value> {
        self.token_request(
            http,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", &self.redirect_uri),
                ("code_verifier", verifier),
            ],
        )
        .await
    }

    /// The refresh grant.
    pub async fn refresh(
        &self,
        http: &reqwest::Client,
        refresh_token: &str,
    ) -> anyhow::Result<Value> {
        self.token_request(
            http,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
        )
        .await
    }

    async fn token_request(
        &self,
        http: &reqwest::Client,
        form: &[(&str, &str)],
    ) -> anyhow::Result<Value> {
        let response = http
            .post(&self.token)
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .form(form)
            .send()
            .await?;
        let status = response.status();
        let body: Value = response.json().await?;
        anyhow::ensure!(status == 200, "token endpoint: {status} {body}");
        Ok(body)
    }
}

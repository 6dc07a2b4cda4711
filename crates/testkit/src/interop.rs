//! Certified implementations from npm, pinned in `interop/` and started by
//! the tests: node-oidc-provider as an OpenID Provider the BFF and the API
//! run against ([`NodeOp`]), openid-client as a relying party that drives
//! the mock IdP ([`run_openid_client`]).
//!
//! They need Node.js and their `node_modules` (`npm ci` in each folder;
//! `.ci/run` does it). Without them a test says once that it was skipped and
//! passes; with `REQUIRE_INTEROP=1` (CI) it fails instead.

use std::{
    io::{BufRead, BufReader, Write},
    path::PathBuf,
    process::{Child, Command, Output, Stdio},
    sync::Once,
    time::Duration,
};

use serde_json::Value;

use crate::{Account, form_action, form_inputs, location};

/// `interop/{name}`, if Node.js and the package's dependencies are there.
pub fn package(name: &str) -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../interop")
        .join(name);
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if node && dir.join("node_modules").is_dir() {
        return Some(dir);
    }
    let why = format!(
        "interop tests skipped: {} (npm ci --prefix interop/{name})",
        if node {
            "the npm packages are not installed"
        } else {
            "node is not installed"
        }
    );
    if std::env::var("REQUIRE_INTEROP").is_ok_and(|v| v == "1") {
        panic!("{why}, and REQUIRE_INTEROP=1");
    }
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = writeln!(std::io::stderr(), "{why}");
    });
    None
}

/// node-oidc-provider, running as a child process until dropped.
pub struct NodeOp {
    pub issuer: String,
    pub base_url: String,
    child: Child,
}

impl NodeOp {
    /// Starts the provider with these clients (its `OP_CLIENTS`) and access
    /// tokens that live `access_token_seconds`; `None` when the interop
    /// packages are not installed.
    pub fn start(clients: &Value, access_token_seconds: u64) -> Option<NodeOp> {
        let dir = package("node-oidc-provider")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let base_url = format!("http://localhost:{port}");
        let mut child = Command::new("node")
            .arg("server.mjs")
            .current_dir(dir)
            .env("OP_PORT", port.to_string())
            .env("OP_ISSUER", &base_url)
            .env("OP_CLIENTS", clients.to_string())
            .env("OP_ACCESS_TOKEN_TTL", access_token_seconds.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start node-oidc-provider");
        let stdout = child.stdout.take().expect("its stdout");
        let mut ready = String::new();
        BufReader::new(stdout)
            .read_line(&mut ready)
            .expect("a line");
        assert!(
            ready.starts_with("ready "),
            "node-oidc-provider said {ready:?}"
        );
        Some(NodeOp {
            issuer: base_url.clone(),
            base_url,
            child,
        })
    }

    /// How many token requests of `grant_type` the provider granted.
    pub async fn grants(&self, grant_type: &str) -> u64 {
        let counts: Value = reqwest::get(format!("{}/__test/grants", self.base_url))
            .await
            .expect("grant counts")
            .json()
            .await
            .expect("JSON");
        counts[grant_type].as_u64().unwrap_or(0)
    }

    /// A new signing key; the old one stays published. Its `kid`.
    pub async fn rotate_keys(&self) -> String {
        let answer: Value = reqwest::Client::new()
            .post(format!("{}/__test/rotate-keys", self.base_url))
            .send()
            .await
            .expect("rotate keys")
            .json()
            .await
            .expect("JSON");
        answer["kid"].as_str().expect("a kid").to_owned()
    }

    /// Walks a browser through the provider's own pages from `start` (a URL
    /// that leads to it, e.g. the BFF's `/bff/login`): its sign-in form (any
    /// password), its consent form, until a redirect leaves the provider.
    /// Returns where the browser was sent.
    pub async fn sign_in(
        &self,
        browser: &reqwest::Client,
        start: &str,
        account: &Account,
    ) -> String {
        let mut response = browser.get(start).send().await.expect("GET");
        for _ in 0..20 {
            if response.status().is_redirection() {
                let next = location(&response);
                if !next.starts_with(&self.base_url) {
                    return next;
                }
                response = browser.get(&next).send().await.expect("GET");
                continue;
            }
            assert_eq!(response.status(), 200, "a page of the provider");
            let page = response.text().await.expect("page");
            let mut fields = form_inputs(&page);
            if fields.get("prompt").map(String::as_str) == Some("login") {
                fields.insert("login".into(), account.username.into());
                fields.insert("password".into(), account.password.into());
            }
            response = browser
                .post(form_action(&page))
                .form(&fields)
                .send()
                .await
                .expect("POST");
        }
        panic!("the provider's pages never led back");
    }

    /// The provider's own sign-out page, confirmed (`logout=yes`): it ends
    /// its session and tells the clients over the back channel. `page` is
    /// the HTML of its confirmation.
    pub async fn confirm_logout(&self, browser: &reqwest::Client, page: &str) -> reqwest::Response {
        let mut fields = form_inputs(page);
        fields.insert("logout".into(), "yes".into());
        browser
            .post(form_action(page))
            .form(&fields)
            .send()
            .await
            .expect("POST")
    }
}

impl Drop for NodeOp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs openid-client's relying party (`interop/openid-client/rp.mjs`)
/// against `issuer` with its `RP_*` settings; `None` when the interop
/// packages are not installed.
pub async fn run_openid_client(issuer: &str, env: &[(&str, &str)]) -> Option<Output> {
    let dir = package("openid-client")?;
    let mut command = tokio::process::Command::new("node");
    command.arg("rp.mjs").arg(issuer).current_dir(dir);
    for (name, value) in env {
        command.env(name, value);
    }
    let output = tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("openid-client finishes within a minute")
        .expect("run openid-client");
    Some(output)
}

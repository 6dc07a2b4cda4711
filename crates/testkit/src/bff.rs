//! The client: the real BFF in-process, and a browser's walk through it
//! (sign in at `/bff/login`, the IdP's pages, back to the callback).

use clap::Parser;

use crate::{
    Account, ManualClock,
    idp::{consent, sign_in},
    location,
    server::{Faults, Running, listen},
};

/// The real BFF, in-process.
pub struct Bff {
    pub base_url: String,
    pub config: bff::Config,
    pub faults: Faults,
    /// The router being served, sharing the server's state: called
    /// in-process by the fuzz targets (`fuzz/`), one request per input.
    pub router: axum::Router,
    time: ManualClock,
    server: Running,
}

/// A BFF's configuration: the defaults, pointed at an IdP and an API, with
/// a memory store and a sealing key of its own, then `extra` options.
pub fn config(public_url: &str, issuer: &str, api_url: &str, extra: &[&str]) -> bff::Config {
    // `--name=value`: a base64url key may start with `-`.
    let keys = format!("--session-keys={}", bff::session::Sealer::new_key());
    let mut args = vec![
        "bff",
        "--public-url",
        public_url,
        "--issuer",
        issuer,
        "--api-url",
        api_url,
        "--session-store",
        "memory",
        &keys,
        "--metrics",
    ];
    args.extend_from_slice(extra);
    bff::Config::parse_from(args)
}

impl Bff {
    /// A BFF with this configuration on `listener`.
    pub async fn start_on(
        listener: tokio::net::TcpListener,
        config: bff::Config,
        time: &ManualClock,
    ) -> Bff {
        let base_url = format!("http://{}", listener.local_addr().expect("address"));
        let router = bff::app(&config, time.clock()).await.expect("BFF app");
        let faults = Faults::default();
        let server = Running::serve(listener, faults.around(router.clone())).await;
        Bff {
            base_url,
            config,
            faults,
            router,
            time: time.clone(),
            server,
        }
    }

    /// Another instance with the same configuration (store, keys, provider)
    /// on a port of its own: what a second replica behind a load balancer
    /// is. The browser's cookie, scoped by host, reaches both.
    pub async fn another(&self) -> Bff {
        let (listener, _) = listen().await;
        Bff::start_on(listener, self.config.clone(), &self.time).await
    }

    /// Stops this instance and starts it again on the same address.
    pub async fn restart(&mut self) {
        self.server.stop().await;
        let addr: std::net::SocketAddr = self
            .base_url
            .trim_start_matches("http://")
            .parse()
            .expect("BFF address");
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .expect("rebind the BFF port");
        let router = bff::app(&self.config, self.time.clock())
            .await
            .expect("BFF app");
        self.router = router.clone();
        self.server = Running::serve(listener, self.faults.around(router)).await;
    }

    pub async fn shutdown(&mut self) {
        self.server.stop().await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// A request to the BFF's JSON endpoints, with `X-CSRF: 1`.
    pub fn json(
        &self,
        browser: &reqwest::Client,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::RequestBuilder {
        browser
            .request(method, self.url(path))
            .header("X-CSRF", "1")
    }

    /// `GET /bff/user` with `X-CSRF: 1`: who the BFF thinks this browser is
    /// (200 with claims, or 401).
    pub async fn user(&self, browser: &reqwest::Client) -> reqwest::Response {
        self.json(browser, reqwest::Method::GET, "/bff/user")
            .send()
            .await
            .expect("GET /bff/user")
    }

    /// `GET /bff/api/{path}` with `X-CSRF: 1`.
    pub async fn api(&self, browser: &reqwest::Client, path: &str) -> reqwest::Response {
        self.json(browser, reqwest::Method::GET, &format!("/bff/api/{path}"))
            .send()
            .await
            .expect("GET /bff/api/…")
    }

    /// Signs in through this BFF as a browser would; see [`sign_in_at_bff`].
    pub async fn sign_in(
        &self,
        browser: &reqwest::Client,
        account: &Account,
        received: &mut Received,
    ) -> String {
        sign_in_at_bff(browser, &self.base_url, account, received).await
    }

    /// A fresh browser, signed in through this BFF as `account`.
    pub async fn signed_in_browser(&self, account: &Account) -> reqwest::Client {
        let browser = crate::http_client();
        self.sign_in(&browser, account, &mut Received::default())
            .await;
        browser
    }

    /// The anti-CSRF token of the home page's sign-out form.
    pub async fn sign_out_token(&self, browser: &reqwest::Client) -> String {
        let home = browser
            .get(self.url("/"))
            .send()
            .await
            .expect("home page")
            .text()
            .await
            .expect("home page text");
        crate::form_inputs(&home)
            .remove("csrf")
            .expect("a sign-out form")
    }
}

/// Everything a browser received: each response's URL, status, headers and
/// body, for scanning.
#[derive(Default)]
pub struct Received(pub Vec<String>);

impl Received {
    /// Records a response and returns its status, headers and body.
    pub async fn record(
        &mut self,
        response: reqwest::Response,
    ) -> (reqwest::StatusCode, reqwest::header::HeaderMap, String) {
        let status = response.status();
        let headers = response.headers().clone();
        let url = response.url().to_string();
        let body = response.text().await.expect("body");
        let mut text = format!("{url} {status}\n");
        for (name, value) in &headers {
            text.push_str(&format!("{name}: {}\n", value.to_str().unwrap_or("")));
        }
        text.push_str(&body);
        self.0.push(text);
        (status, headers, body)
    }

    pub fn contains(&self, needle: &str) -> bool {
        self.0.iter().any(|r| r.contains(needle))
    }
}

/// Signs in through a BFF at any base URL (a real binary, say) as a browser
/// would: `/bff/login`, the IdP's sign-in and consent pages, back to the
/// callback, following every redirect by hand. Returns the final redirect
/// target after the callback.
pub async fn sign_in_at_bff(
    browser: &reqwest::Client,
    bff_base_url: &str,
    account: &Account,
    received: &mut Received,
) -> String {
    let mut url = format!("{bff_base_url}/bff/login?returnUrl=/");
    loop {
        let response = if url.contains("/signin?") {
            sign_in(browser, &url, account).await
        } else if url.contains("/consent?") {
            consent(browser, &url, "allow").await
        } else {
            browser.get(&url).send().await.expect("GET")
        };
        let status = response.status();
        let next = status.is_redirection().then(|| location(&response));
        received.record(response).await;
        let Some(next) = next else {
            panic!("flow stopped at {url} with {status}");
        };
        if next.starts_with(bff_base_url) && !next.contains("/bff/") {
            return next;
        }
        url = next;
    }
}

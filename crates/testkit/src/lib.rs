//! Test helpers shared by the crates' integration tests: start the real
//! servers in-process on port 0, and walk the flow over HTTP the way a
//! browser and a client would (the IdP's forms included).
//!
//! By actor: [`idp`], [`api`], [`bff`], the three together in [`stack`],
//! and a real browser in [`browser`]. Every server of a test shares one
//! [`ManualClock`]: a test moves time forward instead of sleeping. A test
//! of what the IdP or the API stores runs on each [`database::Engine`]:
//! SQLite, and PostgreSQL ([`postgres`]).
//!
//! Nothing here is a mock: every helper drives a real server through its
//! public HTTP interface ([`server::Faults`] only slows or fails requests on
//! their way in). Helpers panic on failure, as test code does.

pub mod api;
pub mod bff;
pub mod browser;
pub mod database;
pub mod idp;
pub mod interop;
pub mod postgres;
pub mod redis;
pub mod server;
pub mod stack;

use std::collections::HashMap;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::RngCore;
use serde_json::Value;
use sha2::{Digest, Sha256};

pub use clock::ManualClock;
pub use mock_idp;

/// A demo account (the README lists them).
pub struct Account {
    pub username: &'static str,
    pub password: &'static str,
    pub name: &'static str,
}

pub const ALICE: Account = Account {
    username: "alice@example.com",
    password: "wonderland",
    name: "Alice Liddell",
};

pub const BOB: Account = Account {
    username: "bob@example.com",
    password: "builder",
    name: "Bob Builder",
};

/// The demo confidential client.
pub const CLIENT_ID: &str = "bff-demo";
pub const CLIENT_SECRET: &str = "bff-demo-secret";
pub const REDIRECT_URI: &str = "http://localhost:3000/bff/callback";
/// The demo public client (config/default.toml).
pub const NATIVE_ID: &str = "native-demo";
pub const NATIVE_REDIRECT_URI: &str = "http://127.0.0.1:8765/callback";
pub const ALL_SCOPES: &str = "openid profile email offline_access notes:read notes:write";
/// The audience of the access tokens: the API's identifier.
pub const AUDIENCE: &str = "api://default";

/// An HTTP client that keeps cookies, like a browser, and does not follow
/// redirects, so each step of the flow can be looked at.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client")
}

/// A PKCE pair (RFC 7636 4.1, 4.2).
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

pub fn pkce() -> Pkce {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let verifier = URL_SAFE_NO_PAD.encode(bytes);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    Pkce {
        verifier,
        challenge,
    }
}

pub fn random_string() -> String {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The `Location` header of a redirect, made absolute against the
/// request's URL.
pub fn location(response: &reqwest::Response) -> String {
    let value = response
        .headers()
        .get(reqwest::header::LOCATION)
        .unwrap_or_else(|| panic!("expected a redirect, got {}", response.status()))
        .to_str()
        .expect("ascii location");
    response
        .url()
        .join(value)
        .expect("location is a URL")
        .to_string()
}

/// The query parameters of a URL.
pub fn query_of(url: &str) -> HashMap<String, String> {
    url::Url::parse(url)
        .expect("URL")
        .query_pairs()
        .into_owned()
        .collect()
}

/// The `name` → `value` of every `<input>` of a page (hidden fields
/// included), as a browser would submit them.
pub fn form_inputs(html: &str) -> HashMap<String, String> {
    let mut fields = HashMap::new();
    for tag in html.split("<input").skip(1) {
        let tag = &tag[..tag.find('>').unwrap_or(tag.len())];
        let attr = |name: &str| {
            let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
            let end = tag[start..].find('"')? + start;
            Some(decode_html(&tag[start..end]))
        };
        if let Some(name) = attr("name") {
            fields.insert(name, attr("value").unwrap_or_default());
        }
    }
    fields
}

/// The `action` of the first `<form>` of a page.
pub fn form_action(html: &str) -> String {
    let tag = html.split("<form").nth(1).expect("a form");
    let start = tag.find("action=\"").expect("an action") + 8;
    let end = tag[start..].find('"').expect("a quoted action") + start;
    decode_html(&tag[start..end])
}

fn decode_html(value: &str) -> String {
    value
        .replace("&#x2f;", "/")
        .replace("&#x2F;", "/")
        .replace("&#47;", "/")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Base64url without padding, as JOSE writes it.
pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The claims of a JWT, unverified (to read what the issuer put in it).
pub fn claims_of(token: &str) -> Value {
    part_of(token, 1)
}

/// The header of a JWT, unverified.
pub fn header_of(token: &str) -> Value {
    part_of(token, 0)
}

fn part_of(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).expect("a JWT part");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("JSON")
}

/// The `Set-Cookie` header that sets `name`, if the response has one.
pub fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

/// The value a `Set-Cookie` line sets.
pub fn cookie_value(set_cookie: &str) -> String {
    let pair = set_cookie.split(';').next().unwrap_or("");
    pair.split_once('=')
        .map(|(_, v)| v.to_owned())
        .unwrap_or_default()
}

/// A unique path for a file under the system's temp directory; the file and
/// its SQLite companions go when the value is dropped.
pub struct TempFile(pub std::path::PathBuf);

impl TempFile {
    pub fn new(label: &str) -> TempFile {
        TempFile(std::env::temp_dir().join(format!("{label}-{}", random_string())))
    }

    /// A `sqlite://` URL of this file.
    pub fn sqlite_url(&self) -> String {
        format!("sqlite://{}", self.0.display())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut path = self.0.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}

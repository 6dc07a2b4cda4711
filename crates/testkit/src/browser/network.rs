//! What the browser received, read from inside it: chromedriver's
//! performance log carries the DevTools `Network.*` events (every request,
//! redirect and response, with their headers, `Set-Cookie` included), and
//! `Network.getResponseBody` gives each response's body, pages, scripts and
//! `fetch` answers alike.
//!
//! A response body is only kept while its page is the current one, so a
//! test calls `Browser::record_network` once each page has settled, before
//! it moves on.

use std::collections::HashSet;

use base64::{Engine, engine::general_purpose::STANDARD};
use serde_json::{Value, json};

#[derive(Default)]
pub struct Network {
    /// Each `Network.*` event as JSON text, then each response body read.
    pub received: Vec<String>,
    /// The URLs the browser requested, in order.
    pub requested: Vec<String>,
    /// The responses whose body was read.
    pub bodies: HashSet<String>,
    /// The web responses that should have had a body, but whose body could
    /// not be read (their page had gone before `record_network`).
    pub unread: Vec<String>,
}

impl Network {
    /// Whether anything the browser received contains `needle`.
    pub fn contains(&self, needle: &str) -> bool {
        self.received.iter().any(|r| r.contains(needle))
    }
}

impl Network {
    /// Takes in the DevTools events `events` (chromedriver's performance
    /// log since the last call) and, for every response among them, its
    /// body as `Network.getResponseBody` answers for a request id.
    pub async fn record(
        &mut self,
        events: Vec<Value>,
        body_of: impl AsyncFn(&str) -> Option<Value>,
    ) {
        for event in events {
            let method = event["method"].as_str().unwrap_or_default();
            if !method.starts_with("Network.") {
                continue;
            }
            let params = &event["params"];
            if method == "Network.requestWillBeSent"
                && let Some(url) = params["request"]["url"].as_str()
            {
                self.requested.push(url.to_owned());
            }
            self.received.push(event.to_string());
            if method == "Network.responseReceived"
                && let Some(request_id) = params["requestId"].as_str()
            {
                let answer = body_of(request_id).await;
                self.read_body(params, answer);
            }
        }
    }

    fn read_body(&mut self, params: &Value, answer: Option<Value>) {
        let url = params["response"]["url"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let Some(answer) = answer else {
            // Only an empty answer has no body. Chromium's own pages aside,
            // and the favicon: Chromium fetches it for its tab strip, not
            // for the page, and may drop its body early.
            let status = params["response"]["status"].as_u64().unwrap_or_default();
            let page_resource = url.starts_with("http") && !url.ends_with("/favicon.ico");
            if page_resource && !matches!(status, 204 | 304) {
                self.unread.push(format!("{status} {url}"));
            }
            return;
        };
        let body = answer["body"].as_str().unwrap_or_default();
        let body = if answer["base64Encoded"] == json!(true) {
            String::from_utf8_lossy(&STANDARD.decode(body).unwrap_or_default()).into_owned()
        } else {
            body.to_owned()
        };
        self.received.push(format!("{url}\n{body}"));
        self.bodies.insert(url);
    }
}

//! Headless Chromium, driven through Debian's chromedriver.
//!
//! Each test starts its own chromedriver on a free port ([`Chrome::start`])
//! and opens one or more browsers in it ([`Chrome::browser`]), each with a
//! fresh profile: no cookie or storage carries over between two of them.
//! Dropping the [`Chrome`] asks chromedriver to quit every browser it
//! started, then stops it and removes the profiles, so a failed test leaves
//! no process behind.
//!
//! Where Chromium or chromedriver is missing, [`Chrome::start`] returns
//! `None` after saying so, and the test passes as skipped; with
//! `REQUIRE_BROWSER=1` (CI) it panics instead.

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Mutex, Once},
    time::{Duration, Instant},
};

use axum::http::Method;
use base64::{Engine, engine::general_purpose::STANDARD};
use fantoccini::{
    Client, ClientBuilder, Locator,
    actions::{InputSource, KeyAction, KeyActions},
    elements::Element,
    key::Key,
    wd::WebDriverCompatibleCommand,
};
use serde_json::{Value, json};

use super::network::Network;

/// How to get the browser, as the skip notice and CI's failure say it.
const INSTALL: &str =
    "install chromium and chromium-driver (apt-get install chromium chromium-driver)";

/// How long a page may take to show what a step waits for.
const PATIENCE: Duration = Duration::from_secs(15);

/// Chromium's flags for a headless run as root in a container, with nothing
/// that reaches out to the network on its own (component updates, sync,
/// QUIC probes): the only requests are the ones the pages make.
const FLAGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--hide-scrollbars",
    "--window-size=1280,800",
];

/// Whether a missing browser is a failure (CI sets `REQUIRE_BROWSER=1`).
pub fn browser_required() -> bool {
    std::env::var("REQUIRE_BROWSER").is_ok_and(|v| v == "1")
}

/// Says once per test binary that the browser tests were skipped, on the
/// real stderr: libtest captures `eprintln!` of passing tests, not this.
pub fn say_skipped(message: &str) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = writeln!(std::io::stderr(), "{message}");
    });
}

/// `name` on the `PATH`, or the path an environment variable names.
fn program(env: &str, name: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env) {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// A chromedriver process and the browser profiles it was given.
pub struct Chrome {
    driver: Child,
    port: u16,
    chromium: PathBuf,
    profiles: Mutex<Vec<PathBuf>>,
}

impl Chrome {
    /// Starts chromedriver on a free port; `None` (test skipped) when
    /// Chromium or chromedriver is not installed.
    pub fn start() -> Option<Chrome> {
        let chromium = program("CHROMIUM", "chromium");
        let chromedriver = program("CHROMEDRIVER", "chromedriver");
        let (Some(chromium), Some(chromedriver)) = (chromium, chromedriver) else {
            assert!(
                !browser_required(),
                "REQUIRE_BROWSER=1, but Chromium or chromedriver is missing: {INSTALL}"
            );
            say_skipped(&format!("browser tests skipped: {INSTALL}"));
            return None;
        };
        let port = free_port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let chrome = Chrome {
            driver,
            port,
            chromium,
            profiles: Mutex::new(Vec::new()),
        };
        chrome.wait_until_listening();
        Some(chrome)
    }

    fn wait_until_listening(&self) {
        let deadline = Instant::now() + PATIENCE;
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not start listening"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A new headless browser with a fresh profile, logging its network
    /// events for [`Network`].
    pub async fn browser(&self) -> Browser {
        let profile = std::env::temp_dir().join(format!("bff-browser-{}", crate::random_string()));
        self.profiles
            .lock()
            .expect("profiles")
            .push(profile.clone());
        let mut args: Vec<String> = FLAGS.iter().map(|f| f.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": self.chromium,
                "args": args,
            },
            // The DevTools Network events, read by `Network`.
            "goog:loggingPrefs": { "performance": "ALL" },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a Chromium session");
        Browser {
            client,
            network: Network::default(),
        }
    }
}

impl Drop for Chrome {
    fn drop(&mut self) {
        // chromedriver's own endpoint: quit every browser, then exit.
        let _ = shutdown(self.port);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.driver.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        for profile in self.profiles.lock().map(|p| p.clone()).unwrap_or_default() {
            let _ = std::fs::remove_dir_all(profile);
        }
    }
}

fn shutdown(port: u16) -> std::io::Result<()> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(b"GET /shutdown HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")?;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    Ok(())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A viewport the pages are looked at in.
#[derive(Clone, Copy, Debug)]
pub struct Viewport {
    pub name: &'static str,
    pub width: u32,
    pub height: u32,
    pub mobile: bool,
}

pub const LAPTOP: Viewport = Viewport {
    name: "laptop",
    width: 1280,
    height: 800,
    mobile: false,
};

pub const PHONE: Viewport = Viewport {
    name: "phone",
    width: 390,
    height: 844,
    mobile: true,
};

/// One browser (one profile: its own cookies and storage).
pub struct Browser {
    pub client: Client,
    /// Everything this browser received, as far as it has been read.
    pub network: Network,
}

impl Browser {
    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    pub async fn url(&self) -> url::Url {
        self.client.current_url().await.expect("current URL")
    }

    /// Runs `script` (a function body) in the page and returns its value.
    pub async fn js(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Waits until the expression `condition` is true in the page.
    pub async fn wait_until(&self, condition: &str) {
        let script = format!("return Boolean({condition});");
        let deadline = Instant::now() + PATIENCE;
        loop {
            // A navigation in progress can make a script fail: try again.
            if let Ok(Value::Bool(true)) = self.client.execute(&script, vec![]).await {
                return;
            }
            if Instant::now() > deadline {
                let url = self
                    .client
                    .current_url()
                    .await
                    .map(|u| u.to_string())
                    .unwrap_or_default();
                let text = self.text().await;
                panic!("waited in vain for `{condition}` on {url}:\n{text}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the page's address starts with `prefix` and it has loaded.
    pub async fn wait_for_url(&self, prefix: &str) {
        let prefix_js = serde_json::to_string(prefix).expect("JSON");
        self.wait_until(&format!(
            "location.href.startsWith({prefix_js}) && document.readyState === 'complete'"
        ))
        .await;
    }

    /// The visible text of the page.
    pub async fn text(&self) -> String {
        match self
            .client
            .execute(
                "return document.body ? document.body.innerText : '';",
                vec![],
            )
            .await
        {
            Ok(Value::String(text)) => text,
            _ => String::new(),
        }
    }

    pub async fn find(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no `{css}` on the page: {e}"))
    }

    pub async fn click(&self, css: &str) {
        self.find(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("click `{css}`: {e}"));
    }

    /// Types into a field, replacing what it held.
    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field.clear().await.expect("clear field");
        field.send_keys(text).await.expect("type");
    }

    // ---- The keyboard alone ------------------------------------------------

    /// Presses each key of `keys` in turn (characters, or `Key::…` as char),
    /// on whatever has the focus, as a person at a keyboard does.
    pub async fn press(&self, keys: &str) {
        let mut actions = KeyActions::new("keyboard".into());
        for key in keys.chars() {
            actions = actions
                .then(KeyAction::Down { value: key })
                .then(KeyAction::Up { value: key });
        }
        self.client
            .perform_actions(actions)
            .await
            .expect("key presses");
    }

    pub async fn press_key(&self, key: Key) {
        self.press(&char::from(key).to_string()).await;
    }

    /// Presses Tab until the focused element matches `css` (and, if given,
    /// its accessible text contains `text`); panics if Tab never gets there.
    /// Each element Tab stops on must show that it has the focus.
    pub async fn tab_to(&self, css: &str, text: Option<&str>) {
        const MAX_TABS: usize = 40;
        let css_js = serde_json::to_string(css).expect("JSON");
        let text_js = serde_json::to_string(text.unwrap_or("")).expect("JSON");
        let check = format!(
            "const e = document.activeElement;
             if (!e || e === document.body) return {{ done: false, visible: true }};
             const s = getComputedStyle(e);
             const visible = (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0)
                             || s.boxShadow !== 'none';
             const done = e.matches({css_js}) && (e.innerText || e.value || '').includes({text_js});
             return {{ done, visible, what: e.outerHTML.slice(0, 120) }};"
        );
        for _ in 0..MAX_TABS {
            self.press_key(Key::Tab).await;
            let state = self.js(&check).await;
            assert_eq!(
                state["visible"],
                json!(true),
                "WCAG 2.4.7: the focus is not visible on {} at {}",
                state["what"],
                self.url().await
            );
            if state["done"] == json!(true) {
                return;
            }
        }
        panic!("Tab never reached `{css}` {text:?} on {}", self.url().await);
    }

    // ---- Viewports and screenshots -------------------------------------------

    /// Lays the page out as on a screen of this size (CSS pixels, scale 1).
    pub async fn view_as(&self, viewport: Viewport) {
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({
                "width": viewport.width,
                "height": viewport.height,
                "deviceScaleFactor": 1,
                "mobile": viewport.mobile,
            }),
        )
        .await;
    }

    /// A PNG of the viewport.
    pub async fn screenshot(&self, path: &Path) {
        let answer = self
            .cdp("Page.captureScreenshot", json!({ "format": "png" }))
            .await;
        let png = STANDARD
            .decode(answer["data"].as_str().expect("screenshot data"))
            .expect("base64 PNG");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("screenshot folder");
        }
        std::fs::write(path, png).expect("write screenshot");
    }

    // ---- What chromedriver adds to WebDriver ---------------------------------

    /// A DevTools protocol command, through chromedriver.
    pub async fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.try_cdp(cmd, params)
            .await
            .unwrap_or_else(|e| panic!("DevTools {cmd}: {e}"))
    }

    pub async fn try_cdp(
        &self,
        cmd: &str,
        params: Value,
    ) -> Result<Value, fantoccini::error::CmdError> {
        self.client
            .issue_cmd(SessionPost {
                path: "goog/cdp/execute",
                body: json!({ "cmd": cmd, "params": params }),
            })
            .await
    }

    /// The performance log (DevTools events) since the last read.
    /// Reads the network events since the last call, and the body of every
    /// response among them that has one ([`Network`]).
    pub async fn record_network(&mut self) {
        let events = self.performance_log().await;
        let mut network = std::mem::take(&mut self.network);
        let body_of = async |request_id: &str| {
            let params = serde_json::json!({ "requestId": request_id });
            self.try_cdp("Network.getResponseBody", params).await.ok()
        };
        network.record(events, body_of).await;
        self.network = network;
    }

    pub async fn performance_log(&self) -> Vec<Value> {
        let entries = self
            .client
            .issue_cmd(SessionPost {
                path: "se/log",
                body: json!({ "type": "performance" }),
            })
            .await
            .expect("performance log");
        entries
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|entry| entry["message"].as_str())
            .filter_map(|message| serde_json::from_str::<Value>(message).ok())
            .map(|message| message["message"].clone())
            .collect()
    }
}

/// A POST to one of chromedriver's own session endpoints.
#[derive(Debug)]
struct SessionPost {
    path: &'static str,
    body: Value,
}

impl WebDriverCompatibleCommand for SessionPost {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        let session = session_id.expect("a session was started");
        base_url.join(&format!("session/{session}/{}", self.path))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (Method, Option<String>) {
        (Method::POST, Some(self.body.to_string()))
    }
}

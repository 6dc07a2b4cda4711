//! The whole stack as a person runs it: the real binaries, started by
//! `scripts/up.sh` (what `just up` runs), on free ports; one login walked
//! over HTTP; and the logs of all three searched for every secret of that
//! login. Also the binaries' `--help` and their bad-configuration messages.
//!
//! The binaries are the ones `cargo test --workspace --all-targets` (that
//! is, `just test`) builds next to this test.

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use testkit::{
    ALICE, TempFile,
    bff::{Received, sign_in_at_bff},
    http_client,
    idp::{consent, sign_in},
    location, query_of,
};

/// `target/debug`, where cargo put the binaries next to this test.
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent()
        .and_then(|p| p.parent())
        .expect("target/debug")
        .to_path_buf()
}

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A child process group that is killed when dropped.
struct Up {
    child: Child,
    output: Arc<Mutex<String>>,
}

impl Drop for Up {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &group])
            .status();
        let _ = self.child.wait();
    }
}

impl Up {
    fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    fn wait_for(&self, needle: &str, timeout: Duration) {
        let start = Instant::now();
        while !self.output().contains(needle) {
            assert!(
                start.elapsed() < timeout,
                "no {needle:?} in:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// `scripts/up.sh` (what `just up` runs) with the binaries already built,
/// its environment as `configure` sets it, its output collected.
fn up(configure: impl FnOnce(&mut Command)) -> Up {
    use std::os::unix::process::CommandExt;
    let mut child = Command::new("bash");
    child
        .arg("scripts/up.sh")
        .current_dir(workspace_root())
        .env("UP_NO_BUILD", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    configure(&mut child);
    let mut child = child.spawn().expect("start scripts/up.sh");
    let output = Arc::new(Mutex::new(String::new()));
    for stream in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let output = output.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let mut out = output.lock().unwrap();
                out.push_str(&line);
                out.push('\n');
            }
        });
    }
    Up { child, output }
}

#[tokio::test(flavor = "multi_thread")]
async fn just_up_refuses_a_taken_port_at_once_and_says_how_to_find_its_holder() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = holder.local_addr().unwrap().port();
    let mut up = up(|child| {
        child
            .env("IDP_PORT", free_port().to_string())
            .env("API_PORT", free_port().to_string())
            .env("BFF_PORT", taken.to_string());
    });
    let status = up.child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "{}", up.output());
    up.wait_for(
        &format!("port {taken} (bff) is already taken"),
        Duration::from_secs(5),
    );
    assert!(
        up.output()
            .contains(&format!("ss -ltnp 'sport = :{taken}'"))
    );
    assert!(!up.output().contains("is up"), "nothing claimed to be up");
}

#[tokio::test(flavor = "multi_thread")]
async fn just_up_on_moved_ports_moves_every_url_and_sign_in_works() {
    let (idp_port, api_port, bff_port) = (free_port(), free_port(), free_port());
    let idp_db = TempFile::new("moved-idp.db");
    let api_db = TempFile::new("moved-api.db");
    let up = up(|child| {
        child
            .env("IDP_PORT", idp_port.to_string())
            .env("API_PORT", api_port.to_string())
            .env("BFF_PORT", bff_port.to_string())
            .env("IDP_DATABASE_URL", idp_db.sqlite_url())
            .env("API_DATABASE_URL", api_db.sqlite_url())
            .env("BFF_SESSION_STORE", "memory");
    });
    up.wait_for("Open ", Duration::from_secs(300));
    let bff = format!("http://localhost:{bff_port}");
    assert!(
        up.output().contains(&format!("Open {bff}")),
        "{}",
        up.output()
    );
    let browser = http_client();
    let home = sign_in_at_bff(&browser, &bff, &ALICE, &mut Received::default()).await;
    assert_eq!(home, format!("{bff}/"));
    let notes = browser
        .get(format!("{bff}/bff/api/notes"))
        .header("X-CSRF", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(notes.status(), 200, "the API on its moved port answers");
}

#[test]
fn just_up_with_json_logs_prints_json_only_each_line_naming_its_service() {
    use std::os::unix::process::CommandExt;
    let idp_db = TempFile::new("json-idp.db");
    let api_db = TempFile::new("json-api.db");
    let mut child = Command::new("bash")
        .arg("scripts/up.sh")
        .current_dir(workspace_root())
        .env("UP_NO_BUILD", "1")
        .env("LOG_FORMAT", "json")
        .env("IDP_PORT", free_port().to_string())
        .env("API_PORT", free_port().to_string())
        .env("BFF_PORT", free_port().to_string())
        .env("IDP_DATABASE_URL", idp_db.sqlite_url())
        .env("API_DATABASE_URL", api_db.sqlite_url())
        .env("BFF_SESSION_STORE", "memory")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut services = std::collections::BTreeSet::new();
    for line in stdout.lines().map_while(Result::ok) {
        let json: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        let service = json["service"]
            .as_str()
            .expect("a service field")
            .to_owned();
        let listening = line.contains("listening");
        services.insert(service);
        if listening && services.len() == 3 {
            break;
        }
    }
    let _ = Command::new("kill")
        .args(["-s", "KILL", "--", &format!("-{}", child.id())])
        .status();
    let _ = child.wait();
    assert_eq!(
        services.into_iter().collect::<Vec<_>>(),
        ["api", "bff", "idp"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn just_up_runs_the_real_binaries_and_logs_no_secret_of_a_login() {
    let (idp_port, api_port, bff_port) = (free_port(), free_port(), free_port());
    let idp = format!("http://127.0.0.1:{idp_port}");
    let issuer = format!("{idp}/oauth2/default");
    let bff = format!("http://127.0.0.1:{bff_port}");
    let tmp = std::env::temp_dir().join(format!("stack-{}", testkit::random_string()));
    std::fs::create_dir_all(&tmp).unwrap();
    // The demo configuration with the BFF's real callback URL.
    let config = testkit::mock_idp::config::DEFAULT_SETTINGS
        .replace(
            "http://localhost:3000/bff/callback",
            &format!("{bff}/bff/callback"),
        )
        .replace("http://localhost:3000/", &format!("{bff}/"));
    let config_path = tmp.join("idp.toml");
    std::fs::write(&config_path, config).unwrap();
    // The BFF's sessions in a SQLite file, sealed with a key the test
    // knows, so it can read the secrets of the login back from the store.
    let sessions = TempFile::new("stack-bff.db");
    let key = bff::session::Sealer::new_key();

    let up = up(|child| {
        child
            .env("RUST_LOG", "debug")
            .env("IDP_PORT", idp_port.to_string())
            .env("IDP_ISSUER", &issuer)
            .env("IDP_CONFIG", &config_path)
            .env(
                "IDP_DATABASE_URL",
                format!("sqlite://{}", tmp.join("idp.db").display()),
            )
            .env("API_PORT", api_port.to_string())
            .env("API_ISSUER", &issuer)
            .env(
                "API_DATABASE_URL",
                format!("sqlite://{}", tmp.join("api.db").display()),
            )
            .env("BFF_PORT", bff_port.to_string())
            .env("BFF_PUBLIC_URL", &bff)
            .env("BFF_ISSUER", &issuer)
            .env("BFF_API_URL", format!("http://127.0.0.1:{api_port}"))
            .env("BFF_SESSION_STORE", sessions.sqlite_url())
            .env("BFF_SESSION_KEYS", &key);
    });
    up.wait_for("Open ", Duration::from_secs(300));
    for label in ["[idp]", "[api]", "[bff]"] {
        assert!(up.output().contains(label), "output is labelled {label}");
    }

    // A login, step by step, keeping every secret it involves.
    let browser = http_client();
    let login = browser
        .get(format!("{bff}/bff/login"))
        .send()
        .await
        .unwrap();
    let authorize = location(&login);
    let session_cookie = login
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .and_then(|v| v.split_once('='))
        .map(|(_, v)| v.to_owned())
        .expect("session cookie");
    let verifier = stored(&sessions, &key, "bff_sessions").await[0]["data"]["pending_logins"][0]
        ["pkce_verifier"]
        .as_str()
        .expect("a pending login")
        .to_owned();
    let signin = location(&browser.get(&authorize).send().await.unwrap());
    let consent_page = location(&sign_in(&browser, &signin, &ALICE).await);
    let callback = location(&consent(&browser, &consent_page, "allow").await);
    let code = query_of(&callback)["code"].clone();
    let state = query_of(&callback)["state"].clone();
    let landed = browser.get(&callback).send().await.unwrap();
    assert_eq!(landed.status(), 303);
    let json = |path: &str| browser.get(format!("{bff}{path}")).header("X-CSRF", "1");
    let user = json("/bff/user").send().await.unwrap();
    assert_eq!(user.status(), 200);
    let notes = json("/bff/api/notes").send().await.unwrap();
    assert_eq!(notes.status(), 200);
    let request_id = format!("trace-{}", testkit::random_string());
    let traced = json("/bff/api/me")
        .header("x-request-id", &request_id)
        .send()
        .await
        .unwrap();
    assert_eq!(traced.status(), 200);
    let login = &stored(&sessions, &key, "bff_logins").await[0]["tokens"];
    let tokens: Vec<String> = ["access_token", "refresh_token", "id_token"]
        .iter()
        .map(|name| login[name].as_str().expect("a token").to_owned())
        .collect();
    // A second login through the helper, for good measure.
    sign_in_at_bff(&http_client(), &bff, &ALICE, &mut Received::default()).await;

    // The request id given to the BFF is in the API's log of that call.
    let api_saw_it = up
        .output()
        .lines()
        .any(|l| l.starts_with("[api]") && l.contains(&request_id));
    assert!(api_saw_it, "the API's log has the BFF's request id");

    // The services' own log lines (the banner shows the demo passwords on
    // purpose).
    let logs: String = up
        .output()
        .lines()
        .filter(|l| !l.starts_with("[up]"))
        .map(|l| format!("{l}\n"))
        .collect();
    let secrets = [
        ("password", ALICE.password.to_owned()),
        ("client secret", "bff-demo-secret".to_owned()),
        ("authorization code", code),
        ("PKCE verifier", verifier),
        ("state", state),
        ("BFF session cookie", session_cookie),
        ("access token", tokens[0].clone()),
        ("refresh token", tokens[1].clone()),
        ("ID token", tokens[2].clone()),
    ];
    for (what, secret) in &secrets {
        assert!(!secret.is_empty(), "{what} is known to the test");
        let leaks: Vec<&str> = logs
            .lines()
            .filter(|l| l.contains(secret.as_str()))
            .collect();
        assert!(
            leaks.is_empty(),
            "the {what} appears in the logs: {leaks:#?}"
        );
    }
    assert!(
        !logs.contains("eyJ"),
        "something JWT-shaped appears in the logs"
    );

    // Ctrl-C stops all three.
    let pid = up.child.id();
    Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", bff_port)).is_ok()
        || std::net::TcpStream::connect(("127.0.0.1", idp_port)).is_ok()
        || std::net::TcpStream::connect(("127.0.0.1", api_port)).is_ok()
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "services still up after Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(up);
    let _ = std::fs::remove_dir_all(tmp);
}

/// The records of one table of the BFF's SQLite session store, opened with
/// its sealing key: what the BFF keeps (the slot a record is stored under is
/// what it is sealed for).
async fn stored(db: &TempFile, key: &str, table: &str) -> Vec<serde_json::Value> {
    use sqlx::Row;
    let sealer = bff::session::Sealer::from_encoded(&[key.to_owned()]).expect("the key");
    let pool = sqlx::SqlitePool::connect(&db.sqlite_url())
        .await
        .expect("the store");
    let rows = sqlx::query(&format!("SELECT key, value FROM {table}"))
        .fetch_all(&pool)
        .await
        .expect("rows");
    pool.close().await;
    rows.iter()
        .map(|row| {
            let slot: String = row.get(0);
            let sealed: Vec<u8> = row.get(1);
            let json = sealer.open(&slot, &sealed).expect("sealed for its slot");
            serde_json::from_slice(&json).expect("JSON")
        })
        .collect()
}

/// Runs a binary with arguments; returns (exit code, stdout, stderr).
fn run(bin: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(bin_dir().join(bin))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap_or_else(|e| panic!("run {bin}: {e}"));
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_option_of_every_binary_shows_its_environment_variable_in_help() {
    let expected: [(&str, &[&str]); 3] = [
        (
            "mock-idp",
            &[
                "IDP_BIND",
                "IDP_PORT",
                "IDP_ISSUER",
                "IDP_CONFIG",
                "IDP_DATABASE_URL",
                "IDP_SIGNING_ALG",
                "LOG_FORMAT",
            ],
        ),
        (
            "api",
            &[
                "API_BIND",
                "API_PORT",
                "API_ISSUER",
                "API_AUDIENCE",
                "API_DATABASE_URL",
                "LOG_FORMAT",
            ],
        ),
        (
            "bff",
            &[
                "BFF_BIND",
                "BFF_PORT",
                "BFF_PUBLIC_URL",
                "BFF_ISSUER",
                "BFF_CLIENT_ID",
                "BFF_CLIENT_SECRET",
                "BFF_SESSION_STORE",
                "BFF_API_URL",
                "LOG_FORMAT",
            ],
        ),
    ];
    for (bin, vars) in expected {
        let (code, help, _) = run(bin, &["--help"]);
        assert_eq!(code, Some(0), "{bin} --help");
        for var in vars {
            assert!(
                help.contains(&format!("[env: {var}")),
                "{bin} --help lacks {var}"
            );
        }
        // Every `--option` line names its environment variable.
        let options = help
            .lines()
            .filter(|l| l.trim_start().starts_with("--") || l.trim_start().starts_with("-p, --"));
        for line in options {
            if line.contains("--help") || line.contains("--version") {
                continue;
            }
            let block_start = help.find(line).unwrap();
            let block = &help[block_start..(block_start + 600).min(help.len())];
            let next_option = block[2..]
                .find("\n  -")
                .map(|i| i + 2)
                .unwrap_or(block.len());
            assert!(
                block[..next_option].contains("[env: "),
                "{bin}: {line} has no env var"
            );
        }
    }
    assert!(
        !run("bff", &["--help"]).1.contains("bff-demo-secret"),
        "help hides the secret's default"
    );
}

/// A bad configuration fails at start with one clear line naming the
/// option, and no panic.
fn assert_clean_failure(bin: &str, args: &[&str], names: &str) {
    let (code, _, stderr) = run(bin, args);
    assert_ne!(code, Some(0), "{bin} {args:?} should fail");
    assert!(!stderr.contains("panicked"), "{bin} panicked: {stderr}");
    assert!(!stderr.contains("RUST_BACKTRACE"), "{bin}: {stderr}");
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with(&format!("{bin}:")))
        .collect();
    assert_eq!(
        errors.len(),
        1,
        "{bin} {args:?}: one error line expected in {stderr:?}"
    );
    assert!(
        errors[0].contains(names),
        "{bin} {args:?}: {:?} does not name {names}",
        errors[0]
    );
}

#[test]
fn bad_configuration_fails_with_one_line_naming_the_option() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_port = busy.local_addr().unwrap().port().to_string();
    let closed_port = free_port();
    let nowhere = format!("http://127.0.0.1:{closed_port}/oauth2/default");
    assert_clean_failure(
        "mock-idp",
        &["--config", "/nonexistent/idp.toml"],
        "--config",
    );
    assert_clean_failure(
        "mock-idp",
        &["--port", &busy_port, "--database-url", "sqlite::memory:"],
        "--port",
    );
    assert_clean_failure(
        "mock-idp",
        &[
            "--database-url",
            "sqlite:///proc/forbidden/idp.db",
            "--port",
            "0",
        ],
        "--database-url",
    );
    assert_clean_failure(
        "bff",
        &[
            "--port",
            "0",
            "--issuer",
            &nowhere,
            "--session-store",
            "memory",
        ],
        "--issuer",
    );
    assert_clean_failure("bff", &["--port", &busy_port], "--port");
    assert_clean_failure(
        "api",
        &["--port", &busy_port, "--database-url", "sqlite::memory:"],
        "port",
    );
    drop(busy);
}

//! What `just bench` measures, in order, and against what.

use std::{sync::Arc, time::Duration};

use serde_json::json;

use crate::{
    limits,
    load::{self, Run},
    oauth::Client,
    procs::{Server, free_port, pinned, server_binary, workspace},
    report::Report,
    workers::{Get, PasswordLogin, Refresh, SsoLogin},
};

/// The concurrencies every login and grant is measured at.
const CONCURRENCY: [usize; 3] = [1, 4, 16];
/// How many sessions the BFF's store holds while its proxy is measured.
const SESSIONS_HELD: [usize; 3] = [1, 10_000, 100_000];
/// The demo client of the mock IdP (and of node-oidc-provider here).
const CLIENT: (&str, &str) = ("bff-demo", "bff-demo-secret");

/// Where every BFF of the run listens, one after the other: the IdPs
/// register its callback for the demo client.
fn bff_url() -> &'static str {
    static URL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    URL.get_or_init(|| format!("http://127.0.0.1:{}", free_port()))
}

fn callback() -> String {
    format!("{}/bff/callback", bff_url())
}
const SCOPE: &str = "openid profile email offline_access notes:read";

pub async fn all(seconds: u64, only: &[String]) -> anyhow::Result<()> {
    let duration = Duration::from_secs(seconds);
    let wanted = |part: &str| only.is_empty() || only.iter().any(|o| o == part);
    let mut report = Report::new();
    println!("just bench: {} ({})", report.machine, report.date);
    if !crate::procs::can_pin() {
        println!("  (taskset is missing: the servers and the load share the cores)");
    }
    let tmp = tempdir()?;

    // ---- the IdP: logins and refreshes against their limits -------------
    // Access tokens of an hour: the API's and the proxy's direct calls use
    // one token for several minutes of runs.
    let idp = start_idp(&tmp, "RS256", 3600).await?;
    let client = Arc::new(discover(&idp.url("/oauth2/default")).await?);
    let argon2 = match wanted("password") {
        true => limits::measure("argon2", seconds)?,
        false => 0.0,
    };
    for concurrency in CONCURRENCY.into_iter().filter(|_| wanted("password")) {
        let workers = (0..concurrency)
            .map(|_| PasswordLogin {
                client: client.clone(),
                http: reqwest::Client::new(),
                extra: Vec::new(),
            })
            .collect();
        let run = load::run(workers, duration, Some(&idp)).await;
        report.keep(&format!("password_login_c{concurrency}"), &run);
        report.row(
            &format!("password logins/s, concurrency {concurrency}"),
            format!("{:.1}/s, IdP CPU {:.1} ms each", run.rate, cpu(&run)),
            format!("argon2 alone {argon2:.1}/s"),
            Some(run.rate / argon2),
            (concurrency == 16).then_some(0.9),
        );
    }
    // Single sign-on and refresh, per algorithm.
    for alg in ["RS256", "ES256"] {
        if !wanted("sso") && !wanted("refresh") {
            continue;
        }
        let fresh;
        let (server, client) = if alg == "RS256" {
            (&idp, client.clone())
        } else {
            fresh = start_idp(&tmp, alg, 300).await?;
            let client = Arc::new(discover(&fresh.url("/oauth2/default")).await?);
            (&fresh, client)
        };
        let signing = limits::measure(&format!("sign-{alg}"), seconds)?;
        for concurrency in CONCURRENCY.into_iter().filter(|_| wanted("sso")) {
            let mut workers = Vec::new();
            for _ in 0..concurrency {
                workers.push(SsoLogin::new(client.clone(), reqwest::Client::new(), &[]).await?);
            }
            let run = load::run(workers, duration, Some(server)).await;
            report.keep(&format!("sso_login_{alg}_c{concurrency}"), &run);
            report.row(
                &format!("SSO logins/s ({alg}), concurrency {concurrency}"),
                format!("{:.1}/s, IdP CPU {:.2} ms each", run.rate, cpu(&run)),
                format!("two signatures alone {signing:.0}/s"),
                Some(run.rate / signing),
                (concurrency == 16).then_some(0.8),
            );
        }
        for concurrency in CONCURRENCY.into_iter().filter(|_| wanted("refresh")) {
            let mut workers = Vec::new();
            for _ in 0..concurrency {
                workers.push(Refresh::new(client.clone(), reqwest::Client::new(), &[]).await?);
            }
            let run = load::run(workers, duration, Some(server)).await;
            report.keep(&format!("refresh_{alg}_c{concurrency}"), &run);
            report.row(
                &format!("refresh grants/s ({alg}), concurrency {concurrency}"),
                format!("{:.1}/s, IdP CPU {:.2} ms each", run.rate, cpu(&run)),
                format!("two signatures alone {signing:.0}/s"),
                Some(run.rate / signing),
                (concurrency == 16).then_some(0.8),
            );
        }
    }

    // ---- the mock IdP against node-oidc-provider, interleaved -----------
    if wanted("node") {
        match start_node_op().await {
            Some(node) => {
                compare_with_node(&tmp, &idp, client.clone(), &node, duration, &mut report).await?
            }
            None => println!("  node-oidc-provider skipped: node or its packages are missing"),
        }
    }

    // ---- the API against its own unauthenticated rate --------------------
    let tokens = {
        let browser = testkit::http_client();
        let (url, verifier) = client.authorize_url(&[]);
        let code = client.code(&browser, &url, &testkit::ALICE).await?;
        client
            .exchange(&reqwest::Client::new(), &code, &verifier)
            .await?
    };
    let access_token = tokens["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let issuer = idp.url("/oauth2/default");
    for cache in [true, false].into_iter().filter(|_| wanted("api")) {
        let api = start_api(&tmp, &issuer, cache).await?;
        // Three rounds, the two routes taking turns, and the median run of
        // each: a single pair let one slow moment of the shared core decide
        // the ratio (once /healthz at 11,902/s against 32,208/s validated).
        let (mut healths, mut mes) = (Vec::new(), Vec::new());
        for _round in 0..3 {
            healths.push(get_run(&api.url("/healthz"), None, &[], 16, duration, &api).await);
            mes.push(
                get_run(
                    &api.url("/api/me"),
                    Some(&access_token),
                    &[],
                    16,
                    duration,
                    &api,
                )
                .await,
            );
        }
        // How far each route's three rounds lie apart: past NOISY, the core
        // was taken from under a round and the ratio says nothing.
        let spread = load::spread(&healths).max(load::spread(&mes));
        let (me_range, health_range) = (load::rate_range(&mes), load::rate_range(&healths));
        let (health, me) = (load::median_by_rate(healths), load::median_by_rate(mes));
        let label = if cache { "with" } else { "without" };
        report.keep(&format!("api_me_{label}_cache"), &me);
        report.keep(&format!("api_healthz_{label}_cache"), &health);
        report.row(
            &format!("API GET /api/me/s, {label} the verified-token cache"),
            format!(
                "{:.0}/s (rounds {me_range}), p50 {:.2} ms, p99 {:.2} ms",
                me.rate, me.p50_ms, me.p99_ms
            ),
            format!("/healthz {:.0}/s (rounds {health_range})", health.rate),
            Some(me.rate / health.rate),
            Some(if cache { 0.9 } else { 0.5 }),
        );
        // /api/me does all /healthz does and validates a token besides: a
        // ratio over 1 means the core was slower under /healthz's rounds.
        report.noisy_if(spread > load::NOISY || me.rate > health.rate);
    }

    // ---- the BFF's proxy against calling the API directly ----------------
    let api = start_api(&tmp, &issuer, true).await?;
    let mut stores = match wanted("proxy") {
        true => vec![
            ("memory", "memory".to_owned()),
            (
                "SQLite",
                format!("sqlite://{}/bff-{}.db", tmp.display(), free_port()),
            ),
        ],
        false => Vec::new(),
    };
    if !stores.is_empty()
        && let Some(redis) = testkit::redis::available().await
    {
        stores.push(("Redis", redis));
    }
    for (name, store) in stores {
        let prefix = redis_prefix();
        let bff = start_bff(&tmp, &issuer, &api, &store, &idp, &prefix).await?;
        let browser = testkit::http_client();
        testkit::bff::sign_in_at_bff(
            &browser,
            &bff.base_url,
            &testkit::ALICE,
            &mut testkit::bff::Received::default(),
        )
        .await;
        // The same calls with 1, 10,000 and 100,000 sessions in the store,
        // each level beside a direct call of the API measured just before
        // it: the machine's speed drifts between levels, the ratio less.
        let mut held = 1;
        let mut at = Vec::new();
        // What the proxy adds to a call when nothing queues for the core:
        // one caller, with the one session.
        let me = api.url("/api/me");
        let direct_alone = get_run(&me, Some(&access_token), &[], 1, duration, &api).await;
        let proxied_alone = proxy_run(&browser, &bff, 1, duration).await;
        report.keep(&format!("api_direct_{name}_c1"), &direct_alone);
        report.keep(&format!("bff_proxy_{name}_c1"), &proxied_alone);
        for sessions in SESSIONS_HELD {
            fill_sessions(&bff, sessions - held).await?;
            held = sessions;
            let direct = get_run(&me, Some(&access_token), &[], 16, duration, &api).await;
            println!("  [{name} store holding {sessions} sessions: measuring]");
            let proxied = proxy_run(&browser, &bff, 16, duration).await;
            report.keep(&format!("bff_proxy_{name}_{sessions}_sessions"), &proxied);
            report.keep(&format!("api_direct_{name}_{sessions}_sessions"), &direct);
            at.push(Level {
                proxied,
                direct,
                footprint: footprint(&bff, &store).await,
                rss_mib: bff.rss_mib(),
            });
        }
        let [one, ten_k, most] = &at[..] else {
            unreachable!("three levels")
        };
        report.row(
            &format!("BFF GET /bff/api/me/s, {name} sessions"),
            format!(
                "{:.0}/s, p50 +{:.2} ms, p99 +{:.2} ms",
                one.proxied.rate,
                one.proxied.p50_ms - one.direct.p50_ms,
                one.proxied.p99_ms - one.direct.p99_ms
            ),
            format!("the API directly {:.0}/s", one.direct.rate),
            Some(one.relative()),
            Some(0.5),
        );
        report.row(
            &format!("… {name} sessions, one caller at a time"),
            format!(
                "{:.0}/s, p50 +{:.2} ms, p99 +{:.2} ms, BFF CPU {:.3} ms/call",
                proxied_alone.rate,
                proxied_alone.p50_ms - direct_alone.p50_ms,
                proxied_alone.p99_ms - direct_alone.p99_ms,
                cpu(&proxied_alone)
            ),
            format!(
                "the API directly {:.0}/s, p50 {:.2} ms, p99 {:.2} ms",
                direct_alone.rate, direct_alone.p50_ms, direct_alone.p99_ms
            ),
            Some(proxied_alone.rate / direct_alone.rate),
            None,
        );
        report.row(
            &format!("… {name} store holding 100,000 sessions"),
            format!(
                "{:.2} of direct, p99 +{:.2} ms, BFF CPU {:.3} ms/call (10,000: {:.2}, {:.3} ms); \
                 BFF resident {:.0} → {:.0} MiB",
                most.relative(),
                most.proxied.p99_ms - most.direct.p99_ms,
                cpu(&most.proxied),
                ten_k.relative(),
                cpu(&ten_k.proxied),
                one.rss_mib,
                most.rss_mib
            ),
            format!(
                "1 session: {:.2} of direct, {:.3} ms/call",
                one.relative(),
                cpu(&one.proxied)
            ),
            Some(most.relative() / one.relative()),
            Some(0.95),
        );
        // The direct calls beside the two levels do the same work: if
        // their rates lie far apart, the core changed speed between them.
        report.noisy_if(load::spread(&[one.direct.clone(), most.direct.clone()]) > load::NOISY);
        let added = (SESSIONS_HELD[2] - SESSIONS_HELD[1]) as f64;
        report.row(
            &format!("… {name} store: bytes per session"),
            format!(
                "{:.0} bytes",
                most.footprint.saturating_sub(ten_k.footprint) as f64 / added
            ),
            format!(
                "growth of the {} from 10,000 to 100,000 sessions, each a login under way",
                footprint_kind(&store)
            ),
            None,
            None,
        );
        if store.starts_with("redis") {
            testkit::redis::forget(&store, &prefix).await?;
        }
    }

    // ---- a refresh storm -------------------------------------------------
    if wanted("storm") {
        storm(&tmp, &mut report).await?;
    }

    println!("\n{}", report.table());
    let path = report.write()?;
    println!("written to {}", path.display());
    Ok(())
}

fn cpu(run: &Run) -> f64 {
    run.cpu_ms_per_op.unwrap_or(f64::NAN)
}

pub(crate) fn tempdir() -> anyhow::Result<std::path::PathBuf> {
    let dir = workspace().join("target/bench/run");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

async fn discover(issuer: &str) -> anyhow::Result<Client> {
    Client::discover(issuer, CLIENT.0, CLIENT.1, &callback(), SCOPE).await
}

/// The mock IdP, release build, on a fresh SQLite file, signing with
/// `alg`; no throttle for the one address the load comes from.
pub(crate) async fn start_idp(
    tmp: &std::path::Path,
    alg: &str,
    access_seconds: u64,
) -> anyhow::Result<Server> {
    start_idp_on(tmp, alg, access_seconds, |port| {
        format!("sqlite://{}/idp-{port}.db", tmp.display())
    })
    .await
}

/// The mock IdP as [`start_idp`] starts it, on the database that
/// `database_url` names (given the IdP's port, for a file of its own).
async fn start_idp_on(
    tmp: &std::path::Path,
    alg: &str,
    access_seconds: u64,
    database_url: impl FnOnce(u16) -> String,
) -> anyhow::Result<Server> {
    let port = free_port();
    let config = mock_idp::config::DEFAULT_SETTINGS
        .replace("http://localhost:3000", bff_url())
        .replace("account_attempts = 5 ", "account_attempts = 1000000 ")
        .replace("address_attempts = 30 ", "address_attempts = 1000000 ")
        .replace(
            "access_token_seconds = 300 ",
            &format!("access_token_seconds = {access_seconds} "),
        );
    let config_path = tmp.join(format!("idp-{port}.toml"));
    std::fs::write(&config_path, config)?;
    let args = [
        "--port".to_owned(),
        port.to_string(),
        "--issuer".to_owned(),
        format!("http://127.0.0.1:{port}/oauth2/default"),
        "--database-url".to_owned(),
        database_url(port),
        "--config".to_owned(),
        config_path.display().to_string(),
        "--signing-alg".to_owned(),
        alg.to_owned(),
        "--metrics".to_owned(),
    ];
    let mut command = pinned(&server_binary("mock-idp"), &args);
    command.env("RUST_LOG", "warn");
    Server::start(
        "mock-idp",
        command,
        format!("http://127.0.0.1:{port}"),
        "/healthz",
    )
    .await
}

pub(crate) async fn start_api(
    tmp: &std::path::Path,
    issuer: &str,
    cache: bool,
) -> anyhow::Result<Server> {
    let port = free_port();
    let mut args = vec![
        "--port".to_owned(),
        port.to_string(),
        "--issuer".to_owned(),
        issuer.to_owned(),
        "--database-url".to_owned(),
        format!("sqlite://{}/api-{port}.db", tmp.display()),
    ];
    if !cache {
        args.extend(["--token-cache-entries".to_owned(), "0".to_owned()]);
    }
    let mut command = pinned(&server_binary("api"), &args);
    command.env("RUST_LOG", "warn");
    Server::start(
        "api",
        command,
        format!("http://127.0.0.1:{port}"),
        "/healthz",
    )
    .await
}

pub(crate) async fn start_bff(
    tmp: &std::path::Path,
    issuer: &str,
    api: &Server,
    store: &str,
    idp: &Server,
    redis_prefix: &str,
) -> anyhow::Result<Server> {
    let public = bff_url().to_owned();
    let port = public.rsplit(':').next().unwrap_or_default().to_owned();
    let _ = idp;
    let args = vec![
        "--port".to_owned(),
        port.clone(),
        "--public-url".to_owned(),
        public.clone(),
        "--issuer".to_owned(),
        issuer.to_owned(),
        "--api-url".to_owned(),
        api.base_url.clone(),
        "--session-store".to_owned(),
        store.to_owned(),
        "--redis-key-prefix".to_owned(),
        redis_prefix.to_owned(),
        "--session-key-file".to_owned(),
        format!("{}/bff-{port}.key", tmp.display()),
        "--metrics".to_owned(),
    ];
    let mut command = pinned(&server_binary("bff"), &args);
    command.env("RUST_LOG", "warn");
    Server::start("bff", command, public, "/healthz").await
}

/// `GET /bff/api/me` with `browser`'s session, from `concurrency` callers.
async fn proxy_run(
    browser: &reqwest::Client,
    bff: &Server,
    concurrency: usize,
    duration: Duration,
) -> Run {
    let workers = (0..concurrency)
        .map(|_| Get {
            http: browser.clone(),
            url: bff.url("/bff/api/me"),
            bearer: None,
            headers: vec![("x-csrf", "1")],
        })
        .collect();
    load::run(workers, duration, Some(bff)).await
}

async fn get_run(
    url: &str,
    bearer: Option<&str>,
    headers: &[(&'static str, &'static str)],
    concurrency: usize,
    duration: Duration,
    server: &Server,
) -> Run {
    let http = reqwest::Client::new();
    let workers = (0..concurrency)
        .map(|_| Get {
            http: http.clone(),
            url: url.to_owned(),
            bearer: bearer.map(str::to_owned),
            headers: headers.to_vec(),
        })
        .collect();
    load::run(workers, duration, Some(server)).await
}

/// node-oidc-provider, pinned like the IdP, with the demo client.
async fn start_node_op() -> Option<Server> {
    let dir = testkit::interop::package("node-oidc-provider")?;
    let port = free_port();
    let clients = json!([{
        "client_id": CLIENT.0,
        "client_secret": CLIENT.1,
        "redirect_uris": [callback()],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "client_secret_basic",
    }]);
    let mut command = pinned(std::path::Path::new("node"), &["server.mjs".to_owned()]);
    command
        .current_dir(dir)
        .env("OP_PORT", port.to_string())
        .env("OP_ISSUER", format!("http://127.0.0.1:{port}"))
        .env("OP_CLIENTS", clients.to_string())
        .env("OP_ACCESS_TOKEN_TTL", "300");
    Server::start(
        "node-oidc-provider",
        command,
        format!("http://127.0.0.1:{port}"),
        "/.well-known/openid-configuration",
    )
    .await
    .ok()
}

/// Server CPU per SSO login and per refresh grant, the mock IdP (on its
/// SQLite file and in memory) and node-oidc-provider taking turns, three
/// times; the medians' ratios.
///
/// node-oidc-provider keeps its state in its in-memory adapter, the one it
/// ships with, so the goal holds the mock IdP in memory to it: the same
/// work, without the cost of a file. The SQLite file's figure is printed
/// beside it.
async fn compare_with_node(
    tmp: &std::path::Path,
    idp: &Server,
    client: Arc<Client>,
    node: &Server,
    duration: Duration,
    report: &mut Report,
) -> anyhow::Result<()> {
    let in_memory = start_idp_on(tmp, "RS256", 300, |_| "sqlite::memory:".to_owned()).await?;
    let in_memory_client = Arc::new(discover(&in_memory.url("/oauth2/default")).await?);
    let node_client = Arc::new(discover(&node.base_url).await?);
    // node-oidc-provider grants offline_access only with prompt=consent.
    let consent = [("prompt", "consent")];
    let contestants = [
        ("file", idp, client, &[][..]),
        ("memory", &in_memory, in_memory_client, &[][..]),
        ("node", node, node_client, &consent[..]),
    ];
    let mut cpu_ms: std::collections::HashMap<String, Vec<f64>> = Default::default();
    for _round in 0..3 {
        for (name, server, client, first) in &contestants {
            let mut sso = Vec::new();
            for _ in 0..4 {
                sso.push(SsoLogin::new(client.clone(), reqwest::Client::new(), first).await?);
            }
            let run = load::run(sso, duration, Some(*server)).await;
            cpu_ms
                .entry(format!("{name}_sso"))
                .or_default()
                .push(cpu(&run));
            // Signed in only now: node-oidc-provider's in-memory adapter
            // keeps its last 1,000 entries, and the logins above would
            // have pushed out grants made before them.
            let mut refresh = Vec::new();
            for _ in 0..4 {
                refresh.push(Refresh::new(client.clone(), reqwest::Client::new(), first).await?);
            }
            let run = load::run(refresh, duration, Some(*server)).await;
            cpu_ms
                .entry(format!("{name}_refresh"))
                .or_default()
                .push(cpu(&run));
        }
    }
    let median = |name: &str| {
        let mut values = cpu_ms.get(name).cloned().unwrap_or_default();
        values.sort_by(f64::total_cmp);
        values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
    };
    // The rounds' lowest and highest, printed beside each median.
    let range = |name: &str| {
        let (low, high) = load::bounds(cpu_ms.get(name).into_iter().flatten().copied());
        format!("rounds {low:.2}-{high:.2}")
    };
    for what in ["sso", "refresh"] {
        let label = if what == "sso" {
            "an SSO login"
        } else {
            "a refresh grant"
        };
        let node = median(&format!("node_{what}"));
        let against = format!(
            "node-oidc-provider {node:.2} ms (in memory; {})",
            range(&format!("node_{what}"))
        );
        let memory = median(&format!("memory_{what}"));
        report.row_at_most(
            &format!("IdP CPU per {label} (RS256), in memory, against node-oidc-provider's"),
            format!("{memory:.2} ms ({})", range(&format!("memory_{what}"))),
            against.clone(),
            memory / node,
            0.4,
        );
        let file = median(&format!("file_{what}"));
        report.row(
            "… the IdP on its SQLite file",
            format!("{file:.2} ms ({})", range(&format!("file_{what}"))),
            against,
            Some(file / node),
            None,
        );
    }
    report.keep("node_comparison_cpu_ms", &cpu_ms);
    Ok(())
}

/// 1,000 sessions whose access tokens are due at once, three calls each at
/// the same moment: one refresh grant per session, no error.
async fn storm(tmp: &std::path::Path, report: &mut Report) -> anyhow::Result<()> {
    const SESSIONS: usize = 1000;
    // Access tokens of 40 s: the BFF refreshes 30 s before the end.
    let idp = start_idp(tmp, "ES256", 40).await?;
    let issuer = idp.url("/oauth2/default");
    let api = start_api(tmp, &issuer, true).await?;
    let store = format!("sqlite://{}/storm-{}.db", tmp.display(), free_port());
    let bff = start_bff(tmp, &issuer, &api, &store, &idp, &redis_prefix()).await?;
    // One person at the IdP, a thousand sessions at the BFF.
    let idp_browser = testkit::http_client();
    let mut sessions = Vec::with_capacity(SESSIONS);
    let first = testkit::http_client();
    testkit::bff::sign_in_at_bff(
        &first,
        &bff.base_url,
        &testkit::ALICE,
        &mut Default::default(),
    )
    .await;
    let _ = idp_browser;
    sessions.push(first);
    while sessions.len() < SESSIONS {
        let browser = testkit::http_client();
        testkit::bff::sign_in_at_bff(
            &browser,
            &bff.base_url,
            &testkit::ALICE,
            &mut Default::default(),
        )
        .await;
        sessions.push(browser);
    }
    let grants_before = refresh_grants(&idp).await?;
    tokio::time::sleep(Duration::from_secs(11)).await;
    let started = std::time::Instant::now();
    let url = bff.url("/bff/api/me");
    let url = &url;
    let calls = sessions.iter().flat_map(|browser| {
        (0..3).map(move |_| async move {
            browser
                .get(url)
                .header("x-csrf", "1")
                .send()
                .await
                .map(|r| r.status().as_u16())
        })
    });
    use futures_util::StreamExt;
    let statuses: Vec<_> = futures_util::stream::iter(calls)
        .buffer_unordered(200)
        .collect()
        .await;
    let drained = started.elapsed();
    let errors = statuses.iter().filter(|s| !matches!(s, Ok(200))).count();
    let grants = refresh_grants(&idp).await? - grants_before;
    report.row(
        "refresh storm: 1,000 sessions due at once, 3 calls each",
        format!(
            "{grants} refresh grants, {errors} errors, drained in {:.1} s",
            drained.as_secs_f64()
        ),
        format!("{SESSIONS} sessions"),
        Some(grants as f64 / SESSIONS as f64),
        Some(1.0),
    );
    let bytes = std::fs::metadata(store.trim_start_matches("sqlite://"))?.len();
    report.row(
        "SQLite session store: bytes per signed-in session (tokens, flow trace)",
        format!("{:.0} bytes", bytes as f64 / SESSIONS as f64),
        format!(
            "{SESSIONS} sessions, BFF resident {:.1} MiB (peak {:.1})",
            bff.rss_mib(),
            bff.peak_rss_mib()
        ),
        None,
        None,
    );
    Ok(())
}

/// The proxy measured with one number of sessions in the store.
struct Level {
    proxied: Run,
    direct: Run,
    /// What the store took, in bytes (see [`footprint`]).
    footprint: u64,
    rss_mib: f64,
}

impl Level {
    /// The proxied rate over the direct one.
    fn relative(&self) -> f64 {
        self.proxied.rate / self.direct.rate
    }
}

/// A Redis key prefix of this BFF's own.
pub(crate) fn redis_prefix() -> String {
    format!("bench:{}:", testkit::random_string())
}

/// Adds `count` sessions to the BFF's store the way a crowd of visitors
/// does: each `GET /bff/login` without a cookie starts a session holding a
/// login under way (state, PKCE verifier, nonce, the flow inspector's first
/// steps).
async fn fill_sessions(bff: &Server, count: usize) -> anyhow::Result<()> {
    use futures_util::StreamExt;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let url = bff.url("/bff/login");
    let (http, url) = (&http, &url);
    let visits = (0..count).map(|_| async move {
        http.get(url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_redirection())
    });
    let made: Vec<bool> = futures_util::stream::iter(visits)
        .buffer_unordered(32)
        .collect()
        .await;
    let failed = made.iter().filter(|made| !**made).count();
    anyhow::ensure!(failed == 0, "{failed} of {count} visits made no session");
    Ok(())
}

/// What the store takes now, in bytes: Redis's memory, the SQLite file and
/// its write-ahead log, or for the in-process store the BFF's resident
/// memory.
async fn footprint(bff: &Server, store: &str) -> u64 {
    if store.starts_with("redis") {
        testkit::redis::used_memory(store).await.unwrap_or(0)
    } else if let Some(path) = store.strip_prefix("sqlite://") {
        [path.to_owned(), format!("{path}-wal")]
            .iter()
            .filter_map(|file| std::fs::metadata(file).ok())
            .map(|meta| meta.len())
            .sum()
    } else {
        (bff.rss_mib() * 1024.0 * 1024.0) as u64
    }
}

fn footprint_kind(store: &str) -> &'static str {
    if store.starts_with("redis") {
        "Redis used_memory"
    } else if store.starts_with("sqlite") {
        "SQLite file and WAL"
    } else {
        "BFF resident memory"
    }
}

/// The IdP's refresh grants so far, from its `/metrics`.
pub(crate) async fn refresh_grants(idp: &Server) -> anyhow::Result<u64> {
    let text = reqwest::get(idp.url("/metrics")).await?.text().await?;
    Ok(text
        .lines()
        .filter(|l| {
            l.starts_with("idp_token_grants_total")
                && l.contains("grant_type=\"refresh_token\"")
                && l.contains("outcome=\"ok\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64)
}

//! `bench soak`: many thousands of logins, proxied calls, refreshes and
//! sign-outs against one stack of the three servers, each a process of
//! its own. Each server's resident memory and open file descriptors are
//! read from `/proc` once the run has warmed up and again at its end: a
//! map that grows with the logins (pending logins, codes, refresh slots,
//! JWKS entries, sessions) shows as memory that keeps climbing, a leaked
//! socket or file as descriptors that do. Every answer that is not the
//! expected one counts as an error.
//!
//! Each worker is a browser that signs in (a password once, then single
//! sign-on at the IdP), calls the API through the BFF, now and then waits
//! for its access token to fall due so that the next call refreshes it,
//! and signs out of the BFF, over and over.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use serde::Serialize;

use crate::scenarios::{redis_prefix, refresh_grants, start_api, start_bff, start_idp};

/// Proxied calls per round, right after the sign-in.
const CALLS: usize = 3;
/// One round in this many also waits for its token to fall due, then calls
/// again: a refresh.
const REFRESH_EVERY: usize = 4;
/// Access tokens of 31 s: the BFF refreshes them 30 s before they end, so
/// one is due a second after it was issued.
const ACCESS_SECONDS: u64 = 31;

/// What a run did, and each server's memory and descriptors.
#[derive(Debug, Serialize)]
pub struct Figures {
    pub logins: usize,
    pub calls: usize,
    pub refreshes: u64,
    pub sign_outs: usize,
    pub errors: usize,
    pub seconds: f64,
    pub servers: Vec<ServerFigures>,
}

#[derive(Debug, Serialize)]
pub struct ServerFigures {
    pub name: &'static str,
    /// Resident memory once warmed up, and at the end (MiB).
    pub rss_warm_mib: f64,
    pub rss_end_mib: f64,
    /// At the end: anonymous, file-backed and shared (MiB).
    pub rss_end_split_mib: [f64; 3],
    pub peak_rss_mib: f64,
    /// Open file descriptors once warmed up, and at the end.
    pub fds_warm: usize,
    pub fds_end: usize,
    /// Resident memory after each further tenth of the logins (MiB).
    pub rss_by_tenth_mib: Vec<f64>,
}

#[derive(Default)]
struct Counts {
    logins: AtomicUsize,
    calls: AtomicUsize,
    sign_outs: AtomicUsize,
    errors: AtomicUsize,
}

/// Runs `logins` rounds over `workers` browsers; warm-up ends after the
/// first tenth.
pub async fn run(logins: usize, workers: usize) -> anyhow::Result<Figures> {
    let tmp =
        crate::procs::workspace().join(format!("target/bench/soak-{}", testkit::random_string()));
    std::fs::create_dir_all(&tmp)?;
    let idp = start_idp(&tmp, "RS256", ACCESS_SECONDS).await?;
    let issuer = idp.url("/oauth2/default");
    let api = start_api(&tmp, &issuer, true).await?;
    let store = format!("sqlite://{}/soak-sessions.db", tmp.display());
    let bff = start_bff(&tmp, &issuer, &api, &store, &idp, &redis_prefix()).await?;
    let servers = [("mock-idp", &idp), ("api", &api), ("bff", &bff)];

    let counts = Arc::new(Counts::default());
    let next = Arc::new(AtomicUsize::new(0));
    let warm_at = (logins / 10).max(1);
    let warm = Arc::new(tokio::sync::Notify::new());
    let started = Instant::now();
    let refreshes_before = refresh_grants(&idp).await?;
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            let (counts, next, warm) = (counts.clone(), next.clone(), warm.clone());
            let base = bff.base_url.clone();
            tokio::spawn(async move {
                let browser = testkit::http_client();
                loop {
                    let round = next.fetch_add(1, Ordering::Relaxed);
                    if round >= logins {
                        break;
                    }
                    if round == warm_at {
                        warm.notify_one();
                    }
                    // A round that panics (a sign-in that went wrong) is
                    // one error; the browser goes on with the next.
                    let one = tokio::spawn(one_round(
                        browser.clone(),
                        base.clone(),
                        round,
                        counts.clone(),
                    ));
                    if one.await.is_err() {
                        counts.errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    warm.notified().await;
    let at_warm: Vec<_> = servers
        .iter()
        .map(|(_, s)| (s.rss_mib(), s.open_fds()))
        .collect();
    // Every server's memory at each further tenth of the logins, to tell a
    // cache filling up to its bound from a leak.
    let done = std::sync::atomic::AtomicBool::new(false);
    let mut by_tenth: Vec<Vec<f64>> = vec![Vec::new(); servers.len()];
    let finish = async {
        for task in tasks {
            task.await?;
        }
        done.store(true, Ordering::Relaxed);
        anyhow::Ok(())
    };
    let sample = async {
        let mut tenth = 2;
        while !done.load(Ordering::Relaxed) {
            if counts.logins.load(Ordering::Relaxed) >= logins * tenth / 10 {
                for (series, (_, server)) in by_tenth.iter_mut().zip(&servers) {
                    series.push(server.rss_mib());
                }
                tenth += 1;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let (finished, ()) = futures_util::join!(finish, sample);
    finished?;
    let seconds = started.elapsed().as_secs_f64();
    let refreshes = refresh_grants(&idp).await? - refreshes_before;
    let mut by_tenth = by_tenth.into_iter();
    let servers = servers
        .iter()
        .zip(at_warm)
        .map(|((name, server), (rss_warm_mib, fds_warm))| ServerFigures {
            name,
            rss_warm_mib,
            rss_end_mib: server.rss_mib(),
            rss_end_split_mib: server.rss_split_mib(),
            peak_rss_mib: server.peak_rss_mib(),
            fds_warm,
            fds_end: server.open_fds(),
            rss_by_tenth_mib: by_tenth.next().unwrap_or_default(),
        })
        .collect();
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(Figures {
        logins: counts.logins.load(Ordering::Relaxed),
        calls: counts.calls.load(Ordering::Relaxed),
        refreshes,
        sign_outs: counts.sign_outs.load(Ordering::Relaxed),
        errors: counts.errors.load(Ordering::Relaxed),
        seconds,
        servers,
    })
}

/// Sign in, call, maybe refresh, sign out.
async fn one_round(browser: reqwest::Client, base: String, round: usize, counts: Arc<Counts>) {
    let mut received = Default::default();
    testkit::bff::sign_in_at_bff(&browser, &base, &testkit::ALICE, &mut received).await;
    counts.logins.fetch_add(1, Ordering::Relaxed);
    let call = || async {
        let status = browser
            .get(format!("{base}/bff/api/me"))
            .header("x-csrf", "1")
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0);
        counts.calls.fetch_add(1, Ordering::Relaxed);
        if status != 200 {
            counts.errors.fetch_add(1, Ordering::Relaxed);
        }
    };
    for _ in 0..CALLS {
        call().await;
    }
    if round.is_multiple_of(REFRESH_EVERY) {
        tokio::time::sleep(Duration::from_millis(1100)).await;
        call().await;
    }
    // Out of the BFF only: the IdP session stays, so the next sign-in is
    // single sign-on, as a person's next visit would be.
    let out = browser
        .post(format!("{base}/bff/logout"))
        .header("x-csrf", "1")
        .send()
        .await
        .map(|r| r.status());
    let user = browser
        .get(format!("{base}/bff/user"))
        .header("x-csrf", "1")
        .send()
        .await
        .map(|r| r.status().as_u16());
    match (out, user) {
        (Ok(out), Ok(401)) if out.is_success() || out.is_redirection() => {
            counts.sign_outs.fetch_add(1, Ordering::Relaxed);
        }
        _ => {
            counts.errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Prints the figures as the README shows them.
pub fn print(figures: &Figures) {
    println!(
        "soak: {} logins, {} proxied calls, {} refreshes, {} sign-outs, {} errors in {:.0} s",
        figures.logins,
        figures.calls,
        figures.refreshes,
        figures.sign_outs,
        figures.errors,
        figures.seconds
    );
    println!("  server     RSS warm  RSS end   peak      fds warm  fds end");
    for s in &figures.servers {
        println!(
            "  {:<9}  {:>5.1} MiB {:>5.1} MiB {:>5.1} MiB {:>8} {:>8}",
            s.name, s.rss_warm_mib, s.rss_end_mib, s.peak_rss_mib, s.fds_warm, s.fds_end
        );
    }
    println!("  resident memory at the end (MiB): anonymous / files / shared");
    for s in &figures.servers {
        let [anon, file, shared] = s.rss_end_split_mib;
        println!("  {:<9}  {anon:.1} / {file:.1} / {shared:.1}", s.name);
    }
    println!("  resident memory (MiB) after each tenth of the logins, from the second:");
    for s in &figures.servers {
        let series: Vec<String> = s
            .rss_by_tenth_mib
            .iter()
            .map(|m| format!("{m:.0}"))
            .collect();
        println!("  {:<9}  {}", s.name, series.join(" "));
    }
}

#[cfg(test)]
mod tests {
    /// The test-sized soak, on the debug build the tests were built with:
    /// no error, and no server whose memory or descriptors climb with the
    /// logins beyond the slack of a short run.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_short_soak_makes_no_error_and_leaves_memory_and_descriptors_flat() {
        crate::procs::use_build("debug", false);
        let bff = crate::procs::server_binary("bff");
        if !bff.exists() {
            // `cargo test --workspace` builds it; `cargo test -p bench` may not.
            assert!(
                std::env::var("CI").is_err(),
                "{} is missing in CI",
                bff.display()
            );
            eprintln!("soak test skipped: {} is not built", bff.display());
            return;
        }
        let figures = super::run(200, 8).await.expect("the soak runs");
        super::print(&figures);
        assert_eq!(figures.errors, 0, "{figures:?}");
        assert_eq!(figures.logins, 200);
        assert_eq!(figures.sign_outs, 200);
        assert!(figures.refreshes >= 200 / super::REFRESH_EVERY as u64);
        for server in &figures.servers {
            assert!(
                server.fds_end <= server.fds_warm + 16,
                "{} descriptors climb: {server:?}",
                server.name
            );
            assert!(
                server.rss_end_mib <= server.rss_warm_mib * 1.5 + 32.0,
                "{} memory climbs: {server:?}",
                server.name
            );
        }
    }
}

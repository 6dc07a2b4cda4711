//! The limits each hot path is held to, measured on the servers' core in a
//! child process of the bench (`bench limit …`, pinned like the servers):
//! an argon2 check alone, with the IdP's parameters, for a password login;
//! the two JWT signatures alone, by the IdP's own signing code, for a
//! single-sign-on login and a refresh grant.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::procs::pinned;

/// Runs `bench limit {what}` on the servers' core; operations per second.
pub fn measure(what: &str, seconds: u64) -> anyhow::Result<f64> {
    let exe = std::env::current_exe()?;
    let output = pinned(
        &exe,
        &[
            "limit".into(),
            what.into(),
            "--seconds".into(),
            seconds.to_string(),
        ],
    )
    .output()?;
    anyhow::ensure!(output.status.success(), "bench limit {what}: {output:?}");
    let value: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    value["rate"]
        .as_f64()
        .ok_or_else(|| anyhow::anyhow!("bench limit {what}: {value}"))
}

/// The child's side: the loop itself, one thread; prints `{"rate": …}`.
pub async fn run(what: &str, seconds: u64) -> anyhow::Result<()> {
    let duration = Duration::from_secs(seconds);
    let rate = match what {
        "argon2" => argon2(duration).await?,
        sign if sign.starts_with("sign-") => signatures(&sign["sign-".len()..], duration).await?,
        other => anyhow::bail!("no limit {other}"),
    };
    println!("{}", json!({ "rate": rate }));
    Ok(())
}

/// argon2id checks, one at a time, as the IdP makes them.
async fn argon2(duration: Duration) -> anyhow::Result<f64> {
    let hasher = mock_idp::passwords::Hasher::new(1);
    let phc = mock_idp::passwords::hash("wonderland").map_err(|e| anyhow::anyhow!("{e}"))?;
    let start = Instant::now();
    let mut checks = 0u64;
    while start.elapsed() < duration {
        let ok = hasher
            .verify("wonderland".into(), Some(phc.clone()))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        anyhow::ensure!(ok);
        checks += 1;
    }
    Ok(checks as f64 / start.elapsed().as_secs_f64())
}

/// Pairs of signatures (an access token and an ID token of the IdP's
/// shape), by the IdP's own keys.
async fn signatures(alg: &str, duration: Duration) -> anyhow::Result<f64> {
    let store = mock_idp::store::Store::open("sqlite::memory:").await?;
    let keys = mock_idp::keys::Keys::load(&store, alg, 600, clock::Clock::system()).await?;
    let now = 1_800_000_000i64;
    let access = json!({
        "iss": "http://localhost:9000/oauth2/default", "sub": "x".repeat(43),
        "aud": "api://default", "exp": now + 300, "iat": now, "jti": "j".repeat(32),
        "client_id": "bff-demo", "scope": "openid profile email offline_access notes:read",
        "auth_time": now,
    });
    let id = json!({
        "iss": "http://localhost:9000/oauth2/default", "sub": "x".repeat(43),
        "aud": "bff-demo", "exp": now + 300, "iat": now, "auth_time": now,
        "nonce": "n".repeat(43), "at_hash": "h".repeat(22), "sid": "s".repeat(32),
        "name": "Alice Liddell", "email": "alice@example.com", "email_verified": true,
    });
    let start = Instant::now();
    let mut pairs = 0u64;
    while start.elapsed() < duration {
        keys.sign("at+jwt", &access)?;
        keys.sign("JWT", &id)?;
        pairs += 1;
    }
    Ok(pairs as f64 / start.elapsed().as_secs_f64())
}

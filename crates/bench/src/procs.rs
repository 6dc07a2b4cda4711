//! The servers under test, as separate processes: the release binaries (and
//! node-oidc-provider), pinned to core 0 with `taskset` while the load
//! generator runs on core 1, so that the two do not take each other's CPU.
//! A server's own CPU time comes from `/proc/<pid>/stat`: what it spent,
//! whatever the noise of a shared machine did to the wall clock.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

/// The core the servers run on; the load generator takes the other.
pub const SERVER_CORE: &str = "0";

/// A server process, killed when dropped.
pub struct Server {
    pub base_url: String,
    child: Child,
}

/// A free port of 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// Which build the servers come from, and whether they are pinned: the
/// release build on [`SERVER_CORE`] for the figures; the test's debug
/// build, unpinned, for the test-sized soak.
static BUILD: std::sync::OnceLock<(&'static str, bool)> = std::sync::OnceLock::new();

/// Serve from `target/{profile}` instead of `target/release`, pinned or not.
#[cfg(test)]
pub fn use_build(profile: &'static str, pin: bool) {
    let _ = BUILD.set((profile, pin));
}

/// The server binary `name`: `target/release/{name}`, or in the build
/// `use_build` chose (the test-sized soak).
pub fn server_binary(name: &str) -> PathBuf {
    let (profile, _) = BUILD.get().copied().unwrap_or(("release", true));
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace().join("target"));
    target.join(profile).join(name)
}

pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Whether `taskset` is there to pin processes.
pub fn can_pin() -> bool {
    Command::new("sh")
        .args(["-c", "command -v taskset"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `program args…`, pinned to [`SERVER_CORE`] when possible.
pub fn pinned(program: &Path, args: &[String]) -> Command {
    let pin = BUILD.get().is_none_or(|(_, pin)| *pin);
    if pin && can_pin() {
        let mut command = Command::new("taskset");
        command.args(["-c", SERVER_CORE]).arg(program).args(args);
        command
    } else {
        let mut command = Command::new(program);
        command.args(args);
        command
    }
}

impl Server {
    /// Starts `command` and waits until `{base_url}{health}` answers 200.
    pub async fn start(
        name: &str,
        mut command: Command,
        base_url: String,
        health: &str,
    ) -> anyhow::Result<Server> {
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        let server = Server { base_url, child };
        let url = format!("{}{health}", server.base_url);
        for _ in 0..300 {
            if reqwest::get(&url).await.is_ok_and(|r| r.status() == 200) {
                eprintln!("  [{name} pid {}]", server.child.id());
                return Ok(server);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::bail!("{name} did not answer {url}")
    }

    /// The process's user + system CPU time so far, in seconds. With
    /// `taskset`, the server's pid is taskset's own (it execs).
    pub fn cpu_seconds(&self) -> f64 {
        cpu_seconds_of(self.child.id())
    }

    /// Its resident memory now, in MiB.
    pub fn rss_mib(&self) -> f64 {
        status_kib(self.child.id(), "VmRSS:") / 1024.0
    }

    /// Its open file descriptors now (sockets, database files, pipes).
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .map(|entries| entries.count())
            .unwrap_or(0)
    }

    /// Its resident memory now split as the kernel counts it (MiB): the
    /// heap and stacks (anonymous), mapped files (the binary, libraries),
    /// and shared memory (SQLite's write-ahead-log index).
    pub fn rss_split_mib(&self) -> [f64; 3] {
        ["RssAnon:", "RssFile:", "RssShmem:"]
            .map(|field| status_kib(self.child.id(), field) / 1024.0)
    }

    /// The most resident memory it held, in MiB.
    pub fn peak_rss_mib(&self) -> f64 {
        status_kib(self.child.id(), "VmHWM:") / 1024.0
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// utime + stime of a process (fields 14 and 15 of `/proc/<pid>/stat`), in
/// seconds: clock ticks of 1/100 s on Linux.
pub fn cpu_seconds_of(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // The command name may hold spaces: fields count from after ')'.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // After ')': state is field 3, so utime (14) and stime (15) are 11, 12.
    (ticks(11) + ticks(12)) / 100.0
}

fn status_kib(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0.0)
}

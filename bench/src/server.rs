//! The Atrium server under test: a child process with its own database, catalog and log file.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::process::{Child, Command};

pub struct Server {
    child: Child,
    pub pid: u32,
    pub base: String,
    pub log: PathBuf,
    pub spawned_at: Instant,
}

/// A port that was free a moment ago on 127.0.0.1.
fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// What the server reads: one catalog file tree, or git repositories named by a config file.
pub enum CatalogSource {
    File(PathBuf),
    Git(PathBuf),
}

impl Server {
    /// Starts `atrium serve` on a free loopback port, reading the catalog rooted at `root_file`.
    pub fn spawn(
        atrium: &Path,
        database_url: &str,
        dir: &Path,
        source: &CatalogSource,
    ) -> anyhow::Result<Self> {
        Self::spawn_logging_to(atrium, database_url, dir, source, "atrium.log")
    }

    /// `spawn`, writing the log to `dir/<log_name>`: several replicas can share one directory.
    pub fn spawn_logging_to(
        atrium: &Path,
        database_url: &str,
        dir: &Path,
        source: &CatalogSource,
        log_name: &str,
    ) -> anyhow::Result<Self> {
        let port = free_port()?;
        let log = dir.join(log_name);
        let out =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone()?;
        let mut command = Command::new(atrium);
        // Only what the benchmark sets: no ATRIUM_* from the caller's shell, no ./atrium.yaml.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("ATRIUM_") {
                command.env_remove(name);
            }
        }
        command
            .arg("serve")
            .current_dir(dir)
            .env("ATRIUM_LISTEN", format!("127.0.0.1:{port}"))
            .env("DATABASE_URL", database_url)
            .env("ATRIUM_CATALOG_FILE_ROOTS", dir)
            .env("ATRIUM_CATALOG_REFRESH_INTERVAL_SECONDS", "3600")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true);
        match source {
            CatalogSource::File(root_file) => {
                command.env(
                    "ATRIUM_CATALOG_LOCATIONS",
                    format!("file:{}", root_file.display()),
                );
            }
            CatalogSource::Git(config_file) => {
                command
                    .arg("--config")
                    .arg(config_file)
                    .env("ATRIUM_WEBHOOK_SECRET_GITHUB", crate::git::WEBHOOK_SECRET);
            }
        }
        let spawned_at = Instant::now();
        let child = command
            .spawn()
            .with_context(|| format!("starting {}", atrium.display()))?;
        let pid = child.id().context("the server exited at once")?;
        Ok(Self {
            child,
            pid,
            base: format!("http://127.0.0.1:{port}"),
            log,
            spawned_at,
        })
    }

    /// `Some(status)` when the server has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// VmRSS and VmHWM (peak) in MiB.
    pub fn memory(&self) -> anyhow::Result<Memory> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .with_context(|| format!("reading /proc/{}/status", self.pid))?;
        let field = |name: &str| -> anyhow::Result<f64> {
            let line = status
                .lines()
                .find(|l| l.starts_with(name))
                .with_context(|| format!("no {name} in /proc/{}/status", self.pid))?;
            let kib: f64 = line
                .trim_start_matches(name)
                .trim_start_matches(':')
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .with_context(|| format!("parsing {line:?}"))?;
            Ok(kib / 1024.0)
        };
        Ok(Memory {
            rss_mib: field("VmRSS")?,
            hwm_mib: field("VmHWM")?,
        })
    }

    /// Sends SIGTERM and waits (at most `limit`) for the process to exit; kills it after that.
    /// Returns how long the graceful shutdown took, or `None` when it had to be killed.
    pub async fn stop(mut self, limit: Duration) -> anyhow::Result<(Option<Duration>, String)> {
        if let Some(status) = self.exited() {
            return Ok((Some(Duration::ZERO), format!("already exited: {status}")));
        }
        let started = Instant::now();
        let kill = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .context("running kill -TERM")?;
        anyhow::ensure!(kill.success(), "kill -TERM {} failed: {kill}", self.pid);
        match tokio::time::timeout(limit, self.child.wait()).await {
            Ok(status) => Ok((Some(started.elapsed()), format!("{}", status?))),
            Err(_) => {
                self.child.kill().await.context("killing the server")?;
                Ok((None, format!("still running after {limit:?}; killed")))
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Memory {
    pub rss_mib: f64,
    pub hwm_mib: f64,
}

/// The last `lines` lines of the server log, and its WARN/ERROR lines (at most `max` of them).
pub fn log_digest(log: &Path, lines: usize, max: usize) -> (Vec<String>, Vec<String>, usize) {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    let tail = all[all.len().saturating_sub(lines)..]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let problems: Vec<&str> = all
        .iter()
        .copied()
        .filter(|l| l.contains(" ERROR ") || l.contains(" WARN "))
        .collect();
    let count = problems.len();
    (
        tail,
        problems.into_iter().take(max).map(str::to_owned).collect(),
        count,
    )
}

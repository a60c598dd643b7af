//! A private Postgres cluster in `.atrium/postgres`, so that a newcomer's first `atrium serve` needs
//! the Postgres programs installed but no server set up, running or configured.
//!
//! `serve` and `migrate` use it only when no database was named (neither `DATABASE_URL` nor
//! `database.url`) and nothing answers on 127.0.0.1:5432, the default. A named database that is down
//! stays an error: starting something else there would hide the mistake. `atrium local-postgres`
//! starts and stops the same cluster for scripts.
//!
//! The cluster listens on a free loopback port chosen at each start and on no Unix socket (the usual
//! socket directory belongs to the system's Postgres). It has a random password, kept in
//! `.atrium/postgres.password`: with `trust` on TCP any local user could connect as superuser and run
//! programs as the cluster's owner. Postgres refuses to run as root, so under root it runs as the
//! owner of an existing cluster, else as `postgres`, else as `nobody`.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};

use crate::config::DatabaseConfig;

/// Environment variable naming the directory of `initdb` and `pg_ctl`; when set, nothing else is
/// searched.
pub const BINDIR_ENV: &str = "ATRIUM_POSTGRES_BINDIR";

/// Paths relative to the working directory, as messages show them.
const DATA_DIR: &str = ".atrium/postgres";
const INIT_DIR: &str = ".atrium/postgres.init";
const LOG_FILE: &str = ".atrium/postgres.log";
const PASSWORD_FILE: &str = ".atrium/postgres.password";

const INSTALL_HINT: &str = "install the Postgres server (Debian/Ubuntu: `apt-get install \
     postgresql`; macOS: `brew install postgresql@16`) or set DATABASE_URL";

/// A private cluster that is running, either started by this process or found running.
pub struct LocalPostgres {
    cluster: Cluster,
    port: u16,
    password: String,
    /// Only the process that started the server stops it: one found running belongs to another
    /// `atrium serve` in this directory or to `atrium local-postgres start`.
    started_here: bool,
}

impl LocalPostgres {
    /// For `serve` and `migrate`: starts (or finds) the private cluster when no database was named and
    /// the default address has no server, and points `config` at it.
    pub fn start_unless_configured(config: &mut DatabaseConfig) -> anyhow::Result<Option<Self>> {
        if config.url.is_some() || answers(5432) {
            return Ok(None);
        }
        let local = Self::start().context(
            "DATABASE_URL is not set and nothing answers on 127.0.0.1:5432, so atrium tried to start \
             a private Postgres",
        )?;
        tracing::info!("{}", local.summary());
        config.url = Some(local.url());
        Ok(Some(local))
    }

    /// Starts the cluster in `.atrium/postgres` of the working directory, creating it on first use,
    /// or finds it already running.
    pub fn start() -> anyhow::Result<Self> {
        let cluster = Cluster::in_working_directory()?;
        if let Some(port) = cluster.running_port() {
            return cluster.into_local(port, false);
        }
        if !cluster.path(DATA_DIR).join("PG_VERSION").exists() {
            cluster.init()?;
        }
        let port = free_port()?;
        let mut pg_ctl = cluster.command("pg_ctl")?;
        pg_ctl
            .arg("start")
            .arg("-D")
            .arg(cluster.path(DATA_DIR))
            .arg("-l")
            .arg(cluster.path(LOG_FILE))
            .args(["-w", "-t", "60", "-o", &format!("-p {port}")]);
        if let Err(error) = cluster.run(pg_ctl, "starting the private Postgres") {
            // Another atrium in this directory may have started it a moment before us.
            let port = cluster.running_port().ok_or(error)?;
            return cluster.into_local(port, false);
        }
        wait_until_answers(port, Duration::from_secs(30))?;
        cluster.into_local(port, true)
    }

    /// The URL of the database `atrium` in the cluster (created by `db::connect` when missing).
    pub fn url(&self) -> String {
        format!(
            "postgres://postgres:{}@127.0.0.1:{}/atrium",
            self.password, self.port
        )
    }

    /// One line for the log: where the server is, and how to use another.
    pub fn summary(&self) -> String {
        let verb = if self.started_here {
            "started a private Postgres"
        } else {
            "using the private Postgres already running"
        };
        format!(
            "{verb} in {DATA_DIR} on 127.0.0.1:{} (set DATABASE_URL to use your own)",
            self.port
        )
    }

    /// At the end of `serve` or `migrate`, whether it succeeded or not: stops the server if this
    /// process started it and it still runs (`atrium local-postgres stop` may have come first).
    pub fn release(self) -> anyhow::Result<()> {
        if self.started_here && self.cluster.is_running()? {
            self.cluster.stop()?;
        }
        Ok(())
    }
}

/// For `atrium local-postgres stop`: stops the cluster of the working directory if it runs, and says
/// whether it did.
pub fn stop() -> anyhow::Result<bool> {
    let cluster = Cluster::in_working_directory()?;
    if !cluster.path(DATA_DIR).join("postmaster.pid").exists() || !cluster.is_running()? {
        return Ok(false);
    }
    cluster.stop()?;
    Ok(true)
}

/// The cluster's directory and the programs and account that run it.
struct Cluster {
    /// The working directory; every path in it is absolute, because the programs run elsewhere.
    base: PathBuf,
    bindir: PathBuf,
    /// Who runs initdb, pg_ctl and the server when this process is root; `None` runs them as us.
    account: Option<Account>,
}

#[derive(Clone, Copy)]
struct Account {
    name: &'static str,
    uid: u32,
    gid: u32,
}

impl Cluster {
    fn in_working_directory() -> anyhow::Result<Self> {
        let base = std::env::current_dir().context("cannot read the working directory")?;
        let bindir = find_bindir()?;
        let mut cluster = Self {
            base,
            bindir,
            account: None,
        };
        if effective_uid()? == 0 {
            cluster.account = Some(cluster.unprivileged_account()?);
        }
        Ok(cluster)
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.base.join(relative)
    }

    /// The port of a server that runs on this data directory and answers. A `postmaster.pid` whose
    /// server is gone (a killed run) is left for the server to recognise and replace at start.
    fn running_port(&self) -> Option<u16> {
        let pid_file = fs::read_to_string(self.path(DATA_DIR).join("postmaster.pid")).ok()?;
        // Line 4 is the port, line 8 the state (see Postgres' pidfile.h).
        let lines: Vec<&str> = pid_file.lines().collect();
        let port = lines.get(3)?.trim().parse().ok()?;
        let ready = lines.get(7).is_some_and(|s| s.trim() == "ready");
        (ready && answers(port)).then_some(port)
    }

    /// Creates the cluster in a sibling directory and renames it into place, so an interrupted
    /// initdb leaves no half cluster behind (the next run starts that directory afresh).
    fn init(&self) -> anyhow::Result<()> {
        let init = self.path(INIT_DIR);
        fs::create_dir_all(self.path(".atrium"))
            .with_context(|| format!("cannot create {}", self.path(".atrium").display()))?;
        if let Some(account) = self.account {
            self.check_reachable(account)?;
        }
        if init.exists() {
            fs::remove_dir_all(&init).with_context(|| format!("cannot remove {INIT_DIR}"))?;
        }
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&init)
            .with_context(|| format!("cannot create {INIT_DIR}"))?;
        let password = uuid::Uuid::new_v4().simple().to_string();
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(self.path(PASSWORD_FILE))
            .and_then(|mut file| {
                // `mode` applies only to a new file; an old one may have been made readable.
                file.set_permissions(fs::Permissions::from_mode(0o600))?;
                file.write_all(password.as_bytes())
            })
            .with_context(|| format!("cannot write {PASSWORD_FILE}"))?;
        self.open_log()?;
        if let Some(account) = self.account {
            for path in [INIT_DIR, PASSWORD_FILE] {
                std::os::unix::fs::chown(self.path(path), Some(account.uid), Some(account.gid))
                    .with_context(|| format!("cannot hand {path} to user {}", account.name))?;
            }
        }
        let mut initdb = self.command("initdb")?;
        initdb
            .arg("-D")
            .arg(&init)
            .args(["-U", "postgres", "--auth=scram-sha-256", "--pwfile"])
            .arg(self.path(PASSWORD_FILE))
            .args(["-E", "UTF8", "--locale=C", "--no-sync"]);
        self.run(initdb, "creating the private Postgres (initdb)")?;
        let mut conf = OpenOptions::new()
            .append(true)
            .open(init.join("postgresql.conf"))
            .with_context(|| format!("cannot write {INIT_DIR}/postgresql.conf"))?;
        conf.write_all(
            b"\n# Set by atrium (server/src/db/local.rs): loopback TCP only, no Unix socket (its default\n\
              # directory belongs to the system's Postgres). The port is chosen at each start.\n\
              listen_addresses = '127.0.0.1'\n\
              unix_socket_directories = ''\n",
        )
        .with_context(|| format!("cannot write {INIT_DIR}/postgresql.conf"))?;
        fs::rename(&init, self.path(DATA_DIR))
            .with_context(|| format!("cannot rename {INIT_DIR} to {DATA_DIR}"))?;
        Ok(())
    }

    fn into_local(self, port: u16, started_here: bool) -> anyhow::Result<LocalPostgres> {
        let password = fs::read_to_string(self.path(PASSWORD_FILE)).with_context(|| {
            format!("cannot read {PASSWORD_FILE}; delete {DATA_DIR} to create the cluster afresh")
        })?;
        Ok(LocalPostgres {
            cluster: self,
            port,
            password: password.trim().to_owned(),
            started_here,
        })
    }

    fn stop(&self) -> anyhow::Result<()> {
        let mut pg_ctl = self.command("pg_ctl")?;
        pg_ctl
            .arg("stop")
            .arg("-D")
            .arg(self.path(DATA_DIR))
            .args(["-m", "fast", "-w"]);
        self.run(pg_ctl, "stopping the private Postgres")
    }

    /// Whether a live server holds the data directory; unlike `running_port`, true also while it
    /// starts or stops, and false for the `postmaster.pid` of a killed one.
    fn is_running(&self) -> anyhow::Result<bool> {
        let status = self
            .command("pg_ctl")?
            .arg("status")
            .arg("-D")
            .arg(self.path(DATA_DIR))
            .status()
            .context("cannot run pg_ctl status")?;
        Ok(status.success())
    }

    /// Runs one of the Postgres programs; a failure names the log and quotes its last line, which is
    /// usually the reason.
    fn run(&self, mut command: Command, what: &str) -> anyhow::Result<()> {
        let status = command
            .status()
            .with_context(|| format!("{what}: cannot run {}", command.get_program().display()))?;
        if !status.success() {
            bail!(
                "{what} failed ({status}); see {LOG_FILE}, which ends: {}",
                last_line(&self.path(LOG_FILE))
            );
        }
        Ok(())
    }

    /// One of the Postgres programs, run as the cluster's account with its output appended to the log.
    fn command(&self, program: &str) -> anyhow::Result<Command> {
        let log = self.open_log()?;
        let mut command = Command::new(self.bindir.join(program));
        command
            .current_dir(self.path(".atrium"))
            .stdin(Stdio::null())
            .stdout(
                log.try_clone()
                    .context("cannot duplicate the log file handle")?,
            )
            .stderr(log);
        if let Some(account) = self.account {
            command.uid(account.uid).gid(account.gid);
        }
        Ok(command)
    }

    /// The log, which the server (under its account) appends to as well.
    fn open_log(&self) -> anyhow::Result<File> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path(LOG_FILE))
            .with_context(|| format!("cannot open {LOG_FILE}"))?;
        if let Some(account) = self.account {
            std::os::unix::fs::fchown(&log, Some(account.uid), Some(account.gid))
                .with_context(|| format!("cannot hand {LOG_FILE} to user {}", account.name))?;
        }
        Ok(log)
    }

    /// The owner of an existing cluster (it must keep owning its files), else `postgres`, else
    /// `nobody`.
    fn unprivileged_account(&self) -> anyhow::Result<Account> {
        if let Ok(meta) = fs::metadata(self.path(DATA_DIR))
            && meta.uid() != 0
        {
            return Ok(Account {
                name: "the owner of .atrium/postgres",
                uid: meta.uid(),
                gid: meta.gid(),
            });
        }
        let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
        ["postgres", "nobody"]
            .into_iter()
            .find_map(|name| {
                let mut fields = passwd
                    .lines()
                    .map(|line| line.split(':').collect::<Vec<_>>())
                    .find(|fields| fields.first() == Some(&name))?
                    .into_iter()
                    .skip(2);
                Some(Account {
                    name,
                    uid: fields.next()?.parse().ok()?,
                    gid: fields.next()?.parse().ok()?,
                })
            })
            .ok_or_else(|| {
                anyhow!(
                    "Postgres refuses to run as root, and there is no `postgres` or `nobody` user \
                     to run it as; run atrium as an ordinary user or set DATABASE_URL"
                )
            })
    }

    /// Postgres must reach its data directory as `account`. A working directory under a private home
    /// (`/root` is 0700) is the usual case where it cannot, and initdb's own message does not say why.
    fn check_reachable(&self, account: Account) -> anyhow::Result<()> {
        for dir in self.path(".atrium").ancestors() {
            let meta =
                fs::metadata(dir).with_context(|| format!("cannot read {}", dir.display()))?;
            let search = if meta.uid() == account.uid {
                0o100
            } else if meta.gid() == account.gid {
                0o010
            } else {
                0o001
            };
            if meta.mode() & search == 0 {
                bail!(
                    "Postgres refuses to run as root, so the private cluster runs as user {} (uid {}), \
                     which cannot enter {} (mode {:o}); run atrium as an ordinary user, from a \
                     directory that user can reach, or set DATABASE_URL",
                    account.name,
                    account.uid,
                    dir.display(),
                    meta.mode() & 0o7777
                );
            }
        }
        Ok(())
    }
}

/// The first directory holding both `initdb` and `pg_ctl`: `$ATRIUM_POSTGRES_BINDIR` alone when set,
/// else what `pg_config` says, `PATH`, and the places packages put them off `PATH`.
fn find_bindir() -> anyhow::Result<PathBuf> {
    let has_programs = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(dir) = std::env::var_os(BINDIR_ENV).filter(|dir| !dir.is_empty()) {
        let dir = PathBuf::from(dir);
        if has_programs(&dir) {
            return Ok(dir);
        }
        bail!(
            "{BINDIR_ENV}={} has no initdb and pg_ctl: {INSTALL_HINT}",
            dir.display()
        );
    }
    let mut candidates = Vec::new();
    if let Ok(output) = Command::new("pg_config").arg("--bindir").output()
        && output.status.success()
    {
        candidates.push(PathBuf::from(
            String::from_utf8_lossy(&output.stdout).trim(),
        ));
    }
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path));
    }
    // Debian keeps one directory per major version off PATH; Homebrew's postgresql@N formulas are
    // keg-only; PGDG's RPMs use /usr/pgsql-N.
    for (parent, prefix) in [
        ("/usr/lib/postgresql", ""),
        ("/opt/homebrew/opt", "postgresql@"),
        ("/usr/local/opt", "postgresql@"),
        ("/usr", "pgsql-"),
    ] {
        candidates.extend(newest_version(Path::new(parent), prefix).map(|dir| dir.join("bin")));
    }
    candidates.extend(
        [
            "/usr/local/pgsql/bin",
            "/opt/homebrew/bin",
            "/usr/local/bin",
        ]
        .map(PathBuf::from),
    );
    candidates
        .into_iter()
        .find(|dir| has_programs(dir))
        .ok_or_else(|| {
            anyhow!(
                "no initdb and pg_ctl found (pg_config --bindir, PATH, /usr/lib/postgresql/*/bin, \
             Homebrew): {INSTALL_HINT}"
            )
        })
}

/// `parent/<prefix><N>` with the highest major version N.
fn newest_version(parent: &Path, prefix: &str) -> Option<PathBuf> {
    fs::read_dir(parent)
        .ok()?
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name();
            let version: u32 = name.to_str()?.strip_prefix(prefix)?.parse().ok()?;
            Some((version, entry.path()))
        })
        .max_by_key(|(version, _)| *version)
        .map(|(_, path)| path)
}

/// std has no `geteuid` and this crate forbids the `unsafe` of calling libc; `id` is POSIX (and found
/// even when PATH is odd).
fn effective_uid() -> anyhow::Result<u32> {
    let output = ["id", "/usr/bin/id", "/bin/id"]
        .into_iter()
        .find_map(|id| Command::new(id).arg("-u").output().ok())
        .context("cannot run `id -u` to learn whether atrium runs as root")?;
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .context("`id -u` did not print a number")
}

fn answers(port: u16) -> bool {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&address, Duration::from_millis(500)).is_ok()
}

/// A port nothing listens on now. Another program could take it before Postgres does; then the start
/// fails and says so.
fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot find a free loopback port")?;
    Ok(listener.local_addr()?.port())
}

/// `pg_ctl -w` returns once the server says it is ready; this confirms it accepts TCP connections.
fn wait_until_answers(port: u16, limit: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    while !answers(port) {
        if Instant::now() > deadline {
            bail!(
                "the private Postgres did not accept connections on 127.0.0.1:{port} within {}s; \
                 see {LOG_FILE}",
                limit.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// The last non-empty line of a log, read from its end (the log grows with every run).
fn last_line(path: &Path) -> String {
    let tail = || -> std::io::Result<String> {
        let mut file = File::open(path)?;
        let length = file.metadata()?.len();
        file.seek(SeekFrom::Start(length.saturating_sub(4096)))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    tail()
        .ok()
        .and_then(|text| {
            text.lines()
                .rev()
                .map(str::trim)
                .find(|line| !line.is_empty())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "(nothing)".to_owned())
}

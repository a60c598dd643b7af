//! The private Postgres (server/src/db/local.rs) as a newcomer meets it: the built `atrium` binary, the
//! machine's own initdb and pg_ctl, the demo catalog over HTTP.
//!
//! The private cluster is only started when nothing answers on 127.0.0.1:5432, where the system
//! Postgres serves the other tests. So each test runs itself again in a network namespace of its own
//! (`unshare --net`, which needs root): an empty loopback, the same files and users.

mod common;

use std::net::TcpStream;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

const ATRIUM: &str = env!("CARGO_BIN_EXE_atrium");
/// Set in the re-executed test, which then runs the test's body.
const IN_PRIVATE_NETWORK: &str = "ATRIUM_TEST_IN_PRIVATE_NETWORK";
/// The demo catalog has 15 components (README, "The demo catalog").
const DEMO_COMPONENTS: i64 = 15;

#[test]
fn serve_starts_a_private_postgres_stops_it_on_sigterm_and_keeps_its_data() {
    in_private_network(
        "serve_starts_a_private_postgres_stops_it_on_sigterm_and_keeps_its_data",
        |dir| {
            block_on(async {
                let mut first = Serve::spawn(dir, "first");
                let components = first.wait_for_demo_components().await;
                assert_eq!(components, DEMO_COMPONENTS);
                let log = first.log();
                let port = private_port(dir).expect("postmaster.pid while serving");
                assert!(
                    log.contains(&format!(
                        "started a private Postgres in .atrium/postgres on 127.0.0.1:{port} (set \
                         DATABASE_URL to use your own)"
                    )),
                    "{log}"
                );
                assert!(dir.join(".atrium/postgres/PG_VERSION").is_file());
                assert!(!dir.join(".atrium/postgres.init").exists());
                let data_dir_inode = inode(&dir.join(".atrium/postgres"));

                first.terminate_and_expect_success();
                assert_stopped(dir, port);

                // The same directory again: the same cluster, its data still there, so the demo
                // components answer before they could have been read again.
                let mut second = Serve::spawn(dir, "second");
                let first_answer = second.first_components_answer().await;
                assert_eq!(first_answer, DEMO_COMPONENTS, "{}", second.log());
                assert_eq!(
                    inode(&dir.join(".atrium/postgres")),
                    data_dir_inode,
                    "not created again"
                );
                let port = private_port(dir).expect("postmaster.pid while serving");
                second.terminate_and_expect_success();
                assert_stopped(dir, port);
            });
        },
    );
}

#[test]
fn leftover_private_postgres_is_reused_when_live_and_replaced_when_killed() {
    in_private_network(
        "leftover_private_postgres_is_reused_when_live_and_replaced_when_killed",
        |dir| {
            block_on(async {
                // What an initdb killed half way leaves: the next start begins that directory again.
                let half_made = dir.join(".atrium/postgres.init");
                std::fs::create_dir_all(&half_made).expect("mkdir");
                std::fs::write(half_made.join("PG_VERSION"), "15\n").expect("write");

                // `migrate` starts the cluster, creates and migrates the database, and stops it.
                let output = atrium(dir, &["migrate"]);
                let stdout = String::from_utf8_lossy(&output.stdout);
                assert!(output.status.success(), "{stdout}{}", stderr(&output));
                assert!(stdout.contains("migrations applied"), "{stdout}");
                assert!(stdout.contains("started a private Postgres"), "{stdout}");
                assert!(private_port(dir).is_none(), "stopped after migrate");
                assert!(!half_made.exists());

                // `local-postgres start` leaves it running and prints the URL alone on stdout.
                let output = atrium(dir, &["local-postgres", "start"]);
                assert!(output.status.success(), "{}", stderr(&output));
                let url = String::from_utf8_lossy(&output.stdout).trim().to_owned();
                let port = private_port(dir).expect("running");
                assert!(
                    url.starts_with("postgres://postgres:")
                        && url.ends_with(&format!("@127.0.0.1:{port}/atrium")),
                    "{url}"
                );
                let pool = sqlx::PgPool::connect(&url)
                    .await
                    .expect("connect to the URL");
                let migrated: i64 = sqlx::query_scalar("select count(*) from _sqlx_migrations")
                    .fetch_one(&pool)
                    .await
                    .expect("migrations table");
                assert!(migrated >= 3, "the database migrate made is there");
                pool.close().await;

                // A live leftover is used, and left running: this `serve` did not start it.
                let mut serve = Serve::spawn(dir, "reusing");
                assert_eq!(serve.wait_for_demo_components().await, DEMO_COMPONENTS);
                let log = serve.log();
                assert!(
                    log.contains(&format!(
                        "using the private Postgres already running in .atrium/postgres on \
                         127.0.0.1:{port}"
                    )),
                    "{log}"
                );
                serve.terminate_and_expect_success();
                assert!(answers(port), "still running for whoever started it");

                let output = atrium(dir, &["local-postgres", "stop"]);
                assert!(output.status.success(), "{}", stderr(&output));
                assert!(stderr(&output).contains("stopped the private Postgres"));
                assert_stopped(dir, port);

                // A server killed with SIGKILL leaves its postmaster.pid behind; it must not block
                // the next start.
                let output = atrium(dir, &["local-postgres", "start"]);
                assert!(output.status.success(), "{}", stderr(&output));
                let pid = postmaster_pid(dir).expect("running");
                kill("-KILL", pid);
                wait_until(
                    "the killed postmaster is gone",
                    Duration::from_secs(60),
                    || !Path::new(&format!("/proc/{pid}")).exists(),
                );
                assert!(dir.join(".atrium/postgres/postmaster.pid").exists());

                let mut serve = Serve::spawn(dir, "after-kill");
                assert_eq!(serve.wait_for_demo_components().await, DEMO_COMPONENTS);
                assert!(serve.log().contains("started a private Postgres"));
                let port = private_port(dir).expect("running");
                serve.terminate_and_expect_success();
                assert_stopped(dir, port);

                let output = atrium(dir, &["local-postgres", "stop"]);
                assert!(output.status.success(), "{}", stderr(&output));
                assert!(stderr(&output).contains("no private Postgres is running"));
            });
        },
    );
}

/// Postgres refuses root; as an ordinary user the cluster simply runs as that user.
#[test]
fn migrate_as_an_ordinary_user_runs_the_cluster_as_that_user() {
    in_private_network(
        "migrate_as_an_ordinary_user_runs_the_cluster_as_that_user",
        |dir| {
            let nobody = 65534;
            std::os::unix::fs::chown(dir, Some(nobody), Some(nobody)).expect("chown");

            let output = Command::new(ATRIUM)
                .arg("migrate")
                .current_dir(dir)
                .env_remove("DATABASE_URL")
                .env_remove("ATRIUM_POSTGRES_BINDIR")
                .env("HOME", dir)
                .uid(nobody)
                .gid(nobody)
                .stdin(Stdio::null())
                .output()
                .expect("runs");
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert!(output.status.success(), "{stdout}{}", stderr(&output));
            assert!(stdout.contains("started a private Postgres"), "{stdout}");
            assert!(stdout.contains("migrations applied"), "{stdout}");
            let data = dir.join(".atrium/postgres");
            assert_eq!(std::fs::metadata(&data).expect("data dir").uid(), nobody);
            assert!(private_port(dir).is_none(), "stopped after migrate");
        },
    );
}

#[test]
fn without_postgres_programs_the_error_is_one_line_with_the_install_hint() {
    in_private_network(
        "without_postgres_programs_the_error_is_one_line_with_the_install_hint",
        |dir| {
            let empty_path = tempfile::tempdir().expect("tempdir");
            let output = Command::new(ATRIUM)
                .arg("serve")
                .current_dir(dir)
                .env_remove("DATABASE_URL")
                .env("PATH", empty_path.path())
                .env("ATRIUM_POSTGRES_BINDIR", "/nonexistent")
                .env("ATRIUM_LISTEN", "127.0.0.1:0")
                .stdin(Stdio::null())
                .output()
                .expect("runs");
            assert_eq!(output.status.code(), Some(1));
            let stderr = stderr(&output);
            assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
            for hint in [
                "atrium: ",
                "127.0.0.1:5432",
                "ATRIUM_POSTGRES_BINDIR=/nonexistent",
                "apt-get install postgresql",
                "brew install postgresql@16",
                "set DATABASE_URL",
            ] {
                assert!(stderr.contains(hint), "{hint:?} in {stderr}");
            }
            assert!(!dir.join(".atrium/postgres").exists());
        },
    );
}

/// Runs `body` in a network namespace of its own: the test binary runs again, for this test only,
/// under `unshare --net`, and the inner run brings loopback up and runs the body in a fresh working
/// directory (0755, so an unprivileged cluster owner can reach it), killing any postgres left there.
fn in_private_network(test: &str, body: impl FnOnce(&Path)) {
    if std::env::var_os(IN_PRIVATE_NETWORK).is_some() {
        let up = Command::new("ip")
            .args(["link", "set", "lo", "up"])
            .status()
            .expect("ip (iproute2) is needed to bring up loopback in the test's network namespace");
        assert!(up.success(), "ip link set lo up: {up}");
        let dir = working_dir();
        let _cleanup = KillLeftoverPostgres(dir.path().to_owned());
        body(dir.path());
        return;
    }
    for (program, package) in [("unshare", "util-linux"), ("ip", "iproute2")] {
        let found = Command::new(program)
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        assert!(
            found.is_ok(),
            "{program} ({package}) is needed to give this test a loopback without the system \
             Postgres: {found:?}"
        );
    }
    let output = Command::new("unshare")
        .arg("--net")
        .arg("--")
        .arg(std::env::current_exe().expect("test binary"))
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(IN_PRIVATE_NETWORK, "1")
        .stdin(Stdio::null())
        .output()
        .expect("runs unshare");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = stderr(&output);
    let refused = ["Operation not permitted", "Permission denied"];
    assert!(
        !refused
            .iter()
            .any(|r| stderr.contains(r) && stderr.contains("unshare")),
        "unshare --net was refused: these tests need root (CAP_SYS_ADMIN) to get a loopback where \
         nothing answers on 5432 while the system Postgres keeps serving the other tests.\n{stderr}"
    );
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "the test failed in its network namespace ({}):\n{stdout}\n{stderr}",
        output.status
    );
}

fn block_on(future: impl Future<Output = ()>) {
    atrium::tls::install_crypto_provider();
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(future);
}

/// A fresh working directory that the unprivileged account the cluster runs as (under root) can
/// reach: tempdirs are 0700.
fn working_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    dir
}

/// `atrium serve` with the demo catalog and no database named, logging to a file in the directory.
struct Serve {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Serve {
    fn spawn(dir: &Path, name: &str) -> Self {
        let catalog = common::workspace_root().join("catalog");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("port")
            .local_addr()
            .expect("addr")
            .port();
        let log = dir.join(format!("atrium-{name}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(ATRIUM)
            .arg("serve")
            .current_dir(dir)
            .env_remove("DATABASE_URL")
            .env_remove("ATRIUM_POSTGRES_BINDIR")
            .env(
                "ATRIUM_CATALOG_LOCATIONS",
                format!("file:{}", catalog.join("all.yaml").display()),
            )
            .env("ATRIUM_CATALOG_FILE_ROOTS", &catalog)
            .env("ATRIUM_LISTEN", format!("127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .spawn()
            .expect("spawn atrium serve");
        Self { child, port, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `totalItems` of `kind=component`, or None while the server does not answer.
    async fn components(&mut self) -> Option<i64> {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("atrium serve exited ({status}):\n{}", self.log());
        }
        let url = format!(
            "http://127.0.0.1:{}/api/catalog/entities/by-query?filter=kind=component&limit=1",
            self.port
        );
        let response = reqwest::get(url).await.ok()?;
        let body: serde_json::Value = response.json().await.ok()?;
        body["totalItems"].as_i64()
    }

    async fn first_components_answer(&mut self) -> i64 {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(count) = self.components().await {
                return count;
            }
            assert!(Instant::now() < deadline, "no answer:\n{}", self.log());
            // Polling a child process over HTTP: a short pause between attempts, bounded above.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn wait_for_demo_components(&mut self) -> i64 {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let count = self.components().await;
            if count >= Some(DEMO_COMPONENTS) || Instant::now() > deadline {
                return count.unwrap_or_else(|| panic!("no answer:\n{}", self.log()));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn terminate_and_expect_success(&mut self) {
        kill("-TERM", self.child.id());
        let mut status: Option<ExitStatus> = None;
        wait_until("atrium serve exits", Duration::from_secs(30), || {
            status = self.child.try_wait().expect("wait");
            status.is_some()
        });
        let status = status.expect("exited");
        assert!(
            status.success(),
            "exit 0 after SIGTERM: {status}\n{}",
            self.log()
        );
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A failed test must not leave a server running in a deleted directory (its network namespace
/// lives as long as the server does).
struct KillLeftoverPostgres(PathBuf);

impl Drop for KillLeftoverPostgres {
    fn drop(&mut self) {
        if let Some(pid) = postmaster_pid(&self.0) {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

fn atrium(dir: &Path, args: &[&str]) -> Output {
    Command::new(ATRIUM)
        .args(args)
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("ATRIUM_POSTGRES_BINDIR")
        .stdin(Stdio::null())
        .output()
        .expect("runs atrium")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn postmaster_pid(dir: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(dir.join(".atrium/postgres/postmaster.pid")).ok()?;
    text.lines().next()?.trim().parse().ok()
}

/// The port of the private server, if its postmaster.pid is there.
fn private_port(dir: &Path) -> Option<u16> {
    let text = std::fs::read_to_string(dir.join(".atrium/postgres/postmaster.pid")).ok()?;
    text.lines().nth(3)?.trim().parse().ok()
}

fn assert_stopped(dir: &Path, port: u16) {
    assert!(
        !dir.join(".atrium/postgres/postmaster.pid").exists(),
        "postmaster.pid removed: the server stopped"
    );
    assert!(!answers(port), "nothing answers on {port}");
}

fn answers(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

fn inode(path: &Path) -> u64 {
    std::fs::metadata(path).expect("metadata").ino()
}

fn kill(signal: &str, pid: u32) {
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill {signal} {pid}");
}

fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

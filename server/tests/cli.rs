//! The `atrium` binary as users run it: `validate` in a catalog repository's CI, `serve` against a real
//! Postgres with the demo catalog, and what happens when Postgres is not there.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ATRIUM: &str = env!("CARGO_BIN_EXE_atrium");

fn demo_catalog_files() -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![common::workspace_root().join("catalog")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read catalog dir") {
            let path = entry.expect("entry").path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_owned();
            if path.is_dir() {
                // Skeletons are template input, and OpenAPI files are API definitions, not entities.
                if name != "skeleton" && name != "openapi" {
                    stack.push(path);
                }
            } else if name.ends_with(".yaml") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

#[test]
fn validate_passes_the_demo_catalog() {
    let files = demo_catalog_files();
    assert!(files.len() > 5, "demo catalog files: {files:?}");
    let output = Command::new(ATRIUM)
        .arg("validate")
        .args(&files)
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}{stderr}");
    assert!(stderr.contains("0 problem(s)"), "{stderr}");
}

#[test]
fn validate_reports_every_problem_with_file_line_and_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("catalog-info.yaml");
    std::fs::write(
        &bad,
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: bad name\n  tags: [Java]\nspec:\n  type: service\n  lifecycle: production\n---\napiVersion: backstage.io/v1alpha1\nkind: API\nmetadata:\n  name: api\nspec:\n  type: openapi\n  lifecycle: production\n  owner: team\n  definition:\n    $text: ./missing.yaml\n",
    )
    .expect("write");
    let broken = dir.path().join("broken.yaml");
    std::fs::write(
        &broken,
        "kind: Component\nmetadata:\n  name: a\n  name: b\n",
    )
    .expect("write");

    let output = Command::new(ATRIUM)
        .arg("validate")
        .arg(&bad)
        .arg(&broken)
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let bad_path = bad.display().to_string();
    assert!(
        stdout.contains(&format!("{bad_path}:4: metadata.name: ")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("{bad_path}:5: metadata.tags.0: ")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("{bad_path}:6: spec.owner: ")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("{bad_path}:18: spec.definition: "))
            && stdout.contains("missing.yaml"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("{}:4: invalid YAML: ", broken.display())),
        "{stdout}"
    );
    assert!(stdout.to_lowercase().contains("duplicate key"), "{stdout}");
}

#[test]
fn serve_without_postgres_says_so_in_one_line() {
    let started = Instant::now();
    let output = Command::new(ATRIUM)
        .arg("serve")
        .env(
            "DATABASE_URL",
            "postgres://atrium:s3cret@127.0.0.1:1/atrium",
        )
        .env("ATRIUM_LISTEN", "127.0.0.1:0")
        .current_dir(common::workspace_root())
        .stdin(Stdio::null())
        .output()
        .expect("runs");
    assert!(!output.status.success());
    assert!(started.elapsed() < Duration::from_secs(30), "fails fast");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = stderr
        .lines()
        .find(|l| l.starts_with("atrium:"))
        .unwrap_or_default();
    assert!(
        line.contains("cannot connect to Postgres at postgres://atrium:****@127.0.0.1:1/atrium"),
        "{stderr}"
    );
    assert!(
        line.contains("DATABASE_URL"),
        "says how to fix it: {stderr}"
    );
    assert!(
        !stderr.contains("s3cret"),
        "password never printed: {stderr}"
    );
}

/// Starts `atrium serve` on a new database with the demo catalog, waits for the catalog to be loaded,
/// then stops it with SIGTERM.
#[tokio::test]
async fn serve_loads_the_demo_catalog_and_stops_on_sigterm() {
    atrium::catalog::install_crypto_provider();
    let base = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let database = format!("atrium_cli_{}", uuid::Uuid::new_v4().simple());
    let mut url = url::Url::parse(&base).expect("DATABASE_URL");
    url.set_path(&database);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();

    let mut child = tokio::process::Command::new(ATRIUM)
        .arg("serve")
        .env("DATABASE_URL", url.as_str())
        .env("ATRIUM_LISTEN", format!("127.0.0.1:{port}"))
        .current_dir(common::workspace_root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn");
    let client = reqwest::Client::new();
    let base_url = format!("http://127.0.0.1:{port}");

    let deadline = Instant::now() + Duration::from_secs(60);
    let mut status = serde_json::Value::Null;
    while Instant::now() < deadline {
        if let Ok(response) = client
            .get(format!("{base_url}/api/atrium/processing"))
            .send()
            .await
            && let Ok(body) = response.json::<serde_json::Value>().await
        {
            status = body;
            let done = status["entities"].as_i64().unwrap_or(0) > 50
                && status["locationsDue"] == 0
                && status["stitchQueue"] == 0
                && status["entitiesPending"] == 0;
            if done {
                break;
            }
        }
        // Polling a child process over HTTP: wait a little between attempts, bounded by the deadline.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        status["entities"].as_i64().unwrap_or(0) > 50,
        "demo catalog loaded: {status}"
    );
    assert_eq!(
        status["locationsWithErrors"], 0,
        "demo catalog loads cleanly: {status}"
    );
    let ready = client
        .get(format!("{base_url}/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), 200);
    let models = client
        .get(format!(
            "{base_url}/api/catalog/entities/by-query?filter=kind=model&limit=100"
        ))
        .send()
        .await
        .expect("models")
        .json::<serde_json::Value>()
        .await
        .expect("json");
    assert!(models["totalItems"].as_i64().unwrap_or(0) >= 3, "{models}");

    let pid = child.id().expect("pid").to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let exit = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("stops in time")
        .expect("wait");
    assert!(exit.success(), "graceful shutdown exits 0: {exit}");

    let mut admin = url.clone();
    admin.set_path("postgres");
    let pool = sqlx::PgPool::connect(admin.as_str()).await.expect("admin");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "drop database if exists \"{database}\" with (force)"
    )))
    .execute(&pool)
    .await
    .expect("drop");
}

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
    atrium::tls::install_crypto_provider();
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

/// A catalog repository in a temp dir: `files` are (path relative to the root, content).
fn repo_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (path, content) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, content).expect("write");
    }
    dir
}

fn component(name: &str) -> String {
    format!(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\nspec:\n  type: service\n  lifecycle: production\n  owner: team-a\n"
    )
}

fn validate_repo(dir: &std::path::Path, extra: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::new(ATRIUM)
        .arg("validate")
        .arg("--repo")
        .arg(dir)
        .args(extra)
        .output()
        .expect("runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn validate_repo_finds_nested_catalog_files_and_passes_a_clean_repo() {
    let dir = repo_with(&[
        ("catalog-info.yaml", &component("root")),
        (
            "services/payments/catalog-info.yaml",
            &component("payments"),
        ),
        (".backstage/catalog-info.yaml", &component("hidden-dir")),
        ("services/payments/README.md", "not a catalog file"),
        // Neither .git nor what .gitignore ignores is searched.
        (".git/catalog-info.yaml", "not: [valid"),
        (".gitignore", "node_modules/\n"),
        ("node_modules/some-plugin/catalog-info.yaml", "not: [valid"),
    ]);
    let (code, stdout, stderr) = validate_repo(dir.path(), &[]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains("ok: 3 file(s), 3 entities, 0 problem(s)"),
        "{stderr}"
    );
}

#[test]
fn validate_repo_reports_problems_with_paths_relative_to_the_repo() {
    let dir = repo_with(&[
        ("catalog-info.yaml", &component("root")),
        (
            "services/payments/catalog-info.yaml",
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: Bad Name\nspec:\n  type: service\n  lifecycle: production\n  owner: team-a\n",
        ),
    ]);
    let (code, stdout, stderr) = validate_repo(dir.path(), &[]);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stdout.starts_with("services/payments/catalog-info.yaml:4: metadata.name: "),
        "{stdout}"
    );
    assert!(
        stderr.contains("failed: 2 file(s), 2 entities, 1 problem(s)"),
        "{stderr}"
    );
}

#[test]
fn validate_repo_follows_location_targets() {
    let location = "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata:\n  name: everything\nspec:\n  targets:\n    - ./systems/payments.yaml\n    - ../repo-root-is-not-above-this.yaml\n";
    let dir = repo_with(&[
        ("catalog-info.yaml", location),
        (
            "systems/payments.yaml",
            // A second hop: the followed file has its own Location.
            "apiVersion: backstage.io/v1alpha1\nkind: System\nmetadata:\n  name: payments\nspec:\n  owner: team-a\n---\napiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata:\n  name: payments-parts\nspec:\n  target: parts/api.yaml\n",
        ),
        (
            "systems/parts/api.yaml",
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: Not Valid\nspec:\n  type: service\n  lifecycle: production\n  owner: team-a\n",
        ),
    ]);
    let (code, stdout, stderr) = validate_repo(dir.path(), &[]);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    // The file two hops away was linted, under its path in the repository.
    assert!(
        stdout.contains("systems/parts/api.yaml:4: metadata.name: "),
        "{stdout}"
    );
    // `../` from the top of the repository leaves it.
    assert!(
        stdout.contains("catalog-info.yaml:8: spec.targets.1: target \"../repo-root-is-not-above-this.yaml\" points outside the repository"),
        "{stdout}"
    );
    assert!(
        stderr.contains("failed: 3 file(s), 4 entities, 2 problem(s)"),
        "{stderr}"
    );
}

#[test]
fn validate_repo_reports_targets_escaping_or_missing() {
    let outside = tempfile::tempdir().expect("tempdir");
    std::fs::write(outside.path().join("secret.yaml"), component("outside")).expect("write");
    let dir = repo_with(&[(
        "catalog/catalog-info.yaml",
        &format!(
            "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata:\n  name: l\nspec:\n  targets:\n    - ../../{}/secret.yaml\n    - {}\n    - ./missing.yaml\n    - https://example.com/catalog-info.yaml\n",
            outside.path().file_name().expect("name").to_string_lossy(),
            outside.path().join("secret.yaml").display()
        ),
    )]);
    #[cfg(unix)]
    std::os::unix::fs::symlink(
        outside.path().join("secret.yaml"),
        dir.path().join("catalog/linked.yaml"),
    )
    .expect("symlink");
    #[cfg(unix)]
    {
        let file = dir.path().join("catalog/catalog-info.yaml");
        let text = std::fs::read_to_string(&file).expect("read");
        std::fs::write(&file, format!("{text}    - ./linked.yaml\n")).expect("write");
    }

    let (code, stdout, stderr) = validate_repo(dir.path(), &[]);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    let file = "catalog/catalog-info.yaml";
    assert!(
        stdout.contains(&format!("{file}:7: spec.targets.0: target \"../../")),
        "{stdout}"
    );
    assert!(stdout.contains("points outside the repository"), "{stdout}");
    assert!(
        stdout.contains(&format!("{file}:8: spec.targets.1: ")) && stdout.contains("absolute path"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "{file}:9: spec.targets.2: target \"./missing.yaml\" not found: there is no catalog/missing.yaml"
        )),
        "{stdout}"
    );
    #[cfg(unix)]
    assert!(
        stdout.contains(&format!(
            "{file}:11: spec.targets.4: target \"./linked.yaml\": is a symbolic link to "
        )),
        "{stdout}"
    );
    // URLs are not fetched, and nothing outside the repository was read.
    assert!(!stdout.contains("example.com"), "{stdout}");
    assert!(!stdout.contains("outside:"), "{stdout}");
    assert!(stderr.contains("failed: 1 file(s), 1 entity"), "{stderr}");
}

#[test]
fn validate_repo_reports_a_ref_defined_in_two_files() {
    let dir = repo_with(&[
        ("a/catalog-info.yaml", &component("payments")),
        ("b/catalog-info.yaml", &component("payments")),
    ]);
    let (code, stdout, stderr) = validate_repo(dir.path(), &[]);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("b/catalog-info.yaml:1: metadata.name: entity component:default/payments is already defined at a/catalog-info.yaml:1"),
        "{stdout}"
    );
}

#[test]
fn validate_repo_with_a_glob_that_matches_nothing_says_so() {
    let dir = repo_with(&[("catalog-info.yaml", &component("root"))]);
    let (code, stdout, stderr) = validate_repo(dir.path(), &["--catalog-file", "catalog/*.yaml"]);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!(
            "no file matches --catalog-file \"catalog/*.yaml\" in {}",
            dir.path().display()
        )),
        "{stderr}"
    );

    // Several globs, each matching its own files.
    let dir = repo_with(&[
        ("catalog/systems.yaml", &component("systems")),
        ("catalog/nested/skipped.yaml", &component("nested")),
        ("teams.yml", &component("teams")),
    ]);
    let (code, stdout, stderr) = validate_repo(
        dir.path(),
        &[
            "--catalog-file",
            "catalog/*.yaml",
            "--catalog-file",
            "*.yml",
        ],
    );
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stderr.contains("ok: 2 file(s), 2 entities"), "{stderr}");
}

#[test]
fn validate_without_files_or_repo_is_a_usage_error() {
    let output = Command::new(ATRIUM).arg("validate").output().expect("runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("required arguments were not provided")
            && stderr.contains("<FILE|--repo <DIR>>"),
        "{stderr}"
    );

    let output = Command::new(ATRIUM)
        .args(["validate", "--repo", "/no/such/dir"])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("/no/such/dir is not a directory"));

    let output = Command::new(ATRIUM)
        .args(["validate", "--catalog-file", "*.yaml", "catalog-info.yaml"])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(2), "--catalog-file needs --repo");
}

/// `atrium policy test`: the guardrails offline, as a config repository's CI runs them.
fn policy_test(dir: &std::path::Path, args: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::new(ATRIUM)
        .current_dir(dir)
        .args(["--config", "atrium.yaml", "policy", "test"])
        .args(args)
        .output()
        .expect("runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

const POLICY_CONFIG: &str = "deploy:\n  environments:\n    dev:\n      policy:\n        allowed_registries: [ghcr.io/acme]\n  clusters:\n    - name: dev-1\n      environment: dev\n      url: https://10.0.0.1:6443\n      token_env: DEV_TOKEN\n      namespaces: [apps]\n";

const COMPLIANT: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: apps\nspec:\n  replicas: 2\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}\n      containers:\n        - name: app\n          image: ghcr.io/acme/web:1.2.3\n          securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}\n          resources: {requests: {cpu: 100m, memory: 64Mi}, limits: {cpu: 200m, memory: 128Mi}}\n";

#[test]
fn policy_test_passes_compliant_manifests_and_names_each_violation() {
    let dir = repo_with(&[
        ("atrium.yaml", POLICY_CONFIG),
        ("ok.yaml", COMPLIANT),
        (
            "bad.yaml",
            &COMPLIANT
                .replace("ghcr.io/acme/web:1.2.3", "ghcr.io/acme/web:latest")
                .replace("namespace: apps", "namespace: kube-system")
                .replace("allowPrivilegeEscalation: false, ", "privileged: true, "),
        ),
    ]);
    let (code, stdout, stderr) = policy_test(dir.path(), &["ok.yaml"]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");

    let (code, stdout, stderr) = policy_test(dir.path(), &["ok.yaml", "bad.yaml"]);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    for expected in [
        "image-tag: bad.yaml:Deployment/kube-system/web spec.template.spec.containers[0].image",
        "namespace: bad.yaml:Deployment/kube-system/web",
        "pss-privileged: bad.yaml:Deployment/kube-system/web spec.template.spec.containers[0].securityContext.privileged",
        "pss-allow-privilege-escalation: bad.yaml:Deployment/kube-system/web",
    ] {
        assert!(stdout.contains(expected), "{expected:?} not in\n{stdout}");
    }
    assert!(!stdout.contains("ok.yaml:"), "{stdout}");

    // No cluster and no --allow-namespace: a usage error, not a silent pass.
    let (code, _, stderr) = policy_test(dir.path(), &["--environment", "prod", "ok.yaml"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--allow-namespace"), "{stderr}");
    let (code, stdout, stderr) = policy_test(
        dir.path(),
        &[
            "--environment",
            "prod",
            "--allow-namespace",
            "apps",
            "ok.yaml",
        ],
    );
    // prod is not configured: its safe defaults allow no registry.
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("image-registry"), "{stdout}");
}

const EXPLAIN_CATALOG: &str = "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: {name: team-a}\nspec: {type: team, children: []}\n---\napiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: {name: team-b}\nspec: {type: team, children: []}\n---\napiVersion: backstage.io/v1alpha1\nkind: User\nmetadata: {name: alice}\nspec: {memberOf: [team-a]}\n---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: web}\nspec: {type: service, lifecycle: production, owner: team-a}\n---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: billing}\nspec: {type: service, lifecycle: production, owner: team-b}\n";

const EXPLAIN_CONFIG: &str = "permissions:\n  rules:\n    - {name: owners-delete, effect: allow, actions: [catalog.entity.delete], owner: true}\n    - {name: nobody-else-deletes, effect: deny, actions: [catalog.entity.delete]}\n";

/// `atrium policy explain` against a database with a catalog: the decision, its rule, and the exit
/// code a script can test.
#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn policy_explain_prints_the_deciding_rule_and_exits_by_it(pool: sqlx::PgPool) {
    let app = common::TestApp::new(pool.clone()).await;
    app.add("catalog.yaml", EXPLAIN_CATALOG).await;
    let base = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let mut url = url::Url::parse(&base).expect("DATABASE_URL");
    url.set_path(
        pool.connect_options()
            .get_database()
            .expect("test database"),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("atrium.yaml"), EXPLAIN_CONFIG).expect("config");
    let explain = |args: &[&str]| {
        let output = Command::new(ATRIUM)
            .current_dir(dir.path())
            .env("DATABASE_URL", url.as_str())
            .args([
                "--config",
                "atrium.yaml",
                "policy",
                "explain",
                "--user",
                "alice",
            ])
            .args(args)
            .output()
            .expect("runs");
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };

    let (code, stdout, stderr) = explain(&[
        "--action",
        "catalog.entity.delete",
        "--target",
        "component:default/billing",
    ]);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert_eq!(
        stdout,
        "caller: user:default/alice (group:default/team-a)\ntarget: component:default/billing (owned by group:default/team-b)\ndeny (rule nobody-else-deletes)\n"
    );
    let (code, stdout, stderr) = explain(&["--action", "catalog.entity.delete", "--target", "web"]);
    assert_eq!(code, Some(1), "a bare name is not a ref: {stdout}{stderr}");
    let (code, stdout, stderr) = explain(&[
        "--action",
        "catalog.entity.delete",
        "--target",
        "component:web",
    ]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.ends_with("allow (rule owners-delete)\n"), "{stdout}");
    let (code, _, stderr) = explain(&["--action", "catalog.entity.remove"]);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("unknown action `catalog.entity.remove`"),
        "{stderr}"
    );

    std::fs::write(
        dir.path().join("atrium.yaml"),
        "permissions:\n  rules:\n    - {name: typo, effect: deny, actions: [catalog.entity.reed]}\n",
    )
    .expect("config");
    let (code, _, stderr) = explain(&["--action", "catalog.entity.read"]);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("permissions.rules[0] (typo): unknown action `catalog.entity.reed`"),
        "{stderr}"
    );
}

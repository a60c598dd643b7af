//! Git repositories as catalog sources, against real bare repositories whose commits add, change and
//! remove catalog files: what a platform team sees after each push.

mod common;

use atrium::config::{GitProvider, GitRepositoryConfig};
use axum::http::StatusCode;
use common::git::{BareRepo, component};
use common::{TestApp, status_messages};
use serde_json::json;
use sqlx::PgPool;

/// An app following `repo`'s `main` branch, shown at https://git.example.test/acme/<name> (Gitea links).
async fn app_following(pool: PgPool, repos: &[&BareRepo]) -> TestApp {
    let entries: Vec<GitRepositoryConfig> = repos
        .iter()
        .map(|repo| GitRepositoryConfig {
            url: Some(repo.url()),
            branch: Some("main".into()),
            web_url: Some(format!(
                "https://git.example.test/acme/{}",
                repo.path
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or_default()
            )),
            provider: Some(GitProvider::Gitea),
            ..GitRepositoryConfig::default()
        })
        .collect();
    let app = TestApp::with_config(pool, |c| c.git.repositories = entries).await;
    app.state
        .catalog
        .sync_configured_locations()
        .await
        .expect("configured repositories registered");
    app.process().await;
    app
}

/// Makes the repositories due (what the refresh interval or a webhook does) and processes.
async fn refresh_repositories(app: &TestApp) {
    sqlx::query!("update location set next_refresh_at = now() where type = 'git'")
        .execute(&app.state.db)
        .await
        .expect("make due");
    app.process().await;
}

const API_WITH_DEFINITION: &str = "apiVersion: backstage.io/v1alpha1\nkind: API\nmetadata:\n  name: orders-api\nspec:\n  type: openapi\n  lifecycle: production\n  owner: team-a\n  definition:\n    $text: ./openapi.yaml\n";

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn catalog_files_anywhere_in_a_repository_become_entities_with_links_back(pool: PgPool) {
    let repos = tempfile::tempdir().expect("tempdir");
    let mut shop = BareRepo::create(repos.path(), "shop.git");
    shop.commit(
        &[
            (
                "catalog-info.yaml",
                Some(&component("shop-web", "The shop")),
            ),
            (
                "services/orders/catalog-info.yaml",
                Some(API_WITH_DEFINITION),
            ),
            (
                "services/orders/openapi.yaml",
                Some("openapi: 3.0.0\ninfo: {title: Orders}\n"),
            ),
            // Not catalog files: another name, and a directory that merely contains the name.
            (
                "docs/other.yaml",
                Some(&component("not-read", "wrong file name")),
            ),
            ("catalog-info.yaml.d/readme.md", Some("# notes")),
        ],
        "initial",
    );
    let app = app_following(pool, &[&shop]).await;

    let web = app.entity("component", "shop-web").await;
    let annotations = &web["metadata"]["annotations"];
    assert_eq!(
        annotations["backstage.io/view-url"],
        "https://git.example.test/acme/shop/src/branch/main/catalog-info.yaml"
    );
    assert_eq!(
        annotations["backstage.io/edit-url"],
        "https://git.example.test/acme/shop/_edit/main/catalog-info.yaml"
    );
    assert_eq!(
        annotations["backstage.io/source-location"],
        "url:https://git.example.test/acme/shop/src/branch/main/"
    );
    assert_eq!(
        annotations["backstage.io/managed-by-location"],
        format!("git-file:{}#main:catalog-info.yaml", shop.url())
    );
    assert_eq!(
        annotations["backstage.io/managed-by-origin-location"],
        format!("git:{}#main", shop.url())
    );

    let api = app.entity("api", "orders-api").await;
    assert_eq!(
        api["spec"]["definition"], "openapi: 3.0.0\ninfo: {title: Orders}\n",
        "$text is read from the same commit of the same repository"
    );
    assert_eq!(
        api["metadata"]["annotations"]["backstage.io/source-location"],
        "url:https://git.example.test/acme/shop/src/branch/main/services/orders/"
    );
    assert_eq!(
        app.entity_status("component", "not-read").await,
        StatusCode::NOT_FOUND
    );

    // The repository is a location like any other in the API.
    let locations = app.get("/api/catalog/locations").await;
    let targets: Vec<String> = locations
        .body
        .as_array()
        .expect("list")
        .iter()
        .map(|l| {
            format!(
                "{}:{}",
                l["data"]["type"].as_str().unwrap_or_default(),
                l["data"]["target"].as_str().unwrap_or_default()
            )
        })
        .collect();
    assert!(
        targets.contains(&format!("git:{}#main", shop.url())),
        "{targets:?}"
    );
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn each_push_adds_changes_and_removes_entities(pool: PgPool) {
    let repos = tempfile::tempdir().expect("tempdir");
    let mut shop = BareRepo::create(repos.path(), "shop.git");
    shop.commit(
        &[
            ("catalog-info.yaml", Some(&component("shop-web", "first"))),
            (
                "billing/catalog-info.yaml",
                Some(&component("billing", "bills")),
            ),
        ],
        "initial",
    );
    let app = app_following(pool, &[&shop]).await;
    assert_eq!(
        app.entity("component", "billing").await["metadata"]["description"],
        "bills"
    );

    shop.commit(
        &[
            ("catalog-info.yaml", Some(&component("shop-web", "second"))),
            ("billing/catalog-info.yaml", None),
            (
                "search/catalog-info.yaml",
                Some(&component("search", "finds")),
            ),
        ],
        "change one, remove one, add one",
    );
    // Before the repository is fetched again, nothing changes.
    app.process().await;
    assert_eq!(
        app.entity("component", "shop-web").await["metadata"]["description"],
        "first"
    );

    refresh_repositories(&app).await;
    assert_eq!(
        app.entity("component", "shop-web").await["metadata"]["description"],
        "second"
    );
    assert_eq!(
        app.entity_status("component", "billing").await,
        StatusCode::NOT_FOUND,
        "the entity of a removed file is orphaned and deleted"
    );
    assert_eq!(
        app.entity("component", "search").await["metadata"]["description"],
        "finds"
    );
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn a_corrupt_file_keeps_the_last_good_entities_and_shows_the_error(pool: PgPool) {
    let repos = tempfile::tempdir().expect("tempdir");
    let mut shop = BareRepo::create(repos.path(), "shop.git");
    let good = format!(
        "{}---\n{}",
        component("shop-web", "good"),
        component("shop-worker", "good")
    );
    shop.commit(&[("catalog-info.yaml", Some(&good))], "initial");
    let app = app_following(pool, &[&shop]).await;

    // Broken YAML: the whole file is unreadable, so nothing of it may be orphaned.
    shop.commit(
        &[(
            "catalog-info.yaml",
            Some("kind: Component\nmetadata: [unclosed\n"),
        )],
        "oops",
    );
    refresh_repositories(&app).await;
    assert_eq!(
        app.entity("component", "shop-web").await["metadata"]["description"],
        "good"
    );
    assert_eq!(
        app.entity("component", "shop-worker").await["metadata"]["description"],
        "good"
    );
    // Errors of a file show on the Location entity that declares it: the repository's.
    let root = atrium::catalog::model::location::generated_location_name(
        "git",
        &format!("{}#main", shop.url()),
    );
    let errors = status_messages(&app.entity("location", &root).await);
    assert!(
        errors
            .iter()
            .any(|e| e.contains("catalog-info.yaml line 2: invalid YAML")),
        "{errors:?}"
    );

    // An invalid entity in an otherwise valid file keeps its last good body and shows why.
    let invalid = format!(
        "{}---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: shop-worker\nspec:\n  type: service\n",
        component("shop-web", "fixed")
    );
    shop.commit(&[("catalog-info.yaml", Some(&invalid))], "half fixed");
    refresh_repositories(&app).await;
    assert_eq!(
        app.entity("component", "shop-web").await["metadata"]["description"],
        "fixed"
    );
    let worker = app.entity("component", "shop-worker").await;
    assert_eq!(worker["metadata"]["description"], "good");
    let messages = status_messages(&worker);
    assert!(
        messages.iter().any(|m| m.contains("spec.lifecycle")),
        "{messages:?}"
    );
    assert!(status_messages(&app.entity("location", &root).await).is_empty());
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn refreshing_unchanged_repositories_reads_and_writes_nothing(pool: PgPool) {
    let repos = tempfile::tempdir().expect("tempdir");
    let mut one = BareRepo::create(repos.path(), "one.git");
    one.commit(
        &[("catalog-info.yaml", Some(&component("one", "1")))],
        "initial",
    );
    let mut two = BareRepo::create(repos.path(), "two.git");
    two.commit(
        &[
            ("catalog-info.yaml", Some(&component("two", "2"))),
            ("lib/catalog-info.yaml", Some(&component("two-lib", "2"))),
        ],
        "initial",
    );
    let app = app_following(pool.clone(), &[&one, &two]).await;
    let refreshed_before = file_refresh_times(&pool).await;
    assert_eq!(refreshed_before.len(), 3);

    refresh_repositories(&app).await;
    let refreshed_after = file_refresh_times(&pool).await;
    assert_eq!(
        refreshed_before, refreshed_after,
        "no file is read again when its repository did not change"
    );
    let queued: i64 = sqlx::query_scalar!(r#"select count(*) as "count!" from stitch_queue"#)
        .fetch_one(&pool)
        .await
        .expect("queue");
    assert_eq!(queued, 0, "nothing is re-stitched");

    // A push to one repository re-reads that repository's changed file only.
    one.commit(
        &[("catalog-info.yaml", Some(&component("one", "1b")))],
        "bump",
    );
    refresh_repositories(&app).await;
    let refreshed_now = file_refresh_times(&pool).await;
    let changed: Vec<String> = refreshed_now
        .iter()
        .filter(|now| !refreshed_after.contains(now))
        .map(|(target, _)| target.clone())
        .collect();
    assert_eq!(
        changed,
        vec![format!("{}#main:catalog-info.yaml", one.url())]
    );
    assert_eq!(
        app.entity("component", "one").await["metadata"]["description"],
        "1b"
    );
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn location_entities_in_a_repository_point_at_its_other_files(pool: PgPool) {
    let repos = tempfile::tempdir().expect("tempdir");
    let mut mono = BareRepo::create(repos.path(), "mono.git");
    // Backstage catalogs in git say `type: url` with relative targets.
    mono.commit(
        &[
            (
                "catalog-info.yaml",
                Some("apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata:\n  name: mono\nspec:\n  type: url\n  targets: [./teams/teams.yaml, ../outside.yaml]\n"),
            ),
            ("teams/teams.yaml", Some(&component("from-teams", "followed"))),
        ],
        "initial",
    );
    let app = app_following(pool, &[&mono]).await;
    let entity = app.entity("component", "from-teams").await;
    assert_eq!(
        entity["metadata"]["annotations"]["backstage.io/managed-by-location"],
        format!("git-file:{}#main:teams/teams.yaml", mono.url())
    );
    let location = app.entity("location", "mono").await;
    let messages = status_messages(&location);
    assert!(
        messages.iter().any(|m| m.contains("leaves the repository")),
        "{messages:?}"
    );

    // The followed file changes: it is read again when the repository moves on.
    mono.commit(
        &[(
            "teams/teams.yaml",
            Some(&component("from-teams", "changed")),
        )],
        "change",
    );
    refresh_repositories(&app).await;
    assert_eq!(
        app.entity("component", "from-teams").await["metadata"]["description"],
        "changed"
    );
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn repositories_registered_through_the_api_follow_the_host_and_root_rules(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let mut local = BareRepo::create(app.root.path(), "team.git");
    local.commit(
        &[("catalog-info.yaml", Some(&component("team-svc", "api")))],
        "initial",
    );

    let created = app
        .post(
            "/api/catalog/locations",
            json!({"type": "git", "target": local.url()}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    app.process().await;
    let entity = app.entity("component", "team-svc").await;
    assert_eq!(
        entity["metadata"]["annotations"]["backstage.io/managed-by-location"],
        format!("git-file:{}#HEAD:catalog-info.yaml", local.url()),
        "without a branch the default branch is followed"
    );

    for (target, status, needle) in [
        (
            "https://github.com/acme/x.git",
            StatusCode::FORBIDDEN,
            "catalog.url_allowlist",
        ),
        (
            "file:///etc/x.git",
            StatusCode::FORBIDDEN,
            "outside the allowed roots",
        ),
        (
            "https://user:hunter2@github.com/acme/x.git",
            StatusCode::BAD_REQUEST,
            "token_env",
        ),
        ("not a remote", StatusCode::BAD_REQUEST, "not valid"),
    ] {
        let response = app
            .post(
                "/api/catalog/locations",
                json!({"type": "git", "target": target}),
            )
            .await;
        assert_eq!(response.status, status, "{target}: {}", response.body);
        let message = response.body["error"]["message"]
            .as_str()
            .unwrap_or_default();
        assert!(message.contains(needle), "{target}: {message}");
        assert!(!message.contains("hunter2"), "{message}");
    }

    // A repository that does not exist is registered, and says so on its Location entity.
    let missing = format!("file://{}/missing.git", app.root.path().display());
    let created = app
        .post(
            "/api/catalog/locations",
            json!({"type": "git", "target": missing}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    app.process().await;
    let name = atrium::catalog::model::location::generated_location_name("git", &missing);
    let location = app.entity("location", &name).await;
    let messages = status_messages(&location);
    assert!(
        messages.iter().any(|m| m.contains("missing.git")),
        "{messages:?}"
    );
}

/// The cached copies of the repositories this app fetched.
fn cached_repositories(app: &TestApp) -> Vec<git2::Repository> {
    let cache = app.root.path().join(".git-cache");
    let mut repos: Vec<git2::Repository> = std::fs::read_dir(&cache)
        .expect("cache dir exists")
        .filter_map(Result::ok)
        .filter_map(|e| git2::Repository::open_bare(e.path()).ok())
        .collect();
    repos.sort_by_key(|r| r.path().to_path_buf());
    repos
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn network_remotes_are_fetched_shallow(pool: PgPool) {
    let repos = tempfile::tempdir().expect("tempdir");
    let mut shop = BareRepo::create(repos.path(), "shop.git");
    for round in 1..=3 {
        shop.commit(
            &[(
                "catalog-info.yaml",
                Some(&component("shop-web", &format!("v{round}"))),
            )],
            &format!("commit {round}"),
        );
    }
    let daemon = common::git::GitDaemon::start(repos.path());
    let remote = daemon.url("shop.git");
    let app = TestApp::with_config(pool, |c| {
        c.git.repositories = vec![GitRepositoryConfig {
            url: Some(remote.clone()),
            ..GitRepositoryConfig::default()
        }];
    })
    .await;
    app.state
        .catalog
        .sync_configured_locations()
        .await
        .expect("registered");
    app.process().await;
    assert_eq!(
        app.entity("component", "shop-web").await["metadata"]["description"],
        "v3"
    );
    let cached = cached_repositories(&app);
    assert_eq!(cached.len(), 1);
    assert!(cached[0].is_shallow(), "fetched with depth 1");
    let mut walk = cached[0].revwalk().expect("revwalk");
    walk.push_ref("refs/atrium/tip").expect("tip");
    assert_eq!(walk.count(), 1, "only the tip commit was downloaded");

    // The next push is fetched into the same shallow cache.
    shop.commit(
        &[("catalog-info.yaml", Some(&component("shop-web", "v4")))],
        "commit 4",
    );
    refresh_repositories(&app).await;
    assert_eq!(
        app.entity("component", "shop-web").await["metadata"]["description"],
        "v4"
    );
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn https_remotes_send_the_configured_token(pool: PgPool) {
    let repos = tempfile::tempdir().expect("tempdir");
    let mut shop = BareRepo::create(repos.path(), "shop.git");
    shop.commit(
        &[(
            "catalog-info.yaml",
            Some(&component("private-svc", "behind a token")),
        )],
        "initial",
    );
    let mut other = BareRepo::create(repos.path(), "other.git");
    other.commit(
        &[("catalog-info.yaml", Some(&component("other-svc", "x")))],
        "initial",
    );
    let address =
        common::git::serve_http_with_token(repos.path().to_path_buf(), "s3cret-token").await;
    let secrets = tempfile::tempdir().expect("tempdir");
    let good = secrets.path().join("good-token");
    std::fs::write(&good, "s3cret-token\n").expect("write token");
    let bad = secrets.path().join("bad-token");
    std::fs::write(&bad, "wrong").expect("write token");
    let app = TestApp::with_config(pool, |c| {
        c.git.repositories = vec![
            GitRepositoryConfig {
                url: Some(format!("http://{address}/shop.git")),
                token_file: Some(good.clone()),
                ..GitRepositoryConfig::default()
            },
            GitRepositoryConfig {
                url: Some(format!("http://{address}/other.git")),
                token_file: Some(bad.clone()),
                ..GitRepositoryConfig::default()
            },
        ];
    })
    .await;
    app.state
        .catalog
        .sync_configured_locations()
        .await
        .expect("registered");
    app.process().await;
    assert_eq!(
        app.entity("component", "private-svc").await["metadata"]["description"],
        "behind a token"
    );
    assert_eq!(
        app.entity_status("component", "other-svc").await,
        StatusCode::NOT_FOUND
    );
    let name = atrium::catalog::model::location::generated_location_name(
        "git",
        &format!("http://{address}/other.git"),
    );
    let messages = status_messages(&app.entity("location", &name).await);
    assert!(
        messages
            .iter()
            .any(|m| m.contains("was refused") && !m.contains("wrong")),
        "a rejected token is reported, and not shown: {messages:?}"
    );
}

/// HMAC-SHA256 (RFC 2104) of `body`, hex: what GitHub and Gitea sign webhook deliveries with. Written
/// out here so the test does not share the server's implementation.
fn hmac_sha256_hex(secret: &str, body: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let mut key = secret.as_bytes().to_vec();
    if key.len() > 64 {
        key = Sha256::digest(&key).to_vec();
    }
    key.resize(64, 0);
    let pad = |byte: u8| key.iter().map(|k| k ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::digest([pad(0x36), body.to_vec()].concat());
    let outer = Sha256::digest([pad(0x5c), inner.to_vec()].concat());
    outer.iter().map(|b| format!("{b:02x}")).collect()
}

async fn deliver(
    app: &TestApp,
    headers: &[(&str, String)],
    body: &serde_json::Value,
) -> (StatusCode, serde_json::Value) {
    let mut request = axum::http::Request::builder()
        .method(axum::http::Method::POST)
        .uri("/api/catalog/webhooks/git")
        .header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let request = request
        .body(axum::body::Body::from(body.to_string()))
        .expect("request");
    let (status, _, bytes) = app.send_raw(request).await;
    (status, serde_json::from_slice(&bytes).unwrap_or_default())
}

/// A GitHub push delivery signed with `secret`.
async fn deliver_github(
    app: &TestApp,
    secret: &str,
    payload: &serde_json::Value,
) -> (StatusCode, serde_json::Value) {
    let signature = hmac_sha256_hex(secret, payload.to_string().as_bytes());
    deliver(
        app,
        &[
            ("x-github-event", "push".into()),
            ("x-hub-signature-256", format!("sha256={signature}")),
        ],
        payload,
    )
    .await
}

fn github_push(clone_url: &str, git_ref: &str) -> serde_json::Value {
    json!({
        "ref": git_ref,
        "before": "0000000000000000000000000000000000000000",
        "after": "1111111111111111111111111111111111111111",
        "repository": {
            "full_name": "acme/shop",
            "clone_url": clone_url,
            "ssh_url": "git@github.invalid:acme/shop.git",
            "html_url": "https://github.invalid/acme/shop",
            "default_branch": "main"
        },
        "pusher": {"name": "pat"}
    })
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn a_signed_push_webhook_refreshes_only_the_pushed_repository(pool: PgPool) {
    let repos = tempfile::tempdir().expect("tempdir");
    let mut one = BareRepo::create(repos.path(), "one.git");
    one.commit(
        &[("catalog-info.yaml", Some(&component("one", "v1")))],
        "initial",
    );
    let mut two = BareRepo::create(repos.path(), "two.git");
    two.commit(
        &[("catalog-info.yaml", Some(&component("two", "v1")))],
        "initial",
    );
    let remotes = [one.url(), two.url()];
    let app = TestApp::with_config(pool, |c| {
        c.git.repositories = remotes
            .iter()
            .map(|url| GitRepositoryConfig {
                url: Some(url.clone()),
                branch: Some("main".into()),
                ..GitRepositoryConfig::default()
            })
            .collect();
        c.git.webhook_secrets.github = Some("gh-secret".into());
        c.git.webhook_secrets.gitlab = Some("gl-token".into());
        c.git.webhook_secrets.gitea = Some("gt-secret".into());
    })
    .await;
    app.state
        .catalog
        .sync_configured_locations()
        .await
        .expect("registered");
    app.process().await;
    one.commit(
        &[("catalog-info.yaml", Some(&component("one", "v2")))],
        "push",
    );
    two.commit(
        &[("catalog-info.yaml", Some(&component("two", "v2")))],
        "push",
    );

    // A forged delivery is refused and refreshes nothing.
    let payload = github_push(&one.url(), "refs/heads/main");
    let forged = deliver_github(&app, "guess", &payload).await;
    assert_eq!(forged.0, StatusCode::UNAUTHORIZED, "{}", forged.1);
    app.process().await;
    assert_eq!(
        app.entity("component", "one").await["metadata"]["description"],
        "v1"
    );

    // A push to another branch concerns no followed repository.
    let other_branch = github_push(&one.url(), "refs/heads/feature");
    let response = deliver_github(&app, "gh-secret", &other_branch).await;
    assert_eq!(response.0, StatusCode::ACCEPTED, "{}", response.1);
    assert_eq!(response.1["refreshed"], json!([]));

    // GitHub: signed push to main of `one` refreshes `one` only.
    let response = deliver_github(&app, "gh-secret", &payload).await;
    assert_eq!(response.0, StatusCode::ACCEPTED, "{}", response.1);
    assert_eq!(
        response.1["refreshed"],
        json!([format!("{}#main", one.url())])
    );
    app.process().await;
    assert_eq!(
        app.entity("component", "one").await["metadata"]["description"],
        "v2"
    );
    assert_eq!(
        app.entity("component", "two").await["metadata"]["description"],
        "v1",
        "a repository nobody pushed to waits for its interval"
    );

    // GitLab: the secret token header, and the project's URLs.
    let gitlab = json!({
        "object_kind": "push",
        "ref": "refs/heads/main",
        "after": "2222222222222222222222222222222222222222",
        "project": {
            "path_with_namespace": "acme/two",
            "git_http_url": two.url(),
            "git_ssh_url": "git@gitlab.invalid:acme/two.git",
            "web_url": "https://gitlab.invalid/acme/two",
            "default_branch": "main"
        }
    });
    let response = deliver(
        &app,
        &[
            ("x-gitlab-event", "Push Hook".into()),
            ("x-gitlab-token", "gl-token".into()),
        ],
        &gitlab,
    )
    .await;
    assert_eq!(response.0, StatusCode::ACCEPTED, "{}", response.1);
    app.process().await;
    assert_eq!(
        app.entity("component", "two").await["metadata"]["description"],
        "v2"
    );

    // Gitea signs without a prefix, and also sends GitHub's headers.
    two.commit(
        &[("catalog-info.yaml", Some(&component("two", "v3")))],
        "push",
    );
    let gitea = github_push(&two.url(), "refs/heads/main");
    let signature = hmac_sha256_hex("gt-secret", gitea.to_string().as_bytes());
    let response = deliver(
        &app,
        &[
            ("x-gitea-event", "push".into()),
            ("x-gitea-signature", signature.clone()),
            ("x-github-event", "push".into()),
            ("x-hub-signature-256", format!("sha256={signature}")),
        ],
        &gitea,
    )
    .await;
    assert_eq!(response.0, StatusCode::ACCEPTED, "{}", response.1);
    app.process().await;
    assert_eq!(
        app.entity("component", "two").await["metadata"]["description"],
        "v3"
    );
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn an_organisation_glob_reads_every_repository_in_the_directory(pool: PgPool) {
    let repos = tempfile::tempdir().expect("tempdir");
    for name in ["alpha", "beta"] {
        let mut repo = BareRepo::create(repos.path(), &format!("{name}.git"));
        repo.commit(
            &[(
                "catalog-info.yaml",
                Some(&component(name, "in the organisation")),
            )],
            "initial",
        );
    }
    let mut ignored = BareRepo::create(repos.path(), "scratch");
    ignored.commit(
        &[(
            "catalog-info.yaml",
            Some(&component("scratch", "not matched")),
        )],
        "initial",
    );
    let organisation = format!("file://{}", repos.path().display());
    let app = TestApp::with_config(pool, |c| {
        c.git.repositories = vec![GitRepositoryConfig {
            organisation: Some(organisation.clone()),
            repositories: vec!["*.git".into()],
            web_url: Some("https://git.example.test/acme".into()),
            ..GitRepositoryConfig::default()
        }];
    })
    .await;
    app.state
        .catalog
        .sync_configured_locations()
        .await
        .expect("registered");
    app.process().await;
    for name in ["alpha", "beta"] {
        let entity = app.entity("component", name).await;
        assert_eq!(
            entity["metadata"]["annotations"]["backstage.io/view-url"],
            format!("https://git.example.test/acme/{name}/blob/HEAD/catalog-info.yaml"),
            "the organisation's web address plus the repository name"
        );
    }
    assert_eq!(
        app.entity_status("component", "scratch").await,
        StatusCode::NOT_FOUND
    );
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn refreshing_an_entity_fetches_its_repository(pool: PgPool) {
    let repos = tempfile::tempdir().expect("tempdir");
    let mut shop = BareRepo::create(repos.path(), "shop.git");
    shop.commit(
        &[("catalog-info.yaml", Some(&component("shop-web", "old")))],
        "initial",
    );
    let app = app_following(pool, &[&shop]).await;
    shop.commit(
        &[("catalog-info.yaml", Some(&component("shop-web", "new")))],
        "push",
    );
    let response = app
        .post(
            "/api/catalog/refresh",
            json!({"entityRef": "component:default/shop-web"}),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    app.process().await;
    assert_eq!(
        app.entity("component", "shop-web").await["metadata"]["description"],
        "new"
    );
}

/// Each git-file location's target with the time it was last read.
async fn file_refresh_times(pool: &PgPool) -> Vec<(String, Option<String>)> {
    sqlx::query!(
        "select target, last_refreshed_at::text as refreshed from location where type = 'git-file' order by target",
    )
    .fetch_all(pool)
    .await
    .expect("files")
    .into_iter()
    .map(|row| (row.target, row.refreshed))
    .collect()
}

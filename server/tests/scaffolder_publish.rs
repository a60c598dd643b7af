//! `publish:git` and `publish:github` against real git: bare repositories on disk (`file://`), a real
//! `git http-backend` over HTTP on 127.0.0.1, and a scenario-verifying fake of GitHub's REST API. The
//! pushed repositories are read back with libgit2 and checked with `git fsck` and `git clone`.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use atrium::AppState;
use atrium::config::{CatalogConfig, Config, GitConfig, PublishHostConfig, ScaffolderConfig};
use atrium::scaffolder::actions::publish::{PublishGit, PublishGithub};
use atrium::scaffolder::actions::{Action, ActionContext, ActionError, ActionServices};
use atrium::scaffolder::expr::Expressions;
use atrium::scaffolder::source::TemplateSource;
use atrium::scaffolder::workspace::Workspace;
use axum::http::StatusCode;
use common::TestApp;
use common::git::{BareRepo, git};
use common::github_fake::{Expect, GithubFake, default_branch_protection, name_exists};
use serde_json::{Map, Value, json};
use sqlx::PgPool;

const TOKEN: &str = "ghp_s3cretTokenValue123";

/// A test's world: the app state (catalog + config), a workspace, and a temporary root holding the
/// workspace, the remotes (`remotes/`) and the token file.
struct Harness {
    state: AppState,
    root: tempfile::TempDir,
    workspace: Workspace,
}

fn host(name: &str, remote: String) -> PublishHostConfig {
    PublishHostConfig {
        host: name.into(),
        remote,
        github_api_url: None,
        token_env: None,
        token_file: None,
        username: None,
        ssh_key: None,
    }
}

impl Harness {
    /// `hosts` may use `{root}` in remotes and token files; every host is allowed.
    async fn new(pool: PgPool, hosts: Vec<PublishHostConfig>) -> Self {
        let root = tempfile::tempdir().expect("tempdir");
        let base = root.path().display().to_string();
        std::fs::create_dir_all(root.path().join("remotes")).expect("remotes");
        std::fs::write(root.path().join("token"), format!("{TOKEN}\n")).expect("token");
        let hosts: Vec<PublishHostConfig> = hosts
            .into_iter()
            .map(|mut h| {
                h.remote = h.remote.replace("{root}", &base);
                h.token_file = h
                    .token_file
                    .map(|p| PathBuf::from(p.display().to_string().replace("{root}", &base)));
                h
            })
            .collect();
        let config = Config {
            catalog: CatalogConfig {
                locations: Vec::new(),
                file_roots: vec![root.path().to_path_buf()],
                git: GitConfig {
                    cache_dir: root.path().join(".git-cache"),
                    ..GitConfig::default()
                },
                ..CatalogConfig::default()
            },
            scaffolder: ScaffolderConfig {
                allowed_hosts: hosts.iter().map(|h| h.host.clone()).collect(),
                hosts,
                ..ScaffolderConfig::default()
            },
            ..Config::default()
        };
        let state = AppState::new(pool, config).expect("state");
        let workspace = Workspace::create(root.path().join("workspace")).expect("workspace");
        Self {
            state,
            root,
            workspace,
        }
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.root.path().join(relative)
    }

    fn remotes(&self) -> PathBuf {
        self.path("remotes")
    }

    /// Writes a workspace file (creating folders).
    fn write(&self, relative: &str, content: &str) -> PathBuf {
        let path = self.workspace.root().join(relative);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, content).expect("write");
        path
    }

    fn write_executable(&self, relative: &str, content: &str) {
        let path = self.write(relative, content);
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }

    /// Runs an action as the runner would: the input checked against its schema first. Returns the
    /// result and the log lines.
    async fn run(
        &self,
        action: &dyn Action,
        input: Value,
    ) -> (Result<Map<String, Value>, ActionError>, Vec<String>) {
        let validator = jsonschema::validator_for(&action.input_schema()).expect("schema");
        assert!(
            validator.is_valid(&input),
            "{} input does not match its schema: {input}",
            action.id()
        );
        let services = ActionServices {
            db: self.state.db.clone(),
            catalog: self.state.catalog.clone(),
            config: self.state.config.clone(),
        };
        let (log, mut lines) = tokio::sync::mpsc::unbounded_channel();
        let source = TemplateSource::Inline(Default::default());
        let expressions = Expressions::default();
        let secrets = Map::new();
        let ctx = ActionContext {
            input: input.as_object().expect("object").clone(),
            workspace: &self.workspace,
            source: &source,
            expressions: &expressions,
            secrets: &secrets,
            user_ref: "user:default/guest",
            caller: &atrium::auth::Caller::guest(),
            task_id: "test-task",
            template_ref: "template:default/test",
            parameters: &Value::Null,
            dry_run: false,
            log,
            services: &services,
        };
        let result = action.run(&ctx).await;
        drop(ctx);
        let mut logs = Vec::new();
        while let Ok(line) = lines.try_recv() {
            logs.push(line);
        }
        (result, logs)
    }
}

/// What a branch of a bare repository holds: path -> (mode, content), and its tip commit.
fn read_branch(repo: &Path, branch: &str) -> (git2::Oid, Vec<(String, i32, Vec<u8>)>) {
    let git = git2::Repository::open_bare(repo).expect("open");
    let commit = git
        .find_reference(&format!("refs/heads/{branch}"))
        .expect("branch")
        .peel_to_commit()
        .expect("commit");
    let mut files = Vec::new();
    commit
        .tree()
        .expect("tree")
        .walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
            if entry.kind() == Some(git2::ObjectType::Blob) {
                let blob = git.find_blob(entry.id()).expect("blob");
                files.push((
                    format!("{dir}{}", entry.name().expect("name")),
                    entry.filemode(),
                    blob.content().to_vec(),
                ));
            }
            git2::TreeWalkResult::Ok
        })
        .expect("walk");
    (commit.id(), files)
}

fn names(files: &[(String, i32, Vec<u8>)]) -> Vec<&str> {
    files.iter().map(|(p, _, _)| p.as_str()).collect()
}

fn error_text(result: Result<Map<String, Value>, ActionError>) -> (ActionError, String) {
    let err = result.expect_err("the action fails");
    let text = err.to_string();
    (err, text)
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn publish_git_creates_a_local_repository_the_catalog_can_read(pool: PgPool) {
    let h = Harness::new(
        pool,
        vec![host(
            "localhost",
            "file://{root}/remotes/{owner}/{repo}.git".into(),
        )],
    )
    .await;
    h.write("README.md", "# svc\n");
    h.write("src/main.rs", "fn main() {}\n");
    h.write_executable("scripts/run.sh", "#!/bin/sh\necho run\n");
    h.write(".gitignore", "target/\n*.log\n");
    h.write("target/debug/svc", "build output");
    h.write("debug.log", "noise");
    h.write(
        "catalog-info.yaml",
        &common::git::component("published-svc", "made by a golden path"),
    );
    std::os::unix::fs::symlink("README.md", h.workspace.root().join("README.link"))
        .expect("symlink");
    std::fs::create_dir_all(h.workspace.root().join("empty/dir")).expect("empty dir");

    let (result, logs) = h
        .run(
            &PublishGit,
            json!({
                "repoUrl": "localhost?owner=acme&repo=svc",
                "description": "A service",
                "gitAuthorName": "Jane Doe",
                "gitAuthorEmail": "jane@example.com",
                "gitCommitMessage": "Create svc from a golden path"
            }),
        )
        .await;
    let output = result.expect("published");
    let bare = h.remotes().join("acme/svc.git");
    let remote = format!("file://{}", bare.display());
    assert_eq!(output["remoteUrl"], remote);
    assert_eq!(output["repoContentsUrl"], format!("{remote}#main"));

    let (commit_id, files) = read_branch(&bare, "main");
    assert_eq!(output["commitHash"], commit_id.to_string());
    assert_eq!(
        names(&files),
        [
            ".gitignore",
            "README.link",
            "README.md",
            "catalog-info.yaml",
            "scripts/run.sh",
            "src/main.rs"
        ],
        "ignored files and empty directories are left out"
    );
    let mode = |name: &str| files.iter().find(|f| f.0 == name).expect(name).1;
    assert_eq!(
        mode("scripts/run.sh"),
        0o100755,
        "the executable bit is kept"
    );
    assert_eq!(mode("README.md"), 0o100644);
    assert_eq!(mode("README.link"), 0o120000, "a link stays a link");
    let content = |name: &str| files.iter().find(|f| f.0 == name).expect(name).2.clone();
    assert_eq!(content("README.link"), b"README.md");
    assert_eq!(content("src/main.rs"), b"fn main() {}\n");

    let git_repo = git2::Repository::open_bare(&bare).expect("open");
    let commit = git_repo.find_commit(commit_id).expect("commit");
    assert_eq!(commit.message().ok(), Some("Create svc from a golden path"));
    assert_eq!(commit.author().name().ok(), Some("Jane Doe"));
    assert_eq!(commit.author().email().ok(), Some("jane@example.com"));
    assert_eq!(commit.committer().name().ok(), Some("Jane Doe"));
    assert_eq!(commit.parent_count(), 0);
    assert_eq!(
        git_repo.head().expect("HEAD").name().ok(),
        Some("refs/heads/main"),
        "a created repository's HEAD is the published branch"
    );
    git(&bare, &["fsck", "--strict", "--no-dangling"]);
    let clone = h.path("clone");
    git(
        h.root.path(),
        &["clone", "--quiet", &remote, clone.to_str().expect("utf-8")],
    );
    let mode = std::fs::metadata(clone.join("scripts/run.sh"))
        .expect("cloned")
        .permissions()
        .mode();
    assert_ne!(mode & 0o111, 0, "checked out executable");
    assert_eq!(
        git(&clone, &["log", "--format=%an <%ae>|%s", "main"]).trim(),
        "Jane Doe <jane@example.com>|Create svc from a golden path"
    );

    assert!(
        logs.iter().any(|l| l.starts_with("Initialized repository")),
        "{logs:?}"
    );
    assert!(
        logs.iter()
            .any(|l| l.starts_with(&format!("Pushed to {remote}"))),
        "{logs:?}"
    );

    // What catalog:register gets: the repoContentsUrl is a `git` location target.
    let app = TestApp {
        router: atrium::app(h.state.clone()),
        state: h.state.clone(),
        root: tempfile::tempdir().expect("tempdir"),
        token: Some(common::admin_token(&h.state).await),
    };
    let created = app
        .post(
            "/api/catalog/locations",
            json!({"type": "git", "target": output["repoContentsUrl"]}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    app.process().await;
    assert_eq!(
        app.entity("component", "published-svc").await["metadata"]["description"],
        "made by a golden path"
    );
    let location = atrium::scaffolder::actions::repo_url::contents_location(
        output["repoContentsUrl"].as_str().expect("string"),
        "/catalog-info.yaml",
        &h.state.config.scaffolder,
    )
    .expect("a catalog location");
    assert_eq!(location.file, format!("{remote}#main:catalog-info.yaml"));
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn publish_git_pushes_over_http_with_the_token_from_the_host(pool: PgPool) {
    let repos = tempfile::tempdir().expect("tempdir");
    let address = common::git::serve_http_with_token(repos.path().to_path_buf(), TOKEN).await;
    git2::Repository::init_bare(repos.path().join("acme/app.git")).expect("bare");
    let mut with_token = host(
        "git.test",
        format!("http://{address}/{{owner}}/{{repo}}.git"),
    );
    with_token.token_file = Some("{root}/token".into());
    let mut wrong_token = host(
        "wrong.test",
        format!("http://{address}/{{owner}}/{{repo}}.git"),
    );
    wrong_token.token_file = Some("{root}/wrong-token".into());
    let no_token = host(
        "anon.test",
        format!("http://{address}/{{owner}}/{{repo}}.git"),
    );
    let mut unset_env = host(
        "env.test",
        format!("http://{address}/{{owner}}/{{repo}}.git"),
    );
    unset_env.token_env = Some("ATRIUM_TEST_UNSET_PUBLISH_TOKEN".into());
    let h = Harness::new(pool, vec![with_token, wrong_token, no_token, unset_env]).await;
    std::fs::write(h.path("wrong-token"), "not-the-token").expect("token");
    h.write("app/index.js", "console.log('hi')\n");
    h.write("app/package.json", "{}\n");
    h.write("docs/outside.md", "not published");

    for (repo_url, needle) in [
        ("wrong.test?owner=acme&repo=app", "refused the credentials"),
        ("anon.test?owner=acme&repo=app", "none are configured"),
        (
            "env.test?owner=acme&repo=app",
            "ATRIUM_TEST_UNSET_PUBLISH_TOKEN",
        ),
    ] {
        let (result, _) = h
            .run(
                &PublishGit,
                json!({"repoUrl": repo_url, "sourcePath": "app"}),
            )
            .await;
        let (err, text) = error_text(result);
        assert!(matches!(
            err,
            ActionError::Failed(_) | ActionError::Input(_)
        ));
        assert!(text.contains(needle), "{repo_url}: {text}");
        assert!(
            !text.contains(TOKEN) && !text.contains("not-the-token"),
            "{text}"
        );
    }
    let git_repo = git2::Repository::open_bare(repos.path().join("acme/app.git")).expect("open");
    assert!(
        git_repo.references().expect("refs").next().is_none(),
        "nothing was pushed by the refused attempts"
    );

    let (result, logs) = h
        .run(
            &PublishGit,
            json!({
                "repoUrl": "git.test?owner=acme&repo=app",
                "sourcePath": "./app",
                "defaultBranch": "trunk"
            }),
        )
        .await;
    let output = result.expect("published");
    let remote = format!("http://{address}/acme/app.git");
    assert_eq!(output["remoteUrl"], remote);
    assert_eq!(output["repoContentsUrl"], format!("{remote}#trunk"));
    let (commit_id, files) = read_branch(&repos.path().join("acme/app.git"), "trunk");
    assert_eq!(output["commitHash"], commit_id.to_string());
    assert_eq!(names(&files), ["index.js", "package.json"]);
    let commit = git_repo.find_commit(commit_id).expect("commit");
    assert_eq!(
        commit.message().ok(),
        Some("initial commit"),
        "Backstage's default"
    );
    assert_eq!(commit.author().name().ok(), Some("Scaffolder"));
    assert_eq!(
        commit.author().email().ok(),
        Some("scaffolder@backstage.io")
    );
    assert!(
        logs.iter()
            .any(|l| l == &format!("Pushed to {remote} (branch trunk)")),
        "{logs:?}"
    );
    assert!(logs.iter().all(|l| !l.contains(TOKEN)), "{logs:?}");
}

/// A git server that accepts the connection and then says nothing: the push fails after libgit2's
/// read timeout (set as `atrium serve` sets it at start-up, here to one second) instead of holding the
/// step, and its worker, forever.
#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn a_remote_that_never_answers_fails_the_push_in_time(pool: PgPool) {
    // SAFETY: this test process has not used libgit2 yet (nextest runs each test in its own process).
    #[allow(unsafe_code)]
    unsafe {
        atrium::git::set_network_timeouts(std::time::Duration::from_secs(1));
    }
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    let address = silent.local_addr().expect("address");
    let held = std::thread::spawn(move || {
        // Accept and keep every connection open, reading nothing and writing nothing.
        let mut open = Vec::new();
        for stream in silent.incoming().take(4) {
            open.push(stream);
        }
        open
    });
    let h = Harness::new(
        pool,
        vec![host(
            "silent.test",
            format!("http://{address}/{{owner}}/{{repo}}.git"),
        )],
    )
    .await;
    h.write("app/index.js", "console.log('hi')\n");
    let started = std::time::Instant::now();
    let (result, _) = h
        .run(
            &PublishGit,
            json!({"repoUrl": "silent.test?owner=acme&repo=app", "sourcePath": "app"}),
        )
        .await;
    let (_, text) = error_text(result);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "took {:?}: {text}",
        started.elapsed()
    );
    assert!(text.to_lowercase().contains("timed out"), "{text}");
    drop(held);
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn an_existing_branch_is_never_overwritten(pool: PgPool) {
    let h = Harness::new(
        pool,
        vec![host(
            "localhost",
            "file://{root}/remotes/{owner}/{repo}.git".into(),
        )],
    )
    .await;
    std::fs::create_dir_all(h.remotes().join("acme")).expect("mkdir");
    let mut existing = BareRepo::create(&h.remotes().join("acme"), "svc.git");
    let before = existing.commit(&[("README.md", Some("the original"))], "original");
    h.write("README.md", "a replacement");

    let (result, _) = h
        .run(
            &PublishGit,
            json!({"repoUrl": "localhost?owner=acme&repo=svc"}),
        )
        .await;
    let (_, text) = error_text(result);
    assert!(
        text.contains("already has a branch main") && text.contains("never overwrites"),
        "{text}"
    );
    let (after, files) = read_branch(&existing.path, "main");
    assert_eq!(after.to_string(), before, "the remote is unchanged");
    assert_eq!(files[0].2, b"the original");
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn hostile_inputs_are_refused_before_git_runs(pool: PgPool) {
    let h = Harness::new(
        pool,
        vec![host(
            "localhost",
            "file://{root}/remotes/{owner}/{repo}.git".into(),
        )],
    )
    .await;
    h.write("README.md", "hello");
    let marker = h.path("marker");
    let m = marker.display().to_string();
    let hostile_urls = [
        format!("localhost?owner=--upload-pack=touch%20{m}&repo=svc"),
        format!("localhost?owner=acme&repo=--upload-pack=touch {m}"),
        format!("localhost?owner=acme&repo=-c%20core.sshCommand=touch%20{m}"),
        "localhost?owner=acme&repo=..".into(),
        "localhost?owner=..&repo=..".into(),
        "localhost?owner=%2e%2e&repo=%2E%2E".into(),
        "localhost?owner=acme%2F..%2F..&repo=x".into(),
        "localhost?owner=acme&repo=x%0Ay".into(),
        "localhost?owner=acme&repo=x\ny".into(),
        "localhost?owner=acme&repo=x%00".into(),
        "localhost?owner=acme&repo=a&repo=b".into(),
        "localhost?repo=svc".into(),
        "evil.example?owner=acme&repo=svc".into(),
        "localhost.evil.example?owner=acme&repo=svc".into(),
        "localhost:2222?owner=acme&repo=svc".into(),
        "user:pw@localhost?owner=acme&repo=svc".into(),
    ];
    for repo_url in &hostile_urls {
        let (result, logs) = h.run(&PublishGit, json!({"repoUrl": repo_url})).await;
        let (err, text) = error_text(result);
        assert!(
            matches!(err, ActionError::Input(_)),
            "{repo_url}: {err:?} should be an input error"
        );
        assert!(logs.is_empty(), "{repo_url}: nothing ran: {logs:?}");
        assert!(!text.contains("pw@"), "{text}");
    }
    for (input, needle) in [
        (
            json!({"gitAuthorName": "Eve\nSigned-off-by: x"}),
            "gitAuthorName",
        ),
        (json!({"gitAuthorName": "Eve <eve@evil>"}), "gitAuthorName"),
        (json!({"gitAuthorEmail": "eve@evil>\nx"}), "gitAuthorEmail"),
        (json!({"defaultBranch": "--force"}), "defaultBranch"),
        (json!({"defaultBranch": "HEAD"}), "defaultBranch"),
        (json!({"defaultBranch": "a..b"}), "defaultBranch"),
        (json!({"sourcePath": "../"}), "leaves the workspace"),
        (json!({"sourcePath": "/etc"}), "absolute"),
        (json!({"sourcePath": "missing"}), "missing"),
    ] {
        let mut input = input.as_object().expect("object").clone();
        input.insert("repoUrl".into(), json!("localhost?owner=acme&repo=svc"));
        let (result, logs) = h.run(&PublishGit, Value::Object(input)).await;
        let (_, text) = error_text(result);
        assert!(text.contains(needle), "{needle}: {text}");
        assert!(logs.is_empty(), "{logs:?}");
    }
    assert!(!marker.exists(), "no command ran");
    assert_eq!(
        std::fs::read_dir(h.remotes()).expect("remotes").count(),
        0,
        "no repository was created"
    );
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn git_metadata_planted_in_the_workspace_is_not_honoured(pool: PgPool) {
    let h = Harness::new(
        pool,
        vec![host(
            "localhost",
            "file://{root}/remotes/{owner}/{repo}.git".into(),
        )],
    )
    .await;
    let marker = h.path("marker");
    let decoy = h.path("decoy");
    let touch = format!("#!/bin/sh\ntouch {}\n", marker.display());
    h.write(
        ".git/config",
        &format!(
            "[core]\n\tsshCommand = {m}\n\thooksPath = {hooks}\n\tfsmonitor = {m}\n[url \"file://{decoy}/\"]\n\tinsteadOf = file://{remotes}/\n\tpushInsteadOf = file://{remotes}/\n[user]\n\tname = Planted\n",
            m = format!("touch {}", marker.display()),
            hooks = h.workspace.root().join(".git/hooks").display(),
            decoy = decoy.display(),
            remotes = h.remotes().display(),
        ),
    );
    h.write(".git/HEAD", "ref: refs/heads/main\n");
    for hook in [
        "pre-commit",
        "post-commit",
        "commit-msg",
        "pre-push",
        "reference-transaction",
        "post-checkout",
    ] {
        h.write_executable(&format!(".git/hooks/{hook}"), &touch);
    }
    h.write("sub/.git", "gitdir: /etc\n");
    h.write(".GIT/config", "[core]\n\tbare = true\n");
    h.write(".git/info/exclude", "README.md\n");
    h.write("README.md", "hello");
    h.write("sub/file.txt", "in a subdirectory");

    let (result, logs) = h
        .run(
            &PublishGit,
            json!({"repoUrl": "localhost?owner=acme&repo=svc"}),
        )
        .await;
    result.expect("published");
    let (_, files) = read_branch(&h.remotes().join("acme/svc.git"), "main");
    assert_eq!(
        names(&files),
        ["README.md", "sub/file.txt"],
        "no .git entry is published, and the planted exclude file is not read"
    );
    assert!(!marker.exists(), "no planted command or hook ran");
    assert!(
        !decoy.exists(),
        "the planted insteadOf did not redirect the push"
    );
    assert!(
        logs.iter()
            .filter(|l| l.contains("git metadata in the workspace"))
            .count()
            >= 3,
        "{logs:?}"
    );
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn a_gitignore_that_is_a_link_is_never_read(pool: PgPool) {
    let h = Harness::new(
        pool,
        vec![host(
            "localhost",
            "file://{root}/remotes/{owner}/{repo}.git".into(),
        )],
    )
    .await;
    h.write("README.md", "hello");
    std::fs::create_dir_all(h.workspace.root().join("sub")).expect("mkdir");
    // Read, it would never end.
    std::os::unix::fs::symlink("/dev/zero", h.workspace.root().join("sub/.gitignore"))
        .expect("symlink");
    let (result, _) = h
        .run(
            &PublishGit,
            json!({"repoUrl": "localhost?owner=acme&repo=svc"}),
        )
        .await;
    let (_, text) = error_text(result);
    assert!(
        text.contains("sub/.gitignore is not a regular file"),
        "{text}"
    );
    assert!(!h.remotes().join("acme").exists(), "nothing was created");
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn publishing_never_happens_in_a_dry_run(pool: PgPool) {
    let h = Harness::new(
        pool,
        vec![host(
            "localhost",
            "file://{root}/remotes/{owner}/{repo}.git".into(),
        )],
    )
    .await;
    h.write("README.md", "hello");
    let services = ActionServices {
        db: h.state.db.clone(),
        catalog: h.state.catalog.clone(),
        config: h.state.config.clone(),
    };
    let (log, _lines) = tokio::sync::mpsc::unbounded_channel();
    let (source, expressions, secrets) = (
        TemplateSource::Inline(Default::default()),
        Expressions::default(),
        Map::new(),
    );
    let input = json!({"repoUrl": "localhost?owner=acme&repo=svc"});
    for action in atrium::scaffolder::actions::publish::actions() {
        assert!(!action.supports_dry_run(), "{}", action.id());
        let ctx = ActionContext {
            input: input.as_object().expect("object").clone(),
            workspace: &h.workspace,
            source: &source,
            expressions: &expressions,
            secrets: &secrets,
            user_ref: "user:default/guest",
            caller: &atrium::auth::Caller::guest(),
            task_id: "test-task",
            template_ref: "template:default/test",
            parameters: &Value::Null,
            dry_run: true,
            log: log.clone(),
            services: &services,
        };
        let err = action.run(&ctx).await.expect_err("refused");
        assert!(err.to_string().contains("dry run"), "{err}");
    }
    assert_eq!(std::fs::read_dir(h.remotes()).expect("remotes").count(), 0);
}

/// The global git configuration of the user the server runs as: it must not change where a publish
/// pushes or what it creates. Tests cannot change their own environment, so the publish runs in a
/// child process (this test binary, [`publish_under_a_hostile_home`]) whose HOME holds a hostile
/// `.gitconfig`.
#[test]
fn the_global_git_configuration_is_not_read() {
    let home = tempfile::tempdir().expect("tempdir");
    let decoy = home.path().join("decoy");
    let marker = home.path().join("marker");
    let templates = home.path().join("templates");
    std::fs::create_dir_all(templates.join("hooks")).expect("mkdir");
    let hook = templates.join("hooks/post-update");
    std::fs::write(&hook, format!("#!/bin/sh\ntouch {}\n", marker.display())).expect("hook");
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let config = format!(
        "[url \"file://{decoy}/\"]\n\tinsteadOf = file:///\n\tpushInsteadOf = file:///\n[core]\n\tsshCommand = touch {marker}\n\thooksPath = {hooks}\n[init]\n\tdefaultBranch = hostile\n\ttemplateDir = {templates}\n[http]\n\tproxy = http://127.0.0.1:9\n",
        decoy = decoy.display(),
        marker = marker.display(),
        hooks = templates.join("hooks").display(),
        templates = templates.display(),
    );
    std::fs::write(home.path().join(".gitconfig"), &config).expect("gitconfig");
    std::fs::create_dir_all(home.path().join("xdg/git")).expect("mkdir");
    std::fs::write(home.path().join("xdg/git/config"), &config).expect("xdg config");
    let output = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "publish_under_a_hostile_home",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join("xdg"))
        .env("ATRIUM_PUBLISH_HOSTILE_HOME", home.path())
        .output()
        .expect("the child test runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("published under a hostile HOME"),
        "the child really published: {stdout}"
    );
    assert!(!decoy.exists(), "no insteadOf redirected the push");
    assert!(
        !marker.exists(),
        "no configured command or template hook ran"
    );
}

/// The child of [`the_global_git_configuration_is_not_read`]; does nothing on its own.
#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn publish_under_a_hostile_home(pool: PgPool) {
    if std::env::var_os("ATRIUM_PUBLISH_HOSTILE_HOME").is_none() {
        return;
    }
    let h = Harness::new(
        pool,
        vec![host(
            "localhost",
            "file://{root}/remotes/{owner}/{repo}.git".into(),
        )],
    )
    .await;
    h.write("README.md", "hello");
    let (result, logs) = h
        .run(
            &PublishGit,
            json!({"repoUrl": "localhost?owner=acme&repo=svc"}),
        )
        .await;
    result.unwrap_or_else(|e| panic!("{e}: {logs:?}"));
    let bare = h.remotes().join("acme/svc.git");
    let (_, files) = read_branch(&bare, "main");
    assert_eq!(names(&files), ["README.md"]);
    let git_repo = git2::Repository::open_bare(&bare).expect("open");
    assert_eq!(
        git_repo.head().expect("HEAD").name().ok(),
        Some("refs/heads/main"),
        "not the configured init.defaultBranch"
    );
    assert!(
        !bare.join("hooks/post-update").exists(),
        "no template was copied"
    );
    println!("published under a hostile HOME");
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn a_token_the_remote_echoes_is_not_in_the_error(pool: PgPool) {
    let repos = tempfile::tempdir().expect("tempdir");
    let address = common::git::serve_http_with_token(repos.path().to_path_buf(), TOKEN).await;
    let bare = repos.path().join("acme/app.git");
    git2::Repository::init_bare(&bare).expect("bare");
    let hook = bare.join("hooks/pre-receive");
    std::fs::create_dir_all(hook.parent().expect("hooks")).expect("mkdir");
    std::fs::write(
        &hook,
        format!("#!/bin/sh\necho \"push refused for token {TOKEN}\" >&2\nexit 1\n"),
    )
    .expect("hook");
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let mut with_token = host(
        "git.test",
        format!("http://{address}/{{owner}}/{{repo}}.git"),
    );
    with_token.token_file = Some("{root}/token".into());
    let h = Harness::new(pool, vec![with_token]).await;
    h.write("README.md", "hello");

    let (result, logs) = h
        .run(
            &PublishGit,
            json!({"repoUrl": "git.test?owner=acme&repo=app"}),
        )
        .await;
    let (_, text) = error_text(result);
    assert!(text.contains("refused the push"), "{text}");
    assert!(text.contains("push refused for token ****"), "{text}");
    assert!(!text.contains(TOKEN), "{text}");
    assert!(logs.iter().all(|l| !l.contains(TOKEN)), "{logs:?}");
    let git_repo = git2::Repository::open_bare(&bare).expect("open");
    assert!(git_repo.references().expect("refs").next().is_none());
}

/// A GitHub host served by the fake: API, git and a token file.
fn github_host(fake: &GithubFake) -> PublishHostConfig {
    let mut h = host("github.test", fake.remote_pattern());
    h.github_api_url = Some(fake.api_url());
    h.token_file = Some("{root}/token".into());
    h
}

fn created_repo(owner: &str, repo: &str) -> Value {
    json!({
        "name": repo,
        "full_name": format!("{owner}/{repo}"),
        "owner": {"login": owner},
        "html_url": format!("https://github.test/{owner}/{repo}"),
        "clone_url": format!("https://github.test/{owner}/{repo}.git"),
        "ssh_url": format!("git@github.test:{owner}/{repo}.git"),
    })
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn publish_github_creates_an_organization_repository_and_pushes(pool: PgPool) {
    let repos = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(repos.path().join("acme")).expect("mkdir");
    let created = created_repo("acme", "svc");
    let fake = GithubFake::start(
        repos.path(),
        TOKEN,
        vec![
            Expect::new("GET", "/users/acme")
                .answer(200, json!({"login": "acme", "type": "Organization"})),
            Expect::new("GET", "/orgs/acme/teams/platform")
                .answer(200, json!({"slug": "platform"})),
            Expect::new("POST", "/orgs/acme/repos")
                .body(json!({
                    "name": "svc",
                    "private": false,
                    "visibility": "internal",
                    "description": "Payments service",
                    "homepage": "https://svc.example.com",
                    "delete_branch_on_merge": true,
                    "allow_merge_commit": false,
                    "allow_squash_merge": true,
                    "allow_rebase_merge": true,
                    "allow_auto_merge": false,
                    "squash_merge_commit_title": "COMMIT_OR_PR_TITLE",
                    "squash_merge_commit_message": "COMMIT_MESSAGES",
                    "has_wiki": false,
                    "custom_properties": {"team": "payments"}
                }))
                .answer(201, created.clone())
                .creates_repo("acme/svc"),
            Expect::new("PUT", "/orgs/acme/teams/platform/repos/acme/svc")
                .body(json!({"permission": "admin"}))
                .answer(204, Value::Null),
            Expect::new("PUT", "/repos/acme/svc/collaborators/jane")
                .body(json!({"permission": "push"}))
                .answer(201, json!({})),
            Expect::new("PUT", "/orgs/acme/teams/sre/repos/acme/svc")
                .body(json!({"permission": "pull"}))
                .answer(404, json!({"message": "Not Found"})),
            Expect::new("PUT", "/repos/acme/svc/topics")
                .body(json!({"names": ["rust", "golden-path"]}))
                .answer(200, json!({"names": ["rust", "golden-path"]})),
            Expect::new("POST", "/repos/acme/svc/actions/variables")
                .body(json!({"name": "ENVIRONMENT", "value": "prod"}))
                .answer(201, json!({})),
            Expect::new("PUT", "/repos/acme/svc/branches/master/protection")
                .body(json!({
                    "required_status_checks": {"strict": true, "contexts": ["ci"]},
                    "restrictions": null,
                    "enforce_admins": true,
                    "required_pull_request_reviews": {
                        "required_approving_review_count": 1,
                        "require_code_owner_reviews": true,
                        "dismiss_stale_reviews": false,
                        "require_last_push_approval": false
                    },
                    "required_conversation_resolution": false,
                    "required_linear_history": false
                }))
                .answer(200, json!({})),
        ],
    )
    .await;
    let h = Harness::new(pool, vec![github_host(&fake)]).await;
    h.write("README.md", "# svc\n");
    h.write_executable("bin/start", "#!/bin/sh\n");

    let (result, logs) = h
        .run(
            &PublishGithub,
            json!({
                "repoUrl": "github.test?owner=acme&repo=svc",
                "description": "Payments service",
                "homepage": "https://svc.example.com",
                "access": "acme/platform",
                "repoVisibility": "internal",
                "deleteBranchOnMerge": true,
                "allowMergeCommit": false,
                "hasWiki": false,
                "customProperties": {"team": "payments"},
                "collaborators": [
                    {"user": "user:default/jane", "access": "push"},
                    {"team": "group:default/sre", "access": "pull"}
                ],
                "topics": ["Rust", "golden-path"],
                "repoVariables": {"ENVIRONMENT": "prod"},
                "secrets": {"DEPLOY_KEY": "do-not-send"},
                "requireCodeOwnerReviews": true,
                "requiredStatusCheckContexts": ["ci"],
                "gitCommitMessage": "Scaffold svc"
            }),
        )
        .await;
    let output = result.expect("published");
    let seen = fake.finish();
    assert_eq!(
        seen,
        [
            "GET /users/acme -> 200",
            "GET /orgs/acme/teams/platform -> 200",
            "POST /orgs/acme/repos -> 201",
            "PUT /orgs/acme/teams/platform/repos/acme/svc -> 204",
            "PUT /repos/acme/svc/collaborators/jane -> 201",
            "PUT /orgs/acme/teams/sre/repos/acme/svc -> 404",
            "PUT /repos/acme/svc/topics -> 200",
            "POST /repos/acme/svc/actions/variables -> 201",
            "git GET /git/acme/svc.git/info/refs?service=git-receive-pack -> 401",
            "git GET /git/acme/svc.git/info/refs?service=git-receive-pack -> 200",
            "git POST /git/acme/svc.git/git-receive-pack -> 200",
            "PUT /repos/acme/svc/branches/master/protection -> 200",
        ]
    );
    let remote = format!("http://{}/git/acme/svc.git", fake.address);
    assert_eq!(output["remoteUrl"], remote);
    assert_eq!(
        output["repoContentsUrl"], "https://github.test/acme/svc/blob/master",
        "Backstage's form, on Backstage's default branch"
    );
    let (commit_id, files) = read_branch(&repos.path().join("acme/svc.git"), "master");
    assert_eq!(output["commitHash"], commit_id.to_string());
    assert_eq!(names(&files), ["README.md", "bin/start"]);
    assert_eq!(files[1].1, 0o100755);
    let git_repo = git2::Repository::open_bare(repos.path().join("acme/svc.git")).expect("open");
    assert_eq!(
        git_repo
            .find_commit(commit_id)
            .expect("commit")
            .message()
            .ok(),
        Some("Scaffold svc")
    );
    for expected in [
        "Skipping pull access for sre,",
        "Skipping secrets DEPLOY_KEY",
        "pushing to",
        "Protected the branch master",
    ] {
        assert!(
            logs.iter().any(|l| l.contains(expected)),
            "{expected}: {logs:?}"
        );
    }
    assert!(
        logs.iter()
            .all(|l| !l.contains(TOKEN) && !l.contains("do-not-send")),
        "{logs:?}"
    );

    let location = atrium::scaffolder::actions::repo_url::contents_location(
        output["repoContentsUrl"].as_str().expect("string"),
        "/catalog-info.yaml",
        &h.state.config.scaffolder,
    )
    .expect("a catalog location");
    assert_eq!(location.file, format!("{remote}#master:catalog-info.yaml"));
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn publish_github_creates_a_user_repository_with_the_token_input(pool: PgPool) {
    let repos = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(repos.path().join("jane")).expect("mkdir");
    let input_token = "gho_fromTheTemplateSecrets";
    let created = created_repo("jane", "notes");
    let fake = GithubFake::start(
        repos.path(),
        input_token,
        vec![
            Expect::new("GET", "/users/jane").answer(200, json!({"login": "jane", "type": "User"})),
            Expect::new("GET", "/user").answer(200, json!({"login": "Jane", "type": "User"})),
            Expect::new("POST", "/user/repos")
                .body(json!({
                    "name": "notes",
                    "private": false,
                    "delete_branch_on_merge": false,
                    "allow_merge_commit": true,
                    "allow_squash_merge": true,
                    "allow_rebase_merge": true,
                    "allow_auto_merge": false,
                    "squash_merge_commit_title": "COMMIT_OR_PR_TITLE",
                    "squash_merge_commit_message": "COMMIT_MESSAGES"
                }))
                .answer(201, created)
                .creates_repo("jane/notes"),
        ],
    )
    .await;
    let mut github = github_host(&fake);
    github.token_file = None;
    let h = Harness::new(pool, vec![github]).await;
    h.write("notes.md", "hello");

    let (result, _) = h
        .run(
            &PublishGithub,
            json!({
                "repoUrl": "github.test?owner=jane&repo=notes",
                "repoVisibility": "public",
                "access": "jane",
                "customProperties": {"ignored": "for users"},
                "protectDefaultBranch": false,
                "defaultBranch": "main",
                "token": input_token
            }),
        )
        .await;
    let output = result.expect("published");
    let seen = fake.finish();
    assert_eq!(seen.len(), 6, "{seen:?}");
    assert_eq!(
        seen[..3],
        [
            "GET /users/jane -> 200",
            "GET /user -> 200",
            "POST /user/repos -> 201"
        ]
    );
    assert!(seen[3..].iter().all(|s| s.starts_with("git ")), "{seen:?}");
    assert_eq!(
        output["repoContentsUrl"],
        "https://github.test/jane/notes/blob/main"
    );
    let (_, files) = read_branch(&repos.path().join("jane/notes.git"), "main");
    assert_eq!(names(&files), ["notes.md"]);
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn publish_github_reports_api_errors_clearly(pool: PgPool) {
    let repos = tempfile::tempdir().expect("tempdir");
    let elsewhere = created_repo("someone-else", "svc");
    let fake = GithubFake::start(
        repos.path(),
        TOKEN,
        vec![
            // The repository exists.
            Expect::new("GET", "/users/acme")
                .answer(200, json!({"login": "acme", "type": "Organization"})),
            Expect::new("POST", "/orgs/acme/repos")
                .body(json!({
                    "name": "svc", "private": true, "visibility": "private",
                    "delete_branch_on_merge": false, "allow_merge_commit": true,
                    "allow_squash_merge": true, "allow_rebase_merge": true, "allow_auto_merge": false,
                    "squash_merge_commit_title": "COMMIT_OR_PR_TITLE",
                    "squash_merge_commit_message": "COMMIT_MESSAGES"
                }))
                .answer(
                    422,
                    name_exists(),
                ),
            // It exists with a branch: someone's work, never written to.
            Expect::new("GET", "/repos/acme/svc/branches")
                .answer(200, json!([{"name": "main", "commit": {"sha": "0123abcd"}}])),
            // The token is refused, and GitHub's answer quotes it.
            Expect::new("GET", "/users/acme").answer(
                401,
                json!({"message": format!("Bad credentials: {TOKEN}")}),
            ),
            // The owner is a user other than the token's.
            Expect::new("GET", "/users/bob").answer(200, json!({"login": "bob", "type": "User"})),
            Expect::new("GET", "/user").answer(200, json!({"login": "jane", "type": "User"})),
            // GitHub creates the repository for someone else than asked.
            Expect::new("GET", "/users/bob").answer(200, json!({"login": "bob", "type": "User"})),
            Expect::new("GET", "/user").answer(200, json!({"login": "bob", "type": "User"})),
            Expect::new("POST", "/user/repos")
                .body(json!({
                    "name": "svc", "private": true,
                    "delete_branch_on_merge": false, "allow_merge_commit": true,
                    "allow_squash_merge": true, "allow_rebase_merge": true, "allow_auto_merge": false,
                    "squash_merge_commit_title": "COMMIT_OR_PR_TITLE",
                    "squash_merge_commit_message": "COMMIT_MESSAGES"
                }))
                .answer(201, elsewhere),
            // access names a team that does not exist.
            Expect::new("GET", "/users/acme")
                .answer(200, json!({"login": "acme", "type": "Organization"})),
            Expect::new("GET", "/orgs/acme/teams/ghosts")
                .answer(404, json!({"message": "Not Found"})),
        ],
    )
    .await;
    let h = Harness::new(pool, vec![github_host(&fake)]).await;
    h.write("README.md", "hello");

    for (input, needles) in [
        (
            json!({"repoUrl": "github.test?owner=acme&repo=svc"}),
            vec![
                "Failed to create the Organization repository acme/svc",
                "name already exists on this account",
                "422",
                "already has branches, so it is left as it is",
            ],
        ),
        (
            json!({"repoUrl": "github.test?owner=acme&repo=svc"}),
            vec!["GitHub refused the token", "Bad credentials: ****"],
        ),
        (
            json!({"repoUrl": "github.test?owner=bob&repo=svc"}),
            vec!["bob is a GitHub user other than the token's (jane)"],
        ),
        (
            json!({"repoUrl": "github.test?owner=bob&repo=svc"}),
            vec!["someone-else", "not for bob"],
        ),
        (
            json!({"repoUrl": "github.test?owner=acme&repo=svc", "access": "acme/ghosts"}),
            vec!["team: ghosts was not found"],
        ),
    ] {
        let (result, logs) = h.run(&PublishGithub, input.clone()).await;
        let (err, text) = error_text(result);
        assert!(matches!(err, ActionError::Failed(_)), "{input}: {err:?}");
        for needle in needles {
            assert!(text.contains(needle), "{input}: {needle:?} not in {text}");
        }
        assert!(!text.contains(TOKEN), "{text}");
        assert!(logs.iter().all(|l| !l.contains(TOKEN)), "{logs:?}");
    }
    assert_eq!(
        fake.finish(),
        [
            "GET /users/acme -> 200",
            "POST /orgs/acme/repos -> 422",
            "GET /repos/acme/svc/branches -> 200",
            "GET /users/acme -> 401",
            "GET /users/bob -> 200",
            "GET /user -> 200",
            "GET /users/bob -> 200",
            "GET /user -> 200",
            "POST /user/repos -> 201",
            "GET /users/acme -> 200",
            "GET /orgs/acme/teams/ghosts -> 404",
        ],
        "nothing is pushed or changed after an error"
    );
    assert_eq!(
        std::fs::read_dir(repos.path()).expect("repos").count(),
        0,
        "no repository appeared on the git host"
    );
}

/// A retried step whose first attempt created the repository and failed before its push: GitHub
/// says the name exists (422), the repository has no branch, so the retry publishes into it.
#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn publish_github_retried_after_creating_the_repository_publishes_into_it(pool: PgPool) {
    let repos = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(repos.path().join("acme")).expect("mkdir");
    let fake = GithubFake::start(
        repos.path(),
        TOKEN,
        vec![
            Expect::new("GET", "/users/acme")
                .answer(200, json!({"login": "acme", "type": "Organization"})),
            Expect::new("POST", "/orgs/acme/repos")
                .body(json!({
                    "name": "svc", "private": true, "visibility": "private",
                    "delete_branch_on_merge": false, "allow_merge_commit": true,
                    "allow_squash_merge": true, "allow_rebase_merge": true, "allow_auto_merge": false,
                    "squash_merge_commit_title": "COMMIT_OR_PR_TITLE",
                    "squash_merge_commit_message": "COMMIT_MESSAGES"
                }))
                .answer(
                    422,
                    name_exists(),
                )
                // What the first attempt left: the repository, empty.
                .creates_repo("acme/svc"),
            Expect::new("GET", "/repos/acme/svc/branches").answer(200, json!([])),
            Expect::new("GET", "/repos/acme/svc").answer(200, created_repo("acme", "svc")),
            Expect::new("PUT", "/repos/acme/svc/branches/master/protection")
                .body(default_branch_protection())
                .answer(200, json!({})),
        ],
    )
    .await;
    let h = Harness::new(pool, vec![github_host(&fake)]).await;
    h.write("README.md", "# svc\n");
    let (result, logs) = h
        .run(
            &PublishGithub,
            json!({"repoUrl": "github.test?owner=acme&repo=svc"}),
        )
        .await;
    let output = result.expect("published into the empty repository");
    let seen = fake.finish();
    assert!(
        seen.contains(&"git POST /git/acme/svc.git/git-receive-pack -> 200".to_owned()),
        "{seen:#?}"
    );
    assert!(
        logs.iter()
            .any(|l| l.contains("acme/svc already exists and is empty")),
        "{logs:?}"
    );
    assert_eq!(
        output["repoContentsUrl"],
        "https://github.test/acme/svc/blob/master"
    );
    let (_, files) = read_branch(&repos.path().join("acme/svc.git"), "master");
    assert_eq!(names(&files), ["README.md"]);
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn publish_github_refuses_bad_input_without_a_request(pool: PgPool) {
    let repos = tempfile::tempdir().expect("tempdir");
    let fake = GithubFake::start(repos.path(), TOKEN, Vec::new()).await;
    let plain = host(
        "git.test",
        "file://{root}/remotes/{owner}/{repo}.git".into(),
    );
    let mut tokenless = github_host(&fake);
    tokenless.host = "tokenless.test".into();
    tokenless.token_file = None;
    let h = Harness::new(pool, vec![github_host(&fake), plain, tokenless]).await;
    h.write("README.md", "hello");
    for (input, needle) in [
        (
            json!({"repoUrl": "github.test?owner=--upload-pack=x&repo=svc"}),
            "Invalid owner",
        ),
        (
            json!({"repoUrl": "github.test?owner=acme&repo=%2e%2e"}),
            "Invalid repo",
        ),
        (
            json!({"repoUrl": "github.test?owner=ac_me&repo=svc"}),
            "for GitHub",
        ),
        (json!({"repoUrl": "github.test?repo=svc"}), "owner"),
        (
            json!({"repoUrl": "api.github.com?owner=acme&repo=svc"}),
            "not allowed",
        ),
        (
            json!({"repoUrl": "git.test?owner=acme&repo=svc"}),
            "no github_api_url",
        ),
        (
            json!({"repoUrl": "tokenless.test?owner=acme&repo=svc"}),
            "needs a token",
        ),
        (
            json!({"repoUrl": "github.test?owner=acme&repo=svc", "gitAuthorName": "x\ny"}),
            "gitAuthorName",
        ),
        (
            json!({"repoUrl": "github.test?owner=acme&repo=svc", "access": "other/team"}),
            "access",
        ),
        (
            json!({"repoUrl": "github.test?owner=acme&repo=svc", "collaborators": [{"user": "user:default/--upload-pack", "access": "push"}]}),
            "collaborators user",
        ),
        (
            json!({"repoUrl": "github.test?owner=acme&repo=svc", "sourcePath": "../.."}),
            "leaves the workspace",
        ),
    ] {
        let (result, _) = h.run(&PublishGithub, input.clone()).await;
        let (_, text) = error_text(result);
        assert!(text.contains(needle), "{input}: {text}");
    }
    assert!(fake.finish().is_empty(), "no request was sent");
}

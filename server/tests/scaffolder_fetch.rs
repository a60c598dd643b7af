//! `fetch:*` and `fs:*` actions against real directories: a skeleton beside a template under a
//! catalog file root, a task workspace, and a directory outside both that no attack may touch.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use atrium::scaffolder::actions::{Action, ActionContext, ActionError, ActionServices, fetch, fs};
use atrium::scaffolder::expr::Expressions;
use atrium::scaffolder::source::TemplateSource;
use atrium::scaffolder::workspace::Workspace;
use common::TestApp;
use serde_json::{Map, Value, json};
use sqlx::PgPool;

/// `<base>/catalog` is the catalog file root, `<base>/catalog/templates/demo` the template's
/// directory, `<base>/work/a/b/ws` the workspace, `<base>/outside` holds a secret.
struct Fixture {
    _app: TestApp,
    _base: tempfile::TempDir,
    base: PathBuf,
    template: PathBuf,
    outside: PathBuf,
    workspace: Workspace,
    services: ActionServices,
    expressions: Expressions,
}

impl Fixture {
    async fn new(pool: PgPool) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = std::fs::canonicalize(dir.path()).expect("canonical");
        let catalog = base.join("catalog");
        let template = catalog.join("templates/demo");
        std::fs::create_dir_all(template.join("skeleton")).expect("mkdir");
        std::fs::write(template.join("template.yaml"), "kind: Template\n").expect("write");
        let outside = base.join("outside");
        std::fs::create_dir_all(&outside).expect("mkdir");
        std::fs::write(outside.join("secret.txt"), "secret").expect("write");
        let workspace = Workspace::create(base.join("work/a/b/ws")).expect("workspace");
        let app = TestApp::with_config(pool, |c| c.file_roots = vec![catalog.clone()]).await;
        let services = ActionServices {
            db: app.state.db.clone(),
            catalog: app.state.catalog.clone(),
            config: app.state.config.clone(),
        };
        Self {
            _app: app,
            _base: dir,
            base,
            template,
            outside,
            workspace,
            services,
            expressions: Expressions::default(),
        }
    }

    /// Writes a skeleton file (folders created).
    fn skeleton(&self, relative: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.template.join("skeleton").join(relative);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, contents).expect("write");
        path
    }

    fn ws(&self, relative: &str) -> PathBuf {
        self.workspace.root().join(relative)
    }

    fn read(&self, relative: &str) -> String {
        std::fs::read_to_string(self.ws(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
    }

    async fn run(&self, id: &str, input: Value) -> Result<Map<String, Value>, ActionError> {
        self.run_from(&TemplateSource::Dir(self.template.clone()), id, input)
            .await
    }

    async fn run_from(
        &self,
        source: &TemplateSource,
        id: &str,
        input: Value,
    ) -> Result<Map<String, Value>, ActionError> {
        let action = action(id);
        let (log, _lines) = tokio::sync::mpsc::unbounded_channel();
        let ctx = ActionContext {
            input: input.as_object().expect("input object").clone(),
            workspace: &self.workspace,
            source,
            expressions: &self.expressions,
            secrets: &Map::new(),
            user_ref: "user:default/guest",
            caller: &atrium::auth::Caller::guest(),
            task_id: "test-task",
            template_ref: "template:default/test",
            parameters: &Value::Null,
            dry_run: false,
            log,
            services: &self.services,
        };
        action.run(&ctx).await
    }

    /// Runs an action that must be refused: the error must say `expected`, and nothing outside the
    /// workspace may have changed.
    async fn refused(&self, id: &str, input: Value, expected: &str) -> String {
        let before = self.outside_state();
        let error = self
            .run(id, input.clone())
            .await
            .expect_err(&format!("{id} {input} must be refused"))
            .to_string();
        assert!(
            error.contains(expected),
            "{id} {input}: {error:?} should say {expected:?}"
        );
        assert!(error.starts_with(id), "{error:?} should name {id}");
        assert_eq!(
            self.outside_state(),
            before,
            "{id} {input} changed something outside the workspace"
        );
        error
    }

    /// Everything under the base directory except the workspace: path → what it is.
    fn outside_state(&self) -> BTreeMap<String, String> {
        let mut state = BTreeMap::new();
        let mut pending = vec![self.base.clone()];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).expect("list") {
                let entry = entry.expect("entry");
                let path = entry.path();
                if path == self.workspace.root() {
                    continue;
                }
                let file_type = entry.file_type().expect("type");
                let what = if file_type.is_symlink() {
                    format!(
                        "link {}",
                        std::fs::read_link(&path).expect("link").display()
                    )
                } else if file_type.is_dir() {
                    pending.push(path.clone());
                    "dir".to_owned()
                } else {
                    format!("file {:?}", std::fs::read(&path).expect("read"))
                };
                state.insert(path.display().to_string(), what);
            }
        }
        state
    }

    /// Every entry in the workspace, links listed as `-> target`.
    fn workspace_listing(&self) -> Vec<String> {
        self.workspace
            .entries("")
            .expect("entries")
            .into_iter()
            .map(|entry| match std::fs::read_link(self.ws(&entry.path)) {
                Ok(target) => format!("{} -> {}", entry.path, target.display()),
                Err(_) => entry.path,
            })
            .collect()
    }
}

fn action(id: &str) -> Box<dyn Action> {
    fetch::actions()
        .into_iter()
        .chain(fs::actions())
        .find(|a| a.id() == id)
        .unwrap_or_else(|| panic!("no action {id}"))
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

const WORKFLOW: &str =
    "on: push\njobs:\n  build:\n    steps:\n      - run: echo ${{ github.sha }}\n";
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\xff\xfe\0\x01";

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn a_skeleton_is_rendered_paths_and_contents(pool: PgPool) {
    let f = Fixture::new(pool).await;
    f.skeleton(
        "README.md",
        "# ${{ values.name }}\n{% if values.docs %}Docs included.{% endif %}\n",
    );
    f.skeleton(
        "${{ values.name }}/src/main.rs",
        "fn main() { println!(\"${{ values.name }}\"); }\n",
    );
    f.skeleton(".github/workflows/${{ values.name }}.yaml", WORKFLOW);
    f.skeleton("${{ values.optional }}/never.txt", "x");
    f.skeleton("misc/${{ values.optional }}", "x");
    f.skeleton("assets/logo.png", PNG);
    let script = f.skeleton("scripts/run.sh", "#!/bin/sh\necho ${{ values.name }}\n");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::create_dir_all(f.template.join("skeleton/empty-${{ values.name }}")).expect("mkdir");

    let output = f
        .run(
            "fetch:template",
            json!({
                "url": "./skeleton",
                "targetPath": "out",
                "values": {"name": "shop", "docs": true, "optional": ""},
                "copyWithoutTemplating": [".github/workflows/*"]
            }),
        )
        .await
        .expect("rendered");
    assert!(output.is_empty());
    assert_eq!(f.read("out/README.md"), "# shop\nDocs included.\n");
    assert_eq!(
        f.read("out/shop/src/main.rs"),
        "fn main() { println!(\"shop\"); }\n"
    );
    // The workflow's path is rendered, its contents are not.
    assert_eq!(f.read("out/.github/workflows/shop.yaml"), WORKFLOW);
    assert_eq!(
        std::fs::read(f.ws("out/assets/logo.png")).expect("png"),
        PNG
    );
    assert_eq!(f.read("out/scripts/run.sh"), "#!/bin/sh\necho shop\n");
    assert_eq!(mode(&f.ws("out/scripts/run.sh")), 0o755);
    assert_eq!(mode(&f.ws("out/README.md")), 0o644);
    assert!(f.ws("out/empty-shop").is_dir());
    assert_eq!(
        f.workspace_listing(),
        [
            "out",
            "out/.github",
            "out/.github/workflows",
            "out/.github/workflows/shop.yaml",
            "out/README.md",
            "out/assets",
            "out/assets/logo.png",
            "out/empty-shop",
            "out/misc",
            "out/scripts",
            "out/scripts/run.sh",
            "out/shop",
            "out/shop/src",
            "out/shop/src/main.rs",
        ],
        "paths rendering to nothing are skipped"
    );
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn copy_without_render_leaves_paths_as_they_are(pool: PgPool) {
    let f = Fixture::new(pool).await;
    f.skeleton("raw/${{ values.name }}.txt", "${{ values.name }}");
    f.skeleton("${{ values.name }}.txt", "${{ values.name }}");
    f.run(
        "fetch:template",
        json!({"url": "./skeleton", "values": {"name": "x"}, "copyWithoutRender": ["raw"]}),
    )
    .await
    .expect("rendered");
    assert_eq!(f.read("raw/${{ values.name }}.txt"), "${{ values.name }}");
    assert_eq!(f.read("x.txt"), "x");

    let error = f
        .run(
            "fetch:template",
            json!({"url": "./skeleton", "copyWithoutRender": [], "copyWithoutTemplating": []}),
        )
        .await
        .expect_err("both");
    assert!(
        error
            .to_string()
            .contains("copyWithoutRender and copyWithoutTemplating"),
        "{error}"
    );
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn template_file_extension_renders_only_those_files(pool: PgPool) {
    let f = Fixture::new(pool).await;
    f.skeleton("config.yaml.njk", "name: ${{ values.name }}\n");
    f.skeleton("${{ values.name }}.md", "kept: ${{ values.name }}\n");
    for (extension, target) in [
        (json!(true), "a"),
        (json!("njk"), "b"),
        (json!(".njk"), "c"),
    ] {
        f.run(
            "fetch:template",
            json!({
                "url": "./skeleton",
                "targetPath": target,
                "values": {"name": "shop"},
                "templateFileExtension": extension
            }),
        )
        .await
        .expect("rendered");
        assert_eq!(f.read(&format!("{target}/config.yaml")), "name: shop\n");
        assert_eq!(
            f.read(&format!("{target}/shop.md")),
            "kept: ${{ values.name }}\n"
        );
        assert!(!f.ws(&format!("{target}/config.yaml.njk")).exists());
    }
    let error = f
        .run(
            "fetch:template",
            json!({"url": "./skeleton", "templateFileExtension": true, "cookiecutterCompat": true}),
        )
        .await
        .expect_err("incompatible");
    assert!(
        error
            .to_string()
            .contains("templateFileExtension cannot be combined"),
        "{error}"
    );
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn cookiecutter_compat_binds_the_values_as_cookiecutter(pool: PgPool) {
    let f = Fixture::new(pool).await;
    f.skeleton(
        "{{ cookiecutter.name }}/setup.py",
        "name = \"{{ cookiecutter.name }}\"\n",
    );
    f.run(
        "fetch:template",
        json!({"url": "./skeleton", "values": {"name": "pkg"}, "cookiecutterCompat": true}),
    )
    .await
    .expect("rendered");
    assert_eq!(f.read("pkg/setup.py"), "name = \"pkg\"\n");
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn existing_files_are_kept_unless_replace(pool: PgPool) {
    let f = Fixture::new(pool).await;
    f.skeleton("README.md", "# ${{ values.name }}\n");
    f.skeleton("NEW.md", "new\n");
    f.workspace
        .write_file("README.md", b"mine\n", false)
        .expect("write");
    let input = json!({"url": "./skeleton", "values": {"name": "shop"}});
    f.run("fetch:template", input.clone()).await.expect("kept");
    assert_eq!(f.read("README.md"), "mine\n");
    assert_eq!(f.read("NEW.md"), "new\n");
    let mut replace = input;
    replace["replace"] = json!(true);
    f.run("fetch:template", replace).await.expect("replaced");
    assert_eq!(f.read("README.md"), "# shop\n");

    // fetch:template:file: the same rule for its one file.
    std::fs::write(f.template.join("one.txt"), "hello ${{ values.name }}\n").expect("write");
    let one = json!({"url": "./one.txt", "targetPath": "README.md", "values": {"name": "you"}});
    f.run("fetch:template:file", one.clone())
        .await
        .expect("kept");
    assert_eq!(f.read("README.md"), "# shop\n");
    let mut replace = one;
    replace["replace"] = json!(true);
    f.run("fetch:template:file", replace)
        .await
        .expect("replaced");
    assert_eq!(f.read("README.md"), "hello you\n");
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn plain_fetches_copy_untouched(pool: PgPool) {
    let f = Fixture::new(pool).await;
    f.skeleton("a/${{ values.name }}.txt", "${{ values.name }}");
    let run = f.skeleton("bin/run", "#!/bin/sh\n");
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    f.skeleton("logo.png", PNG);
    f.run(
        "fetch:plain",
        json!({"url": "./skeleton", "targetPath": "plain"}),
    )
    .await
    .expect("copied");
    assert_eq!(
        f.read("plain/a/${{ values.name }}.txt"),
        "${{ values.name }}"
    );
    assert_eq!(mode(&f.ws("plain/bin/run")), 0o755);
    assert_eq!(std::fs::read(f.ws("plain/logo.png")).expect("png"), PNG);

    f.run(
        "fetch:plain:file",
        json!({"url": "./skeleton/bin/run", "targetPath": "tools/run"}),
    )
    .await
    .expect("copied");
    assert_eq!(mode(&f.ws("tools/run")), 0o755);

    // A skeleton beside the template's directory, under the same file root, is readable.
    let shared = f.template.parent().expect("templates").join("shared");
    std::fs::create_dir_all(&shared).expect("mkdir");
    std::fs::write(shared.join("LICENSE"), "MIT").expect("write");
    f.run(
        "fetch:plain:file",
        json!({"url": "../shared/LICENSE", "targetPath": "LICENSE"}),
    )
    .await
    .expect("shared");
    assert_eq!(f.read("LICENSE"), "MIT");
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn a_dry_run_reads_the_inline_files(pool: PgPool) {
    let f = Fixture::new(pool).await;
    let source = TemplateSource::Inline(BTreeMap::from([
        ("template.yaml".to_owned(), b"kind: Template".to_vec()),
        (
            "skeleton/${{ values.name }}/index.js".to_owned(),
            b"// ${{ values.name }}\n".to_vec(),
        ),
    ]));
    f.run_from(
        &source,
        "fetch:template",
        json!({"url": "./skeleton", "values": {"name": "app"}}),
    )
    .await
    .expect("rendered");
    assert_eq!(f.read("app/index.js"), "// app\n");
    let error = f
        .run_from(&source, "fetch:plain", json!({"url": "../elsewhere"}))
        .await
        .expect_err("outside the dry run's files");
    assert!(error.to_string().contains("leads outside"), "{error}");
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn fs_delete_removes_paths_and_globs(pool: PgPool) {
    let f = Fixture::new(pool).await;
    for file in [
        "a.txt",
        "b.txt",
        ".env.txt",
        "keep.md",
        "dir/x.js",
        "dir/deep/y.test.js",
        "dir/deep/y.js",
        "gone/z",
    ] {
        f.workspace.write_file(file, b"x", false).expect("write");
    }
    f.run(
        "fs:delete",
        json!({"files": ["*.txt", "dir/**/*.test.js", ".\\keep.md", "gone", "missing.txt"]}),
    )
    .await
    .expect("deleted");
    assert_eq!(
        f.workspace_listing(),
        ["dir", "dir/deep", "dir/deep/y.js", "dir/x.js"]
    );
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn fs_rename_moves_and_overwrites_only_when_asked(pool: PgPool) {
    let f = Fixture::new(pool).await;
    f.workspace.write_file("a.txt", b"a", false).expect("write");
    f.workspace.write_file("b.txt", b"b", false).expect("write");
    f.run(
        "fs:rename",
        json!({"files": [{"from": "a.txt", "to": "new/dir/a.txt"}]}),
    )
    .await
    .expect("moved");
    assert_eq!(f.read("new/dir/a.txt"), "a");
    let error = f
        .run(
            "fs:rename",
            json!({"files": [{"from": "new/dir/a.txt", "to": "b.txt"}]}),
        )
        .await
        .expect_err("exists");
    assert!(error.to_string().contains("already exists"), "{error}");
    assert!(error.to_string().contains("overwrite: true"), "{error}");
    f.run(
        "fs:rename",
        json!({"files": [{"from": "new/dir/a.txt", "to": "b.txt", "overwrite": true}]}),
    )
    .await
    .expect("overwritten");
    assert_eq!(f.read("b.txt"), "a");
    let error = f
        .run("fs:rename", json!({"files": [{"from": "b.txt"}]}))
        .await
        .expect_err("no to");
    assert!(
        error.to_string().contains("needs a from and a to"),
        "{error}"
    );
}

// Attacks: each fails with a clear error and leaves everything outside the workspace as it was.

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn target_paths_outside_the_workspace_are_refused(pool: PgPool) {
    let f = Fixture::new(pool).await;
    f.skeleton("README.md", "x");
    let absolute = f.outside.join("planted").display().to_string();
    for target in ["../../etc", "../../../outside", "a/../../x"] {
        for id in ["fetch:plain", "fetch:template"] {
            f.refused(
                id,
                json!({"url": "./skeleton", "targetPath": target}),
                "refers to a location outside the workspace",
            )
            .await;
        }
        for id in ["fetch:plain:file", "fetch:template:file"] {
            f.refused(
                id,
                json!({"url": "./skeleton/README.md", "targetPath": target}),
                "refers to a location outside the workspace",
            )
            .await;
        }
    }
    for id in ["fetch:plain", "fetch:template"] {
        f.refused(
            id,
            json!({"url": "./skeleton", "targetPath": absolute}),
            "is absolute",
        )
        .await;
    }
    f.refused(
        "fetch:plain:file",
        json!({"url": "./skeleton/README.md", "targetPath": absolute}),
        "is absolute",
    )
    .await;
    assert!(!f.base.join("work/a/etc").exists());
    assert!(f.workspace_listing().is_empty());
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn skeleton_links_out_are_neither_followed_nor_copied(pool: PgPool) {
    let f = Fixture::new(pool).await;
    f.skeleton("README.md", "x");
    let skeleton = f.template.join("skeleton");
    symlink(f.outside.join("secret.txt"), skeleton.join("absolute-link")).expect("link");
    for id in ["fetch:plain", "fetch:template"] {
        f.refused(
            id,
            json!({"url": "./skeleton"}),
            "skeleton/absolute-link is a symbolic link",
        )
        .await;
    }
    std::fs::remove_file(skeleton.join("absolute-link")).expect("rm");
    symlink("../../../../outside", skeleton.join("relative-link")).expect("link");
    f.refused(
        "fetch:template",
        json!({"url": "./skeleton"}),
        "outside the fetched directory",
    )
    .await;
    std::fs::remove_file(skeleton.join("relative-link")).expect("rm");
    // A file named by url that is a link out of the file root is refused, not read.
    symlink(f.outside.join("secret.txt"), f.template.join("secret-link")).expect("link");
    f.refused(
        "fetch:plain:file",
        json!({"url": "./secret-link", "targetPath": "stolen.txt"}),
        "leads outside",
    )
    .await;
    assert!(
        f.workspace_listing().is_empty(),
        "{:?}",
        f.workspace_listing()
    );

    // Links that stay inside the skeleton are kept as links, chains included.
    symlink("README.md", skeleton.join("first")).expect("link");
    symlink("first", skeleton.join("second")).expect("link");
    f.run("fetch:template", json!({"url": "./skeleton"}))
        .await
        .expect("links inside");
    assert_eq!(
        f.workspace_listing(),
        ["README.md", "first -> README.md", "second -> first"]
    );
    assert_eq!(f.read("second"), "x");
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn workspace_links_out_are_never_written_through(pool: PgPool) {
    let f = Fixture::new(pool).await;
    f.skeleton("README.md", "# ${{ values.name }}\n");
    // A chain: out → hop → <outside>.
    symlink(&f.outside, f.ws("hop")).expect("link");
    symlink("hop", f.ws("out")).expect("link");
    f.refused(
        "fetch:template",
        json!({"url": "./skeleton", "targetPath": "out"}),
        "passes through a symbolic link that leads outside the workspace",
    )
    .await;
    f.refused(
        "fetch:plain",
        json!({"url": "./skeleton", "targetPath": "out/sub"}),
        "leads outside the workspace",
    )
    .await;
    // A dangling link whose target is outside: writing through it would create the target.
    symlink(f.outside.join("created.txt"), f.ws("README.md")).expect("link");
    for replace in [false, true] {
        f.refused(
            "fetch:template",
            json!({"url": "./skeleton", "values": {"name": "x"}, "replace": replace}),
            "leads outside the workspace",
        )
        .await;
    }
    f.refused(
        "fetch:template:file",
        json!({"url": "./skeleton/README.md", "targetPath": "README.md", "replace": true}),
        "leads outside the workspace",
    )
    .await;
    f.refused(
        "fetch:plain:file",
        json!({"url": "./skeleton/README.md", "targetPath": "README.md"}),
        "leads outside the workspace",
    )
    .await;
    assert!(!f.outside.join("created.txt").exists());
    assert_eq!(
        std::fs::read_to_string(f.outside.join("secret.txt")).expect("secret"),
        "secret"
    );
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn rendered_paths_that_climb_out_are_refused(pool: PgPool) {
    let f = Fixture::new(pool).await;
    f.skeleton("${{ values.path }}", "planted");
    for path in ["../../../../outside/planted", "../x"] {
        f.refused(
            "fetch:template",
            json!({"url": "./skeleton", "targetPath": "sub", "values": {"path": path}}),
            "which leaves targetPath",
        )
        .await;
    }
    assert!(!f.outside.join("planted").exists());
    assert!(f.workspace_listing().is_empty());
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn urls_outside_the_template_root_are_refused(pool: PgPool) {
    let f = Fixture::new(pool).await;
    f.refused(
        "fetch:plain",
        json!({"url": "../../../../outside", "targetPath": "x"}),
        "leads outside",
    )
    .await;
    f.refused(
        "fetch:plain:file",
        json!({"url": "/etc/passwd", "targetPath": "passwd"}),
        "is an absolute path",
    )
    .await;
    f.refused(
        "fetch:template",
        json!({"url": "https://github.com/acme/skeletons/tree/main/web"}),
        "fetching from absolute URLs is not supported; put the skeleton beside the template",
    )
    .await;
    // A single file from an absolute URL goes through the catalog's reader and its allowlist.
    f.refused(
        "fetch:plain:file",
        json!({"url": "http://169.254.169.254/latest/meta-data", "targetPath": "meta"}),
        "catalog.url_allowlist",
    )
    .await;
    assert!(f.workspace_listing().is_empty());
}

#[sqlx::test(migrator = "atrium::MIGRATOR")]
async fn fs_actions_stay_inside(pool: PgPool) {
    let f = Fixture::new(pool).await;
    f.workspace.write_file("a.txt", b"a", false).expect("write");
    symlink(&f.outside, f.ws("link-out")).expect("link");
    let secret = f.outside.join("secret.txt").display().to_string();
    for files in [
        json!(["../*"]),
        json!(["../../../../outside/*"]),
        json!(["a.txt", "../../../../outside/secret.txt"]),
        json!(["**/../../x"]),
    ] {
        f.refused(
            "fs:delete",
            json!({ "files": files }),
            "refers to a location outside the workspace",
        )
        .await;
    }
    f.refused("fs:delete", json!({"files": [secret]}), "is absolute")
        .await;
    f.refused(
        "fs:delete",
        json!({"files": ["link-out/*"]}),
        "leads outside the workspace",
    )
    .await;
    f.refused(
        "fs:delete",
        json!({"files": ["link-out/secret.txt"]}),
        "leads outside the workspace",
    )
    .await;
    // The refused list deleted nothing, a.txt included.
    assert!(f.ws("a.txt").exists());

    for (from, to, expected) in [
        (
            "a.txt",
            "../../../../outside/a.txt",
            "outside the workspace",
        ),
        ("a.txt", secret.as_str(), "is absolute"),
        ("a.txt", "link-out/a.txt", "leads outside the workspace"),
        (
            "../../../../outside/secret.txt",
            "stolen.txt",
            "outside the workspace",
        ),
        (
            "link-out/secret.txt",
            "stolen.txt",
            "leads outside the workspace",
        ),
    ] {
        f.refused(
            "fs:rename",
            json!({"files": [{"from": from, "to": to}]}),
            expected,
        )
        .await;
    }
    assert!(f.ws("a.txt").exists());
    assert!(!f.ws("stolen.txt").exists());
}

#[test]
fn every_action_describes_its_input() {
    let actions: Vec<Box<dyn Action>> = fetch::actions().into_iter().chain(fs::actions()).collect();
    let ids: Vec<&str> = actions.iter().map(|a| a.id()).collect();
    assert_eq!(
        ids,
        [
            "fetch:plain",
            "fetch:plain:file",
            "fetch:template",
            "fetch:template:file",
            "fs:delete",
            "fs:rename"
        ]
    );
    for action in &actions {
        assert!(action.supports_dry_run(), "{}", action.id());
        assert!(!action.description().is_empty());
        let schema = action.input_schema();
        jsonschema::validator_for(&schema)
            .unwrap_or_else(|e| panic!("{}: input schema: {e}", action.id()));
        jsonschema::validator_for(&action.output_schema())
            .unwrap_or_else(|e| panic!("{}: output schema: {e}", action.id()));
        assert!(schema["required"].is_array(), "{}", action.id());
        for (name, property) in schema["properties"].as_object().expect("properties") {
            assert!(
                property["description"].is_string(),
                "{}: {name} has no description",
                action.id()
            );
        }
    }
    let template = action("fetch:template").input_schema();
    let validator = jsonschema::validator_for(&template).expect("schema");
    assert!(validator.is_valid(&json!({"url": "./skeleton", "templateFileExtension": true})));
    assert!(!validator.is_valid(&json!({"targetPath": "x"})));
}

//! Real git repositories for tests: a bare repository in a temp dir, written with libgit2, whose
//! commits add, change and remove files on a branch exactly as a push would.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use git2::{Oid, Repository, Signature};

pub struct BareRepo {
    pub path: PathBuf,
    repo: Repository,
    /// The full content of the branch's tip, path -> bytes.
    files: BTreeMap<String, Vec<u8>>,
    /// Git file modes other than a plain file's (0o100755 executable, 0o120000 symbolic link, whose
    /// content is its target).
    modes: BTreeMap<String, i32>,
    branch: String,
}

impl BareRepo {
    /// Creates `dir/name` as a bare repository whose default branch is `main`.
    pub fn create(dir: &Path, name: &str) -> Self {
        Self::create_with_branch(dir, name, "main")
    }

    pub fn create_with_branch(dir: &Path, name: &str, branch: &str) -> Self {
        let path = dir.join(name);
        let repo = Repository::init_bare(&path).expect("init bare repository");
        repo.set_head(&format!("refs/heads/{branch}"))
            .expect("set HEAD");
        Self {
            path,
            repo,
            files: BTreeMap::new(),
            modes: BTreeMap::new(),
            branch: branch.to_owned(),
        }
    }

    /// `file:///...` remote of this repository.
    pub fn url(&self) -> String {
        format!("file://{}", self.path.display())
    }

    /// Gives `path` a git file mode in the next commits (0o100755, or 0o120000 for a link).
    pub fn set_mode(&mut self, path: &str, mode: i32) {
        self.modes.insert(path.to_owned(), mode);
    }

    /// Commits on the branch: `Some(content)` writes a file, `None` removes it. Returns the commit id.
    pub fn commit(&mut self, changes: &[(&str, Option<&str>)], message: &str) -> String {
        for (path, content) in changes {
            match content {
                Some(content) => {
                    self.files
                        .insert((*path).to_owned(), content.as_bytes().to_vec());
                }
                None => {
                    self.files.remove(*path);
                }
            }
        }
        let tree = self.write_tree("");
        let tree = self.repo.find_tree(tree).expect("tree");
        let signature = Signature::now("Test Pusher", "pusher@example.test").expect("signature");
        let refname = format!("refs/heads/{}", self.branch);
        let parent = self
            .repo
            .refname_to_id(&refname)
            .ok()
            .and_then(|id| self.repo.find_commit(id).ok());
        let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
        let id = self
            .repo
            .commit(
                Some(&refname),
                &signature,
                &signature,
                message,
                &tree,
                &parents,
            )
            .expect("commit");
        id.to_string()
    }

    /// Writes the tree of directory `prefix` ("" for the root) and everything below it.
    fn write_tree(&self, prefix: &str) -> Oid {
        let mut builder = self.repo.treebuilder(None).expect("treebuilder");
        let mut subdirs: Vec<String> = Vec::new();
        for (path, content) in self.files.range(prefix.to_owned()..) {
            let Some(rest) = path.strip_prefix(prefix) else {
                break;
            };
            match rest.split_once('/') {
                Some((dir, _)) => {
                    if subdirs.last().map(String::as_str) != Some(dir) {
                        subdirs.push(dir.to_owned());
                    }
                }
                None => {
                    let blob = self.repo.blob(content).expect("blob");
                    let mode = self.modes.get(path).copied().unwrap_or(0o100644);
                    builder.insert(rest, blob, mode).expect("insert blob");
                }
            }
        }
        subdirs.dedup();
        for dir in subdirs {
            let sub = self.write_tree(&format!("{prefix}{dir}/"));
            builder.insert(&dir, sub, 0o040000).expect("insert tree");
        }
        builder.write().expect("write tree")
    }
}

/// A catalog document for one Component.
pub fn component(name: &str, description: &str) -> String {
    format!(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\n  description: {description}\nspec:\n  type: service\n  lifecycle: production\n  owner: team-a\n"
    )
}

/// A port on 127.0.0.1 that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// `git daemon` serving the repositories under `base` read-only over git:// on 127.0.0.1: a network
/// transport, over which fetches are shallow. Killed on drop.
pub struct GitDaemon {
    child: std::process::Child,
    pub port: u16,
}

impl GitDaemon {
    pub fn start(base: &Path) -> Self {
        let port = free_port();
        let child = std::process::Command::new("git")
            .arg("daemon")
            .arg("--reuseaddr")
            .arg("--export-all")
            .arg("--listen=127.0.0.1")
            .arg(format!("--port={port}"))
            .arg(format!("--base-path={}", base.display()))
            .arg(base)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("git daemon starts");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "git daemon did not listen on {port}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Self { child, port }
    }

    pub fn url(&self, name: &str) -> String {
        format!("git://127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A smart-HTTP git host on 127.0.0.1: `git http-backend` (the CGI program git's own servers use)
/// behind Basic authentication that accepts exactly `token` as the password. Returns its address.
/// Like GitLab, it also serves files as `/<owner>/<repo>/-/raw/<branch>/<path>` (read from
/// `<base>/<owner>/<repo>.git`), without authentication.
pub async fn serve_http_with_token(base: PathBuf, token: &str) -> std::net::SocketAddr {
    use axum::body::{Body, to_bytes};
    use axum::http::{Request, Response, StatusCode, header};
    use base64::Engine;

    let expected = token.to_owned();
    let handler = move |request: Request<Body>| {
        let (base, expected) = (base.clone(), expected.clone());
        async move {
            if let Some((repo, rest)) = request.uri().path().split_once("/-/raw/") {
                let (branch, file) = rest.split_once('/').unwrap_or((rest, ""));
                let output = std::process::Command::new("git")
                    .arg("--git-dir")
                    .arg(base.join(format!("{}.git", repo.trim_start_matches('/'))))
                    .args(["show", &format!("{branch}:{file}")])
                    .output()
                    .expect("git show");
                let status = if output.status.success() {
                    StatusCode::OK
                } else {
                    StatusCode::NOT_FOUND
                };
                return Response::builder()
                    .status(status)
                    .body(Body::from(output.stdout))
                    .expect("response");
            }
            let authorized = request
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Basic "))
                .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                .and_then(|b| String::from_utf8(b).ok())
                .is_some_and(|pair| {
                    pair.split_once(':').map(|(_, p)| p) == Some(expected.as_str())
                });
            if !authorized {
                return Response::builder()
                    .status(StatusCode::UNAUTHORIZED)
                    .header(header::WWW_AUTHENTICATE, "Basic realm=\"git\"")
                    .body(Body::empty())
                    .expect("response");
            }
            let (parts, body) = request.into_parts();
            let body = to_bytes(body, 64 * 1024 * 1024).await.expect("body");
            let header_value = |name: header::HeaderName| {
                parts
                    .headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned()
            };
            let mut child = tokio::process::Command::new("git")
                .arg("http-backend")
                .env("GIT_PROJECT_ROOT", &base)
                .env("GIT_HTTP_EXPORT_ALL", "1")
                .env("REQUEST_METHOD", parts.method.as_str())
                .env("PATH_INFO", parts.uri.path())
                .env("QUERY_STRING", parts.uri.query().unwrap_or_default())
                .env("CONTENT_TYPE", header_value(header::CONTENT_TYPE))
                .env("CONTENT_LENGTH", body.len().to_string())
                .env(
                    "HTTP_CONTENT_ENCODING",
                    header_value(header::CONTENT_ENCODING),
                )
                .env(
                    "GIT_PROTOCOL",
                    header_value(header::HeaderName::from_static("git-protocol")),
                )
                .env("REMOTE_USER", "token-user")
                .env("REMOTE_ADDR", "127.0.0.1")
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("git http-backend starts");
            {
                use tokio::io::AsyncWriteExt;
                let mut stdin = child.stdin.take().expect("stdin");
                stdin.write_all(&body).await.expect("request body to CGI");
            }
            let output = child.wait_with_output().await.expect("CGI output");
            // CGI output: header lines, a blank line, the body.
            let split = output
                .stdout
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .expect("CGI headers end");
            let head = String::from_utf8_lossy(&output.stdout[..split]).into_owned();
            let mut response = Response::builder();
            for line in head.lines() {
                let Some((name, value)) = line.split_once(": ") else {
                    continue;
                };
                if name.eq_ignore_ascii_case("status") {
                    let code: u16 = value[..3].parse().expect("status code");
                    response = response.status(code);
                } else {
                    response = response.header(name, value);
                }
            }
            response
                .body(Body::from(output.stdout[split + 4..].to_vec()))
                .expect("response")
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let router = axum::Router::new().fallback(handler);
    tokio::spawn(async move { axum::serve(listener, router).await });
    address
}

/// Runs the git command line in `dir` (no system or user configuration) and returns its standard
/// output as bytes; fails the test with git's message when it fails.
pub fn git_bytes(dir: &Path, args: &[&str]) -> Vec<u8> {
    let output = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .expect("git runs");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// [`git_bytes`] as text.
pub fn git(dir: &Path, args: &[&str]) -> String {
    String::from_utf8_lossy(&git_bytes(dir, args)).into_owned()
}

//! Browser test harness: Atrium on a real TCP port with the demo catalog, and headless Chromium driven
//! through chromedriver (Debian's `chromium` and `chromium-driver`) with fantoccini.

use std::net::TcpListener as StdListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use atrium::config::{CatalogConfig, Config, OrphanPolicy};
use atrium::{AppState, app};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use sqlx::PgPool;

pub const DEADLINE: Duration = Duration::from_secs(20);

/// A chromedriver child process, killed when dropped.
pub struct Chromedriver {
    child: Child,
    pub url: String,
    _profile: tempfile::TempDir,
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

impl Chromedriver {
    pub async fn start() -> Self {
        let port = free_port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (apt-get install chromium chromium-driver)");
        let url = format!("http://127.0.0.1:{port}");
        // Wait until it accepts connections.
        let start = Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(start.elapsed() < DEADLINE, "chromedriver did not start");
            tokio::task::yield_now().await;
            std::thread::yield_now();
        }
        Self {
            child,
            url,
            _profile: tempfile::tempdir().expect("profile dir"),
        }
    }

    /// A headless Chromium session.
    pub async fn session(&self) -> Client {
        let args = vec![
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--no-first-run".to_owned(),
            "--window-size=1280,800".to_owned(),
            format!("--user-data-dir={}", self._profile.path().display()),
        ];
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".to_owned(),
            json!({ "binary": "/usr/bin/chromium", "args": args }),
        );
        // Keep the page console so tests can read its errors (see `console_errors`).
        caps.insert("goog:loggingPrefs".to_owned(), json!({ "browser": "ALL" }));
        ClientBuilder::rustls()
            .expect("rustls connector")
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("webdriver session")
    }
}

/// Atrium serving the demo catalog (`catalog/all.yaml`) on 127.0.0.1:0, with a temporary directory as
/// a second file root for registering through the form.
pub struct Portal {
    pub base: String,
    pub state: AppState,
    pub extra_root: tempfile::TempDir,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Portal {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Portal {
    pub async fn start(pool: PgPool, workspace: &Path) -> Self {
        Self::start_with(pool, workspace, |_| {}).await
    }

    /// As `start`, with the configuration adjusted first (scaffolder hosts, say).
    pub async fn start_with(
        pool: PgPool,
        workspace: &Path,
        adjust: impl FnOnce(&mut Config),
    ) -> Self {
        atrium::tls::install_crypto_provider();
        let extra_root = tempfile::tempdir().expect("tempdir");
        let catalog_root = workspace.join("catalog");
        let config = Config {
            catalog: CatalogConfig {
                locations: Vec::new(),
                file_roots: vec![catalog_root.clone(), extra_root.path().to_path_buf()],
                orphan_policy: OrphanPolicy::Delete,
                ..CatalogConfig::default()
            },
            // Served on loopback in guest mode: the suite calls as the guest, without a token.
            auth: atrium::auth::config::AuthConfig {
                guest: true,
                ..Default::default()
            },
            ..Config::default()
        };
        let mut config = config;
        adjust(&mut config);
        let state = AppState::new(pool, config).expect("state");
        state
            .catalog
            .add_location("file", &catalog_root.join("all.yaml").display().to_string())
            .await
            .expect("register demo catalog");
        state
            .catalog
            .process_until_idle()
            .await
            .expect("process demo catalog");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let router = app(state.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.expect("serve");
        });
        Self {
            base,
            state,
            extra_root,
            server,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// Waits for an element, with the standard deadline.
pub async fn wait_for(client: &Client, css: &str) -> fantoccini::elements::Element {
    client
        .wait()
        .at_most(DEADLINE)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("waiting for {css}: {e}"))
}

/// Waits until the current URL's path and query satisfy `check`.
pub async fn wait_for_url(client: &Client, check: impl Fn(&url::Url) -> bool) -> url::Url {
    let start = Instant::now();
    loop {
        let url = client.current_url().await.expect("current url");
        if check(&url) {
            return url;
        }
        assert!(start.elapsed() < DEADLINE, "still at {url}");
        tokio::task::yield_now().await;
    }
}

/// Saves a screenshot to `target/screenshots/<name>.png`.
pub async fn screenshot(client: &Client, workspace: &Path, name: &str) {
    let dir = workspace.join("target").join("screenshots");
    std::fs::create_dir_all(&dir).expect("screenshots dir");
    let png = client.screenshot().await.expect("screenshot");
    std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
}

/// Saves a screenshot of one element (scrolled into view) to `target/screenshots/<name>.png`.
pub async fn screenshot_element(
    element: &fantoccini::elements::Element,
    workspace: &Path,
    name: &str,
) {
    let dir = workspace.join("target").join("screenshots");
    std::fs::create_dir_all(&dir).expect("screenshots dir");
    let png = element.screenshot().await.expect("element screenshot");
    std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
}

/// chromedriver's endpoint for the page console (not part of W3C WebDriver, so fantoccini has no method).
#[derive(Debug)]
struct BrowserLog;

impl fantoccini::wd::WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (axum::http::Method, Option<String>) {
        (
            axum::http::Method::POST,
            Some(r#"{"type":"browser"}"#.to_owned()),
        )
    }
}

/// Console messages of level SEVERE (errors, failed loads, CSP refusals) logged since the last call;
/// chromedriver hands each entry out once.
pub async fn console_errors(client: &Client) -> Vec<String> {
    let entries = client.issue_cmd(BrowserLog).await.expect("browser log");
    entries
        .as_array()
        .into_iter()
        .flatten()
        .filter(|entry| entry["level"] == "SEVERE")
        .map(|entry| entry["message"].as_str().unwrap_or_default().to_owned())
        .collect()
}

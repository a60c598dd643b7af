//! A real OpenID Connect provider for tests (node-oidc-provider running tests/oidc-provider, installed
//! with `npm ci --prefix tests/oidc-provider`) and a browser that signs in there: follows redirects
//! itself, keeps cookies per origin, fills the development login and consent forms.
//!
//! Include it with `#[path = "common/oidc_provider.rs"] mod oidc_provider;`.

#![allow(dead_code)] // each test binary uses a different subset

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use reqwest::header;
use tokio::io::{AsyncBufReadExt, BufReader};

pub const CLIENT_ID: &str = "atrium";
pub const CLIENT_SECRET: &str = "atrium-test-secret";
/// How long the provider may take to start, and a whole sign-in to run.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// An HTTP client as Atrium's: no redirects followed.
pub fn http_client() -> reqwest::Client {
    atrium::tls::http_client()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client")
}

/// node-oidc-provider running tests/oidc-provider/provider.mjs on a free port; stopped on drop. Its
/// one account, `alice`, has the email `alice@example.com` (verified); any other login name signs in
/// as an account without claims.
pub struct NodeProvider {
    pub issuer: String,
    _child: tokio::process::Child,
}

impl NodeProvider {
    /// A provider whose one client (`CLIENT_ID`, `CLIENT_SECRET`) may redirect to `redirect_uri`.
    pub async fn start(redirect_uri: &str) -> Self {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("workspace root")
            .join("tests/oidc-provider");
        assert!(
            dir.join("node_modules/oidc-provider").exists(),
            "node_modules missing: run `npm ci --prefix tests/oidc-provider` (scripts/test.sh does)"
        );
        // Port 0: node picks a free port and prints the issuer once it listens.
        let mut child = tokio::process::Command::new("node")
            .arg("provider.mjs")
            .arg("0")
            .current_dir(&dir)
            .env("OIDC_CLIENT_ID", CLIENT_ID)
            .env("OIDC_CLIENT_SECRET", CLIENT_SECRET)
            .env("OIDC_REDIRECT_URI", redirect_uri)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs (is node on PATH?)");
        // Its stdout is read to the end (the provider logs there, and dies of EPIPE if nobody reads),
        // passing the issuer line on.
        let stdout = child.stdout.take().expect("stdout");
        let (issuer_tx, issuer_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let mut issuer_tx = Some(issuer_tx);
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                match line.strip_prefix("listening on ") {
                    Some(issuer) if issuer_tx.is_some() => {
                        let _ = issuer_tx.take().map(|tx| tx.send(issuer.to_owned()));
                    }
                    _ => eprintln!("provider: {line}"),
                }
            }
        });
        let issuer = tokio::time::timeout(DEADLINE, issuer_rx)
            .await
            .expect("the provider starts in time")
            .expect("the provider listens before it exits");

        // Ready when discovery answers.
        let discovery = format!("{issuer}/.well-known/openid-configuration");
        let http = http_client();
        let ready = tokio::time::timeout(DEADLINE, async {
            loop {
                if let Ok(response) = http.get(&discovery).send().await
                    && response.status().is_success()
                {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        assert!(ready.is_ok(), "discovery at {discovery} never answered");
        Self {
            issuer,
            _child: child,
        }
    }

    /// Writes the client secret to a file in `dir` (as `auth.oidc.client_secret_file` reads it) and
    /// returns `auth.oidc` for this provider.
    pub fn config(&self, dir: &Path) -> atrium::auth::oidc::OidcConfig {
        let secret_file = dir.join("client-secret");
        std::fs::write(&secret_file, format!("{CLIENT_SECRET}\n")).expect("write secret");
        atrium::auth::oidc::OidcConfig {
            issuer: self.issuer.clone(),
            client_id: CLIENT_ID.to_owned(),
            client_secret_env: None,
            client_secret_file: Some(secret_file),
            scopes: ["openid", "email", "profile"].map(String::from).to_vec(),
            display_name: Some("Sign in with Test ID".to_owned()),
        }
    }
}

/// A browser: follows redirects only when told to, keeps cookies per origin (scheme, host, port).
pub struct Browser {
    pub http: reqwest::Client,
    cookies: HashMap<String, HashMap<String, String>>,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

fn origin(url: &url::Url) -> String {
    url.origin().ascii_serialization()
}

impl Browser {
    pub fn new() -> Self {
        Self {
            http: http_client(),
            cookies: HashMap::new(),
        }
    }

    /// The cookie `name` this browser holds for `url`'s origin.
    pub fn cookie(&self, url: &str, name: &str) -> Option<String> {
        let url = url::Url::parse(url).expect("url");
        self.cookies.get(&origin(&url))?.get(name).cloned()
    }

    /// Sets (or with `None` forgets) a cookie for `url`'s origin, as another tab or an attacker
    /// might.
    pub fn set_cookie(&mut self, url: &str, name: &str, value: Option<&str>) {
        let url = url::Url::parse(url).expect("url");
        let jar = self.cookies.entry(origin(&url)).or_default();
        match value {
            Some(value) => jar.insert(name.to_owned(), value.to_owned()),
            None => jar.remove(name),
        };
    }

    /// Sends `request` with the cookies of its origin and keeps the cookies it sets.
    pub async fn send(&mut self, request: reqwest::RequestBuilder) -> reqwest::Response {
        let mut request = request.build().expect("request");
        let key = origin(request.url());
        if let Some(jar) = self.cookies.get(&key).filter(|jar| !jar.is_empty()) {
            let cookie = jar
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect::<Vec<_>>()
                .join("; ");
            request
                .headers_mut()
                .insert(header::COOKIE, cookie.parse().expect("cookie header"));
        }
        let response = self
            .http
            .execute(request)
            .await
            .expect("the server answers");
        let jar = self.cookies.entry(key).or_default();
        for set in response.headers().get_all(header::SET_COOKIE) {
            let set = set.to_str().expect("ascii cookie");
            let pair = set.split(';').next().unwrap_or_default();
            let (name, value) = pair.split_once('=').expect("name=value");
            let lower = set.to_ascii_lowercase();
            let expired = lower.contains("expires=thu, 01 jan 1970") || lower.contains("max-age=0");
            if value.is_empty() || expired {
                jar.remove(name.trim());
            } else {
                jar.insert(name.trim().to_owned(), value.trim().to_owned());
            }
        }
        response
    }

    pub async fn get(&mut self, url: &str) -> reqwest::Response {
        let request = self.http.get(url);
        self.send(request).await
    }

    /// Signs in at the provider as `account` from `authorize_url`, consenting to what is asked, and
    /// returns the URL the provider redirects to that starts with `callback` (not followed).
    pub async fn sign_in_at_provider(
        &mut self,
        authorize_url: &str,
        account: &str,
        callback: &str,
    ) -> String {
        let mut response = self.get(authorize_url).await;
        for _ in 0..20 {
            let url = response.url().clone();
            if response.status().is_redirection() {
                let location = response
                    .headers()
                    .get(header::LOCATION)
                    .expect("location")
                    .to_str()
                    .expect("ascii location");
                let next = url.join(location).expect("location is a URL");
                if next.as_str().starts_with(callback) {
                    return next.into();
                }
                response = self.get(next.as_str()).await;
                continue;
            }
            let status = response.status();
            let html = response.text().await.expect("page");
            assert_eq!(status, reqwest::StatusCode::OK, "{url}: {html}");
            let (action, mut fields) = form(&html);
            match fields.get("prompt").map(String::as_str) {
                // The development login page takes any login name as the account id.
                Some("login") => {
                    fields.insert("login".into(), account.into());
                    fields.insert("password".into(), "any password".into());
                }
                Some("consent") => {}
                other => panic!("unexpected page {url} ({other:?}): {html}"),
            }
            let body = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&fields)
                .finish();
            let request = self
                .http
                .post(url.join(&action).expect("form action"))
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(body);
            response = self.send(request).await;
        }
        panic!("the sign-in did not reach the callback");
    }
}

/// The first form of a page: its action and its fields with their values.
pub fn form(html: &str) -> (String, HashMap<String, String>) {
    let page = scraper::Html::parse_document(html);
    let form_selector = scraper::Selector::parse("form").expect("selector");
    let input_selector = scraper::Selector::parse("input[name]").expect("selector");
    let form = page.select(&form_selector).next().expect("a form");
    let action = form.value().attr("action").expect("action").to_owned();
    let fields = form
        .select(&input_selector)
        .map(|input| {
            let name = input.value().attr("name").unwrap_or_default();
            let value = input.value().attr("value").unwrap_or_default();
            (name.to_owned(), value.to_owned())
        })
        .collect();
    (action, fields)
}

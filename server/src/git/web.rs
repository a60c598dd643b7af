//! Links from an entity back to the file it came from: `backstage.io/source-location`, `view-url` and
//! `edit-url`, in the URL style of the repository's web host.

use super::{GitFile, RemoteKind, RepoSettings};
use crate::config::GitProvider;

pub const ANNOTATION_SOURCE_LOCATION: &str = "backstage.io/source-location";
pub const ANNOTATION_VIEW_URL: &str = "backstage.io/view-url";
pub const ANNOTATION_EDIT_URL: &str = "backstage.io/edit-url";

/// The annotations for an entity read from `file`. Without a web address (a `file://` remote and no
/// `web_url`), only the source location is given, as the remote itself.
pub fn source_annotations(file: &GitFile, settings: &RepoSettings) -> Vec<(&'static str, String)> {
    let Some(base) = web_base(file, settings) else {
        let dir = file.dir();
        let source = if dir.is_empty() {
            format!("url:{}#{}", file.repo.remote, file.repo.branch_or_head())
        } else {
            format!(
                "url:{}#{}:{dir}/",
                file.repo.remote,
                file.repo.branch_or_head()
            )
        };
        return vec![(ANNOTATION_SOURCE_LOCATION, source)];
    };
    let provider = settings.provider.unwrap_or_else(|| guess_provider(&base));
    let branch = file.repo.branch_or_head();
    let path = &file.path;
    let dir = file.dir();
    let (view, edit, tree) = match provider {
        GitProvider::Github => (
            format!("{base}/blob/{branch}/{path}"),
            format!("{base}/edit/{branch}/{path}"),
            format!("{base}/tree/{branch}/{dir}"),
        ),
        GitProvider::Gitlab => (
            format!("{base}/-/blob/{branch}/{path}"),
            format!("{base}/-/edit/{branch}/{path}"),
            format!("{base}/-/tree/{branch}/{dir}"),
        ),
        GitProvider::Gitea => (
            format!("{base}/src/branch/{branch}/{path}"),
            format!("{base}/_edit/{branch}/{path}"),
            format!("{base}/src/branch/{branch}/{dir}"),
        ),
    };
    // Backstage's source locations of directories end with a slash.
    let tree = format!("{}/", tree.trim_end_matches('/'));
    vec![
        (ANNOTATION_SOURCE_LOCATION, format!("url:{tree}")),
        (ANNOTATION_VIEW_URL, view),
        (ANNOTATION_EDIT_URL, edit),
    ]
}

/// The file a git host's web or raw URL shows, as a `git-file` target (`<remote>.git#<branch>:<path>`):
/// how a template registered from such a URL finds the rest of its repository (its skeleton). Known
/// forms, the branch being the one path segment after the marker:
/// - GitHub: `https://raw.githubusercontent.com/<owner>/<repo>/<branch>/<path>` (on `github.com`), and
///   `<repo URL>/blob/<branch>/<path>` or `/raw/<branch>/<path>` on any host;
/// - GitLab: `<repo URL>/-/blob/<branch>/<path>` and `/-/raw/<branch>/<path>`;
/// - Gitea and Forgejo: `<repo URL>/src/branch/<branch>/<path>` and `/raw/branch/<branch>/<path>`.
///
/// `None` for any other URL (a plain web server cannot list a directory).
pub fn git_file_of_web_url(url: &url::Url) -> Option<String> {
    if !matches!(url.scheme(), "https" | "http") || url.query().is_some() {
        return None;
    }
    let origin = match url.port() {
        Some(port) => format!("{}://{}:{port}", url.scheme(), url.host_str()?),
        None => format!("{}://{}", url.scheme(), url.host_str()?),
    };
    let path = url.path().trim_start_matches('/');
    if url.host_str() == Some("raw.githubusercontent.com") {
        let mut parts = path.splitn(4, '/');
        let (owner, repo, branch, file) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        return target(
            "https://github.com",
            &format!("{owner}/{repo}"),
            branch,
            file,
        );
    }
    // The longest markers first: `/raw/branch/` before `/raw/`.
    for marker in [
        "/-/blob/",
        "/-/raw/",
        "/src/branch/",
        "/raw/branch/",
        "/blob/",
        "/raw/",
    ] {
        if let Some((repo, rest)) = format!("/{path}").split_once(marker) {
            let (branch, file) = rest.split_once('/')?;
            return target(&origin, repo.trim_start_matches('/'), branch, file);
        }
    }
    None
}

fn target(origin: &str, repo: &str, branch: &str, file: &str) -> Option<String> {
    let repo = repo.trim_end_matches('/').trim_end_matches(".git");
    let valid =
        |s: &str| !s.is_empty() && s.split('/').all(|p| !p.is_empty() && p != "." && p != "..");
    (valid(repo) && valid(branch) && valid(file))
        .then(|| format!("{origin}/{repo}.git#{branch}:{file}"))
}

/// `https://host/org/repo` for the repository's web pages: the configured `web_url`, else derived from
/// an https or ssh remote.
fn web_base(file: &GitFile, settings: &RepoSettings) -> Option<String> {
    if let Some(web) = &settings.web_url {
        return Some(web.trim_end_matches('/').to_owned());
    }
    let RemoteKind::Network { host, .. } = file.repo.kind() else {
        return None;
    };
    let remote = file.repo.remote.trim_end_matches('/');
    let remote = remote.strip_suffix(".git").unwrap_or(remote);
    let path = match remote.split_once("://") {
        Some((_, rest)) => rest.split_once('/').map(|(_, p)| p)?,
        None => remote.split_once(':').map(|(_, p)| p)?,
    };
    Some(format!("https://{host}/{}", path.trim_matches('/')))
}

fn guess_provider(base: &str) -> GitProvider {
    let host = base.split("://").nth(1).unwrap_or(base).to_lowercase();
    let host = host.split('/').next().unwrap_or_default();
    if host.contains("gitlab") {
        GitProvider::Gitlab
    } else if host.contains("gitea") || host.contains("forgejo") || host.contains("codeberg") {
        GitProvider::Gitea
    } else {
        GitProvider::Github
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn web_and_raw_file_urls_name_their_repository() {
        let of = |u: &str| git_file_of_web_url(&url::Url::parse(u).expect("url"));
        assert_eq!(
            of("https://raw.githubusercontent.com/acme/templates/main/go/template.yaml").as_deref(),
            Some("https://github.com/acme/templates.git#main:go/template.yaml")
        );
        assert_eq!(
            of("https://github.com/acme/templates/blob/main/go/template.yaml").as_deref(),
            Some("https://github.com/acme/templates.git#main:go/template.yaml")
        );
        assert_eq!(
            of("https://gitlab.example.com/g/sub/templates/-/raw/v2/template.yaml").as_deref(),
            Some("https://gitlab.example.com/g/sub/templates.git#v2:template.yaml")
        );
        assert_eq!(
            of("http://127.0.0.1:3000/acme/templates/raw/branch/main/a/template.yaml").as_deref(),
            Some("http://127.0.0.1:3000/acme/templates.git#main:a/template.yaml")
        );
        assert_eq!(of("https://example.com/templates/template.yaml"), None);
        assert_eq!(of("https://github.com/acme/t/blob/main/../x.yaml"), None);
        assert_eq!(
            of("https://github.com/acme/t/blob/main/x.yaml?raw=true"),
            None
        );
    }

    fn settings(web_url: Option<&str>, provider: Option<GitProvider>) -> RepoSettings {
        RepoSettings {
            catalog_files: Vec::new(),
            token_env: None,
            token_file: None,
            username: String::new(),
            ssh_key: None,
            web_url: web_url.map(str::to_owned),
            provider,
            configured: true,
        }
    }

    fn get<'a>(annotations: &'a [(&str, String)], key: &str) -> Option<&'a str> {
        annotations
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn github_links_from_an_ssh_remote() {
        let file = GitFile::parse("git@github.com:acme/payments.git#main:svc/catalog-info.yaml")
            .expect("ok");
        let a = source_annotations(&file, &settings(None, None));
        assert_eq!(
            get(&a, ANNOTATION_VIEW_URL),
            Some("https://github.com/acme/payments/blob/main/svc/catalog-info.yaml")
        );
        assert_eq!(
            get(&a, ANNOTATION_EDIT_URL),
            Some("https://github.com/acme/payments/edit/main/svc/catalog-info.yaml")
        );
        assert_eq!(
            get(&a, ANNOTATION_SOURCE_LOCATION),
            Some("url:https://github.com/acme/payments/tree/main/svc/")
        );
    }

    #[test]
    fn gitlab_and_gitea_styles() {
        let file = GitFile::parse("https://gitlab.example.com/g/r.git#HEAD:catalog-info.yaml")
            .expect("ok");
        let a = source_annotations(&file, &settings(None, None));
        assert_eq!(
            get(&a, ANNOTATION_VIEW_URL),
            Some("https://gitlab.example.com/g/r/-/blob/HEAD/catalog-info.yaml")
        );
        assert_eq!(
            get(&a, ANNOTATION_SOURCE_LOCATION),
            Some("url:https://gitlab.example.com/g/r/-/tree/HEAD/")
        );
        let local = GitFile::parse("file:///srv/git/r.git#main:catalog-info.yaml").expect("ok");
        let a = source_annotations(
            &local,
            &settings(
                Some("https://git.acme.test/acme/r/"),
                Some(GitProvider::Gitea),
            ),
        );
        assert_eq!(
            get(&a, ANNOTATION_EDIT_URL),
            Some("https://git.acme.test/acme/r/_edit/main/catalog-info.yaml")
        );
    }

    #[test]
    fn local_remote_without_web_address_gets_only_a_source_location() {
        let local = GitFile::parse("file:///srv/git/r.git#main:a/catalog-info.yaml").expect("ok");
        let a = source_annotations(&local, &settings(None, None));
        assert_eq!(a.len(), 1);
        assert_eq!(
            get(&a, ANNOTATION_SOURCE_LOCATION),
            Some("url:file:///srv/git/r.git#main:a/")
        );
    }
}

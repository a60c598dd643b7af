//! Repository URL keys: the many spellings of one repository's URL reduced to one string.

/// A key that is equal for every URL of the same repository: `https://github.com/Acme/Payments.git`,
/// `git@github.com:acme/payments.git`, `ssh://git@github.com:22/acme/payments` and
/// `https://token@github.com/acme/payments/` all give `github.com/acme/payments`.
///
/// Remote URLs (`http`, `https`, `ssh`, `git`, `git+ssh`, scp-like `user@host:path`) become
/// `host[:port]/path`: the scheme and user info are dropped, the host and the path are lower-cased
/// (GitHub, GitLab and Gitea resolve owner and repository names case-insensitively), a port is kept
/// unless it is the scheme's default (http 80, https 443, ssh 22, git 9418), and a trailing `/` or
/// `.git` is dropped. A server whose SSH port is not 22 therefore gives different keys for its SSH and
/// HTTP URLs; a push payload names both, so a location registered with either still matches.
///
/// Local repositories (`file://` URLs and absolute paths) become `file://<path>` with their case kept,
/// since file systems may be case-sensitive. `None` when the text is not a repository URL.
pub fn normalize_repo_url(url: &str) -> Option<String> {
    let url = url.trim();
    if url.is_empty() || url.chars().any(char::is_whitespace) {
        return None;
    }
    if let Some(rest) = url.strip_prefix("file://") {
        let path = rest.strip_prefix("localhost").unwrap_or(rest);
        return path.starts_with('/').then(|| local_key(path))?;
    }
    if url.starts_with('/') {
        return local_key(url);
    }

    let (scheme, authority, path) = match url.split_once("://") {
        Some((scheme, rest)) => {
            let scheme = scheme.to_ascii_lowercase();
            if !matches!(
                scheme.as_str(),
                "http" | "https" | "ssh" | "git" | "git+ssh" | "ssh+git"
            ) {
                return None;
            }
            let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
            (Some(scheme), authority, path)
        }
        None => {
            // scp-like syntax: [user@]host:path, with no slash before the colon.
            let (authority, path) = url.split_once(':')?;
            if authority.contains('/') {
                return None;
            }
            (None, authority, path)
        }
    };
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port, mut path) = split_port(host_port, path);
    if host.is_empty() {
        return None;
    }
    let default_port = match scheme.as_deref() {
        Some("http") => Some("80"),
        Some("https") => Some("443"),
        Some("ssh" | "git+ssh" | "ssh+git") | None => Some("22"),
        Some("git") => Some("9418"),
        Some(_) => None,
    };
    let port = port.filter(|p| Some(*p) != default_port);

    if scheme.as_deref().is_some_and(|s| s.starts_with("http")) {
        path = path.split(['?', '#']).next().unwrap_or_default().to_owned();
    }
    let path = repo_path(&path)?.to_lowercase();
    let host = host.to_ascii_lowercase();
    Some(match port {
        Some(port) => format!("{host}:{port}/{path}"),
        None => format!("{host}/{path}"),
    })
}

/// Splits `host[:port]` (IPv6 in brackets). A port that is not a number, as in the common mistake
/// `ssh://git@host:owner/repo`, is the start of the path.
fn split_port<'a>(host_port: &'a str, path: &str) -> (&'a str, Option<&'a str>, String) {
    let split_at = if host_port.starts_with('[') {
        host_port
            .find(']')
            .and_then(|end| host_port[end + 1..].starts_with(':').then_some(end + 1))
    } else {
        host_port.rfind(':')
    };
    match split_at {
        Some(i) => {
            let (host, port) = (&host_port[..i], &host_port[i + 1..]);
            if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) {
                (host, Some(port), path.to_owned())
            } else if port.is_empty() {
                (host, None, path.to_owned())
            } else {
                (host, None, format!("{port}/{path}"))
            }
        }
        None => (host_port, None, path.to_owned()),
    }
}

/// `a//b/repo.git/` → `a/b/repo`; `None` when nothing is left.
fn repo_path(path: &str) -> Option<String> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let (last, rest) = segments.split_last()?;
    let last = strip_git_suffix(last);
    if last.is_empty() {
        return None;
    }
    let mut joined = rest.join("/");
    if !joined.is_empty() {
        joined.push('/');
    }
    joined.push_str(last);
    Some(joined)
}

fn strip_git_suffix(name: &str) -> &str {
    match name.len().checked_sub(4) {
        Some(cut) if name.is_char_boundary(cut) && name[cut..].eq_ignore_ascii_case(".git") => {
            &name[..cut]
        }
        _ => name,
    }
}

fn local_key(path: &str) -> Option<String> {
    let path = repo_path(path)?;
    Some(format!("file:///{path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_urls_of_one_repository_share_a_key() {
        for url in [
            "https://github.com/Acme/Payments.git",
            "git@github.com:acme/payments.git",
            "ssh://git@github.com:22/acme/payments",
            "https://token@github.com/acme/payments/",
            "http://github.com/acme/payments",
            "https://github.com:443/acme/payments.git/",
            "HTTPS://GitHub.com/acme/payments",
            "git+ssh://git@github.com/acme/payments.git",
            "git://github.com/acme/payments.git",
            "ssh://git@github.com:acme/payments.git",
            "https://github.com/acme/payments?tab=readme#top",
            "  https://github.com//acme/payments.GIT  ",
        ] {
            assert_eq!(
                normalize_repo_url(url).as_deref(),
                Some("github.com/acme/payments"),
                "{url}"
            );
        }
    }

    #[test]
    fn non_default_ports_and_subgroups_are_kept() {
        assert_eq!(
            normalize_repo_url("ssh://gitea@localhost:2222/gitea/webhooks.git").as_deref(),
            Some("localhost:2222/gitea/webhooks")
        );
        assert_eq!(
            normalize_repo_url("https://git.example.com:8443/Platform/Team/Svc").as_deref(),
            Some("git.example.com:8443/platform/team/svc")
        );
        // Port 443 is only the default for https.
        assert_eq!(
            normalize_repo_url("http://git.example.com:443/a/b").as_deref(),
            Some("git.example.com:443/a/b")
        );
        assert_eq!(
            normalize_repo_url("https://[::1]:3000/a/b.git").as_deref(),
            Some("[::1]:3000/a/b")
        );
    }

    #[test]
    fn local_repositories_keep_their_case() {
        for url in [
            "file:///srv/git/payments.git",
            "file:///srv/git/payments/",
            "file://localhost/srv/git/payments.git",
            "/srv/git/payments.git",
        ] {
            assert_eq!(
                normalize_repo_url(url).as_deref(),
                Some("file:///srv/git/payments"),
                "{url}"
            );
        }
        assert_eq!(
            normalize_repo_url("file:///srv/Git/Payments.git").as_deref(),
            Some("file:///srv/Git/Payments")
        );
    }

    #[test]
    fn non_repository_text_has_no_key() {
        for url in [
            "",
            "payments",
            "https://github.com/",
            "https://github.com",
            "https:///acme/payments",
            "ftp://github.com/acme/payments",
            "file://server/share/repo",
            "git@github.com:",
            "a/b:c",
            "https://github.com/acme/pay ments",
            "https://github.com/acme/.git",
        ] {
            assert_eq!(normalize_repo_url(url), None, "{url:?}");
        }
    }
}

//! Container image references, normalised the way docker and the kubelet read them:
//! `nginx` is `docker.io/library/nginx`, `acme/app` is `docker.io/acme/app`, and a first path
//! segment is a registry host only when it contains `.` or `:` or is `localhost`.

/// Registry assumed for references without an explicit host.
const DEFAULT_REGISTRY: &str = "docker.io";

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ImageRef {
    /// Registry host (lower-cased, may carry a port), e.g. `ghcr.io`, `localhost:5000`.
    pub registry: String,
    /// Repository path inside the registry, e.g. `library/nginx`.
    pub repository: String,
    pub tag: Option<String>,
    /// `algorithm:hex`, e.g. `sha256:...`.
    pub digest: Option<String>,
}

impl ImageRef {
    /// `registry/repository`, without tag or digest.
    pub(super) fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The fully qualified reference, e.g. `docker.io/library/nginx:1.25`.
    pub(super) fn normalized(&self) -> String {
        let mut s = self.name();
        if let Some(tag) = &self.tag {
            s.push(':');
            s.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            s.push('@');
            s.push_str(digest);
        }
        s
    }
}

fn canonical_host(host: &str) -> String {
    let host = host.to_ascii_lowercase();
    if host == "index.docker.io" {
        DEFAULT_REGISTRY.to_owned()
    } else {
        host
    }
}

fn valid_host(host: &str) -> bool {
    let (name, port) = match host.split_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (host, None),
    };
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-'))
        && port
            .is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.chars().all(|c| c.is_ascii_digit()))
}

fn valid_path_segment(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
}

fn valid_tag(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

fn valid_digest(s: &str) -> bool {
    match s.split_once(':') {
        Some((algo, hex)) => {
            !algo.is_empty()
                && algo
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '_' | '-'))
                && hex.len() >= 32
                && hex.chars().all(|c| c.is_ascii_hexdigit())
        }
        None => false,
    }
}

/// Parses and normalises an image reference; the error says why it is not one.
pub(super) fn parse_image(image: &str) -> Result<ImageRef, String> {
    if image.is_empty() {
        return Err("image is empty".to_owned());
    }
    if image.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("image contains whitespace".to_owned());
    }
    let (rest, digest) = match image.split_once('@') {
        Some((rest, digest)) => {
            if !valid_digest(digest) {
                return Err(format!("invalid digest `{digest}`"));
            }
            (rest, Some(digest.to_owned()))
        }
        None => (image, None),
    };
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].find(':') {
        Some(i) => {
            let at = last_slash + i;
            let tag = &rest[at + 1..];
            if !valid_tag(tag) {
                return Err(format!("invalid tag `{tag}`"));
            }
            (&rest[..at], Some(tag.to_owned()))
        }
        None => (rest, None),
    };
    let (registry, repository) = match name.split_once('/') {
        Some((first, path))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (canonical_host(first), path.to_owned())
        }
        _ => (DEFAULT_REGISTRY.to_owned(), name.to_owned()),
    };
    if !valid_host(&registry) {
        return Err(format!("invalid registry host `{registry}`"));
    }
    let repository = if registry == DEFAULT_REGISTRY && !repository.contains('/') {
        format!("library/{repository}")
    } else {
        repository
    };
    if !repository.split('/').all(valid_path_segment) {
        return Err(format!(
            "invalid repository `{repository}` (lower-case letters, digits, `.`, `_`, `-` only)"
        ));
    }
    Ok(ImageRef {
        registry,
        repository,
        tag,
        digest,
    })
}

/// Normalises one `allowed_registries` entry: host lower-cased, trailing `/` dropped.
/// The first segment is always the host (entries name registries, not images).
fn normalize_entry(entry: &str) -> String {
    let entry = entry.trim().trim_end_matches('/');
    match entry.split_once('/') {
        Some((host, path)) => format!("{}/{path}", canonical_host(host)),
        None => canonical_host(entry),
    }
}

/// Whether the image's `registry/repository` equals an entry or lies below it on a
/// path-segment boundary (`ghcr.io/acme` allows `ghcr.io/acme/x`, not `ghcr.io/acme-evil/x`).
pub(super) fn registry_allowed(image: &ImageRef, allowed: &[String]) -> bool {
    let name = image.name();
    allowed.iter().any(|entry| {
        let entry = normalize_entry(entry);
        !entry.is_empty()
            && (name == entry
                || name
                    .strip_prefix(entry.as_str())
                    .is_some_and(|rest| rest.starts_with('/')))
    })
}

#[cfg(test)]
mod tests {
    use super::{parse_image, registry_allowed};

    fn norm(s: &str) -> String {
        parse_image(s).expect("valid image").normalized()
    }

    #[test]
    fn normalises_like_docker() {
        assert_eq!(norm("nginx:1.25"), "docker.io/library/nginx:1.25");
        assert_eq!(norm("nginx"), "docker.io/library/nginx");
        assert_eq!(norm("acme/app:1"), "docker.io/acme/app:1");
        assert_eq!(norm("docker.io/nginx:1"), "docker.io/library/nginx:1");
        assert_eq!(norm("index.docker.io/acme/app:2"), "docker.io/acme/app:2");
        assert_eq!(norm("ghcr.io/acme/app:v1"), "ghcr.io/acme/app:v1");
        assert_eq!(norm("localhost/app:1"), "localhost/app:1");
        assert_eq!(norm("localhost:5000/app"), "localhost:5000/app");
        assert_eq!(norm("registry:5000/team/app:3"), "registry:5000/team/app:3");
        assert_eq!(norm("Quay.IO/org/app:1"), "quay.io/org/app:1");
        let digest = format!("sha256:{}", "a".repeat(64));
        let r = parse_image(&format!("ghcr.io/acme/app@{digest}")).expect("valid");
        assert_eq!(r.tag, None);
        assert_eq!(r.digest.as_deref(), Some(digest.as_str()));
        let r = parse_image(&format!("app:latest@{digest}")).expect("valid");
        assert_eq!(r.tag.as_deref(), Some("latest"));
        assert_eq!(r.name(), "docker.io/library/app");
    }

    #[test]
    fn rejects_malformed_references() {
        for bad in [
            "",
            "nginx:",
            "ng inx",
            "ghcr.io//app",
            "Acme/App:1",
            "app@sha256:xyz",
            "app:a/b",
        ] {
            assert!(parse_image(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn registry_prefixes_match_whole_segments() {
        let allowed = vec![
            "ghcr.io/acme".to_owned(),
            "registry.example.com/".to_owned(),
            "docker.io/library".to_owned(),
        ];
        let ok = |s: &str| registry_allowed(&parse_image(s).expect("valid"), &allowed);
        assert!(ok("ghcr.io/acme/app:1"));
        assert!(ok("ghcr.io/acme/team/app:1"));
        assert!(!ok("ghcr.io/acme-evil/x:1"));
        assert!(!ok("ghcr.io/acmex:1"));
        assert!(ok("registry.example.com/anything/here:1"));
        assert!(ok("REGISTRY.example.com/a:1"));
        assert!(!ok("registry.example.com.evil.io/a:1"));
        assert!(ok("nginx:1.25"));
        assert!(!ok("acme/app:1"));
        assert!(!registry_allowed(
            &parse_image("nginx:1").expect("valid"),
            &[]
        ));
        let hub = vec!["docker.io".to_owned()];
        assert!(registry_allowed(
            &parse_image("acme/app:1").expect("valid"),
            &hub
        ));
    }
}

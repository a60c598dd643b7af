//! `parse` against deliveries shaped like the providers' documented samples.

use axum::http::HeaderValue;

use super::*;

const SECRET: &str = "It's a Secret to Everybody";

fn secrets() -> WebhookSecrets {
    WebhookSecrets {
        github: Some(SECRET.into()),
        gitlab: Some(SECRET.into()),
        gitea: Some(SECRET.into()),
    }
}

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.insert(*name, HeaderValue::from_str(value).expect("header value"));
    }
    map
}

fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A GitHub push delivery as GitHub documents it (trimmed to the fields a receiver reads plus a
/// few neighbours).
const GITHUB_PUSH: &str = include_str!("testdata/github-push.json");

const GITHUB_PING: &str = include_str!("testdata/github-ping.json");

/// GitLab's documented push hook example.
const GITLAB_PUSH: &str = include_str!("testdata/gitlab-push.json");

/// Gitea's documented push example.
const GITEA_PUSH: &str = include_str!("testdata/gitea-push.json");

fn github_headers(event: &str, body: &str, secret: &str) -> HeaderMap {
    headers(&[
        ("x-github-event", event),
        ("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
        (
            "x-hub-signature-256",
            &format!("sha256={}", sign(secret, body.as_bytes())),
        ),
        ("content-type", "application/json"),
        ("user-agent", "GitHub-Hookshot/044aadd"),
    ])
}

/// Gitea's and Forgejo's full header set, GitHub-compatible headers included.
fn gitea_headers(event: &str, body: &str, secret: &str, forgejo: bool) -> HeaderMap {
    let signature = sign(secret, body.as_bytes());
    let mut map = headers(&[
        ("x-gitea-event", event),
        ("x-gitea-event-type", event),
        ("x-gitea-signature", &signature),
        ("x-gogs-event", event),
        ("x-gogs-signature", &signature),
        ("x-hub-signature-256", &format!("sha256={signature}")),
        ("x-github-event", event),
        ("x-github-event-type", event),
        ("content-type", "application/json"),
    ]);
    if forgejo {
        map.insert("x-forgejo-event", HeaderValue::from_str(event).expect("v"));
        map.insert(
            "x-forgejo-signature",
            HeaderValue::from_str(&signature).expect("v"),
        );
    }
    map
}

fn gitlab_headers(event: &str, token: Option<&str>) -> HeaderMap {
    let mut map = headers(&[
        ("x-gitlab-event", event),
        ("x-gitlab-instance", "https://gitlab.example.com"),
        ("content-type", "application/json"),
    ]);
    if let Some(token) = token {
        map.insert("x-gitlab-token", HeaderValue::from_str(token).expect("v"));
    }
    map
}

fn push(result: Result<Parsed, WebhookError>) -> PushEvent {
    match result {
        Ok(Parsed::Push(event)) => event,
        other => panic!("expected a push, got {other:?}"),
    }
}

#[test]
fn github_push_with_valid_signature_is_read() {
    let event = push(parse(
        &github_headers("push", GITHUB_PUSH, SECRET),
        GITHUB_PUSH.as_bytes(),
        &secrets(),
    ));
    assert_eq!(event.provider, Provider::GitHub);
    assert_eq!(
        event.repository_urls,
        [
            "https://github.com/Codertocat/Hello-World.git",
            "git@github.com:Codertocat/Hello-World.git",
            "https://github.com/Codertocat/Hello-World",
        ]
    );
    assert_eq!(event.git_ref.as_deref(), Some("refs/heads/main"));
    assert_eq!(event.default_branch.as_deref(), Some("main"));
    assert_eq!(
        event.after.as_deref(),
        Some("0000000000000000000000000000000000000001")
    );
    assert!(event.is_default_branch());
    assert_eq!(
        event.repository_keys(),
        ["github.com/codertocat/hello-world"]
    );
}

#[test]
fn github_signature_from_the_docs_example_is_accepted() {
    // GitHub's "validating webhook deliveries" test values.
    let body = "Hello, World!";
    let mut map = headers(&[
        ("x-github-event", "push"),
        (
            "x-hub-signature-256",
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        ),
    ]);
    let result = parse(&map, body.as_bytes(), &secrets());
    // Authentic, but not a push payload.
    assert!(
        matches!(result, Err(WebhookError::BadPayload { .. })),
        "{result:?}"
    );
    map.insert(
        "x-hub-signature-256",
        HeaderValue::from_static(
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e18",
        ),
    );
    let result = parse(&map, body.as_bytes(), &secrets());
    assert!(
        matches!(result, Err(WebhookError::Unauthorized { .. })),
        "{result:?}"
    );
}

#[test]
fn github_wrong_signature_is_unauthorized() {
    let map = github_headers("push", GITHUB_PUSH, "another secret");
    let err = parse(&map, GITHUB_PUSH.as_bytes(), &secrets()).expect_err("refused");
    assert_eq!(err.status(), StatusCode::UNAUTHORIZED);
    let message = err.to_string();
    assert!(message.contains("X-Hub-Signature-256"), "{message}");
    assert!(
        message.contains("ATRIUM_WEBHOOK_SECRET_GITHUB"),
        "{message}"
    );
    assert!(!message.contains(SECRET), "never shows the secret");
}

#[test]
fn github_tampered_body_is_unauthorized() {
    let map = github_headers("push", GITHUB_PUSH, SECRET);
    let tampered = GITHUB_PUSH.replace("Hello-World", "Evil-World");
    let err = parse(&map, tampered.as_bytes(), &secrets()).expect_err("refused");
    assert!(matches!(err, WebhookError::Unauthorized { .. }), "{err}");
}

#[test]
fn github_missing_or_malformed_signature_is_unauthorized() {
    let mut map = github_headers("push", GITHUB_PUSH, SECRET);
    map.remove("x-hub-signature-256");
    let err = parse(&map, GITHUB_PUSH.as_bytes(), &secrets()).expect_err("refused");
    assert_eq!(err.status(), StatusCode::UNAUTHORIZED);
    assert!(
        err.to_string()
            .contains("X-Hub-Signature-256 header is missing")
    );

    map.insert("x-hub-signature", HeaderValue::from_static("sha1=0123"));
    let err = parse(&map, GITHUB_PUSH.as_bytes(), &secrets()).expect_err("refused");
    assert!(err.to_string().contains("SHA-1"), "{err}");

    let bare = sign(SECRET, GITHUB_PUSH.as_bytes());
    map.insert(
        "x-hub-signature-256",
        HeaderValue::from_str(&bare).expect("v"),
    );
    let err = parse(&map, GITHUB_PUSH.as_bytes(), &secrets()).expect_err("refused");
    assert!(err.to_string().contains("sha256="), "{err}");

    map.insert("x-hub-signature-256", HeaderValue::from_static("sha256=zz"));
    let err = parse(&map, GITHUB_PUSH.as_bytes(), &secrets()).expect_err("refused");
    assert!(matches!(err, WebhookError::Unauthorized { .. }), "{err}");
}

#[test]
fn github_without_configured_secret_names_the_setting() {
    let map = github_headers("push", GITHUB_PUSH, SECRET);
    for github in [None, Some(String::new())] {
        let secrets = WebhookSecrets {
            github,
            ..secrets()
        };
        let err = parse(&map, GITHUB_PUSH.as_bytes(), &secrets).expect_err("refused");
        assert_eq!(err.status(), StatusCode::FORBIDDEN);
        let message = err.to_string();
        assert!(
            message.starts_with("GitHub webhooks are not enabled"),
            "{message}"
        );
        assert!(
            message.contains("ATRIUM_WEBHOOK_SECRET_GITHUB"),
            "{message}"
        );
    }
}

#[test]
fn github_ping_is_ignored_once_authenticated() {
    let map = github_headers("ping", GITHUB_PING, SECRET);
    let parsed = parse(&map, GITHUB_PING.as_bytes(), &secrets()).expect("authentic");
    assert_eq!(
        parsed,
        Parsed::Ignored {
            provider: Provider::GitHub,
            event: "ping".into()
        }
    );
    let forged = github_headers("ping", GITHUB_PING, "guess");
    assert!(parse(&forged, GITHUB_PING.as_bytes(), &secrets()).is_err());
}

#[test]
fn malformed_json_is_bad_payload() {
    let body = r#"{"ref": "refs/heads/main", "repository": "#;
    let err = parse(
        &github_headers("push", body, SECRET),
        body.as_bytes(),
        &secrets(),
    )
    .expect_err("refused");
    assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    assert!(
        err.to_string()
            .starts_with("GitHub webhook payload: the body is not valid JSON")
    );

    let form = "payload=%7B%22ref%22%3A%22refs%2Fheads%2Fmain%22%7D";
    let err = parse(
        &github_headers("push", form, SECRET),
        form.as_bytes(),
        &secrets(),
    )
    .expect_err("refused");
    assert!(err.to_string().contains("application/json"), "{err}");
}

#[test]
fn push_without_repository_names_the_missing_field() {
    let body = r#"{"ref": "refs/heads/main", "after": "abc"}"#;
    let err = parse(
        &github_headers("push", body, SECRET),
        body.as_bytes(),
        &secrets(),
    )
    .expect_err("refused");
    assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    assert!(
        err.to_string().contains("`repository` object is missing"),
        "{err}"
    );

    let body = r#"{"ref": "refs/heads/main", "repository": {"name": "x"}}"#;
    let err = parse(
        &github_headers("push", body, SECRET),
        body.as_bytes(),
        &secrets(),
    )
    .expect_err("refused");
    let message = err.to_string();
    assert!(
        message.contains("repository.clone_url, repository.ssh_url, repository.html_url"),
        "{message}"
    );
}

#[test]
fn gitlab_push_with_valid_token_is_read() {
    let event = push(parse(
        &gitlab_headers("Push Hook", Some(SECRET)),
        GITLAB_PUSH.as_bytes(),
        &secrets(),
    ));
    assert_eq!(event.provider, Provider::GitLab);
    assert_eq!(
        event.repository_urls,
        [
            "http://example.com/mike/diaspora.git",
            "git@example.com:mike/diaspora.git",
            "http://example.com/mike/diaspora",
        ]
    );
    assert_eq!(event.git_ref.as_deref(), Some("refs/heads/master"));
    assert_eq!(event.default_branch.as_deref(), Some("master"));
    assert_eq!(
        event.after.as_deref(),
        Some("da1560886d4f094c3e6c9ef40349f7d38b5d27d7")
    );
    assert!(event.is_default_branch());
    assert_eq!(event.repository_keys(), ["example.com/mike/diaspora"]);
}

#[test]
fn gitlab_older_payload_with_only_repository_is_read() {
    let body = r#"{"object_kind": "push", "ref": "refs/heads/main", "after": "abc",
        "repository": {"name": "Diaspora", "url": "git@example.com:mike/diaspora.git",
        "homepage": "http://example.com/mike/diaspora"}}"#;
    let event = push(parse(
        &gitlab_headers("Push Hook", Some(SECRET)),
        body.as_bytes(),
        &secrets(),
    ));
    assert_eq!(
        event.repository_urls,
        [
            "http://example.com/mike/diaspora",
            "git@example.com:mike/diaspora.git"
        ]
    );
    assert_eq!(event.default_branch, None);
}

#[test]
fn gitlab_tag_push_and_system_hook_push_are_pushes() {
    let tag = GITLAB_PUSH
        .replace("\"object_kind\": \"push\"", "\"object_kind\": \"tag_push\"")
        .replace("refs/heads/master", "refs/tags/v1.0.0");
    let event = push(parse(
        &gitlab_headers("Tag Push Hook", Some(SECRET)),
        tag.as_bytes(),
        &secrets(),
    ));
    assert_eq!(event.git_ref.as_deref(), Some("refs/tags/v1.0.0"));
    assert!(!event.is_default_branch());

    let event = push(parse(
        &gitlab_headers("System Hook", Some(SECRET)),
        GITLAB_PUSH.as_bytes(),
        &secrets(),
    ));
    assert_eq!(event.repository_keys(), ["example.com/mike/diaspora"]);

    let project_created = r#"{"event_name": "project_create", "name": "StoreCloud",
        "path_with_namespace": "jsmith/storecloud", "project_id": 74}"#;
    let parsed = parse(
        &gitlab_headers("System Hook", Some(SECRET)),
        project_created.as_bytes(),
        &secrets(),
    )
    .expect("authentic");
    assert_eq!(
        parsed,
        Parsed::Ignored {
            provider: Provider::GitLab,
            event: "System Hook: project_create".into()
        }
    );
}

#[test]
fn gitlab_wrong_or_missing_token_is_unauthorized() {
    for token in [
        Some("It's a Secret to Everybody!"),
        Some("It's"),
        Some(""),
        None,
    ] {
        let err = parse(
            &gitlab_headers("Push Hook", token),
            GITLAB_PUSH.as_bytes(),
            &secrets(),
        )
        .expect_err("refused");
        assert_eq!(err.status(), StatusCode::UNAUTHORIZED, "{token:?}: {err}");
        assert!(err.to_string().contains("X-Gitlab-Token"), "{err}");
    }
}

#[test]
fn gitlab_without_configured_secret_names_the_setting() {
    let secrets = WebhookSecrets {
        gitlab: None,
        ..secrets()
    };
    let err = parse(
        &gitlab_headers("Push Hook", Some(SECRET)),
        GITLAB_PUSH.as_bytes(),
        &secrets,
    )
    .expect_err("refused");
    assert_eq!(err.status(), StatusCode::FORBIDDEN);
    assert!(err.to_string().contains("ATRIUM_WEBHOOK_SECRET_GITLAB"));
}

#[test]
fn gitlab_other_events_and_bad_json() {
    let body = r#"{"object_kind": "merge_request"}"#;
    let parsed = parse(
        &gitlab_headers("Merge Request Hook", Some(SECRET)),
        body.as_bytes(),
        &secrets(),
    )
    .expect("authentic");
    assert!(matches!(parsed, Parsed::Ignored { ref event, .. } if event == "Merge Request Hook"));

    let err = parse(
        &gitlab_headers("Push Hook", Some(SECRET)),
        b"not json",
        &secrets(),
    )
    .expect_err("refused");
    assert_eq!(err.status(), StatusCode::BAD_REQUEST);

    let body = r#"{"object_kind": "push", "ref": "refs/heads/main"}"#;
    let err = parse(
        &gitlab_headers("Push Hook", Some(SECRET)),
        body.as_bytes(),
        &secrets(),
    )
    .expect_err("refused");
    assert!(
        err.to_string().contains("`project` object is missing"),
        "{err}"
    );
}

#[test]
fn gitea_push_is_detected_before_github() {
    // Gitea sends X-GitHub-Event and X-Hub-Signature-256 too; only the Gitea secret is configured,
    // so a delivery read as GitHub's would fail.
    let secrets = WebhookSecrets {
        github: None,
        gitlab: None,
        gitea: Some(SECRET.into()),
    };
    let map = gitea_headers("push", GITEA_PUSH, SECRET, false);
    let event = push(parse(&map, GITEA_PUSH.as_bytes(), &secrets));
    assert_eq!(event.provider, Provider::Gitea);
    assert_eq!(
        event.repository_urls,
        [
            "http://localhost:3000/gitea/webhooks.git",
            "ssh://gitea@localhost:2222/gitea/webhooks.git",
            "http://localhost:3000/gitea/webhooks",
        ]
    );
    assert_eq!(event.git_ref.as_deref(), Some("refs/heads/develop"));
    assert_eq!(event.default_branch.as_deref(), Some("master"));
    assert!(!event.is_default_branch());
    assert_eq!(
        event.repository_keys(),
        [
            "localhost:3000/gitea/webhooks",
            "localhost:2222/gitea/webhooks"
        ]
    );

    // And with a different GitHub secret configured, the Gitea one is still the one used.
    let both = WebhookSecrets {
        github: Some("github secret".into()),
        ..secrets
    };
    assert!(matches!(
        parse(&map, GITEA_PUSH.as_bytes(), &both),
        Ok(Parsed::Push(_))
    ));
}

#[test]
fn forgejo_push_uses_the_gitea_secret() {
    let map = gitea_headers("push", GITEA_PUSH, SECRET, true);
    let event = push(parse(&map, GITEA_PUSH.as_bytes(), &secrets()));
    assert_eq!(event.provider, Provider::Gitea);

    // Forgejo alone (no X-Gitea-* headers) is recognised too.
    let signature = sign(SECRET, GITEA_PUSH.as_bytes());
    let only_forgejo = headers(&[
        ("x-forgejo-event", "push"),
        ("x-forgejo-signature", &signature),
    ]);
    assert!(matches!(
        parse(&only_forgejo, GITEA_PUSH.as_bytes(), &secrets()),
        Ok(Parsed::Push(_))
    ));
}

#[test]
fn gitea_wrong_missing_or_prefixed_signature_is_unauthorized() {
    let wrong = gitea_headers("push", GITEA_PUSH, "not the secret", false);
    let err = parse(&wrong, GITEA_PUSH.as_bytes(), &secrets()).expect_err("refused");
    assert_eq!(err.status(), StatusCode::UNAUTHORIZED);
    assert!(
        err.to_string().contains("X-Gitea-Signature does not match"),
        "{err}"
    );
    assert!(err.to_string().contains("ATRIUM_WEBHOOK_SECRET_GITEA"));

    // Gitea sends an empty signature when the hook has no secret.
    let mut unsigned = gitea_headers("push", GITEA_PUSH, SECRET, false);
    unsigned.insert("x-gitea-signature", HeaderValue::from_static(""));
    let err = parse(&unsigned, GITEA_PUSH.as_bytes(), &secrets()).expect_err("refused");
    assert!(err.to_string().contains("missing or empty"), "{err}");

    // No prefix on Gitea's signature: GitHub's form is not accepted in X-Gitea-Signature.
    let mut prefixed = gitea_headers("push", GITEA_PUSH, SECRET, false);
    let value = format!("sha256={}", sign(SECRET, GITEA_PUSH.as_bytes()));
    prefixed.insert(
        "x-gitea-signature",
        HeaderValue::from_str(&value).expect("v"),
    );
    assert!(parse(&prefixed, GITEA_PUSH.as_bytes(), &secrets()).is_err());
}

#[test]
fn gitea_without_configured_secret_and_other_events() {
    let map = gitea_headers("push", GITEA_PUSH, SECRET, false);
    let secrets_without = WebhookSecrets {
        gitea: None,
        ..secrets()
    };
    let err = parse(&map, GITEA_PUSH.as_bytes(), &secrets_without).expect_err("refused");
    assert_eq!(err.status(), StatusCode::FORBIDDEN);
    assert!(
        err.to_string().contains("ATRIUM_WEBHOOK_SECRET_GITEA"),
        "{err}"
    );

    let body = r#"{"action": "opened", "number": 1}"#;
    let map = gitea_headers("issues", body, SECRET, false);
    assert_eq!(
        parse(&map, body.as_bytes(), &secrets()).expect("authentic"),
        Parsed::Ignored {
            provider: Provider::Gitea,
            event: "issues".into()
        }
    );

    let body = "{\"ref\": ";
    let map = gitea_headers("push", body, SECRET, false);
    let err = parse(&map, body.as_bytes(), &secrets()).expect_err("refused");
    assert!(
        err.to_string()
            .starts_with("Gitea webhook payload: the body is not valid JSON")
    );
}

#[test]
fn unknown_sender_is_a_user_error() {
    let map = headers(&[
        ("content-type", "application/json"),
        ("x-hub-signature-256", "sha256=00"),
    ]);
    let err = parse(&map, b"{}", &secrets()).expect_err("refused");
    assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    assert!(err.to_string().contains("X-GitHub-Event"), "{err}");
}

#[test]
fn secrets_are_not_printed_by_debug() {
    let shown = format!("{:?}", secrets());
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(shown.contains("github: \"****\""), "{shown}");
}

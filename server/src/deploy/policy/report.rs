//! The offline entry point behind `atrium policy test FILE...`.

use std::fmt;

use super::config::PolicyConfig;
use super::manifests::{ManifestError, parse_manifests};
use super::{Scope, Violation, check};

/// The result of checking one file.
#[derive(Debug, Clone)]
pub struct FileReport {
    /// The file name as given.
    pub name: String,
    /// Objects read from the file (after `List` flattening).
    pub objects: usize,
    /// Violations, objects named `FILE:Kind/namespace/name`.
    pub violations: Vec<Violation>,
    /// Why the file could not be parsed, if it could not (then nothing was checked).
    pub error: Option<ManifestError>,
}

/// The result of [`test_files`].
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub files: Vec<FileReport>,
}

impl Report {
    /// No violations and no unreadable files.
    pub fn is_clean(&self) -> bool {
        self.files
            .iter()
            .all(|f| f.violations.is_empty() && f.error.is_none())
    }

    /// Every violation of every file, in order.
    pub fn violations(&self) -> impl Iterator<Item = &Violation> {
        self.files.iter().flat_map(|f| f.violations.iter())
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

impl fmt::Display for Report {
    /// One line per violation or parse error, then a summary line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for file in &self.files {
            if let Some(err) = &file.error {
                writeln!(f, "parse-error: {err}")?;
            }
            for v in &file.violations {
                writeln!(f, "{v}")?;
            }
        }
        let files = self.files.len();
        if self.is_clean() {
            let objects = self.files.iter().map(|f| f.objects).sum();
            return write!(
                f,
                "ok: {} in {}, no violations",
                plural(objects, "object", "objects"),
                plural(files, "file", "files")
            );
        }
        let violations = self.violations().count();
        let errors = self.files.iter().filter(|f| f.error.is_some()).count();
        let bad_files = self
            .files
            .iter()
            .filter(|f| f.error.is_some() || !f.violations.is_empty())
            .count();
        let mut summary = plural(violations, "violation", "violations");
        if errors > 0 {
            summary.push_str(&format!(
                ", {}",
                plural(errors, "parse error", "parse errors")
            ));
        }
        write!(f, "{summary} in {}", plural(bad_files, "file", "files"))
    }
}

/// Checks each `(name, text)` file as one rendered manifest set (so `max_manifest_bytes`
/// applies per file) and reports violations and parse errors per file.
pub fn test_files(policy: &PolicyConfig, scope: &Scope<'_>, files: &[(String, String)]) -> Report {
    let files = files
        .iter()
        .map(|(name, text)| match parse_manifests(text, name) {
            Ok(objects) => FileReport {
                name: name.clone(),
                objects: objects.len(),
                violations: check(policy, scope, &objects, text.len())
                    .into_iter()
                    .map(|v| Violation {
                        object: format!("{name}:{}", v.object),
                        ..v
                    })
                    .collect(),
                error: None,
            },
            Err(err) => FileReport {
                name: name.clone(),
                objects: 0,
                violations: Vec::new(),
                error: Some(err),
            },
        })
        .collect();
    Report { files }
}

#[cfg(test)]
mod tests {
    use super::super::{PolicyConfig, Scope, ids};
    use super::test_files;

    const GOOD: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data: {a: b}
---
apiVersion: v1
kind: Service
metadata: {name: svc, namespace: team-a}
spec:
  ports: [{port: 80}]
"#;

    const BAD: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  hostNetwork: true
  containers: []
---
apiVersion: v1
kind: Namespace
metadata: {name: other}
"#;

    fn scope_names() -> Vec<String> {
        vec!["team-a".to_owned()]
    }

    #[test]
    fn clean_report() {
        let names = scope_names();
        let scope = Scope {
            allowed_namespaces: &names,
            default_namespace: "team-a",
        };
        let files = vec![
            ("a.yaml".to_owned(), GOOD.to_owned()),
            (
                "b.yaml".to_owned(),
                "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n".to_owned(),
            ),
        ];
        let report = test_files(&PolicyConfig::default(), &scope, &files);
        assert!(report.is_clean());
        assert_eq!(
            report.to_string(),
            "ok: 3 objects in 2 files, no violations"
        );
    }

    #[test]
    fn violations_and_parse_errors() {
        let names = scope_names();
        let scope = Scope {
            allowed_namespaces: &names,
            default_namespace: "team-a",
        };
        let files = vec![
            ("good.yaml".to_owned(), GOOD.to_owned()),
            ("bad.yaml".to_owned(), BAD.to_owned()),
            ("broken.yaml".to_owned(), "kind: [\n".to_owned()),
        ];
        let report = test_files(&PolicyConfig::default(), &scope, &files);
        assert!(!report.is_clean());
        let got: Vec<_> = report
            .violations()
            .map(|v| (v.rule, v.object.as_str(), v.path.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    ids::PSS_HOST_NAMESPACES,
                    "bad.yaml:Pod/team-a/p",
                    "spec.hostNetwork"
                ),
                (ids::CLUSTER_SCOPED, "bad.yaml:Namespace/other", "kind"),
            ]
        );
        let text = report.to_string();
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(
            lines[0].starts_with("pss-host-namespaces: bad.yaml:Pod/team-a/p spec.hostNetwork: ")
        );
        assert!(lines[2].starts_with("parse-error: broken.yaml:"), "{text}");
        assert_eq!(lines[3], "2 violations, 1 parse error in 2 files");
        assert!(
            report.files[2]
                .error
                .as_ref()
                .is_some_and(|e| e.line.is_some())
        );
    }

    #[test]
    fn summary_counts_files_with_violations() {
        let names = scope_names();
        let scope = Scope {
            allowed_namespaces: &names,
            default_namespace: "team-a",
        };
        let files = vec![
            ("one.yaml".to_owned(), BAD.to_owned()),
            ("two.yaml".to_owned(), "apiVersion: v1\nkind: Pod\nmetadata: {name: q}\nspec:\n  hostPID: true\n  containers: []\n".to_owned()),
            ("three.yaml".to_owned(), GOOD.to_owned()),
        ];
        let report = test_files(&PolicyConfig::default(), &scope, &files);
        assert_eq!(
            report.to_string().lines().last(),
            Some("3 violations in 2 files")
        );
    }
}

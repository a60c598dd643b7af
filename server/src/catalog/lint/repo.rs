//! `atrium validate --repo DIR`: lints a whole checkout the way its CI should, before Atrium reads the
//! repository. It finds the catalog files by glob, follows the relative targets of their `Location`
//! entities, and lints everything together so that an entity defined in two files is reported.
//!
//! What is walked: everything below DIR except `.git` and what the repository's `.gitignore` files and
//! `.git/info/exclude` ignore (the `ignore` crate reads them as git does; the user's global excludes
//! are not read, so CI and laptops agree). Hidden directories are walked: `.backstage/` is a common
//! home for catalog files. Symbolic links are never followed out of DIR: a linked catalog file is read
//! only when it resolves inside DIR, and linked directories are not entered.

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};
use serde_json::Value;

use super::{Linter, Problem, Report};
use crate::catalog::yaml::ParsedDocument;

/// The catalog files of a repository when no glob is given; git locations use the same default.
pub const DEFAULT_CATALOG_FILE: &str = "**/catalog-info.yaml";

/// Why a repository could not be linted at all (as opposed to problems in its files).
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("--repo {}: {source}", dir.display())]
    Dir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "no file matches --catalog-file {} in {} (.git and git-ignored paths are not searched)",
        globs.iter().map(|g| format!("{g:?}")).collect::<Vec<_>>().join(", "),
        dir.display()
    )]
    NothingMatched { globs: Vec<String>, dir: PathBuf },
    #[error("--catalog-file {glob:?}: {message}")]
    BadGlob { glob: String, message: String },
}

/// Compiles `--catalog-file` globs. They match paths relative to the repository with `/` separators;
/// `*` stays within one directory and `**/` spans any number of them, including none, so
/// `**/catalog-info.yaml` also matches `catalog-info.yaml` at the top.
pub fn catalog_file_globs(globs: &[String]) -> Result<GlobSet, RepoError> {
    let mut builder = GlobSetBuilder::new();
    for glob in globs {
        builder.add(compile_glob(glob)?);
    }
    builder.build().map_err(|e| RepoError::BadGlob {
        glob: globs.join(" "),
        message: e.kind().to_string(),
    })
}

fn compile_glob(glob: &str) -> Result<Glob, RepoError> {
    let pattern = glob.strip_prefix("./").unwrap_or(glob);
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map_err(|e| RepoError::BadGlob {
            glob: glob.to_owned(),
            message: e.kind().to_string(),
        })
}

/// Lints every file below `dir` that matches one of `globs` (default [`DEFAULT_CATALOG_FILE`]), and
/// the files their `Location` entities point at. Problems name files relative to `dir`.
pub fn lint_repo(dir: &Path, globs: &[String]) -> Result<Report, RepoError> {
    let globs: Vec<String> = if globs.is_empty() {
        vec![DEFAULT_CATALOG_FILE.to_owned()]
    } else {
        globs.to_vec()
    };
    let matcher = catalog_file_globs(&globs)?;
    let root = dir.canonicalize().map_err(|source| RepoError::Dir {
        dir: dir.to_path_buf(),
        source,
    })?;

    let mut walk_problems = Vec::new();
    let mut matched = Vec::new();
    let walker = ignore::WalkBuilder::new(&root)
        .standard_filters(false)
        .git_ignore(true)
        .git_exclude(true)
        .require_git(false)
        .follow_links(false)
        .filter_entry(|entry| entry.file_name() != ".git")
        .sort_by_file_name(Ord::cmp)
        .build();
    for entry in walker {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                walk_problems.push(Problem {
                    file: PathBuf::from("."),
                    line: None,
                    field: None,
                    message: format!("cannot search the repository: {e}"),
                });
                continue;
            }
        };
        let Some(file_type) = entry.file_type() else {
            continue;
        };
        if file_type.is_dir() {
            continue;
        }
        let Ok(relative) = entry.path().strip_prefix(&root) else {
            continue;
        };
        if matcher.is_match(slash_path(relative)) {
            matched.push(relative.to_path_buf());
        }
    }
    if matched.is_empty() && walk_problems.is_empty() {
        return Err(RepoError::NothingMatched {
            globs,
            dir: dir.to_path_buf(),
        });
    }

    let mut linter = Linter::default();
    linter.report.problems = walk_problems;
    let mut queued: HashSet<PathBuf> = matched.iter().cloned().collect();
    let mut pending: std::collections::VecDeque<PathBuf> = matched.into();
    while let Some(relative) = pending.pop_front() {
        let path = root.join(&relative);
        if let Err(message) = check_inside(&root, &path) {
            linter.report.problems.push(Problem {
                file: relative,
                line: None,
                field: None,
                message,
            });
            continue;
        }
        let documents = linter.lint_file(&path, &relative);
        for target in location_targets(&documents) {
            match resolve_target(&root, &relative, &target.path) {
                Ok(Some(next)) => {
                    if queued.insert(next.clone()) {
                        pending.push_back(next);
                    }
                }
                Ok(None) => {}
                Err(message) => linter.report.problems.push(Problem {
                    file: relative.clone(),
                    line: Some(target.line),
                    field: Some(target.field),
                    message,
                }),
            }
        }
    }
    Ok(linter.report)
}

/// `a/b.yaml` with `/` separators on every platform, for glob matching.
fn slash_path(path: &Path) -> String {
    path.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// A `Location` entity's target as written, with where it was written.
struct LocationTarget {
    field: String,
    line: usize,
    path: String,
}

/// The targets of the `Location` entities among `documents`: `spec.target` and `spec.targets`.
fn location_targets(documents: &[ParsedDocument]) -> Vec<LocationTarget> {
    let mut targets = Vec::new();
    for document in documents {
        let value = &document.value;
        let is_location = value
            .get("kind")
            .and_then(Value::as_str)
            .is_some_and(|kind| kind.eq_ignore_ascii_case("location"));
        if !is_location {
            continue;
        }
        let spec = value.get("spec");
        if let Some(target) = spec.and_then(|s| s.get("target")).and_then(Value::as_str) {
            targets.push(LocationTarget {
                field: "spec.target".to_owned(),
                line: document.line_of("spec.target"),
                path: target.to_owned(),
            });
        }
        let listed = spec
            .and_then(|s| s.get("targets"))
            .and_then(Value::as_array);
        for (i, target) in listed.into_iter().flatten().enumerate() {
            if let Some(target) = target.as_str() {
                let field = format!("spec.targets.{i}");
                targets.push(LocationTarget {
                    line: document.line_of(&field),
                    field,
                    path: target.to_owned(),
                });
            }
        }
    }
    targets
}

/// Resolves a target written in the file `from` (relative to the root) to a path relative to the root.
/// `Ok(None)`: a URL, which is checked when Atrium reads it, not offline.
fn resolve_target(root: &Path, from: &Path, target: &str) -> Result<Option<PathBuf>, String> {
    if target.starts_with("http://") || target.starts_with("https://") {
        return Ok(None);
    }
    if Path::new(target).is_absolute() {
        return Err(format!(
            "target {target:?} is an absolute path; in a repository a target is relative to the file \
             that names it"
        ));
    }
    let joined = from.parent().unwrap_or(Path::new("")).join(target);
    let Some(relative) = normalize_inside(&joined) else {
        return Err(format!(
            "target {target:?} points outside the repository (to {})",
            joined.display()
        ));
    };
    let path = root.join(&relative);
    match std::fs::metadata(&path) {
        Ok(metadata) if metadata.is_file() => {}
        Ok(_) => {
            return Err(format!(
                "target {target:?} ({}) is not a file",
                relative.display()
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let hint = if target.contains(['*', '?', '[']) {
                "; Atrium reads targets literally and does not expand globs"
            } else {
                ""
            };
            return Err(format!(
                "target {target:?} not found: there is no {}{hint}",
                relative.display()
            ));
        }
        Err(e) => {
            return Err(format!(
                "target {target:?} ({}): cannot read: {e}",
                relative.display()
            ));
        }
    }
    check_inside(root, &path).map_err(|message| format!("target {target:?}: {message}"))?;
    Ok(Some(relative))
}

/// Removes `.` and resolves `..` without touching the file system; `None` when `..` climbs above the
/// start.
fn normalize_inside(path: &Path) -> Option<PathBuf> {
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => parts.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(parts.iter().collect())
}

/// A file inside the repository may still be a symbolic link that leads out of it.
fn check_inside(root: &Path, path: &Path) -> Result<(), String> {
    match path.canonicalize() {
        Ok(real) if real.starts_with(root) => Ok(()),
        Ok(real) => Err(format!(
            "is a symbolic link to {}, outside the repository; it is not read",
            real.display()
        )),
        // Reading the file reports it.
        Err(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_relative_paths_like_git_locations_will() {
        let set = catalog_file_globs(&[DEFAULT_CATALOG_FILE.to_owned()]).expect("glob");
        assert!(set.is_match("catalog-info.yaml"));
        assert!(set.is_match("services/payments/catalog-info.yaml"));
        assert!(!set.is_match("services/payments/catalog-info.yml"));
        assert!(!set.is_match("catalog-info.yaml.bak"));

        let set = catalog_file_globs(&["catalog/*.yaml".to_owned(), "./{a,b}.yml".to_owned()])
            .expect("glob");
        assert!(set.is_match("catalog/systems.yaml"));
        assert!(
            !set.is_match("catalog/nested/systems.yaml"),
            "* stays in one directory"
        );
        assert!(set.is_match("a.yml") && set.is_match("b.yml"));

        let err = catalog_file_globs(&["catalog/[a.yaml".to_owned()]).expect_err("invalid");
        assert!(
            err.to_string()
                .starts_with("--catalog-file \"catalog/[a.yaml\": "),
            "{err}"
        );
    }

    #[test]
    fn normalize_inside_refuses_to_climb_out() {
        assert_eq!(
            normalize_inside(Path::new("a/./b/../c.yaml")),
            Some(PathBuf::from("a/c.yaml"))
        );
        assert_eq!(
            normalize_inside(Path::new("a/../../c.yaml")),
            None,
            "one level above the root"
        );
        assert_eq!(normalize_inside(Path::new("/etc/passwd")), None);
    }
}

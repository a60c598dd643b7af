//! How `fetch:template` classifies a skeleton's entries, as Backstage does: which paths are skipped,
//! which files are templates (`templateFileExtension`), which are binary, which the copy globs cover.

use globset::{GlobSet, GlobSetBuilder};

use crate::scaffolder::actions::ActionError;
use crate::scaffolder::actions::fs::{glob, is_glob};
use crate::scaffolder::source::{SourceEntry, SourceTree};

/// A rendered path that names nothing: empty, or with an empty segment (`/a`, `a//b`, `a/` for a
/// file), which is what Backstage skips (`''`, a leading `/`, `//`) and a little more.
pub(super) fn is_skipped(rendered: &str, is_dir: bool) -> bool {
    let path = if is_dir {
        rendered.strip_suffix('/').unwrap_or(rendered)
    } else {
        rendered
    };
    path.is_empty() || path.split('/').any(str::is_empty)
}

/// Node's `path.extname` of a file path: from the last `.` of the last segment, unless that segment
/// only starts with it.
pub(super) fn extension_of(path: &str) -> &str {
    let name = path.rsplit('/').next().unwrap_or(path);
    match name.rfind('.') {
        Some(i) if i > 0 => &name[i..],
        _ => "",
    }
}

/// Whether `contents` is copied untouched rather than rendered: what `isbinaryfile` decides on the
/// first 512 bytes (a NUL byte, a PDF header, or more than 10% control bytes), and anything that is
/// not UTF-8.
pub(super) fn is_binary(contents: &[u8]) -> bool {
    let head = &contents[..contents.len().min(512)];
    if head.is_empty() {
        return false;
    }
    if head.starts_with(b"%PDF-") || head.contains(&0) {
        return true;
    }
    let control = head
        .iter()
        .filter(|&&b| b < 7 || (b > 14 && b < 32))
        .count();
    if control * 100 / head.len() > 10 {
        return true;
    }
    std::str::from_utf8(contents).is_err()
}

/// `copyWithoutTemplating` / `copyWithoutRender` patterns, matched as Backstage's globby call does:
/// relative to the skeleton, `.`-files included, `*` not crossing `/`; a pattern that names an
/// existing directory as it is (no wildcard) covers everything under it; `!pattern` excludes.
pub(super) struct CopyOnly {
    include: GlobSet,
    exclude: GlobSet,
    /// Patterns written with a trailing `/`, which match directories only.
    dirs_only: GlobSet,
}

impl CopyOnly {
    pub(super) fn new(patterns: &[String], tree: &SourceTree) -> Result<Self, ActionError> {
        let mut include = GlobSetBuilder::new();
        let mut exclude = GlobSetBuilder::new();
        let mut dirs_only = GlobSetBuilder::new();
        for pattern in patterns {
            let (negated, body) = match pattern.strip_prefix('!') {
                Some(rest) if !rest.starts_with('(') => (true, rest),
                _ => (false, pattern.as_str()),
            };
            let body = body.trim_start_matches("./");
            let (body, dir_only) = match body.strip_suffix('/') {
                Some(dir) => (dir, true),
                None => (body, false),
            };
            let compile = |text: &str| {
                glob(text).map_err(|e| {
                    ActionError::input(format!(
                        "fetch:template: copy pattern {pattern:?} is not a valid glob: {e}"
                    ))
                })
            };
            let set = if negated { &mut exclude } else { &mut include };
            if !is_glob(body) && matches!(tree.entries.get(body), Some(SourceEntry::Dir)) {
                set.add(compile(&format!("{body}/**"))?);
            }
            if dir_only && !negated {
                dirs_only.add(compile(body)?);
            } else {
                set.add(compile(body)?);
            }
        }
        let build = |builder: GlobSetBuilder| {
            builder
                .build()
                .map_err(|e| ActionError::input(format!("fetch:template: copy patterns: {e}")))
        };
        Ok(Self {
            include: build(include)?,
            exclude: build(exclude)?,
            dirs_only: build(dirs_only)?,
        })
    }

    pub(super) fn matches(&self, relative: &str, is_dir: bool) -> bool {
        let included =
            self.include.is_match(relative) || (is_dir && self.dirs_only.is_match(relative));
        included && !self.exclude.is_match(relative)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scaffolder::source::SourceFile;

    fn tree(paths: &[&str]) -> SourceTree {
        let mut tree = SourceTree::default();
        for path in paths {
            let entry = if let Some(dir) = path.strip_suffix('/') {
                tree.entries.insert(dir.to_owned(), SourceEntry::Dir);
                continue;
            } else {
                SourceEntry::File(SourceFile {
                    contents: Vec::new(),
                    executable: false,
                })
            };
            tree.entries.insert((*path).to_owned(), entry);
        }
        tree
    }

    #[test]
    fn copy_patterns_match_like_globby() {
        let skeleton = tree(&[
            ".github/",
            ".github/workflows/",
            ".github/workflows/ci.yaml",
            "docs/",
            "docs/a.md",
            "docs/keep.md",
            "src/",
            "src/main.rs",
            ".env",
        ]);
        let globs = |patterns: &[&str]| {
            CopyOnly::new(
                &patterns.iter().map(ToString::to_string).collect::<Vec<_>>(),
                &skeleton,
            )
            .expect("globs")
        };
        let workflows = globs(&[".github/workflows/*"]);
        assert!(workflows.matches(".github/workflows/ci.yaml", false));
        assert!(!workflows.matches("src/main.rs", false));
        // A directory named as it is covers what is inside it.
        let docs = globs(&["docs", "!docs/keep.md"]);
        assert!(docs.matches("docs/a.md", false));
        assert!(!docs.matches("docs/keep.md", false));
        // `*` does not cross `/`; `**` does; dotfiles match.
        let star = globs(&["*"]);
        assert!(star.matches(".env", false));
        assert!(!star.matches("src/main.rs", false));
        assert!(globs(&["**/*.rs"]).matches("src/main.rs", false));
        assert!(globs(&["./src/*.rs"]).matches("src/main.rs", false));
        // Backstage's own case: a directory, minus files whose (unrendered) names match.
        let skeleton = tree(&[
            ".unprocessed/",
            ".unprocessed/content-${{ values.name }}.txt",
            ".unprocessed/process-content-${{ values.name }}.txt",
        ]);
        let excluded = CopyOnly::new(
            &[
                ".unprocessed".to_owned(),
                "!*/process-content-${{ values.name }}.txt".to_owned(),
            ],
            &skeleton,
        )
        .expect("globs");
        assert!(excluded.matches(".unprocessed/content-${{ values.name }}.txt", false));
        assert!(!excluded.matches(".unprocessed/process-content-${{ values.name }}.txt", false));
        // A wildcard naming directories matches them only, not what is inside.
        assert!(!globs(&[".github/*"]).matches(".github/workflows/ci.yaml", false));
    }

    #[test]
    fn rendered_paths_with_empty_parts_are_skipped() {
        assert!(is_skipped("", false));
        assert!(is_skipped("/", true));
        assert!(is_skipped("/main.rs", false));
        assert!(is_skipped("a//b", false));
        assert!(is_skipped("a/", false));
        assert!(!is_skipped("a/", true));
        assert!(!is_skipped("a/b.rs", false));
    }

    #[test]
    fn extensions_are_node_s() {
        assert_eq!(extension_of("a/b.txt.njk"), ".njk");
        assert_eq!(extension_of("a/.njk"), "");
        assert_eq!(extension_of("a.d/b"), "");
        assert_eq!(extension_of("b."), ".");
    }

    #[test]
    fn binary_detection() {
        assert!(!is_binary(b""));
        assert!(!is_binary(b"fn main() {}\n"));
        assert!(!is_binary("héllo ✓ 🦀\n".as_bytes()));
        assert!(is_binary(b"PNG\0\0\x01"));
        assert!(is_binary(b"%PDF-1.7 ..."));
        assert!(is_binary(&[0x1b; 40]));
        assert!(is_binary(&[0xff, 0xfe, b'a', b'b']));
        // A NUL after the first 512 bytes is not looked for, but the text must still be UTF-8.
        let mut late = vec![b'a'; 600];
        late.push(0xc3);
        assert!(is_binary(&late));
    }
}

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
            branch: branch.to_owned(),
        }
    }

    /// `file:///...` remote of this repository.
    pub fn url(&self) -> String {
        format!("file://{}", self.path.display())
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
        let parents: Vec<&git2::Commit> = parent.iter().collect();
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
                    builder.insert(rest, blob, 0o100644).expect("insert blob");
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

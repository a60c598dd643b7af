//! Where catalog files come from: location targets (`file`, `url`, `git` repositories and the
//! `git-file`s in them), the rules each must pass (file roots, host allowlist, size and time limits),
//! and reading them.

mod error;
mod reader;
mod target;

pub use error::ReadError;
pub use reader::Reader;
pub use target::{Target, generated_location_key};

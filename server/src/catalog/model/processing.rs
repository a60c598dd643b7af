//! Problems found while processing catalog files. They are data, not request errors: stored with the
//! entity (`entity.errors`) or the location (`location.errors`) and served as the entity's
//! `status.items`, so a broken file is visible where people look for the entity.

use serde::{Deserialize, Serialize};

/// One problem, as stored in `entity.errors` / `location.errors` and served in `status.items`.
/// `name` is Backstage's error class (`InputError`, `NotFoundError`, `ConflictError`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessingError {
    pub name: String,
    pub message: String,
}

impl ProcessingError {
    pub fn new(name: &str, message: impl Into<String>) -> Self {
        Self {
            name: name.to_owned(),
            message: message.into(),
        }
    }
}

//! ${{ values.description }}
//!
//! Owned by `${{ values.owner }}`. Errors follow the Rust error-handling rule: one typed error
//! enum per crate, no panics in library code.

use std::fmt;

/// Everything that can go wrong in this crate.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The input was empty where a value is required.
    Empty,
    /// The input was longer than the allowed maximum.
    TooLong {
        /// The maximum length, in characters.
        max: usize,
        /// The length that was given.
        actual: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("value must not be empty"),
            Self::TooLong { max, actual } => {
                write!(f, "value is {actual} characters long, at most {max} are allowed")
            }
        }
    }
}

impl std::error::Error for Error {}

/// The longest value [`normalize`] accepts, in characters.
pub const MAX_LEN: usize = 256;

/// Trims surrounding whitespace and lowercases `input`.
///
/// Replace this with the crate's real API; it is here so the crate builds, tests and documents
/// from the first commit.
///
/// # Errors
///
/// [`Error::Empty`] if nothing is left after trimming, [`Error::TooLong`] if the trimmed value
/// has more than [`MAX_LEN`] characters.
pub fn normalize(input: &str) -> Result<String, Error> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(Error::Empty);
    }
    let len = trimmed.chars().count();
    if len > MAX_LEN {
        return Err(Error::TooLong { max: MAX_LEN, actual: len });
    }
    Ok(trimmed.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_and_lowercases() {
        assert_eq!(normalize("  Oak Table ").as_deref(), Ok("oak table"));
    }

    #[test]
    fn rejects_blank_input() {
        assert_eq!(normalize("   "), Err(Error::Empty));
    }

    #[test]
    fn rejects_overlong_input() {
        let long = "a".repeat(MAX_LEN + 1);
        assert_eq!(normalize(&long), Err(Error::TooLong { max: MAX_LEN, actual: MAX_LEN + 1 }));
    }
}

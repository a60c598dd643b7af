//! Uses the crate the way a dependent service would.

use ${{ values.crateIdent }}::{normalize, Error};

#[test]
fn normalizes_through_the_public_api() {
    assert_eq!(normalize("Hello").as_deref(), Ok("hello"));
    assert!(matches!(normalize(""), Err(Error::Empty)));
}

//! The catalog's SQL, and only here. One file per table or concern; functions take
//! `impl PgExecutor<'_>` (pool or transaction) or `&mut PgConnection` when they run several
//! statements, and return named `*Row` structs.
//!
//! Fixed statements are checked against the schema at compile time (`query!`, `query_as!`,
//! `query_scalar!`, with `.sqlx/` committed so builds need no database). Entity lists, facets and
//! look-ups with a filter are assembled with `QueryBuilder` (`query`, `facets`, `filter`), every value
//! bound.

pub mod claims;
pub mod counts;
pub mod entities;
pub mod facets;
pub mod filter;
pub mod generation;
pub mod locations;
pub mod query;
pub mod relations;
pub mod statistics;
pub mod status;
pub mod stitch;

pub use claims::{LocationJob, claim_due_locations};
pub use facets::{FacetCountRow, facet_counts};
pub use locations::LocationRow;
pub use query::{
    EntityQuery, FullText, Keyset, OrderField, PageRow, count_entities, query_entities,
};
pub use status::{ProcessingStatusRow, processing_status};
